import Testing
@testable import ShipLogProtocol

@Suite struct Review14PhiProbeTests {
    @Test func probe() {
        var phi = FailureDetector(.phiAccrual(PhiAccrualSettings()))
        var now = Duration.zero
        phi.reset(now: now)
        for _ in 0..<200 { now += .milliseconds(100); phi.heartbeat(now: now) }
        func detect(_ d: FailureDetector, from: Duration) -> Duration {
            var t = from
            while !d.isSuspected(now: t) && t < from + .seconds(600) { t += .milliseconds(10) }
            return t - from
        }
        print("PROBE normal detection", detect(phi, from: now))
        // 10 s read-paused: heartbeats arrive 20 at a time every 2 s, batches every 50 ms.
        for _ in 0..<5 {
            for _ in 0..<40 { now += .milliseconds(50); phi.alive(now: now) }
            for _ in 0..<20 { phi.heartbeat(now: now) }
        }
        print("PROBE right after the pause", detect(phi, from: now))
        for _ in 0..<100 { now += .milliseconds(100); phi.heartbeat(now: now) }
        print("PROBE 10 s after the pause", detect(phi, from: now))
    }
}
