import Foundation
import RollspecModel
import RollspecRuntime
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

@Suite struct CheckpointCodecTests {
    @Test func roundTripKeepsConfigAndTensors() throws {
        let weights = BuiltinModels.randomWeights(config: BuiltinModels.draftConfig(), seed: 3)
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
