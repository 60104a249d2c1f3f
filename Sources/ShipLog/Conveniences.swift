import Foundation

// Conveniences for the common record types, in the facade so that the storage target stays
// free of Foundation: `Data`, `String`, and any `Codable` value as JSON.

extension LogRecord {
    public var data: Data { Data(bytes) }
    /// The record as UTF-8 text; nil when its bytes are not valid UTF-8.
    public var string: String? { String(validating: bytes, as: UTF8.self) }
    /// Decodes the record as JSON, as `append(json:)` encoded it.
    public func decode<T: Decodable>(_ type: T.Type, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try decoder.decode(type, from: data)
    }
}

extension SegmentLog {
    @discardableResult
    public func append(_ data: Data, epoch: UInt64 = 0) throws -> UInt64 { try append([UInt8](data), epoch: epoch) }
    @discardableResult
    public func append(_ data: Data, epoch: UInt64 = 0, durability: Durability) throws -> UInt64 {
        try append([UInt8](data), epoch: epoch, durability: durability)
    }
    @discardableResult
    public func append(_ data: Data, epoch: UInt64 = 0) async throws -> UInt64 { try await append([UInt8](data), epoch: epoch) }
    @discardableResult
    public func append(_ data: Data, epoch: UInt64 = 0, durability: Durability) async throws -> UInt64 {
        try await append([UInt8](data), epoch: epoch, durability: durability)
    }

    @discardableResult
    public func append(_ string: String, epoch: UInt64 = 0) throws -> UInt64 { try append(Array(string.utf8), epoch: epoch) }
    @discardableResult
    public func append(_ string: String, epoch: UInt64 = 0, durability: Durability) throws -> UInt64 {
        try append(Array(string.utf8), epoch: epoch, durability: durability)
    }
    @discardableResult
    public func append(_ string: String, epoch: UInt64 = 0) async throws -> UInt64 { try await append(Array(string.utf8), epoch: epoch) }
    @discardableResult
    public func append(_ string: String, epoch: UInt64 = 0, durability: Durability) async throws -> UInt64 {
        try await append(Array(string.utf8), epoch: epoch, durability: durability)
    }

    /// Appends `value` encoded as JSON; read it back with `LogRecord.decode(_:)`.
    @discardableResult
    public func append<T: Encodable>(json value: T, epoch: UInt64 = 0, durability: Durability? = nil,
                                     encoder: JSONEncoder = JSONEncoder()) throws -> UInt64 {
        try append([UInt8](encoder.encode(value)), epoch: epoch, durability: durability ?? options.durability)
    }
    /// Appends `value` encoded as JSON; read it back with `LogRecord.decode(_:)`.
    @discardableResult
    public func append<T: Encodable>(json value: T, epoch: UInt64 = 0, durability: Durability? = nil,
                                     encoder: JSONEncoder = JSONEncoder()) async throws -> UInt64 {
        try await append([UInt8](encoder.encode(value)), epoch: epoch, durability: durability ?? options.durability)
    }
}

extension LogError: LocalizedError {
    /// The same text as `description`, so `localizedDescription` says what went wrong and where.
    public var errorDescription: String? { description }
}
