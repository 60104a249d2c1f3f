import Foundation

// Unbuffered, so progress and violations appear as they happen, also when the output goes to a file.
func print(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
import ShipLogSimulation

// shiplog-simulate [--seeds N] [--first S] [--seed S] [--steps N] [--verbose]
// Runs seeds first..<first+N (or the one --seed) through the deterministic simulator and stops
// at the first violation, printing its seed, step and trace; `--seed` replays it exactly.
var seeds: UInt64 = 1_000
var first: UInt64 = 1
var only: UInt64?
var options = SimulationOptions()
var verbose = false
var keepGoing = false
var violations = 0
var arguments = CommandLine.arguments.dropFirst().makeIterator()
@MainActor func value(_ name: String) -> UInt64 {
    guard let text = arguments.next(), let number = UInt64(text) else {
        print("\(name) needs a number")
        exit(2)
    }
    return number
}
while let argument = arguments.next() {
    switch argument {
    case "--seeds": seeds = value(argument)
    case "--first": first = value(argument)
    case "--seed": only = value(argument)
    case "--steps": options.steps = Int(value(argument))
    case "--verbose": verbose = true
    case "--keep-going": keepGoing = true
    case "--trace": options.traceLines = Int(value(argument))
    default:
        print("usage: shiplog-simulate [--seeds N] [--first S] [--seed S] [--steps N] [--trace LINES] [--keep-going] [--verbose]")
        exit(2)
    }
}
let range = only.map { $0...$0 } ?? first...(first + max(seeds, 1) - 1)
let clock = ContinuousClock()
let start = clock.now
var total = SimulationStatistics()
var ran = 0
for seed in range {
    let simulator = Simulator(seed: seed, options: options)
    let violation = simulator.run()
    ran += 1
    total.add(simulator.statistics)
    if verbose || only != nil {
        let s = simulator.statistics
        print("seed \(seed) (\(simulator.scenario.name)): \(s.promotions) promotions, \(s.syncAcknowledged) sync + \(s.asyncAcknowledged) async acknowledged, \(s.appendsFailed) failed, \(s.crashes) crashes, \(s.partitions) partitions, \(s.asyncLost) async lost")
    }
    if let violation, keepGoing {
        violations += 1
        print("seed \(seed): \(violation.message)")
    } else if let violation {
        print(violation)
        print("reproduce: swift run -c release shiplog-simulate --seed \(seed)\(options.steps != SimulationOptions().steps ? " --steps \(options.steps)" : "")")
        exit(1)
    }
    if ran % 500 == 0 { print("\(ran) seeds (up to \(seed)), \(violations) violations (\(clock.now - start))") }
}
if violations > 0 { print("\(violations) of \(ran) seeds violated a guarantee"); exit(1) }
print("\(ran) seeds, no violation, in \(clock.now - start): \(total.promotions) promotions, \(total.syncAcknowledged) sync and \(total.asyncAcknowledged) async appends acknowledged, \(total.appendsFailed) failed, \(total.crashes) crashes, \(total.partitions) partitions, \(total.quiescences) quiescences, \(total.asyncLost) async appends lost (reported)")
