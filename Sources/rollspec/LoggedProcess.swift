import Foundation
import RollspecLogging

/// A child process whose standard error is read line by line, each line stamped with the
/// monotonic time it was read. The benchmarks find lines by their words, so the child logs text.
final class LoggedProcess: @unchecked Sendable {
    struct Line { var time: Double; var text: String }
    let name: String
    let process = Process()
    private let lock = NSCondition()
    private var lines: [Line] = []
    private let logFile: FileHandle?

    init(name: String, executable: URL, arguments: [String], logDirectory: URL) throws {
        self.name = name
        let path = logDirectory.appendingPathComponent("\(name).log").path
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        logFile = FileHandle(forWritingAtPath: path)
        process.executableURL = executable
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment[RoleLogging.formatVariable] = LogFormat.text.rawValue
        process.environment = environment
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let reader = pipe.fileHandleForReading
        Thread { [self] in
            var pending = Data()
            while true {
                let chunk = reader.availableData
                if chunk.isEmpty { break }
                let t = monotonicSeconds()
                logFile?.write(chunk)
                pending.append(chunk)
                while let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let text = String(decoding: pending[pending.startIndex..<nl], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...nl)
                    lock.lock(); lines.append(Line(time: t, text: text)); lock.broadcast(); lock.unlock()
                }
            }
        }.start()
    }

    /// Lines read so far.
    var snapshot: [Line] { lock.lock(); defer { lock.unlock() }; return lines }

    /// The first line containing `text` (already read or arriving within `timeout` s).
    func waitForLine(containing text: String, after: Double = 0, timeout: Double) -> Line? {
        let deadline = Date().addingTimeInterval(timeout)
        lock.lock(); defer { lock.unlock() }
        while true {
            if let l = lines.first(where: { $0.time >= after && $0.text.contains(text) }) { return l }
            if !lock.wait(until: deadline) { return lines.first { $0.time >= after && $0.text.contains(text) } }
        }
    }
}
