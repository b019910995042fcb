import Foundation
import RollspecClient
import RollspecKernels
import RollspecOperations
import RollspecRoles
import RollspecTesting
import Testing

/// The kernel choice as a real `rollspec` process makes it at start-up, on the real OpenBLAS.
/// A CPU that OpenBLAS mistakes for a generic one is simulated on any machine by first
/// switching OpenBLAS to its Prescott kernels (`ROLLSPEC_BLAS_TEST_REPORTED`), exactly as it
/// runs when it does not know the CPU model.
@Suite(.serialized) struct BLASSelectionProcessTests {
    struct Output: Decodable {
        struct Core: Decodable { var core: String; var sgemmGFLOPs: Double; var selfCheckFailure: String?; var inUse: Bool }
        var selection: BLASKernels.Selection
        var cores: [Core]
        var machine: MachineRecord
    }

    /// Runs `rollspec bench blas --json` with `environment` added; returns its JSON and stderr.
    func run(_ environment: [String: String]) throws -> (Output, String) {
        let p = Process()
        p.executableURL = try RollspecExecutable.url()
        p.arguments = ["bench", "blas", "--json", "--seconds", "0.02", "--threads", "1"]
        var env = ProcessInfo.processInfo.environment
        for key in ["OPENBLAS_CORETYPE", BLASKernels.testReportedVariable, BLASKernels.testFailSelfCheckVariable] {
            env[key] = nil
        }
        env.merge(environment) { $1 }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(errText)")
        return (try JSONDecoder().decode(Output.self, from: data), errText)
    }

    var best: String? { BLASKernels.bestCore(for: .current) }

    @Test func nothingSetRunsTheBestKernelsTheCPUSupports() throws {
        let (out, err) = try run([:])
        #expect([.openBLASChoice, .upgraded].contains(out.selection.outcome))
        if let best {
            #expect(BLASKernels.tier(ofCore: out.selection.inUse) == BLASKernels.tier(ofCore: best))
        }
        #expect(out.machine.blasCore == out.selection.inUse)
        // Logged once, first.
        #expect(err.components(separatedBy: "blas: ").count == 2, "\(err)")
        #expect(err.hasPrefix(out.selection.message))
    }

    @Test func aGenericChoiceIsUpgradedAndLogged() throws {
        let best = try #require(best, "this CPU has no kernels better than the generic ones")
        let (out, err) = try run([BLASKernels.testReportedVariable: "Prescott"])
        #expect(out.selection.outcome == .upgraded)
        #expect(out.selection.reported == "Prescott")
        #expect(out.selection.inUse.lowercased() == best.lowercased())
        #expect(err.hasPrefix("blas: \(out.selection.inUse) kernels (OpenBLAS reported Prescott)\n"), "\(err)")
        // What the upgrade is worth, in the same process.
        let rate = { (name: String) in out.cores.first { $0.core.lowercased() == name.lowercased() }?.sgemmGFLOPs ?? 0 }
        #expect(rate(best) > 1.5 * rate("Prescott"), "\(out.cores)")
        #expect(out.cores.allSatisfy { $0.selfCheckFailure == nil })
    }

    @Test func aFailedSelfCheckFallsBackWithAWarningNamingIt() throws {
        _ = try #require(best)
        let (out, err) = try run([BLASKernels.testReportedVariable: "Prescott", BLASKernels.testFailSelfCheckVariable: "1"])
        #expect(out.selection.outcome == .selfCheckFailed)
        #expect(out.selection.inUse == "Prescott")
        #expect(err.contains("blas: warning: the sgemm self-check failed"), "\(err)")
    }

    @Test func aUserSettingIsLeftAsItIs() throws {
        let (out, err) = try run(["OPENBLAS_CORETYPE": "Prescott"])
        #expect(out.selection.outcome == .userSetting)
        #expect(out.selection.inUse == "Prescott")
        #expect(out.selection.warning == nil)
        #expect(err.hasPrefix("blas: Prescott kernels (OPENBLAS_CORETYPE=Prescott)"), "\(err)")
    }

    @Test func anUnknownUserSettingIsReported() throws {
        let (out, err) = try run(["OPENBLAS_CORETYPE": "NoSuchCore"])
        #expect(out.selection.outcome == .userSetting)
        #expect(err.contains("blas: warning: OPENBLAS_CORETYPE=NoSuchCore is not a kernel set this OpenBLAS has"), "\(err)")
    }
}
