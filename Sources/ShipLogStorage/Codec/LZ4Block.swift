import CLZ4
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// LZ4 block compression through liblz4 (the block format, not the frame format:
/// the batch header already carries both lengths and a checksum).
public enum LZ4Block {
    /// The largest output `compress` can produce for `sourceBytes` of input.
    public static func compressBound(_ sourceBytes: Int) -> Int {
        Int(LZ4_compressBound(Int32(sourceBytes)))
    }

    /// Compresses `source` into `destination`; returns the compressed length, or nil
    /// when the output would not fit (the caller then stores the bytes raw).
    public static func compress(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer
    ) -> Int? {
        guard source.count > 0 else { return 0 }
        // `LZ4_compress_default` zeroes a 16 KiB hash table on its stack for every call (6.7%
        // of `append-os-8`'s time in one profile, for 128-byte batches). A stream kept per
        // thread and reset with `LZ4_resetStream_fast` starts each block without a dictionary
        // and without that memset: the same independent block (liblz4's own
        // `LZ4_compress_fast_extState_fastReset`, which Debian's shared library does not export).
        let stream = threadStream()
        LZ4_resetStream_fast(stream)
        let written = LZ4_compress_fast_continue(
            stream, source.baseAddress!.assumingMemoryBound(to: CChar.self),
            destination.baseAddress!.assumingMemoryBound(to: CChar.self),
            Int32(source.count), Int32(destination.count), 1)
        return written > 0 ? Int(written) : nil
    }

    /// The calling thread's compression stream, made on its first use and freed when the
    /// thread exits. Used only within one synchronous call, so a task that moves between
    /// threads never shares one.
    private static func threadStream() -> UnsafeMutablePointer<LZ4_stream_t> {
        if let stream = pthread_getspecific(streamKey) { return stream.assumingMemoryBound(to: LZ4_stream_t.self) }
        guard let stream = LZ4_createStream() else { fatalError("LZ4_createStream: out of memory") }
        let code = pthread_setspecific(streamKey, stream)
        precondition(code == 0, "pthread_setspecific: \(code)")
        return stream
    }

    /// Decompresses exactly `destination.count` bytes; returns false if `source` is not
    /// a valid LZ4 block of that decompressed length (liblz4 never reads or writes out of bounds).
    public static func decompress(
        _ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer
    ) -> Bool {
        if destination.count == 0 { return source.count == 0 }
        guard source.count > 0 else { return false }
        let produced = LZ4_decompress_safe(
            source.baseAddress!.assumingMemoryBound(to: CChar.self),
            destination.baseAddress!.assumingMemoryBound(to: CChar.self),
            Int32(source.count), Int32(destination.count))
        return produced == destination.count
    }
}

/// The key of each thread's LZ4 stream (`LZ4Block.threadStream`); a global, so made once.
private let streamKey: pthread_key_t = {
    var key = pthread_key_t()
    let code = pthread_key_create(&key) { stream in
        #if canImport(Darwin)
        LZ4_freeStream(stream.assumingMemoryBound(to: LZ4_stream_t.self))
        #else
        if let stream { LZ4_freeStream(stream.assumingMemoryBound(to: LZ4_stream_t.self)) }
        #endif
    }
    precondition(code == 0, "pthread_key_create: \(code)")
    return key
}()
