/// The record the crash-test writer stores at each offset: its content is a function of
/// the offset, so a reader can check every byte without a copy of what was written.
public enum CrashRecord {
    public static func bytes(offset: UInt64) -> [UInt8] {
        let length = Int(offset % 97) + 16
        return (0..<length).map { UInt8(truncatingIfNeeded: offset &* 31 &+ UInt64($0) &* 7) }
    }
}
