// What this CPU is and which vector extensions it can run (CPUID, see CRollspecKernels/cpu.c).

import CRollspecKernels
import Foundation

/// A vector extension the CPU has and the OS saves the registers of.
public enum CPUFeature: String, Sendable, Codable, CaseIterable, Comparable {
    case sse41 = "sse4.1", avx, avx2, fma, f16c
    case avx512f, avx512dq, avx512cd, avx512bw, avx512vl
    case avx512vnni = "avx512_vnni", avx512bf16 = "avx512_bf16", avx512fp16 = "avx512_fp16"
    case amxTile = "amx_tile"

    /// The `RS_CPU_*` bit of `rs_cpu_info.features`.
    var bit: UInt64 {
        switch self {
        case .sse41: UInt64(RS_CPU_SSE41)
        case .avx: UInt64(RS_CPU_AVX)
        case .avx2: UInt64(RS_CPU_AVX2)
        case .fma: UInt64(RS_CPU_FMA)
        case .f16c: UInt64(RS_CPU_F16C)
        case .avx512f: UInt64(RS_CPU_AVX512F)
        case .avx512dq: UInt64(RS_CPU_AVX512DQ)
        case .avx512cd: UInt64(RS_CPU_AVX512CD)
        case .avx512bw: UInt64(RS_CPU_AVX512BW)
        case .avx512vl: UInt64(RS_CPU_AVX512VL)
        case .avx512vnni: UInt64(RS_CPU_AVX512VNNI)
        case .avx512bf16: UInt64(RS_CPU_AVX512BF16)
        case .avx512fp16: UInt64(RS_CPU_AVX512FP16)
        case .amxTile: UInt64(RS_CPU_AMX_TILE)
        }
    }

    public static func < (a: CPUFeature, b: CPUFeature) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// This CPU as CPUID reports it.
public struct CPUInfo: Sendable, Codable, Equatable {
    /// "GenuineIntel", "AuthenticAMD", … (empty off x86).
    public var vendor: String
    /// The brand string, e.g. "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz".
    public var brand: String
    /// Display family and model (base + extended fields).
    public var family: Int
    public var model: Int
    public var features: Set<CPUFeature>

    public init(vendor: String, brand: String, family: Int, model: Int, features: Set<CPUFeature>) {
        self.vendor = vendor
        self.brand = brand
        self.family = family
        self.model = model
        self.features = features
    }

    /// The CPU this process runs on.
    public static let current: CPUInfo = {
        var info = rs_cpu_info()
        rs_cpu_identify(&info)
        func string<T>(_ tuple: T) -> String {
            withUnsafeBytes(of: tuple) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }.trimmingCharacters(in: .whitespaces)
        }
        return CPUInfo(
            vendor: string(info.vendor), brand: string(info.brand), family: Int(info.family),
            model: Int(info.model),
            features: Set(CPUFeature.allCases.filter { info.features & $0.bit != 0 }))
    }()

    /// AVX-512 as OpenBLAS's SkylakeX kernels need it (F, DQ, CD, BW, VL).
    public var hasAVX512: Bool {
        features.isSuperset(of: [.avx512f, .avx512dq, .avx512cd, .avx512bw, .avx512vl])
    }

    /// AVX2 with FMA, as the Haswell and Zen kernels need it.
    public var hasAVX2: Bool { features.isSuperset(of: [.avx2, .fma]) }

    /// The extensions in CPUID order, for records: `avx avx2 fma … avx512_bf16`.
    public var featureSummary: String { features.sorted().map(\.rawValue).joined(separator: " ") }
}
