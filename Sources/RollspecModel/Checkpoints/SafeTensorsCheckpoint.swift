import Foundation
import RollspecKernels

/// The safetensors weights of a Hugging Face model directory: either one `model.safetensors`,
/// or shards listed by `model.safetensors.index.json` (`{"weight_map": {tensor: shard file}}`).
///
/// Opening checks that the index is well formed, every shard exists and validates, each tensor
/// the index names is in the shard it names, no tensor is in two shards, and no shard holds a
/// tensor the index does not list.
public struct SafeTensorsCheckpoint: @unchecked Sendable {
    public static let singleFileName = "model.safetensors"
    public static let indexFileName = "model.safetensors.index.json"

    public let directory: URL
    /// The opened files, in shard-name order.
    public let files: [SafeTensorsFile]
    /// Tensor name → index into `files`.
    private let location: [String: Int]

    /// - Throws: `ModelError.missingFile` when neither file is present or a shard is absent,
    ///   `ModelError.malformedCheckpoint` naming the index or shard at fault.
    public init(directory: URL) throws {
        self.directory = directory
        let fm = FileManager.default
        let indexURL = directory.appendingPathComponent(Self.indexFileName)
        let singleURL = directory.appendingPathComponent(Self.singleFileName)
        if fm.fileExists(atPath: indexURL.path) {
            let weightMap = try Self.readWeightMap(indexURL)
            let shardNames = Set(weightMap.values).sorted()
            var files: [SafeTensorsFile] = []
            var location: [String: Int] = [:]
            for shard in shardNames where !fm.fileExists(atPath: directory.appendingPathComponent(shard).path) {
                throw ModelError.missingFile("\(directory.appendingPathComponent(shard).path) (shard listed in \(indexURL.path))")
            }
            for (i, shard) in shardNames.enumerated() {
                let url = directory.appendingPathComponent(shard)
                let file = try SafeTensorsFile(url: url)
                for name in file.tensorNames {
                    if let other = location[name] {
                        throw ModelError.malformedCheckpoint(
                            file: url.path, tensor: name,
                            reason: "tensor appears in two shards (also in \(shardNames[other]))")
                    }
                    guard weightMap[name] == shard else {
                        let listed = weightMap[name].map { "the index places it in \($0)" } ?? "the index does not list it"
                        throw ModelError.malformedCheckpoint(
                            file: url.path, tensor: name, reason: "tensor is in this shard but \(listed)")
                    }
                    location[name] = i
                }
                files.append(file)
            }
            for (name, shard) in weightMap where location[name] == nil {
                throw ModelError.malformedCheckpoint(
                    file: directory.appendingPathComponent(shard).path, tensor: name,
                    reason: "tensor listed in \(Self.indexFileName) is not in this shard")
            }
            self.files = files
            self.location = location
        } else if fm.fileExists(atPath: singleURL.path) {
            let file = try SafeTensorsFile(url: singleURL)
            files = [file]
            location = Dictionary(uniqueKeysWithValues: file.tensorNames.map { ($0, 0) })
        } else {
            throw ModelError.missingFile(
                "\(directory.path): neither \(Self.singleFileName) nor \(Self.indexFileName)")
        }
    }

    /// Parses and checks `weight_map` of a shard index.
    private static func readWeightMap(_ url: URL) throws -> [String: String] {
        func fail(_ reason: String, _ tensor: String? = nil) -> ModelError {
            .malformedCheckpoint(file: url.path, tensor: tensor, reason: reason)
        }
        guard let data = try? Data(contentsOf: url) else { throw ModelError.missingFile(url.path) }
        guard let root = try? JSONDecoder().decode(JSONValue.self, from: data) else {
            throw fail("index is not valid JSON")
        }
        guard case .object(let fields) = root else { throw fail("index is \(root.typeName), not a JSON object") }
        guard let map = fields["weight_map"] else { throw fail("index has no 'weight_map'") }
        guard case .object(let entries) = map else { throw fail("weight_map is \(map.typeName), not an object") }
        guard !entries.isEmpty else { throw fail("weight_map is empty") }
        var weightMap: [String: String] = [:]
        for (name, value) in entries {
            guard case .string(let shard) = value else {
                throw fail("weight_map entry is \(value.typeName), not a shard file name", name)
            }
            // Shards must sit beside the index; a path could reach files outside the model.
            guard !shard.isEmpty, !shard.contains("/"), shard != ".", shard != ".." else {
                throw fail("shard name '\(shard)' is not a plain file name", name)
            }
            weightMap[name] = shard
        }
        return weightMap
    }

    /// All tensor names across shards, sorted.
    public var tensorNames: [String] { location.keys.sorted() }

    public func info(named name: String) -> SafeTensorsFile.TensorInfo? {
        location[name].flatMap { files[$0].info(named: name) }
    }

    /// The file holding `name`, for error messages.
    public func file(holding name: String) -> SafeTensorsFile? { location[name].map { files[$0] } }

    /// Converts one tensor to `Float32` (see `SafeTensorsFile.tensor(named:)`).
    public func tensor(named name: String) throws -> (shape: [Int], data: FloatBuffer) {
        guard let i = location[name] else {
            throw ModelError.malformedCheckpoint(file: directory.path, tensor: name, reason: "no such tensor in the checkpoint")
        }
        return try files[i].tensor(named: name)
    }
}
