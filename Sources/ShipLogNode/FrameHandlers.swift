import NIOCore
import ShipLogProtocol

/// Thrown by `FrameDecoder` when the bytes in front of it are not a valid frame: the
/// connection handler logs it with the peer's address and closes the connection.
struct FrameDecodingError: Error, CustomStringConvertible {
    var error: FrameError
    var description: String { "\(error.reason): \(error.message)" }
}

/// Cuts the inbound byte stream into frames. It knows nothing of the byte layout: each call
/// asks `FrameCodec` about the readable bytes, which also enforces `maxFrameBytes` from the
/// header alone, so a length claiming gigabytes is refused before the body is awaited.
final class FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = Frame
    let maxFrameBytes: Int

    init(maxFrameBytes: Int) { self.maxFrameBytes = maxFrameBytes }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let maxFrameBytes = self.maxFrameBytes
        let result = buffer.withUnsafeReadableBytes { FrameCodec.decode($0, maxFrameBytes: maxFrameBytes) }
        switch result {
        case .frame(let frame, let consumed):
            buffer.moveReaderIndex(forwardBy: consumed)
            context.fireChannelRead(wrapInboundOut(frame))
            return .continue
        case .needMoreBytes:
            return .needMoreData
        case .invalid(let error):
            // The stream cannot be resynchronised after a bad frame: drop what is left.
            buffer.moveReaderIndex(to: buffer.writerIndex)
            throw FrameDecodingError(error: error)
        }
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // A partial frame at EOF is the peer going away mid-frame: nothing to act on.
        return .needMoreData
    }
}

/// Writes frames with `FrameCodec`, the only encoder of the wire format.
final class FrameEncoder: MessageToByteEncoder {
    typealias OutboundIn = Frame
    private var scratch: [UInt8] = []

    func encode(data frame: Frame, out: inout ByteBuffer) throws {
        scratch.removeAll(keepingCapacity: true)
        FrameCodec.encode(frame, into: &scratch)
        out.writeBytes(scratch)
        // Don't keep a multi-megabyte `batches` frame's buffer alive between frames.
        if scratch.capacity > 1 << 20 { scratch = [] }
    }
}
