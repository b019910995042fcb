import Foundation
@testable import RollspecClient
import RollspecModel
import RollspecTesting
import Testing

@Suite struct JobConfigTests {
    @Test func defaultsFillMissingKeys() throws {
        let c = try JobConfig.decode(Data(#"{"workers": 3, "sampling": {"maxTokens": 7}}"#.utf8))
        #expect(c.workers == 3)
        #expect(c.sampling.maxTokens == 7)
        #expect(c.sampling.temperature == 1)
        #expect(c.workerBatchSize == JobConfig().workerBatchSize)
    }

    @Test func yamlHasTheSameKeys() throws {
        let yaml = """
            endpoint: tcp://127.0.0.1:5555
            workerBatchSize: 4
            speculation:
              mode: suffix
              lookahead: 6
            sampling:
              temperature: 0.7
            """
        let c = try JobConfig.decode(Data(yaml.utf8), yaml: true)
        #expect(c.endpoint == "tcp://127.0.0.1:5555")
        #expect(c.workerBatchSize == 4)
        #expect(c.speculation.mode == .suffix && c.speculation.lookahead == 6)
        #expect(c.sampling.temperature == 0.7)
        do {
            _ = try JobConfig.decode(Data("sampling:\n  maxTokens: many\n".utf8), yaml: true)
            Issue.record("accepted a non-integer maxTokens")
        } catch let error as JobConfigError {
            #expect(error == .invalid(key: "sampling.maxTokens", reason: "expected Int") || "\(error)".contains("sampling.maxTokens"), "\(error)")
        }
    }

    @Test(arguments: [
        (#"{"workers": 0}"#, "workers"),
        (#"{"endpoint": "http://x"}"#, "endpoint"),
        (#"{"sampling": {"topP": 0}}"#, "sampling.topP"),
        (#"{"speculation": {"mode": "bogus"}}"#, "speculation.mode"),
        (#"{"driver": {"samples": "two"}}"#, "driver.samples"),
        (#"{"heartbeatIntervalSeconds": 5, "heartbeatTimeoutSeconds": 1}"#, "heartbeatTimeoutSeconds"),
        // The GRPO update scores tokens without truncation; an external learner may truncate.
        (#"{"sampling": {"topK": 40}}"#, "sampling.topK"),
        (#"{"sampling": {"topP": 0.9}, "learner": {"kind": "grpo"}}"#, "sampling.topP"),
        (#"{"speculation": {"treeRows": 1}}"#, "speculation.treeRows"),
        (#"{"speculation": {"treeRows": 33}}"#, "speculation.treeRows"),
        (#"{"speculation": {"treeExtend": 1.5}}"#, "speculation.treeExtend"),
        (#"{"speculation": {"historyTokens": -1}}"#, "speculation.historyTokens"),
        (#"{"speculation": {"historyTokens": 1000000000000}}"#, "speculation.historyTokens"),
        (#"{"speculation": {"historyPolicies": -2}}"#, "speculation.historyPolicies"),
        (#"{"trainer": {"priority": "sometimes"}}"#, "trainer.priority"),
        // Absurd numbers that once trapped, spun or allocated without bound inside a role.
        (#"{"learner": {"groupSize": 5000000000}}"#, "learner.groupSize"),
        (#"{"learner": {"kind": "external"}, "sampling": {"topK": 5000000000}}"#, "sampling.topK"),
        (#"{"workerBatchSize": 5000000000}"#, "workerBatchSize"),
        (#"{"speculation": {"lookahead": 5000000000}}"#, "speculation.lookahead"),
        (#"{"workers": 100000}"#, "workers"),
        (#"{"sampling": {"maxTokens": 4000000000}}"#, "sampling.maxTokens"),
        (#"{"sampling": {"temperature": 1e30}}"#, "sampling.temperature"),
        (#"{"learner": {"promptsPerStep": 10000000}}"#, "learner.promptsPerStep"),
        (#"{"learner": {"steps": 0}}"#, "learner.steps"),
        (#"{"learner": {"stepTimeoutSeconds": 1e12}}"#, "learner.stepTimeoutSeconds"),
        (#"{"driver": {"samples": 1000000}}"#, "driver.samples"),
        (#"{"trainer": {"batchSize": 1000000}}"#, "trainer.batchSize"),
        (#"{"trainer": {"draftLayers": 100000}}"#, "trainer.draftLayers"),
        (#"{"heartbeatIntervalSeconds": 1e9, "heartbeatTimeoutSeconds": 2e9}"#, "heartbeatIntervalSeconds"),
        (#"{"resendTimeoutSeconds": 1e12}"#, "resendTimeoutSeconds"),
        (#"{"threadsPerRole": 1000000}"#, "threadsPerRole"),
        (#"{"metrics": {"port": 70000}}"#, "metrics.port"),
    ])
    func badValuesNameTheKey(json: String, key: String) throws {
        do {
            _ = try JobConfig.decode(Data(json.utf8))
            Issue.record("\(json) was accepted")
        } catch let error as JobConfigError {
            guard case .invalid(let k, _) = error else { Issue.record("\(error)"); return }
            #expect(k == key, "\(error)")
        }
    }
}

extension JobConfigTests {
    @Test(arguments: [
        ("workerz: 2\n", "workerz", "did you mean \"workers\""),
        ("sampling:\n  temprature: 0.5\n", "sampling.temprature", "did you mean \"temperature\""),
        ("learner:\n  groupSize: 4\n  banana: 1\n", "learner.banana", "unknown key"),
        ("metrics:\n  prt: 9000\n", "metrics.prt", "did you mean \"port\""),
    ])
    func unknownKeysAreErrorsThatNameThem(yaml: String, key: String, hint: String) throws {
        do {
            _ = try JobConfig.decode(Data(yaml.utf8), yaml: true)
            Issue.record("accepted \(yaml)")
        } catch let error as JobConfigError {
            #expect(error.key == key, "\(error)")
            #expect("\(error)".contains(hint), "\(error)")
        }
    }

    @Test func loadNamesTheFileAndChecksCheckpointPaths() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jobconfig-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("job.yaml")
        try "models:\n  policy: /nonexistent/model.gguf\n".write(to: file, atomically: true, encoding: .utf8)
        do {
            _ = try JobConfig.load(path: file.path)
            Issue.record("accepted a missing checkpoint")
        } catch let error as JobConfigError {
            #expect(error.key == "models.policy")
            #expect("\(error)".hasPrefix(file.path) && "\(error)".contains("/nonexistent/model.gguf"), "\(error)")
        }
        #expect(throws: JobConfigError.unreadable(dir.appendingPathComponent("nope.yaml").path)) {
            try JobConfig.load(path: dir.appendingPathComponent("nope.yaml").path)
        }
    }

    @Test func anExternalLearnerMaySampleWithTopKAndTopP() throws {
        let config = try JobConfig.decode(Data(#"{"sampling": {"topK": 40, "topP": 0.9}, "learner": {"kind": "external"}}"#.utf8))
        #expect(config.sampling.topK == 40 && config.sampling.topP == 0.9)
    }

    @Test func metricsPortMustNotClashWithTheBusPort() throws {
        do {
            _ = try JobConfig.decode(Data("endpoint: tcp://127.0.0.1:9464\nmetrics:\n  port: 9464\n".utf8), yaml: true)
            Issue.record("accepted a port clash")
        } catch let error as JobConfigError {
            #expect(error.key == "metrics.port" && "\(error)".contains("clashes"), "\(error)")
        }
    }

    @Test(arguments: [
        ("tcp://node0:5555", "tcp://*:5555"), ("tcp://10.0.0.7:5555", "tcp://10.0.0.7:5555"),
        ("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5555"), ("tcp://*:5555", "tcp://*:5555"),
        ("ipc:///tmp/x.sock", "ipc:///tmp/x.sock"),
    ])
    func theBrokerBindsEveryInterfaceWhenTheEndpointNamesAHost(endpoint: String, bind: String) throws {
        var c = JobConfig()
        c.endpoint = endpoint
        #expect(c.bindEndpoint == bind)
    }

    @Test func emptyEndpointAndTrainerStateLiveInTheRunDirectory() throws {
        let c = try JobConfig.decode(Data("name: demo\nrunDirectory: /tmp/rs-demo\n".utf8), yaml: true)
        #expect(c.endpoint == "ipc:///tmp/rs-demo/broker.sock")
        #expect(c.trainer.stateDirectory == "/tmp/rs-demo/trainer")
        let d = try JobConfig.decode(Data("name: demo\n".utf8), yaml: true)
        #expect(d.resolvedRunDirectory == "runs/demo" && d.endpoint.hasSuffix("/runs/demo/broker.sock"))
    }
}

@Suite struct CheckpointCodecTests {
    @Test func roundTripKeepsConfigAndTensors() throws {
        let weights = TinyModels.randomWeights(config: TinyModels.llamaConfig(vocab: 259), seed: 3)
        let back = try CheckpointCodec.decode(try CheckpointCodec.encode(weights))
        #expect(back.config == weights.config)
        let a = Dictionary(uniqueKeysWithValues: weights.namedTensors.map { ($0.name, $0.buffer) })
        for (name, buffer) in back.namedTensors {
            let original = try #require(a[name])
            #expect(original.count == buffer.count)
            #expect((0..<buffer.count).allSatisfy { original[$0] == buffer[$0] }, "\(name)")
        }
    }

    @Test func refusesBytesWithoutConfig() throws {
        #expect(throws: (any Error).self) { try CheckpointCodec.decode(Data([1, 2, 3])) }
        let plain = try SafeTensorsWriter.encode([])
        #expect(throws: CheckpointCodecError.self) { try CheckpointCodec.decode(plain) }
    }
}

/// The speculation tree keys and `models.draft` checks.
@Suite struct DraftConfigTests {
    @Test func treeKeysMapToTheDraftTreeShape() throws {
        #expect(try JobConfig.decode(Data("{}".utf8)).speculation.treeShape == .chain)
        let c = try JobConfig.decode(Data("speculation: {treeRows: 6, treeExtend: 0.5}\n".utf8), yaml: true)
        #expect(c.speculation.treeShape == .shaped(rows: 6, extendThreshold: 0.5))
    }

    /// `models.draft` must name a draft some role can load: a feature draft's tensors are checked
    /// against its config, and its shape against a folder policy's, before anything starts.
    @Test func draftPathsThatAreNotLoadableDraftsAreRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("jobconfig-draft-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let policy = TinyModels.randomWeights(config: TinyModels.llamaConfig(vocab: 259), seed: 1)
        try policy.save(to: dir.appendingPathComponent("policy"))
        try TinyModels.randomFeatureDraft(target: policy).save(to: dir.appendingPathComponent("eagle"))
        let other = TinyModels.randomWeights(config: TinyModels.llamaConfig(vocab: 259, hidden: 48, heads: 4), seed: 2)
        try TinyModels.randomFeatureDraft(target: other).save(to: dir.appendingPathComponent("wide-eagle"))
        // A feature draft whose tensors file is gone; a folder with no config at all.
        try TinyModels.randomFeatureDraft(target: policy).save(to: dir.appendingPathComponent("broken"))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("broken/\(SafeTensorsCheckpoint.singleFileName)"))
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("empty"), withIntermediateDirectories: true)

        func load(policy: String, draft: String) throws -> JobConfig {
            let file = dir.appendingPathComponent("job.yaml")
            try "models: {policy: \(policy), draft: \(dir.path)/\(draft)}\n".write(to: file, atomically: true, encoding: .utf8)
            return try JobConfig.load(path: file.path)
        }
        let policyPath = dir.appendingPathComponent("policy").path
        #expect(try load(policy: policyPath, draft: "eagle").models.draft == .checkpoint(path: dir.path + "/eagle"))
        #expect(try load(policy: "builtin", draft: "eagle").models.draft == .checkpoint(path: dir.path + "/eagle"))
        for (draft, hint) in [("wide-eagle", "48 wide"), ("broken", "not a loadable draft"), ("empty", "not a loadable draft")] {
            do {
                _ = try load(policy: policyPath, draft: draft)
                Issue.record("accepted models.draft \(draft)")
            } catch let error as JobConfigError {
                #expect(error.key == "models.draft" && "\(error)".contains(hint), "\(error)")
            }
        }
    }
}

/// The port preflight against real sockets.
@Suite struct PortPreflightTests {
    /// A listening socket on an ephemeral loopback port; returns (fd, port).
    static func listener() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        // As the broker (libzmq) and the metrics server bind theirs: a connection in TIME_WAIT
        // then blocks only a bind without SO_REUSEADDR.
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr = in_addr(s_addr: INADDR_ANY)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 4) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        try #require(bound)
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    @Test func aListenerIsInUseAndAConnectionInTimeWaitIsNot() throws {
        let (server, port) = try Self.listener()
        #expect(!JobConfig.canBind(port: port), "a listening port passed the preflight")
        // A connection that the server's side closes first leaves the server's port in TIME_WAIT.
        let client = try #require(Loopback.connect(port: port))
        let accepted = accept(server, nil, nil)
        try #require(accepted >= 0)
        close(accepted)
        close(server)
        var byte: UInt8 = 0
        _ = read(client, &byte, 1)  // sees the server's FIN
        close(client)
        // Read to the end: procfs reports no size, and with many sockets the table is long.
        let table = String(decoding: FileHandle(forReadingAtPath: "/proc/net/tcp")?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
        let hexPort = String(format: ":%04X", port)
        // State 06 is TIME_WAIT: nothing listens, yet a bind without SO_REUSEADDR would fail.
        #expect(table.split(separator: "\n").contains { $0.split(separator: " ")[1].hasSuffix(hexPort) && $0.split(separator: " ")[3] == "06" },
                "no TIME_WAIT entry for port \(port): the test would prove nothing")
        #expect(JobConfig.canBind(port: port), "a port in TIME_WAIT was refused as in use")
    }
}

/// Config messages that say what is wrong and where.
@Suite struct ConfigMessageTests {
    func error(_ yaml: String) -> JobConfigError? {
        do { _ = try JobConfig.decode(Data(yaml.utf8), yaml: true); return nil } catch let e as JobConfigError { return e } catch { return nil }
    }

    @Test func aDuplicateKeyIsRefusedWithBothLines() throws {
        let e = try #require(error("name: a\nworkers: 2\nspeculation:\n  mode: suffix\n  lookahead: 3\n  mode: none\n"))
        #expect(e.key == "speculation.mode" && "\(e)".contains("lines 4 and 6"), "\(e)")
        #expect(error("name: a\nworkers: 2\nspeculation: {mode: suffix}\n") == nil)
    }

    @Test func aYAMLSyntaxErrorGivesLineAndColumn() throws {
        let e = try #require(error("name: a\nworkers: 2\nsampling: {temperature: 1\nlearner: {steps: 3}\n"))
        let text = "\(e)"
        #expect(text.contains("not valid YAML") && text.range(of: #"\b[3-5]:\d+\b"#, options: .regularExpression) != nil, "\(text)")
    }

    @Test func aBadChoiceListsTheChoices() throws {
        let mode = try #require(error("speculation: {mode: fast}\n"))
        #expect(mode.key == "speculation.mode" && "\(mode)".contains("none, draft, suffix, auto") && "\(mode)".contains("fast"), "\(mode)")
        let priority = try #require(error("trainer: {priority: low}\n"))
        #expect(priority.key == "trainer.priority" && "\(priority)".contains("idle, normal"), "\(priority)")
    }

    /// The roles that multiply beside the workers: the learner's update and the speculator
    /// trainer's feature-draft step.
    enum MultiplyingRole: String, CaseIterable, Sendable {
        case learner, trainer
        func precision(_ c: JobConfig) -> WeightPrecision {
            switch self {
            case .learner: c.resolvedLearnerPrecision
            case .trainer: c.resolvedTrainerPrecision
            }
        }
    }

    /// The learner and the trainer multiply as the workers do unless their own `precision`
    /// says otherwise.
    @Test(arguments: MultiplyingRole.allCases)
    func aRolesPrecisionFollowsTheWorkersUnlessSet(_ role: MultiplyingRole) throws {
        func resolved(_ yaml: String) throws -> WeightPrecision { role.precision(try JobConfig.decode(Data(yaml.utf8), yaml: true)) }
        let key = role.rawValue
        #expect(try resolved("name: a\n") == .float32)
        #expect(try resolved("models: {precision: bfloat16}\n") == .bfloat16)
        #expect(try resolved("models: {precision: bfloat16}\n\(key): {precision: float32}\n") == .float32)
        #expect(try resolved("\(key): {precision: bfloat16}\n") == .bfloat16)
        let e = try #require(error("\(key): {precision: half}\n"))
        #expect(e.key == "\(key).precision" && "\(e)".contains("float32, bfloat16") && "\(e)".contains("half"), "\(e)")
    }

    @Test func textWhereANumberBelongsSaysWhatWasExpected() throws {
        let e = try #require(error("workers: two\n"))
        #expect(e.key == "workers" && "\(e)".contains("expected Int") && !"\(e)".contains("found null"), "\(e)")
    }
}

/// What the machine must offer a job, checked before any role starts.
@Suite struct MachinePreflightTests {
    static func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rollspec-preflight-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func eachMissingDependencyIsNamedByItsKey() throws {
        let dir = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bare = dir.appendingPathComponent("bare-model")
        try FileManager.default.createDirectory(at: bare, withIntermediateDirectories: true)
        let noWeights = dir.appendingPathComponent("config-only")
        try FileManager.default.createDirectory(at: noWeights, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: noWeights.appendingPathComponent("config.json"))
        let cases: [(String, String, String)] = [
            ("runDirectory: /proc/rollspec-x\n", "runDirectory", "cannot create /proc/rollspec-x"),
            ("runDirectory: \(dir.path)/r\nendpoint: ipc://\(dir.path)/missing/broker.sock\n", "endpoint", "does not exist"),
            ("runDirectory: \(dir.path)/r\nendpoint: tcp://not-a-host.invalid:5555\n", "endpoint", "not-a-host.invalid"),
            ("runDirectory: \(dir.path)/r\nmetrics: {port: 9999, host: not-a-host.invalid}\n", "metrics.host", "does not resolve"),
        ]
        for (yaml, key, words) in cases {
            let config = try JobConfig.decode(Data(yaml.utf8), yaml: true)
            do {
                try config.checkMachine()
                Issue.record("accepted: \(yaml)")
            } catch let error as JobConfigError {
                #expect(error.key == key && "\(error)".contains(words), "\(error)")
                #expect(!"\(error)".contains("NSCocoaErrorDomain"), "\(error)")
            }
        }
        // Model folders are checked without loading them (the loader would fail inside a role).
        for (folder, words) in [(bare, "no config.json"), (noWeights, "no .safetensors weights")] {
            var config = try JobConfig.decode(Data("runDirectory: \(dir.path)/r\n".utf8), yaml: true)
            config.models.policy = .checkpoint(path: folder.path)
            do {
                try config.checkMachine()
                Issue.record("accepted \(folder.path)")
            } catch let error as JobConfigError {
                #expect(error.key == "models.policy" && "\(error)".contains(words), "\(error)")
            }
        }
        // And a job whose dependencies are all there passes.
        let fine = try JobConfig.decode(Data("runDirectory: \(dir.path)/ok\nendpoint: tcp://localhost:5555\n".utf8), yaml: true)
        try fine.checkMachine()
    }
}
