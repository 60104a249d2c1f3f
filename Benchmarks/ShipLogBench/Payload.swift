import Foundation

/// The records every engine in a workload writes: semi-compressible JSON-like log lines
/// from a fixed seed, or fixed-size records cut from a file (`--payload FILE --record-bytes N`).
enum Payload {
    static func generate(count: Int, recordBytes: Int, seed: UInt64 = 42) -> [[UInt8]] {
        var state = seed
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        let levels = ["info", "warn", "debug", "error"]
        let paths = ["/api/v1/users", "/api/v1/orders", "/healthz", "/api/v2/search", "/static/app.js"]
        let agents = ["curl/8.5", "Mozilla/5.0", "okhttp/4.12", "Go-http-client/2.0"]
        return (0..<count).map { i in
            var line = "{\"ts\":\(1_700_000_000_000 + i * 3),\"level\":\"\(levels[Int(next() % 4)])\",\"path\":\"\(paths[Int(next() % 5)])\","
                + "\"status\":\(200 + Int(next() % 4) * 100),\"ms\":\(next() % 900),\"ua\":\"\(agents[Int(next() % 4)])\",\"req\":\"\(String(next(), radix: 36))\""
            while line.utf8.count < recordBytes - 2 {
                line += ",\"k\(next() % 50)\":\"\(String(next() % 100_000, radix: 16))\""
            }
            var bytes = Array(line.utf8.prefix(recordBytes - 1))
            bytes.append(UInt8(ascii: "}"))
            return bytes
        }
    }

    static func load(file: String, recordBytes: Int, count: Int) throws -> [[UInt8]] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw BenchError.usage("cannot read payload file \(file)")
        }
        let bytes = [UInt8](data)
        let available = bytes.count / recordBytes
        guard available > 0 else { throw BenchError.usage("\(file) holds no whole record of \(recordBytes) bytes") }
        return (0..<min(count, available)).map { Array(bytes[($0 * recordBytes)..<(($0 + 1) * recordBytes)]) }
    }
}

enum BenchError: Error, CustomStringConvertible {
    case usage(String)
    case engine(String)
    var description: String {
        switch self {
        case .usage(let text), .engine(let text): return text
        }
    }
}
