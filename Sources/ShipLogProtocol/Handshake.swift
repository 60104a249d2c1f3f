import Crypto

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

    /// The only protocol version this code speaks.
    public static let protocolVersion: UInt16 = 1

    private enum State: Sendable {
        case idle
        /// Connector: hello sent, waiting for the challenge.
        case sentHello
        /// Listener: waiting for hello.
        case awaitingHello
        /// Listener: challenge sent to `peer` whose nonce was `peerNonce`.
        case sentChallenge(peer: NodeID, peerNonce: [UInt8])
        case authenticated(NodeID)
        case closed
    }

    public let side: Side
    public let nodeID: NodeID
    /// Kept as bytes (SymmetricKey is not Sendable); wrapped per MAC.
    private let key: [UInt8]
    private let nonce: [UInt8]
    private let allowedPeers: Set<NodeID>?
    private var state: State

    /// `nonce` must be 32 fresh random bytes; `allowedPeers` (when given) limits who may connect.
    public init(side: Side, nodeID: NodeID, clusterKey: [UInt8], nonce: [UInt8], allowedPeers: Set<NodeID>? = nil) {
        precondition(nonce.count == FrameCodec.nonceBytes, "a handshake nonce is \(FrameCodec.nonceBytes) bytes")
        self.side = side
        self.nodeID = nodeID
        self.key = clusterKey
        self.nonce = nonce
        self.allowedPeers = allowedPeers
        self.state = side == .connector ? .idle : .awaitingHello
    }

    /// The authenticated peer, once the handshake succeeded.
    public var peer: NodeID? {
        if case .authenticated(let peer) = state { return peer }
        return nil
    }

    /// The connector speaks first: `[.send(.hello)]`; the listener waits: `[]`.
    public mutating func start() -> [Action] {
        guard side == .connector, case .idle = state else { return [] }
        state = .sentHello
        return [.send(.hello(.init(protocolVersion: Self.protocolVersion, nodeID: nodeID, nonce: nonce)))]
    }

    public mutating func received(_ frame: Frame) -> [Action] {
        switch (state, frame) {
        case (.closed, _):
            return []
        case (_, .goodbye(let goodbye)):
            return close(goodbye.reason, "peer said goodbye during the handshake: \(goodbye.message)")
        case (.awaitingHello, .hello(let hello)):
            guard hello.protocolVersion == Self.protocolVersion else {
                return close(.protocolVersion, "peer speaks protocol version \(hello.protocolVersion), this node \(Self.protocolVersion)")
            }
            guard hello.nonce.count == FrameCodec.nonceBytes else {
                return close(.authenticationFailed, "hello nonce is \(hello.nonce.count) bytes, not \(FrameCodec.nonceBytes)")
            }
            guard hello.nonce != nonce else { return close(.authenticationFailed, "hello reflects this node's nonce") }
            if let allowedPeers, !allowedPeers.contains(hello.nodeID) {
                return close(.authenticationFailed, "\(hello.nodeID) is not a configured peer")
            }
            state = .sentChallenge(peer: hello.nodeID, peerNonce: hello.nonce)
            let mac = Self.mac(key: key, label: Self.listenerLabel, first: hello.nonce, second: nonce,
                               connector: hello.nodeID, listener: nodeID)
            return [.send(.challenge(.init(nodeID: nodeID, nonce: nonce, mac: mac)))]
        case (.sentHello, .challenge(let challenge)):
            guard challenge.nonce.count == FrameCodec.nonceBytes, challenge.mac.count == FrameCodec.macBytes else {
                return close(.authenticationFailed, "challenge nonce or mac is not \(FrameCodec.nonceBytes) bytes")
            }
            guard challenge.nonce != nonce else { return close(.authenticationFailed, "challenge reflects this node's nonce") }
            if let allowedPeers, !allowedPeers.contains(challenge.nodeID) {
                return close(.authenticationFailed, "\(challenge.nodeID) is not a configured peer")
            }
            let expected = Self.mac(key: key, label: Self.listenerLabel, first: nonce, second: challenge.nonce,
                                    connector: nodeID, listener: challenge.nodeID)
            guard Self.constantTimeEqual(expected, challenge.mac) else {
                return close(.authenticationFailed, "\(challenge.nodeID) did not prove the cluster key: the two nodes' cluster keys differ")
            }
            state = .authenticated(challenge.nodeID)
            let proof = Self.mac(key: key, label: Self.connectorLabel, first: challenge.nonce, second: nonce,
                                 connector: nodeID, listener: challenge.nodeID)
            return [.send(.proof(.init(mac: proof))), .authenticated(peer: challenge.nodeID)]
        case (.sentChallenge(let peer, let peerNonce), .proof(let proof)):
            let expected = Self.mac(key: key, label: Self.connectorLabel, first: nonce, second: peerNonce,
                                    connector: peer, listener: nodeID)
            guard proof.mac.count == FrameCodec.macBytes, Self.constantTimeEqual(expected, proof.mac) else {
                return close(.authenticationFailed, "\(peer) did not prove the cluster key: the two nodes' cluster keys differ")
            }
            state = .authenticated(peer)
            return [.authenticated(peer: peer)]
        case (.authenticated, _):
            return close(.unexpectedFrame, "\(frame.type) frame reached the handshake after authentication")
        default:
            return close(.unexpectedFrame, "\(frame.type) frame during the handshake")
        }
    }

    private mutating func close(_ reason: CloseReason, _ message: String) -> [Action] {
        state = .closed
        return [.close(reason, message: message)]
    }

    static let listenerLabel = Array("shiplog listener".utf8)
    static let connectorLabel = Array("shiplog connector".utf8)

    /// HMAC-SHA256(key, label ‖ first ‖ second ‖ connector id u64 LE ‖ listener id u64 LE).
    static func mac(key: [UInt8], label: [UInt8], first: [UInt8], second: [UInt8],
                    connector: NodeID, listener: NodeID) -> [UInt8] {
        var message = label + first + second
        for id in [connector.rawValue, listener.rawValue] {
            for i in 0..<8 { message.append(UInt8(truncatingIfNeeded: id >> (8 * UInt64(i)))) }
        }
        return Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    /// Compares every byte whatever the first difference, so timing reveals nothing of the MAC.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}
