// The machine a figure was measured on, recorded beside it in every benchmark's JSON, so that a
// figure from another machine (another CPU, other BLAS kernels, other threads) can be told apart.

import Foundation

/// CPU, vector extensions, BLAS kernels and threads of this process.
public struct MachineRecord: Sendable, Codable, Equatable {
    /// The CPU's brand string and vendor.
    public var cpu: String
    public var vendor: String
    /// Display family and model.
    public var family: Int
    public var model: Int
    /// Vector extensions the CPU and OS support, in CPUID order (`avx avx2 fma …`).
    public var cpuFeatures: String
    /// CPUs this machine has online.
    public var logicalCPUs: Int
    /// Physical memory, GiB.
    public var memoryGiB: Double
    /// OpenBLAS's kernel set in use, the one it chose by itself, and how the first was chosen.
    public var blasCore: String
    public var blasReported: String
    public var blasOutcome: BLASKernels.Outcome
    /// The level the C kernels run at (scalar, avx2, avx512).
    public var kernelISA: String
    /// Threads the kernels use.
    public var threads: Int

    /// This process's machine as it is now.
    public static func current() -> MachineRecord {
        let cpu = CPUInfo.current, blas = BLASKernels.selection
        return MachineRecord(
            cpu: cpu.brand, vendor: cpu.vendor, family: cpu.family, model: cpu.model,
            cpuFeatures: cpu.featureSummary, logicalCPUs: ProcessInfo.processInfo.activeProcessorCount,
            memoryGiB: (Double(ProcessInfo.processInfo.physicalMemory) / Double(1 << 30) * 10).rounded() / 10,
            blasCore: BLASKernels.coreInUse, blasReported: blas.reported, blasOutcome: blas.outcome,
            kernelISA: KernelISA.current.description, threads: kernelThreads)
    }

    /// One line for text reports: `AMD EPYC (avx avx2 fma …), 2 CPUs, BLAS Zen, 2 threads`.
    public var summary: String {
        "\(cpu.isEmpty ? vendor : cpu) (\(cpuFeatures)), \(logicalCPUs) CPUs, BLAS \(blasCore), kernels \(kernelISA), \(threads) threads"
    }
}
