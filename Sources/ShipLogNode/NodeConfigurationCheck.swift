import ShipLogProtocol
import ShipLogStorage

extension Node {
    /// Bytes a `batches` frame adds around its batches: the frame header (u32 length, u8 type)
    /// and the payload's u64 epoch, u64 commit offset and u32 batch count (format.md §11.1).
    static let batchesFrameOverheadBytes = FrameCodec.headerBytes + 8 + 8 + 4

    /// Refuses settings that cannot work, before anything is opened: each message names both values.
    static func check(_ configuration: NodeConfiguration, replication: ReplicationConfiguration) throws {
        let largestFrame = configuration.logOptions.maxBatchBytes + batchesFrameOverheadBytes
        guard largestFrame <= replication.maxFrameBytes else {
            throw NodeError.invalidConfiguration(
                "logOptions.maxBatchBytes \(configuration.logOptions.maxBatchBytes) plus \(batchesFrameOverheadBytes) bytes of "
                    + "frame overhead exceeds replication.maxFrameBytes \(replication.maxFrameBytes): a batch could never be shipped")
        }
        guard replication.primaryTimeout > replication.heartbeatInterval else {
            throw NodeError.invalidConfiguration(
                "replication.primaryTimeout \(replication.primaryTimeout) must exceed heartbeatInterval \(replication.heartbeatInterval)")
        }
        guard configuration.handshakeTimeout > .zero else {
            throw NodeError.invalidConfiguration("handshakeTimeout \(configuration.handshakeTimeout) must be positive")
        }
    }
}
