import NIOCore
import ShipLogProtocol

/// Thrown by `FrameDecoder` when the bytes in front of it are not a valid frame: the
/// connection handler logs it with the peer's address and closes the connection.
struct FrameDecodingError: Error, CustomStringConvertible {
    var error: FrameError
    var description: String { "\(error.reason): \(error.message)" }
}

/// The largest frame a connection's decoder accepts now. It starts small, since before
/// authentication only handshake frames (under 100 bytes) may arrive and a peer that proved
/// nothing must not make the node buffer megabytes; `PeerHandler` raises it on authentication.
/// Used on the connection's event loop only.
final class FrameLimit {
    /// Before authentication: room for any handshake frame (and a goodbye's message).
    static let handshakeFrameBytes = 1024
    var maxFrameBytes: Int
    init(maxFrameBytes: Int) { self.maxFrameBytes = maxFrameBytes }
}

/// Cuts the inbound byte stream into frames. It knows nothing of the byte layout: each call
/// asks `FrameCodec` about the readable bytes, which also enforces the current frame limit from
/// the header alone, so a length claiming gigabytes is refused before the body is awaited.
///
/// A `batches` frame that has not all arrived is taken batch by batch as it comes
/// (`BatchesFrameAssembler`), every readable byte consumed: NIO then has no partial frame to
/// keep, so it never gathers a catch-up frame's megabyte into one buffer (a copy and a fresh
/// allocation per frame) before each batch is copied out of it.
final class FrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = Frame
    let limit: FrameLimit
    /// The `batches` frame being taken, if one is.
    private var assembling: BatchesFrameAssembler?

    init(maxFrameBytes: Int) { self.limit = FrameLimit(maxFrameBytes: maxFrameBytes) }
    init(limit: FrameLimit) { self.limit = limit }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        // Read on every call: the frame that authenticates the peer raises it for the next one.
        let maxFrameBytes = limit.maxFrameBytes
        var failure: FrameError?
        if assembling != nil {
            let taken = buffer.withUnsafeReadableBytes { bytes -> Int in
                do throws(FrameError) { return try assembling!.take(bytes) } catch { failure = error; return 0 }
            }
            if let failure { throw invalid(failure, &buffer) }
            buffer.moveReaderIndex(forwardBy: taken)
            guard assembling!.isComplete else { return .needMoreData }
            let frame = assembling!.frame
            assembling = nil
            context.fireChannelRead(wrapInboundOut(.batches(frame)))
            return .continue
        }
        let started = buffer.withUnsafeReadableBytes { bytes -> (assembler: BatchesFrameAssembler, consumed: Int)? in
            do throws(FrameError) { return try FrameCodec.startBatches(bytes, maxFrameBytes: maxFrameBytes) } catch { failure = error; return nil }
        }
        if let failure { throw invalid(failure, &buffer) }
        if let started {
            buffer.moveReaderIndex(forwardBy: started.consumed)
            assembling = started.assembler
            return .continue
        }
        let result = buffer.withUnsafeReadableBytes { FrameCodec.decode($0, maxFrameBytes: maxFrameBytes) }
        switch result {
        case .frame(let frame, let consumed):
            buffer.moveReaderIndex(forwardBy: consumed)
            context.fireChannelRead(wrapInboundOut(frame))
            return .continue
        case .needMoreBytes:
            return .needMoreData
        case .invalid(let error):
            throw invalid(error, &buffer)
        }
    }

    /// The stream cannot be resynchronised after a bad frame: drops what is left.
    private func invalid(_ error: FrameError, _ buffer: inout ByteBuffer) -> FrameDecodingError {
        assembling = nil
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return FrameDecodingError(error: error)
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

extension Channel {
    /// Switches reading (`ChannelOptions.autoRead`): a follower's read pause. Frames the decoder
    /// already holds still arrive after reading stops; turning it on asks for a read. Call on
    /// the channel's loop, where the option is set at once.
    func setReading(_ on: Bool) {
        eventLoop.preconditionInEventLoop()
        if let options = syncOptions {
            try? options.setOption(ChannelOptions.autoRead, value: on)  // fails only once the channel closed
        } else {
            setOption(ChannelOptions.autoRead, value: on).whenFailure { _ in }
        }
    }

    /// Writes a frame `FrameCodec` laid out elsewhere (a `batches` frame read straight into its
    /// send buffer, see `ShipRead`) past the frame encoder, which only takes `Frame`s. Call on
    /// the channel's event loop: frames written through the encoder there are encoded and passed
    /// on at once, so both kinds reach the socket in the order they were written.
    /// The frame comes in two parts (a head and the stored batches), sent with one flush.
    func writeEncodedFrame(_ head: ByteBuffer, _ rest: ByteBuffer) {
        eventLoop.preconditionInEventLoop()
        // Gone when the channel closed (handlers are removed): nothing to write to then.
        guard let encoder = try? pipeline.syncOperations.context(handlerType: MessageToByteHandler<FrameEncoder>.self) else {
            return
        }
        encoder.write(NIOAny(head), promise: nil)
        encoder.writeAndFlush(NIOAny(rest), promise: nil)
    }
}
