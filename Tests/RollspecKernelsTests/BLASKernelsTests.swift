import Foundation
import Testing
import RollspecKernels

/// Which OpenBLAS kernels to run (planning is pure, checked by table), the CPU identification
/// it rests on (checked against the kernel's own /proc/cpuinfo), and the sgemm self-check
/// (shown to catch a broken sgemm). The switch itself runs in real processes in
/// `BLASSelectionProcessTests`: switching kernels here would pull them from under other suites.
@Suite("BLAS kernels") struct BLASKernelsTests {
    static let sapphireRapids = CPUInfo(
        vendor: "GenuineIntel", brand: "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", family: 6, model: 0x8F,
        features: [.sse41, .avx, .avx2, .fma, .f16c, .avx512f, .avx512dq, .avx512cd, .avx512bw, .avx512vl,
                   .avx512vnni, .avx512bf16, .avx512fp16, .amxTile])
    static let milan = CPUInfo(vendor: "AuthenticAMD", brand: "AMD EPYC", family: 25, model: 1,
                               features: [.sse41, .avx, .avx2, .fma, .f16c])
    static let skylakeClient = CPUInfo(vendor: "GenuineIntel", brand: "Intel(R) Core(TM) i7-6700", family: 6, model: 0x5E,
                                       features: [.sse41, .avx, .avx2, .fma, .f16c])
    static let sandyBridge = CPUInfo(vendor: "GenuineIntel", brand: "Intel(R) Xeon(R) E5-2670", family: 6, model: 0x2D,
                                     features: [.sse41, .avx])
    static let sseOnly = CPUInfo(vendor: "GenuineIntel", brand: "old", family: 6, model: 0x1A, features: [.sse41])
    /// AVX-512 F without VL: OpenBLAS's SkylakeX kernels need both.
    static let knightsLanding = CPUInfo(vendor: "GenuineIntel", brand: "Xeon Phi", family: 6, model: 0x57,
                                        features: [.sse41, .avx, .avx2, .fma, .avx512f, .avx512cd])

    struct Case: Sendable, CustomTestStringConvertible {
        var cpu: CPUInfo, reported: String, want: String?
        var testDescription: String { "\(cpu.brand) reported \(reported) → \(want ?? "keep")" }
    }

    @Test(arguments: [
        // The case of the issue: OpenBLAS 0.3.21 does not know Sapphire Rapids.
        Case(cpu: sapphireRapids, reported: "Prescott", want: "SkylakeX"),
        Case(cpu: sapphireRapids, reported: "Haswell", want: "SkylakeX"),
        Case(cpu: sapphireRapids, reported: "SkylakeX", want: nil),
        Case(cpu: sapphireRapids, reported: "Cooperlake", want: nil),
        Case(cpu: sapphireRapids, reported: "SapphireRapids", want: nil),
        Case(cpu: milan, reported: "Prescott", want: "Zen"),
        Case(cpu: milan, reported: "Sandybridge", want: "Zen"),
        Case(cpu: milan, reported: "Zen", want: nil),
        Case(cpu: milan, reported: "Haswell", want: nil),
        Case(cpu: skylakeClient, reported: "Prescott", want: "Haswell"),
        Case(cpu: skylakeClient, reported: "Haswell", want: nil),
        Case(cpu: sandyBridge, reported: "Prescott", want: "SandyBridge"),
        Case(cpu: sandyBridge, reported: "Nehalem", want: "SandyBridge"),
        Case(cpu: sseOnly, reported: "Prescott", want: nil),
        Case(cpu: sseOnly, reported: "Nehalem", want: nil),
        Case(cpu: knightsLanding, reported: "Prescott", want: "Haswell"),
        Case(cpu: knightsLanding, reported: "Haswell", want: nil),
        Case(cpu: sapphireRapids, reported: "Unknown", want: "SkylakeX"),
    ])
    func upgradePlan(_ c: Case) {
        #expect(BLASKernels.upgrade(reported: c.reported, cpu: c.cpu) == c.want)
    }

    @Test func userSettingsAreWarnedAboutNotReplaced() throws {
        // A name OpenBLAS does not have: it runs something else, and the user hears of it.
        let unknown = try #require(BLASKernels.warning(userSetting: "Skylake-X", inUse: "Haswell", cpu: Self.milan))
        #expect(unknown.contains("OPENBLAS_CORETYPE=Skylake-X") && unknown.contains("Haswell"))
        // A name this CPU cannot run.
        let unsupported = try #require(BLASKernels.warning(userSetting: "SkylakeX", inUse: "SkylakeX", cpu: Self.milan))
        #expect(unsupported.contains("lacks"))
        // Fine settings, in any case.
        #expect(BLASKernels.warning(userSetting: "haswell", inUse: "Haswell", cpu: Self.milan) == nil)
        #expect(BLASKernels.warning(userSetting: "Prescott", inUse: "Prescott", cpu: Self.sapphireRapids) == nil)
        #expect(BLASKernels.warning(userSetting: "SkylakeX", inUse: "SkylakeX", cpu: Self.sapphireRapids) == nil)
    }

    /// CPUID as read here against the kernel's own reading in /proc/cpuinfo.
    @Test func cpuIdentificationAgreesWithProcCpuinfo() throws {
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let first = text.components(separatedBy: "\n\n")[0]
        var fields: [String: String] = [:]
        for line in first.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2 { fields[parts[0]] = parts[1] }
        }
        let cpu = CPUInfo.current
        #expect(cpu.vendor == fields["vendor_id"])
        #expect(cpu.family == Int(fields["cpu family"] ?? ""))
        #expect(cpu.model == Int(fields["model"] ?? ""))
        #expect(cpu.brand == fields["model name"])
        let flags = Set((fields["flags"] ?? "").split(separator: " ").map(String.init))
        let linuxName: [CPUFeature: String] = [
            .sse41: "sse4_1", .avx: "avx", .avx2: "avx2", .fma: "fma", .f16c: "f16c", .avx512f: "avx512f",
            .avx512dq: "avx512dq", .avx512cd: "avx512cd", .avx512bw: "avx512bw", .avx512vl: "avx512vl",
            .avx512vnni: "avx512_vnni", .avx512bf16: "avx512_bf16", .avx512fp16: "avx512_fp16", .amxTile: "amx_tile",
        ]
        for feature in CPUFeature.allCases {
            #expect(cpu.features.contains(feature) == flags.contains(linuxName[feature]!), "\(feature)")
        }
        // The kernels' level follows the same flags: Linux lists amx_tile and amx_bf16 only when
        // it manages tile state, and then grants it to a process that asks (kernels.c).
        let amx = flags.contains("amx_tile") && flags.contains("amx_bf16")
        let level: KernelISA = !flags.isSuperset(of: ["avx512f", "avx512vl", "avx512bw", "avx512dq", "fma"])
            ? (flags.isSuperset(of: ["avx2", "fma"]) ? .avx2 : .scalar)
            : !flags.contains("avx512_bf16") ? .avx512 : amx ? .amxBF16 : .avx512bf16
        #expect(KernelISA.detected == level)
    }

    @Test func selfCheckPassesOnTheKernelsInUse() {
        #expect(BLASKernels.selfCheck() == nil)
    }

    /// The check must catch an sgemm that is wrong in a way easy to miss: one that drops the
    /// last term of every sum, or ignores beta, or swaps the transposition of B.
    @Test func selfCheckCatchesBrokenSgemms() throws {
        let dropsLastTerm: BLASKernels.Sgemm = { ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc in
            BLASKernels.openBLASSgemm(ta, tb, m, n, k - 1, a, lda, b, ldb, beta, c, ldc)
        }
        let ignoresBeta: BLASKernels.Sgemm = { ta, tb, m, n, k, a, lda, b, ldb, _, c, ldc in
            BLASKernels.openBLASSgemm(ta, tb, m, n, k, a, lda, b, ldb, 0, c, ldc)
        }
        for broken in [dropsLastTerm, ignoresBeta] {
            let failure = try #require(BLASKernels.selfCheck(broken))
            #expect(failure.hasPrefix("sgemm "))
        }
    }
}
