/// The one encoder and decoder of `ElectionMessage` (format.md §13.1). Every message has a
/// fixed layout for its kind (the heartbeat's ranking is the only variable part), and decoding
/// checks every byte: unknown kinds, flag bits and reasons, presence bytes other than 0 or 1,
/// absent values that are not 0, a granted flag that disagrees with the reason, duplicate ids
/// in a ranking, and bytes before or past the end are all errors, never traps.
public enum ElectionMessageCodec {
    /// Message kinds, byte 0 of every message.
    enum Kind: UInt8 {
        case voteRequest = 1
        case voteResponse = 2
        case heartbeat = 3
        case heartbeatResponse = 4
        case timeoutNow = 5
    }

    /// A ranking longer than this cannot be encoded (its count is one byte); a configuration has
    /// far fewer voters.
    public static let rankingCountMax = 255
    /// The longest message: a heartbeat with a full ranking.
    public static let messageBytesMax = 27 + 8 * rankingCountMax

    static let preVoteFlag: UInt8 = 0x01
    static let transferFlag: UInt8 = 0x02
    static let grantedFlag: UInt8 = 0x02

    public static func encode(_ message: ElectionMessage) -> [UInt8] {
        var out = ElectionWireWriter(capacity: 32)
        switch message {
        case .voteRequest(let request):
            out.u8(Kind.voteRequest.rawValue)
            out.u8((request.preVote ? preVoteFlag : 0) | (request.leadershipTransfer ? transferFlag : 0))
            out.u64(request.epoch)
            out.logEnd(request.logEnd)
        case .voteResponse(let response):
            precondition(response.granted == (response.reason == .granted), "granted must agree with the reason")
            out.u8(Kind.voteResponse.rawValue)
            out.u8((response.preVote ? preVoteFlag : 0) | (response.granted ? grantedFlag : 0))
            out.u8(response.reason.rawValue)
            out.u64(response.epoch)
            out.optionalU64(response.primary?.rawValue)
        case .heartbeat(let heartbeat):
            precondition(heartbeat.ranking.count <= rankingCountMax, "ranking of \(heartbeat.ranking.count) nodes")
            out.u8(Kind.heartbeat.rawValue)
            out.u64(heartbeat.epoch)
            out.logEnd(heartbeat.commit)
            out.u8(UInt8(heartbeat.ranking.count))
            for node in heartbeat.ranking { out.u64(node.rawValue) }
        case .heartbeatResponse(let response):
            out.u8(Kind.heartbeatResponse.rawValue)
            out.u64(response.epoch)
            out.u8(response.logEnd == nil ? 0 : 1)
            out.logEnd(response.logEnd ?? LogEnd(nextOffset: 0, lastEpoch: nil))
        case .timeoutNow(let timeout):
            out.u8(Kind.timeoutNow.rawValue)
            out.u64(timeout.epoch)
        }
        return out.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(ElectionCodecError) -> ElectionMessage {
        // A closure cannot carry the typed throw out of withUnsafeBytes; pass the result instead.
        let result: Result<ElectionMessage, ElectionCodecError> = bytes.withUnsafeBytes { buffer in
            do throws(ElectionCodecError) { return .success(try decode(buffer)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(ElectionCodecError) -> ElectionMessage {
        guard let first = bytes.first else { throw .empty }
        guard let kind = Kind(rawValue: first) else { throw .unknownKind(first) }
        var reader = ElectionWireReader(bytes, structure: "\(kind)")
        _ = try reader.u8("kind")
        let message: ElectionMessage
        switch kind {
        case .voteRequest:
            let flags = try reader.flags("flags", allowed: preVoteFlag | transferFlag)
            let epoch = try reader.u64("epoch")
            let logEnd = try reader.logEnd("logEnd")
            message = .voteRequest(.init(
                epoch: epoch, logEnd: logEnd, preVote: flags & preVoteFlag != 0,
                leadershipTransfer: flags & transferFlag != 0))
        case .voteResponse:
            let flags = try reader.flags("flags", allowed: preVoteFlag | grantedFlag)
            let reasonAt = reader.position
            let rawReason = try reader.u8("reason")
            guard let reason = ElectionMessage.VoteReason(rawValue: rawReason) else {
                throw .invalidValue(structure: reader.structure, field: "reason", at: reasonAt, value: UInt64(rawReason), reason: "unknown reason")
            }
            let granted = flags & grantedFlag != 0
            guard granted == (reason == .granted) else {
                throw .invalidValue(structure: reader.structure, field: "reason", at: reasonAt, value: UInt64(rawReason), reason: "disagrees with the granted flag")
            }
            let epoch = try reader.u64("epoch")
            let primary = try reader.optionalU64("primary").map(NodeID.init)
            message = .voteResponse(.init(
                epoch: epoch, granted: granted, preVote: flags & preVoteFlag != 0, reason: reason, primary: primary))
        case .heartbeat:
            let epoch = try reader.u64("epoch")
            let commit = try reader.logEnd("commit")
            let count = Int(try reader.u8("ranking count"))
            var ranking: [NodeID] = []
            var seen: Set<NodeID> = []
            for index in 0..<count {
                let at = reader.position
                let node = NodeID(try reader.u64("ranking[\(index)]"))
                guard seen.insert(node).inserted else {
                    throw .invalidValue(structure: reader.structure, field: "ranking[\(index)]", at: at, value: node.rawValue, reason: "listed twice")
                }
                ranking.append(node)
            }
            message = .heartbeat(.init(epoch: epoch, commit: commit, ranking: ranking))
        case .heartbeatResponse:
            let epoch = try reader.u64("epoch")
            let presenceAt = reader.position
            let presence = try reader.u8("logEnd presence")
            let logEnd = try reader.logEnd("logEnd")
            switch presence {
            case 0:
                guard logEnd == LogEnd(nextOffset: 0, lastEpoch: nil) else {
                    throw .invalidValue(structure: reader.structure, field: "logEnd", at: presenceAt + 1, value: logEnd.nextOffset, reason: "absent but not zero")
                }
                message = .heartbeatResponse(.init(epoch: epoch, logEnd: nil))
            case 1: message = .heartbeatResponse(.init(epoch: epoch, logEnd: logEnd))
            default:
                throw .invalidValue(structure: reader.structure, field: "logEnd presence", at: presenceAt, value: UInt64(presence), reason: "must be 0 or 1")
            }
        case .timeoutNow:
            message = .timeoutNow(.init(epoch: try reader.u64("epoch")))
        }
        try reader.expectEnd()
        return message
    }
}
