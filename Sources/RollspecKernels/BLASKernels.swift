// Which OpenBLAS kernel set ("core") this process runs, chosen once before its first BLAS call.
//
// OpenBLAS built with DYNAMIC_ARCH (Debian's is) picks its kernels from the CPU model when it
// loads. A model it does not know gets the generic Prescott kernels: Debian's 0.3.21 on Sapphire
// Rapids runs sgemm at a third of the machine's speed that way, and with it distillation, the
// speculator trainer, the GRPO update and prefill. Here the best kernel set the CPU's features
// support is chosen instead whenever OpenBLAS fell short of it, by running OpenBLAS's own start-up
// selection again with OPENBLAS_CORETYPE set (its `gotoblas_dynamic_quit` and
// `gotoblas_dynamic_init`), before any BLAS call. That covers the command line, the test
// processes and programs that embed the library alike, where re-executing the process would
// cover only the first. A switch is held to an sgemm self-check against a double-precision
// reference and undone if it fails. A value the user set is never replaced.

import CBLAS
import CRollspecKernels
import Foundation

/// The OpenBLAS kernel set in use, and how it was chosen.
public enum BLASKernels {
    /// How the kernel set in use came to be.
    public enum Outcome: String, Sendable, Codable {
        /// OpenBLAS's own choice, already the best this CPU supports (or nothing better is known).
        case openBLASChoice = "openblas-choice"
        /// OpenBLAS chose weaker kernels than the CPU supports; better ones were switched in.
        case upgraded
        /// `OPENBLAS_CORETYPE` was set by the user or the machine, and left as it was.
        case userSetting = "user-setting"
        /// Better kernels exist for this CPU, but this OpenBLAS cannot switch (no DYNAMIC_ARCH
        /// entry points) or does not have them.
        case switchUnavailable = "switch-unavailable"
        /// The better kernels failed the sgemm self-check; OpenBLAS's own choice runs.
        case selfCheckFailed = "self-check-failed"
    }

    /// What was chosen, with the one line logged about it.
    public struct Selection: Sendable, Codable, Equatable {
        /// The core OpenBLAS chose by itself when it loaded.
        public var reported: String
        /// The core running now.
        public var inUse: String
        public var outcome: Outcome
        /// `OPENBLAS_CORETYPE` as this process found it (nil when unset or empty).
        public var userSetting: String?
        /// Something the user should know: an unknown or unsupported setting, a failed check.
        public var warning: String?

        /// `blas: SkylakeX kernels (OpenBLAS reported Prescott)`, the line each process logs once.
        public var message: String {
            let why: String
            switch outcome {
            case .openBLASChoice: why = "OpenBLAS's choice"
            case .upgraded: why = "OpenBLAS reported \(reported)"
            case .userSetting: why = "OPENBLAS_CORETYPE=\(userSetting ?? "")"
            case .switchUnavailable: why = "OpenBLAS's choice; this OpenBLAS cannot switch kernels"
            case .selfCheckFailed: why = "OpenBLAS's choice; the better kernels failed the self-check"
            }
            return "blas: \(inUse) kernels (\(why))"
        }
    }

    // MARK: Planning (pure)

    /// Kernel sets by the widest vectors they use: 0 generic (SSE), 1 AVX, 2 AVX2 + FMA,
    /// 3 AVX-512. Names are OpenBLAS's, compared case-insensitively; an unknown name is 0.
    public static func tier(ofCore name: String) -> Int {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": 3
        case "haswell", "zen", "excavator": 2
        case "sandybridge", "bulldozer", "piledriver", "steamroller": 1
        default: 0
        }
    }

    /// The kernel set OpenBLAS would best run on `cpu`: SkylakeX with AVX-512, Zen (AMD, Hygon)
    /// or Haswell with AVX2 + FMA, SandyBridge with AVX; nil when only the generic ones fit.
    public static func bestCore(for cpu: CPUInfo) -> String? {
        if cpu.hasAVX512 { return "SkylakeX" }
        if cpu.hasAVX2 { return ["AuthenticAMD", "HygonGenuine"].contains(cpu.vendor) ? "Zen" : "Haswell" }
        if cpu.features.contains(.avx) { return "SandyBridge" }
        return nil
    }

    /// The core to switch to when OpenBLAS chose `reported` on `cpu` by itself, or nil to keep it.
    public static func upgrade(reported: String, cpu: CPUInfo) -> String? {
        guard let best = bestCore(for: cpu), tier(ofCore: best) > tier(ofCore: reported) else { return nil }
        return best
    }

    /// What to tell the user about a core they set: one OpenBLAS does not have (it then runs
    /// `inUse` instead), or one this CPU cannot run. Nil when the setting is fine.
    public static func warning(userSetting: String, inUse: String, cpu: CPUInfo) -> String? {
        if userSetting.lowercased() != inUse.lowercased() {
            return "OPENBLAS_CORETYPE=\(userSetting) is not a kernel set this OpenBLAS has; it runs its \(inUse) kernels instead (left as set)"
        }
        let best = bestCore(for: cpu).map(tier(ofCore:)) ?? 0
        if tier(ofCore: userSetting) > best {
            return "OPENBLAS_CORETYPE=\(userSetting) needs vector instructions this CPU lacks (\(cpu.brand)); BLAS calls may stop the process with an illegal instruction (left as set)"
        }
        return nil
    }

    // MARK: The selection, once per process

    /// The selection, made on first use: before the first BLAS call (`ready`), or at start-up
    /// by a command that wants its log line first. Logs `message` (and any warning) to stderr.
    public static let selection: Selection = {
        let selection = select(environment: ProcessInfo.processInfo.environment)
        FileHandle.standardError.write(Data((selection.message + "\n").utf8))
        if let warning = selection.warning {
            FileHandle.standardError.write(Data(("blas: warning: " + warning + "\n").utf8))
        }
        return selection
    }()

    /// Touched by every BLAS caller before its first call (here and in the benchmarks): the
    /// kernels are chosen, and OpenBLAS's own pool is kept at one thread (the kernel pool
    /// splits the work).
    public static let ready: Void = {
        _ = selection
        openblas_set_num_threads(1)
    }()

    /// The core OpenBLAS runs now.
    public static var coreInUse: String { String(cString: openblas_get_corename()) }

    /// Environment variables for tests of the selection on any machine:
    /// `ROLLSPEC_BLAS_TEST_REPORTED=Prescott` first switches OpenBLAS to that core, as if it had
    /// chosen it at load; `ROLLSPEC_BLAS_TEST_FAIL_SELF_CHECK=1` makes the self-check fail.
    public static let testReportedVariable = "ROLLSPEC_BLAS_TEST_REPORTED"
    public static let testFailSelfCheckVariable = "ROLLSPEC_BLAS_TEST_FAIL_SELF_CHECK"

    static func select(environment: [String: String]) -> Selection {
        let cpu = CPUInfo.current
        let userSetting = environment["OPENBLAS_CORETYPE"].flatMap { $0.isEmpty ? nil : $0 }
        if let userSetting {
            let inUse = coreInUse
            return Selection(reported: inUse, inUse: inUse, outcome: .userSetting, userSetting: userSetting,
                             warning: warning(userSetting: userSetting, inUse: inUse, cpu: cpu))
        }
        if let simulated = environment[testReportedVariable], !simulated.isEmpty {
            _ = switchCore(to: simulated)
        }
        let reported = coreInUse
        guard let better = upgrade(reported: reported, cpu: cpu) else {
            return Selection(reported: reported, inUse: reported, outcome: .openBLASChoice)
        }
        guard switchCore(to: better) else {
            _ = switchCore(to: reported)
            return Selection(
                reported: reported, inUse: coreInUse, outcome: .switchUnavailable,
                warning: "this CPU supports OpenBLAS's \(better) kernels, but this OpenBLAS cannot switch to them; set OPENBLAS_CORETYPE=\(better) before start if it has them")
        }
        let failure = environment[testFailSelfCheckVariable] == "1"
            ? "forced by \(testFailSelfCheckVariable)" : selfCheck()
        if let failure {
            _ = switchCore(to: reported)
            return Selection(
                reported: reported, inUse: coreInUse, outcome: .selfCheckFailed,
                warning: "the sgemm self-check failed on \(better) kernels (\(failure)); running OpenBLAS's \(reported) kernels")
        }
        return Selection(reported: reported, inUse: coreInUse, outcome: .upgraded)
    }

    private typealias EntryPoint = @convention(c) () -> Void

    /// Runs OpenBLAS's start-up kernel selection again with `OPENBLAS_CORETYPE=name`, then puts
    /// the variable back as it was (child processes make their own choice). Returns whether
    /// `name` now runs; false when this OpenBLAS has no DYNAMIC_ARCH entry points or lacks it.
    /// Public for `rollspec bench blas`, which times every kernel set; call it only while
    /// nothing else calls BLAS.
    @discardableResult
    public static func switchCore(to name: String) -> Bool {
        guard let handle = dlopen(nil, RTLD_NOW),
              let quit = dlsym(handle, "gotoblas_dynamic_quit"),
              let initialise = dlsym(handle, "gotoblas_dynamic_init")
        else { return false }
        let previous = getenv("OPENBLAS_CORETYPE").map { String(cString: $0) }
        setenv("OPENBLAS_CORETYPE", name, 1)
        unsafeBitCast(quit, to: EntryPoint.self)()
        unsafeBitCast(initialise, to: EntryPoint.self)()
        if let previous { setenv("OPENBLAS_CORETYPE", previous, 1) } else { unsetenv("OPENBLAS_CORETYPE") }
        return coreInUse.lowercased() == name.lowercased()
    }

    // MARK: Self-check

    /// A row-major sgemm: `C[m, n] = op(A) · op(B) + beta · C` (alpha 1), as `cblas_sgemm` takes it.
    public typealias Sgemm = (_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
                              _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                              _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) -> Void

    /// OpenBLAS's `cblas_sgemm`, as the kernels call it.
    public static let openBLASSgemm: Sgemm = { transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc in
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// sgemm in the three layouts the kernels call (A·Bᵀ, A·B, Aᵀ·B, the last two accumulating
    /// into C), at shapes that are not multiples of any block size and one large enough for the
    /// blocked path, against a double-precision reference. Returns what failed, or nil.
    public static func selfCheck(_ sgemm: Sgemm = openBLASSgemm) -> String? {
        struct Case { var transA: Bool, transB: Bool, m: Int, n: Int, k: Int, beta: Float }
        let cases = [
            Case(transA: false, transB: true, m: 37, n: 53, k: 71, beta: 0),
            Case(transA: false, transB: false, m: 29, n: 67, k: 45, beta: 1),
            Case(transA: true, transB: false, m: 43, n: 31, k: 19, beta: 1),
            Case(transA: false, transB: true, m: 128, n: 96, k: 200, beta: 0),
        ]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Float {  // splitmix64 → [-1, 1)
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Float((z ^ (z >> 31)) >> 40) / Float(1 << 23) - 1
        }
        for t in cases {
            let a = (0..<t.m * t.k).map { _ in next() }, b = (0..<t.k * t.n).map { _ in next() }
            let c0 = (0..<t.m * t.n).map { _ in next() }
            var c = c0
            // Row-major A is [m, k] (or [k, m] when transposed), B is [k, n] (or [n, k]).
            let lda = t.transA ? t.m : t.k, ldb = t.transB ? t.k : t.n
            sgemm(t.transA, t.transB, t.m, t.n, t.k, a, lda, b, ldb, t.beta, &c, t.n)
            for i in 0..<t.m {
                for j in 0..<t.n {
                    var exact = Double(t.beta) * Double(c0[i * t.n + j]), scale = 0.0
                    for p in 0..<t.k {
                        let x = Double(t.transA ? a[p * lda + i] : a[i * lda + p])
                        let y = Double(t.transB ? b[j * ldb + p] : b[p * ldb + j])
                        exact += x * y
                        scale += abs(x * y)
                    }
                    let error = abs(Double(c[i * t.n + j]) - exact)
                    if !(error <= 1e-5 * scale + 1e-5) {
                        let layout = (t.transA ? "Aᵀ" : "A") + "·" + (t.transB ? "Bᵀ" : "B")
                        return "sgemm \(layout) \(t.m)×\(t.n)×\(t.k): element (\(i), \(j)) off by \(error)"
                    }
                }
            }
        }
        return nil
    }
}
