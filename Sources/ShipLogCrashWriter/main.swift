// Appends records with fsync durability until killed, writing "<last offset>\n" to standard
// output after each append returns. The crash test kills it with SIGKILL and checks that
// every reported offset is present after reopening; the tool's live-log test reads the log
// beside it. Usage: ShipLogCrashWriter DIR SEED
//
// It exits when its parent does, so a test process that dies before it could kill the
// writer does not leave it filling the disk.
import ShipLogStorage
#if canImport(Glibc)
import Glibc
#endif

func say(_ text: String, to fd: Int32) {
    var line = text + "\n"
    line.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
}

let arguments = CommandLine.arguments
guard arguments.count == 3, let seed = UInt64(arguments[2]) else {
    say("usage: ShipLogCrashWriter DIR SEED", to: 2)
    exit(2)
}
var options = LogOptions()
options.segmentBytes = 256 << 10
options.durability = .fsync
do {
    let log = try SegmentLog.open(directory: arguments[1], options: options)
    var offset = log.nextOffset
    var round = seed
    let parent = getppid()
    while getppid() == parent {
        round = round &* 6364136223846793005 &+ 1442695040888963407
        let count = Int(round >> 60) + 1
        let records = (0..<count).map { i in CrashRecord.bytes(offset: offset + UInt64(i)) }
        let range = try log.append(records)
        offset = range.upperBound
        say(String(range.upperBound - 1), to: 1)
    }
} catch {
    say("crash writer: \(error)", to: 2)
    exit(1)
}
