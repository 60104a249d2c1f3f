import Testing
import PropertyBased
@testable import ShipLogProtocol

@Suite struct FailureDetectorTests {
    @Test func fixedTimeoutSuspectsExactlyAfterTheTimeout() {
        var detector = FailureDetector(.fixedTimeout(.milliseconds(300)))
        #expect(!detector.isSuspected(now: .seconds(5)), "never started: not suspected")
        detector.reset(now: .seconds(1))
        #expect(!detector.isSuspected(now: .milliseconds(1299)))
        #expect(detector.isSuspected(now: .milliseconds(1300)))
        detector.heartbeat(now: .milliseconds(1250))
        #expect(!detector.isSuspected(now: .milliseconds(1549)))
        #expect(detector.isSuspected(now: .milliseconds(1550)))
    }

    @Test func phiGrowsWithSilenceAndCrossesTheThresholdAfterRegularHeartbeatsStop() {
        var settings = PhiAccrualSettings()
        settings.threshold = 8
        var detector = FailureDetector(.phiAccrual(settings))
        var now = Duration.zero
        detector.reset(now: now)
        for _ in 0..<100 {
            now += .milliseconds(100)
            detector.heartbeat(now: now)
        }
        // Just after a heartbeat phi is small; it only grows as silence lasts.
        var previous = detector.phi(now: now)
        #expect(previous < 1)
        var suspectedAfter: Duration?
        for step in 1...100 {
            let at = now + .milliseconds(10 * step)
            let phi = detector.phi(now: at)
            #expect(phi >= previous, "phi never falls while nothing arrives")
            previous = phi
            if suspectedAfter == nil, detector.isSuspected(now: at) { suspectedAfter = .milliseconds(10 * step) }
        }
        // Mean 100 ms, deviation floored at 20 ms: phi 8 is about 5.6 deviations past the mean.
        let after = try! #require(suspectedAfter)
        #expect(after > .milliseconds(150) && after < .milliseconds(300), "suspected after \(after)")
    }

    @Test func jitteryHeartbeatsRaiseTheSuspicionTime() {
        func suspicionDelay(jitter: [Int]) -> Duration {
            var detector = FailureDetector(.phiAccrual(PhiAccrualSettings()))
            var now = Duration.zero
            detector.reset(now: now)
            for i in 0..<200 {
                now += .milliseconds(100 + jitter[i % jitter.count])
                detector.heartbeat(now: now)
            }
            var wait = Duration.zero
            while !detector.isSuspected(now: now + wait), wait < .seconds(60) { wait += .milliseconds(5) }
            return wait
        }
        let steady = suspicionDelay(jitter: [0])
        let jittery = suspicionDelay(jitter: [-80, 80, -40, 40, 0])
        #expect(jittery > steady, "steady \(steady), jittery \(jittery)")
    }

    @Test func phiIsMonotoneInSilenceForAnyHistory() async {
        await propertyCheck(input: Gen.int(in: 1...500).array(of: 1...50)) { gaps in
            var detector = FailureDetector(.phiAccrual(PhiAccrualSettings()))
            var now = Duration.zero
            detector.reset(now: now)
            for gap in gaps {
                now += .milliseconds(gap)
                detector.heartbeat(now: now)
            }
            var previous = -1.0
            for step in 0..<50 {
                let phi = detector.phi(now: now + .milliseconds(20 * step))
                #expect(phi.isFinite || phi == .infinity)
                #expect(phi >= previous)
                previous = phi
            }
        }
    }
}
