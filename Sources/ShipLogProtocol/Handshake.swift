/// Mutual authentication of a new connection with a shared cluster key (format.md §11.2):
/// HMAC-SHA256 challenge-response in both directions over two fresh nonces. Pure: the shell
/// passes the nonce in.
public struct Handshake: Sendable {
    public enum Side: Sendable { case connector, listener }
    public enum Action: Equatable, Sendable {
        case send(Frame)
        /// The peer proved the key: replication frames may flow.
        case authenticated(peer: NodeID)
        case close(CloseReason, message: String)
    }
}
