/// What stops a distillation, in one line that names the setting or file at fault.
public struct DistillationError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
