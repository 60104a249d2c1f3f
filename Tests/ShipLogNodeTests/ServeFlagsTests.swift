import Foundation
import ShipLogNode
import Testing

/// `shiplog serve`'s timeout flags reach the node, and a nonsensical value is refused by name.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ServeFlagsTests {
    /// With `--handshake-timeout-ms 300`, a peer that never authenticates is cut off well before
    /// the 5 s default.
    @Test func theHandshakeTimeoutFlagCutsOffASilentPeer() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: ServeProcess.toolPath), "shiplog not built at \(ServeProcess.toolPath)")
        let dir = try TemporaryDirectory()
        let keyFile = dir.sub("key")
        try Data(testKey).write(to: URL(fileURLWithPath: keyFile))
        let node = try ServeProcess(name: "primary", arguments: [
            "--id", "1", "--log-dir", dir.sub("1"), "--listen", "127.0.0.1:0", "--key-file", keyFile,
            "--handshake-timeout-ms", "300", "--log-level", "warning"])
        defer { node.killIfRunning() }
        let address = try node.listeningAddress()
        // Closed before the 5 s default could have fired (the connection itself may take a while on a loaded machine).
        #expect(try await nodeCloses(address, after: [], timeout: .seconds(4)), "a silent peer was still connected after 4 s")
        node.signal(SIGTERM)
        #expect(node.waitForExit()?.status == 0)
    }

    /// A zero or negative timeout is a usage error that names the flag; nothing is started.
    @Test(arguments: ["--primary-timeout-ms", "--handshake-timeout-ms", "--sync-timeout-ms", "--heartbeat-interval-ms"])
    func aTimeoutThatIsNotPositiveIsRefused(_ flag: String) throws {
        let dir = try TemporaryDirectory()
        let keyFile = dir.sub("key")
        try Data(testKey).write(to: URL(fileURLWithPath: keyFile))
        let node = try ServeProcess(name: "refused", arguments: [
            "--id", "1", "--log-dir", dir.sub("1"), "--listen", "127.0.0.1:0", "--key-file", keyFile, flag, "0"])
        defer { node.killIfRunning() }
        let exit = node.waitForExit()
        #expect(exit != nil && exit?.status != 0, "serve \(flag) 0 did not fail")
        // The error reaches us through a pipe handler, possibly just after the exit.
        for _ in 0..<100 where !node.stderr.contains(flag) { usleep(20_000) }
        #expect(node.stderr.contains(flag), "the error does not name \(flag): \(node.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.sub("1")), "a refused serve created its log directory")
    }
}
