import Foundation
import Yams

extension JobConfig {
    /// One `KEY=VALUE` setting given on the command line over the config file's, as Hydra and
    /// verl take them: `learner.steps=3`, `runDirectory=/tmp/x`, `metrics.port=0`. The key is a
    /// dotted path of config keys; the value is read as a YAML scalar (`3` a number, `true` a
    /// boolean, anything else text).
    public struct Override: Sendable, Equatable, CustomStringConvertible {
        /// The config keys from the root, e.g. `["learner", "steps"]`.
        public var path: [String]
        public var value: String

        /// - Throws: `JobConfigError.invalid` when `text` is not `KEY=VALUE` with a dotted key.
        public init(parsing text: String) throws {
            guard let eq = text.firstIndex(of: "=") else {
                throw JobConfigError.invalid(key: text, reason: "an override is KEY=VALUE, e.g. learner.steps=3")
            }
            let key = String(text[..<eq])
            path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            value = String(text[text.index(after: eq)...])
            guard !path.isEmpty, path.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } }) else {
                throw JobConfigError.invalid(key: key, reason: "an override's key is config keys joined by dots, e.g. learner.steps")
            }
        }

        /// The dotted key.
        public var key: String { path.joined(separator: ".") }
        public var description: String { "\(key)=\(value)" }
    }

    /// `text` (a YAML or JSON config) with `overrides` applied, as YAML.
    /// - Throws: `JobConfigError` when the text is not a mapping, or an override's path runs
    ///   through a value that is not a section.
    public static func applying(_ overrides: [Override], to text: String) throws -> String {
        var root: Node
        do {
            root = try Yams.compose(yaml: text) ?? Node.mapping(Node.Mapping([]))
        } catch {
            throw JobConfigError.invalid(key: "(root)", reason: "not valid YAML: \(error)")
        }
        guard root.mapping != nil else { throw JobConfigError.invalid(key: "(root)", reason: "must be a mapping of keys") }
        for o in overrides {
            let scalar = (try? Yams.compose(yaml: o.value)).flatMap { $0 } ?? Node(o.value)
            guard scalar.scalar != nil || o.value.isEmpty else {
                throw JobConfigError.fromOverride(o.description, .invalid(key: o.key, reason: "the value must be a single value, not a list or a mapping"))
            }
            try set(&root, path: o.path[...], to: o.value.isEmpty ? Node("") : scalar, override: o)
        }
        return try Yams.serialize(node: root)
    }

    private static func set(_ node: inout Node, path: ArraySlice<String>, to value: Node, override o: Override) throws {
        guard var mapping = node.mapping else {
            let section = o.path[..<(o.path.count - path.count)].joined(separator: ".")
            throw JobConfigError.fromOverride(o.description, .invalid(key: section, reason: "is a value, not a section with keys"))
        }
        let key = path.first!
        if path.count == 1 {
            mapping[key] = value
        } else {
            var child = mapping[key] ?? Node.mapping(Node.Mapping([]))
            try set(&child, path: path.dropFirst(), to: value, override: o)
            mapping[key] = child
        }
        node = Node.mapping(mapping)
    }

    /// Reads the config file at `path`, applies `overrides`, and validates the result as `load`
    /// does. Problems an override caused are reported as the override's.
    /// - Returns: the config, and its text with the overrides applied (to hand to the roles).
    public static func load(path: String, overrides: [Override]) throws -> (config: JobConfig, text: String) {
        guard !overrides.isEmpty else {
            let config = try load(path: path)
            return (config, (try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw JobConfigError.unreadable(path)
        }
        do {
            let merged = try applying(overrides, to: text)
            let config = try decode(Data(merged.utf8), yaml: true)
            try config.checkFiles()
            return (config, merged)
        } catch let error as JobConfigError {
            if case .fromOverride = error { throw error }
            if let key = error.key, let o = overrides.last(where: { $0.key == key || key.hasPrefix($0.key + ".") }) {
                throw JobConfigError.fromOverride(o.description, error)
            }
            throw JobConfigError.inFile(path, error)
        }
    }
}
