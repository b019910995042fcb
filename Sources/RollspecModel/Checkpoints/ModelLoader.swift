import Foundation
import RollspecKernels

/// Loads Llama-family weights from a Hugging Face directory (`config.json` with
/// `model.safetensors` or a sharded index) or a llama.cpp `.gguf` file, checking the tensor set
/// and every shape against the config before anything is built.
public enum ModelLoader {
    /// A loaded model and, for GGUF files, the metadata the tokenizer is built from.
    public struct LoadedModel: @unchecked Sendable {
        public let weights: LlamaWeights
        /// All GGUF metadata (`tokenizer.ggml.*`, …); nil for Hugging Face directories.
        public let ggufMetadata: [String: GGUFValue]?
    }

    /// Loads the weights at `path` (see `load(path:)`).
    public static func loadWeights(path: String) throws -> LlamaWeights { try load(path: path).weights }

    /// Loads the model at `path`: a directory, or a file whose name ends in `.gguf`.
    /// - Throws: `ModelError.tensorMismatch` listing missing and unexpected tensors by name, or
    ///   naming a tensor with its expected and actual shapes; the errors of the format readers.
    public static func load(path: String) throws -> LoadedModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelError.missingFile(path)
        }
        let url = URL(fileURLWithPath: path)
        if isDirectory.boolValue { return LoadedModel(weights: try loadHuggingFace(directory: url), ggufMetadata: nil) }
        if url.pathExtension.lowercased() == "gguf" {
            let gguf = try GGUFFile(url: url)
            return LoadedModel(weights: try loadGGUF(gguf), ggufMetadata: gguf.metadata)
        }
        throw ModelError.unsupported("\(path): expected a Hugging Face model directory or a .gguf file")
    }

    /// The metadata of a GGUF file, without loading any tensor.
    public static func ggufMetadata(path: String) throws -> [String: GGUFValue] {
        try GGUFFile(url: URL(fileURLWithPath: path)).metadata
    }

    /// Loads `config.json` and the safetensors weights of a Hugging Face model directory.
    public static func loadHuggingFace(directory: URL) throws -> LlamaWeights {
        let config = try LlamaConfig.load(directory: directory)
        let checkpoint = try SafeTensorsCheckpoint(directory: directory)
        var shapes: [String: [Int]] = [:]
        for name in checkpoint.tensorNames { shapes[name] = checkpoint.info(named: name)?.shape }
        let plan = try checkTensors(shapes, config: config, file: directory.path)
        var tensors: [String: FloatBuffer] = [:]
        for name in plan.load { tensors[name] = try checkpoint.tensor(named: name).data }
        if plan.checkTiedHead {
            try checkTiedHead(try checkpoint.tensor(named: lmHead).data, tensors, file: directory.path)
        }
        return LlamaWeights(config: config, tensors: tensors)
    }

    /// Loads weights from one safetensors file held in memory and the HF `config.json` text
    /// that goes with it (a checkpoint received over the bus): the same checks and errors as
    /// `loadHuggingFace(directory:)`, with `name` where the file path would be, and no file
    /// written or read.
    /// - Parameters:
    ///   - configJSON: the `config.json` bytes.
    ///   - safetensors: the `model.safetensors` bytes; kept, not copied, while loading.
    ///   - name: names the bytes in errors (e.g. "policy v3").
    /// - Throws: `ModelError.invalidConfig`, `ModelError.malformedCheckpoint`,
    ///   `ModelError.tensorMismatch`, as the directory loader does.
    ///
    /// - Parameter inPlace: F32 tensors read the bytes of `safetensors` where they are, with no
    ///   copy (the weights then keep those bytes alive, and nothing may write to them).
    public static func loadSafeTensors(configJSON: Data, safetensors: Data, name: String, inPlace: Bool = false) throws
        -> LlamaWeights
    {
        let (config, file, plan) = try checkSafeTensors(configJSON: configJSON, safetensors: safetensors, name: name)
        var tensors: [String: FloatBuffer] = [:]
        for tensorName in plan.load {
            tensors[tensorName] = try (inPlace ? file.tensorInPlace(named: tensorName) : nil) ?? file.tensor(named: tensorName).data
        }
        if plan.checkTiedHead {
            try checkTiedHead(try file.tensor(named: lmHead).data, tensors, file: name)
        }
        return LlamaWeights(config: config, tensors: tensors)
    }

    /// The checks of `loadSafeTensors` that need only the config and the safetensors header:
    /// the config decodes, and the tensor names, shapes and element types are those it
    /// implies. Reads no tensor data, so it costs microseconds whatever the checkpoint's size.
    /// - Throws: as `loadSafeTensors`.
    @discardableResult
    public static func checkSafeTensors(configJSON: Data, safetensors: Data, name: String) throws
        -> (config: LlamaConfig, file: SafeTensorsFile, plan: (load: [String], checkTiedHead: Bool)) {
        let config: LlamaConfig
        do {
            config = try JSONDecoder().decode(LlamaConfig.self, from: configJSON)
        } catch ModelError.invalidConfig(let why) {
            throw ModelError.invalidConfig("\(name) config: \(why)")
        } catch {
            throw ModelError.invalidConfig("\(name) config: \(describe(error))")
        }
        let file = try SafeTensorsFile(data: safetensors, name: name)
        // The body of `loadHuggingFace(directory:)` over one in-memory file instead of a directory.
        var shapes: [String: [Int]] = [:]
        for info in file.tensors { shapes[info.name] = info.shape }
        return (config, file, try checkTensors(shapes, config: config, file: name))
    }

    /// Loads the weights of an opened GGUF file into the Hugging Face layout.
    public static func loadGGUF(_ gguf: GGUFFile) throws -> LlamaWeights {
        let config = try LlamaConfig(gguf: gguf)
        var shapes: [String: [Int]] = [:]
        var ggufName: [String: String] = [:]
        var unmapped: [String] = []
        for info in gguf.tensors {
            if let hf = GGUFFile.huggingFaceName(for: info.name) {
                shapes[hf] = info.shape
                ggufName[hf] = info.name
            } else {
                unmapped.append(info.name)
            }
        }
        let plan = try checkTensors(shapes, config: config, file: gguf.url.path, unmapped: unmapped)
        var tensors: [String: FloatBuffer] = [:]
        for name in plan.load {
            tensors[name] = try gguf.huggingFaceTensor(named: ggufName[name]!, config: config).data
        }
        if plan.checkTiedHead, let name = ggufName[lmHead] {
            try checkTiedHead(try gguf.huggingFaceTensor(named: name, config: config).data, tensors, file: gguf.url.path)
        }
        return LlamaWeights(config: config, tensors: tensors)
    }

    private static let lmHead = "lm_head.weight"
    private static let embedding = "model.embed_tokens.weight"

    /// Compares a checkpoint's tensors (Hugging Face name → shape) with what `config` needs.
    ///
    /// Ignored: `rotary_emb.inv_freq` buffers (recomputed from the config), and `lm_head.weight`
    /// when the config ties it, provided it equals the embedding (checked after loading).
    /// - Parameter unmapped: tensors with no Hugging Face name (GGUF), reported as unexpected.
    /// - Returns: the names to load, and whether a tied head must be compared.
    static func checkTensors(
        _ shapes: [String: [Int]], config: LlamaConfig, file: String, unmapped: [String] = []
    ) throws -> (load: [String], checkTiedHead: Bool) {
        let expected = LlamaWeights.expectedTensors(for: config)
        let expectedNames = Set(expected.map(\.name))
        let checkTiedHead = config.tieWordEmbeddings && shapes[lmHead] != nil
        let missing = expected.map(\.name).filter { shapes[$0] == nil }
        let unexpected = (shapes.keys.filter { name in
            !expectedNames.contains(name) && !name.hasSuffix("rotary_emb.inv_freq") && !(checkTiedHead && name == lmHead)
        } + unmapped).sorted()
        if !missing.isEmpty || !unexpected.isEmpty {
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing tensors: \(list(missing))") }
            if !unexpected.isEmpty { parts.append("unexpected tensors: \(list(unexpected))") }
            throw ModelError.tensorMismatch(
                file: file, reason: "checkpoint does not match the config; " + parts.joined(separator: "; "))
        }
        for (name, shape) in expected where shapes[name] != shape {
            throw ModelError.tensorMismatch(
                file: file, reason: "tensor '\(name)' has shape \(shapes[name]!), expected \(shape) for this config")
        }
        if checkTiedHead, let head = shapes[lmHead], head != [config.vocabSize, config.hiddenSize] {
            throw ModelError.tensorMismatch(
                file: file, reason: "tensor '\(lmHead)' has shape \(head), expected \([config.vocabSize, config.hiddenSize]) for this config")
        }
        return (expected.map(\.name), checkTiedHead)
    }

    /// Accepts a stored `lm_head.weight` under a tied config only if it equals the embedding.
    private static func checkTiedHead(_ head: FloatBuffer, _ tensors: [String: FloatBuffer], file: String) throws {
        guard let table = tensors[embedding], head.count == table.count,
              memcmp(head.pointer, table.pointer, head.count * MemoryLayout<Float>.stride) == 0 else {
            throw ModelError.tensorMismatch(
                file: file, reason: "tensor '\(lmHead)' differs from '\(embedding)' but the config ties them (tie_word_embeddings)")
        }
    }

    /// Names for an error message: all of them up to 20, then a count.
    private static func list(_ names: [String]) -> String {
        let shown = names.prefix(20).joined(separator: ", ")
        return names.count > 20 ? "\(shown) and \(names.count - 20) more" : shown
    }
}
