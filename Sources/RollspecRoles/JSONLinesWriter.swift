import Foundation
import Logging
import RollspecLogging

/// Writes records as JSON lines to a file, and to stdout when asked, each line at once
/// (unbuffered `FileHandle` writes: the launcher may be reading either while the run goes on).
final class JSONLinesWriter {
    private let file: FileHandle?
    private let toStandardOutput: Bool
    private let encoder: JSONEncoder

    /// - Parameters:
    ///   - path: the file to write (its folder is created; a file left by an earlier run is
    ///     replaced, so a reader of the file sees this run only); nil: stdout only.
    ///   - toStandardOutput: also write every line to stdout.
    ///   - logger: the owner's, which says so when the file cannot be written.
    init(path: String?, toStandardOutput: Bool, logger: Logger) {
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        self.toStandardOutput = toStandardOutput
        if let path {
            let url = URL(fileURLWithPath: path)
            try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            file = FileManager.default.createFile(atPath: path, contents: nil) ? try? FileHandle(forWritingTo: url) : nil
            if file == nil {
                logger.event(.recordsUnwritable, "cannot write \(path)\(toStandardOutput ? "; records go to stdout only" : "")",
                             ["path": .string(path)])
            }
        } else {
            file = nil
        }
    }

    func write<R: Encodable>(_ record: R) {
        guard let data = try? encoder.encode(record) else { return }
        let line = data + Data("\n".utf8)
        if toStandardOutput { FileHandle.standardOutput.write(line) }
        file?.write(line)
    }

    deinit { try? file?.close() }
}
