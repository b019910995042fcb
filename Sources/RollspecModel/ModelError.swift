/// Errors from loading and validating models, checkpoints and tokenizers. Every message names
/// the file and, where there is one, the tensor or key at fault.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case missingFile(String)
    case invalidConfig(String)
    /// A checkpoint file is malformed: file path, tensor name (if any), what is wrong.
    case malformedCheckpoint(file: String, tensor: String?, reason: String)
    /// Tensors the model needs are absent, or tensors it does not know are present.
    case tensorMismatch(file: String, reason: String)
    case invalidTokenizer(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .missingFile(let p): return "file not found: \(p)"
        case .invalidConfig(let why): return "invalid model config: \(why)"
        case .malformedCheckpoint(let file, let tensor, let reason):
            if let tensor { return "\(file): tensor '\(tensor)': \(reason)" }
            return "\(file): \(reason)"
        case .tensorMismatch(let file, let reason): return "\(file): \(reason)"
        case .invalidTokenizer(let why): return "invalid tokenizer: \(why)"
        case .unsupported(let why): return "unsupported: \(why)"
        }
    }
}
