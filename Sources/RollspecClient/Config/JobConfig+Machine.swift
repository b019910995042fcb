import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension JobConfig {
    /// Checks what this machine must offer the job, before any role starts: the run directory
    /// can be created and written, an ipc endpoint's folder exists, the hosts of a tcp endpoint
    /// and of the metrics server resolve, and a model given as a folder holds a `config.json`
    /// and safetensors weights. Each of these once failed only inside a role, after restarts or
    /// a 120 s timeout, with a message that did not name the cause.
    /// - Throws: `JobConfigError.invalid` naming the key and what is wrong.
    public func checkMachine() throws {
        let files = FileManager.default
        let runDirectory = URL(fileURLWithPath: resolvedRunDirectory).standardizedFileURL.path
        do {
            try files.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        } catch {
            throw JobConfigError.invalid(key: "runDirectory", reason: "cannot create \(runDirectory): \(Self.reason(error))")
        }
        guard files.isWritableFile(atPath: runDirectory) else {
            throw JobConfigError.invalid(key: "runDirectory", reason: "\(runDirectory) is not writable")
        }
        if endpoint.hasPrefix("ipc://") {
            let folder = URL(fileURLWithPath: String(endpoint.dropFirst("ipc://".count))).deletingLastPathComponent().path
            var isDirectory: ObjCBool = false
            guard files.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw JobConfigError.invalid(key: "endpoint", reason: "the folder of its socket, \(folder), does not exist")
            }
            guard files.isWritableFile(atPath: folder) else {
                throw JobConfigError.invalid(key: "endpoint", reason: "the folder of its socket, \(folder), is not writable")
            }
        }
        if let host = Self.tcpHost(endpoint), !Self.resolves(host) {
            throw JobConfigError.invalid(key: "endpoint", reason: "host \"\(host)\" does not resolve to an address")
        }
        if metrics.port > 0, !Self.resolves(metrics.host) {
            throw JobConfigError.invalid(key: "metrics.host", reason: "host \"\(metrics.host)\" does not resolve to an address")
        }
        var checkpoints: [(key: String, path: String)] = []
        if case .checkpoint(let path) = models.policy { checkpoints.append(("models.policy", path)) }
        if case .checkpoint(let path) = models.draft { checkpoints.append(("models.draft", path)) }
        for (key, path) in checkpoints {
            var isDirectory: ObjCBool = false
            guard files.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            guard files.fileExists(atPath: path + "/config.json") else {
                throw JobConfigError.invalid(key: key, reason: "the model folder \(path) has no config.json")
            }
            let names = (try? files.contentsOfDirectory(atPath: path)) ?? []
            guard names.contains(where: { $0.hasSuffix(".safetensors") }) else {
                throw JobConfigError.invalid(key: key, reason: "the model folder \(path) has no .safetensors weights")
            }
        }
    }

    /// Whether `host` is an address, a wildcard, or a name the resolver knows.
    static func resolves(_ host: String) -> Bool {
        if host == "*" || host.hasPrefix("[") { return true }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &result)
        if let result { freeaddrinfo(result) }
        return status == 0
    }

    /// What went wrong with a file operation, in a few words (not Foundation's error dump).
    static func reason(_ error: any Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        return ns.localizedDescription
    }
}
