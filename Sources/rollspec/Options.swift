import ArgumentParser
import Foundation
import Logging
import RollspecLogging
import RollspecModel

/// Which model to load and how many threads the kernels use.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "A Hugging Face model directory (config.json + safetensors) or a .gguf file.")
    var model: String

    @Option(name: .long, help: "Threads for the kernels (default: all online CPUs).")
    var threads: Int?

    @Option(name: .long, help: "The policy's precision: float32 (as loaded) or bfloat16 (every weight and every matrix product's input rounded; half the bytes per decode step, as RL rollout engines run).")
    var precision: WeightPrecision = .float32

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }
}

/// How tokens are sampled.
struct SamplingOptions: ParsableArguments {
    @Option(name: .long, help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0.7

    @Option(name: .long, help: "Keep the k most likely tokens (0: off).")
    var topK: Int = 0

    @Option(name: .long, help: "Nucleus sampling mass (1: off).")
    var topP: Float = 1

    @Option(name: .long, help: "Random seed.")
    var seed: UInt64 = 0

    var parameters: SamplingParameters {
        SamplingParameters(temperature: temperature, topK: topK, topP: topP, seed: seed)
    }

    func validate() throws {
        do { try parameters.validate() } catch { throw ValidationError("\(error)") }
    }
}

/// Parses `1,2,3` into token ids.
func parseTokenList(_ text: String) throws -> [Int] {
    try text.split(separator: ",").map { piece in
        guard let id = Int(piece.trimmingCharacters(in: .whitespaces)) else {
            throw ValidationError("'\(piece)' is not a token id (expected a comma-separated list like 1,2,3)")
        }
        return id
    }
}

/// Parses a comma-separated list of counts such as `1,4,16` given to `option`, each in `range`.
func parseCountList(_ text: String, option: String, range: ClosedRange<Int>) throws -> [Int] {
    let counts = try text.split(separator: ",").map { piece in
        guard let n = Int(piece.trimmingCharacters(in: .whitespaces)), range.contains(n) else {
            throw ValidationError("\(option): '\(piece)' is not a count in \(range.lowerBound)...\(range.upperBound) (expected a comma-separated list like 1,4,16)")
        }
        return n
    }
    guard !counts.isEmpty else { throw ValidationError("\(option) is empty (expected a comma-separated list like 1,4,16)") }
    return counts
}

/// Writes to standard error (progress and diagnostics stay off standard output).
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// An error the command line reports as one line.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// How this process logs: `--log-format` and `--log-level`, else `ROLLSPEC_LOG_FORMAT` and
/// `ROLLSPEC_LOG_LEVEL`, else text lines at info.
struct LoggingOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("How log lines are written (default: $\(RoleLogging.formatVariable), else text).",
                                            valueName: "format"))
    var logFormat: LogFormat?

    @Option(name: .long, help: ArgumentHelp("The least severe level logged (default: $\(RoleLogging.levelVariable), else info).",
                                            valueName: "level"))
    var logLevel: Logger.Level?

    /// The format and level asked for.
    /// - Throws: `ValidationError` naming the variable when the environment's value is not one.
    func resolved(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (format: LogFormat, level: Logger.Level) {
        func fromEnvironment<T: RawRepresentable<String>>(_ key: String, _: T.Type) throws -> T? {
            guard let text = environment[key], !text.isEmpty else { return nil }
            guard let value = T(rawValue: text.lowercased()) else { throw ValidationError("\(key)=\(text) is not one of the choices (see --help)") }
            return value
        }
        return (try logFormat ?? fromEnvironment(RoleLogging.formatVariable, LogFormat.self) ?? .text,
                try logLevel ?? fromEnvironment(RoleLogging.levelVariable, Logger.Level.self) ?? .info)
    }

    /// Bootstraps swift-log for this process (once, before any logger is made).
    /// - Returns: the level, for the processes this one starts.
    @discardableResult
    func bootstrap() throws -> Logger.Level {
        let (format, level) = try resolved()
        RoleLogging.bootstrap(format: format, level: level)
        return level
    }
}

extension LogFormat: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}
