import Foundation
import RollspecModel
@testable import RollspecClient
@testable import RollspecRoles
import Testing

/// A worker's checkpoint decoding: in memory (`CheckpointCodec.decode`) against the directory
/// loader it replaced, refusals of corrupt artifacts, and the background `WeightsDecodeQueue`.
@Suite struct CheckpointDecodeTests {
    static func sameTensors(_ a: LlamaWeights, _ b: LlamaWeights) -> Bool {
        let x = a.namedTensors, y = b.namedTensors
        return a.config == b.config && x.map(\.name) == y.map(\.name) && zip(x, y).allSatisfy { $0.buffer.array == $1.buffer.array }
    }

    /// The artifact of `weights` with its `rollspec_config` replaced by `config`.
    static func artifact(_ weights: LlamaWeights, config: LlamaConfig) throws -> Data {
        var w = weights
        w.config = config
        return try CheckpointCodec.encode(w)
    }

    @Test func bytesDecodeToTheWeightsTheFilePathLoads() throws {
        let weights = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 5)
        let bytes = try CheckpointCodec.encode(weights)
        // The old path: config.json and model.safetensors in a directory, through the directory loader.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rollspec-decode-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try JSONEncoder().encode(weights.config).write(to: dir.appendingPathComponent("config.json"))
        try bytes.write(to: dir.appendingPathComponent(SafeTensorsCheckpoint.singleFileName))
        let fromFile = try ModelLoader.loadHuggingFace(directory: dir)
        let fromBytes = try CheckpointCodec.decode(bytes)
        #expect(Self.sameTensors(fromBytes, fromFile))
        #expect(Self.sameTensors(fromBytes, weights))
        // A slice of a larger buffer (as reassembly may hand over) decodes the same.
        let padded = Data([1, 2, 3]) + bytes
        #expect(Self.sameTensors(try CheckpointCodec.decode(padded[padded.startIndex + 3..<padded.endIndex]), weights))
    }

    /// A worker's policy reads the received bytes in place: the same weights, every F32 tensor
    /// pointing into the artifact, and still valid after the caller has let go of its copy. A
    /// misaligned slice falls back to copies.
    @Test func inPlaceDecodingReadsTheReceivedBytes() throws {
        let weights = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 6)
        var bytes: Data? = try CheckpointCodec.encode(weights)
        let range = bytes!.withUnsafeBytes { UInt(bitPattern: $0.baseAddress!)..<UInt(bitPattern: $0.baseAddress!) + UInt($0.count) }
        let inPlace = try CheckpointCodec.decode(bytes!, inPlace: true)
        bytes = nil
        #expect(Self.sameTensors(inPlace, weights))
        #expect(inPlace.namedTensors.allSatisfy { range.contains(UInt(bitPattern: $0.buffer.pointer)) })
        let padded = Data([1, 2, 3]) + (try CheckpointCodec.encode(weights))
        let shifted = try CheckpointCodec.decode(padded[padded.startIndex + 3..<padded.endIndex], inPlace: true)
        #expect(Self.sameTensors(shifted, weights))
        let model = LlamaModel(weights: inPlace)
        #expect(model.decode(3, cache: model.makeCache()) == LlamaModel(weights: weights).decode(3, cache: model.makeCache()))
    }

    /// A learner publishes the policy as BF16 to workers that run it at bfloat16: the model a
    /// worker builds from it is the one it builds from the F32 artifact, bit for bit (weights
    /// and logits), from half the bytes.
    @Test func aBF16PolicyGivesABFloat16WorkerTheModelTheF32OneGives() throws {
        let weights = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 7)
        let f32 = try CheckpointCodec.encode(weights), bf16 = try CheckpointCodec.encode(weights, dtype: .bf16)
        #expect(Double(bf16.count) < 0.55 * Double(f32.count), "\(bf16.count) against \(f32.count) bytes")
        let fromF32 = LlamaModel(weights: try CheckpointCodec.decode(f32, inPlace: true), precision: .bfloat16)
        let fromBF16 = LlamaModel(weights: try CheckpointCodec.decode(bf16, inPlace: true), precision: .bfloat16)
        #expect(Self.sameTensors(fromF32.weights, fromBF16.weights))
        let a = fromF32.makeCache(), b = fromBF16.makeCache()
        for token in [3, 17, 250, 9] {
            #expect(fromF32.decode(token, cache: a).map(\.bitPattern) == fromBF16.decode(token, cache: b).map(\.bitPattern))
        }
    }

    @Test func corruptArtifactsAreRefusedByName() throws {
        let weights = BuiltinModels.randomWeights(config: BuiltinModels.draftConfig(), seed: 6)
        let bytes = try CheckpointCodec.encode(weights)
        func refusal(_ data: Data) -> (any Error)? {
            do { _ = try CheckpointCodec.decode(data, name: "policy v9"); return nil } catch { return error }
        }
        // Too short, header past the end, no config: the codec's own errors.
        for bad in [Data([1, 2, 3]), Data([255, 255, 0, 0, 0, 0, 0, 0, 1]), try SafeTensorsWriter.encode([])] {
            #expect(refusal(bad) is CheckpointCodecError)
        }
        // Truncated data section: the safetensors reader's error, naming the artifact.
        let truncated = try #require(refusal(bytes.dropLast(4)) as? ModelError)
        guard case .malformedCheckpoint(let file, _, let reason) = truncated else {
            Issue.record("\(truncated)")
            return
        }
        #expect(file == "policy v9" && reason.contains("outside the data section"), "\(truncated)")
        // A config the tensors do not fit: the loader's tensor check, naming the missing tensors.
        var more = weights.config
        more.numHiddenLayers += 1
        let mismatch = try #require(refusal(try Self.artifact(weights, config: more)) as? ModelError)
        guard case .tensorMismatch(let mismatchFile, let why) = mismatch else {
            Issue.record("\(mismatch)")
            return
        }
        #expect(mismatchFile == "policy v9" && why.contains("missing tensors: model.layers.1."), "\(mismatch)")
        // A config that is not one.
        let broken = try SafeTensorsWriter.encode([], metadata: [CheckpointCodec.configKey: "{\"hidden_size\": 8}"])
        let invalid = refusal(broken).map { "\($0)" } ?? "no error"
        #expect(invalid.hasPrefix("invalid model config: policy v9 config:"), "\(invalid)")
    }

    /// A bfloat16 checkpoint reaches workers that compute in float32: it passes the broker's
    /// header check and decodes to the F32 values of its bf16 numbers (each weight rounded to
    /// nearest even and widened), never its bytes read as F32.
    @Test func aBFloat16CheckpointIsConvertedToFloat32OnLoad() throws {
        let weights = BuiltinModels.randomWeights(config: BuiltinModels.draftConfig(), seed: 8)
        let bytes = try CheckpointCodec.encode(weights, dtype: .bf16)
        #expect(bytes.count < (try CheckpointCodec.encode(weights)).count * 6 / 10)
        try CheckpointCodec.validate(bytes, name: "policy v2")
        let decoded = try CheckpointCodec.decode(bytes, name: "policy v2")
        #expect(decoded.config == weights.config)
        func bf16(_ x: Float) -> Float {
            let bits = x.bitPattern
            return Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
        }
        let expected = weights.namedTensors.map { ($0.name, $0.buffer.array.map(bf16)) }
        let got = decoded.namedTensors.map { ($0.name, $0.buffer.array) }
        #expect(got.map(\.0) == expected.map(\.0))
        for ((name, a), (_, b)) in zip(got, expected) { #expect(a == b, "\(name)") }
        // Through the worker's decode queue, as a policy.
        let queue = WeightsDecodeQueue()
        queue.submit(bytes, kind: .policy, version: 2, assembledAt: 0)
        queue.waitUntilIdle()
        guard case .policy(let viaQueue) = try #require(try queue.takeFinished().first?.weights.get()) else {
            Issue.record("a policy artifact decoded as a draft")
            return
        }
        #expect(Self.sameTensors(viaQueue, decoded))
    }

    /// `submit` returns while the decode runs on another thread; results come back in order,
    /// refused artifacts as failures.
    @Test func decodingRunsOffTheCallersThread() throws {
        var config = BuiltinModels.policyConfig()
        config.vocabSize = 4096
        config.hiddenSize = 256
        config.intermediateSize = 512
        let weights = BuiltinModels.randomWeights(config: config, seed: 7)
        let bytes = try CheckpointCodec.encode(weights)  // ~10 MB
        // The decoding queue is held back, so that the submits can only have returned without
        // decoding (waiting for a decode of milliseconds instead was flaky under load).
        let decoder = DispatchQueue(label: "test.weights-decode")
        decoder.suspend()
        let queue = WeightsDecodeQueue(queue: decoder)
        queue.submit(bytes, kind: .policy, version: 3, assembledAt: 1.5)
        queue.submit(bytes.dropLast(4), kind: .draft, version: 2, assembledAt: 2.5)
        #expect(queue.decoding == 2)
        #expect(queue.takeFinished().isEmpty)
        decoder.resume()
        queue.waitUntilIdle()
        #expect(queue.decoding == 0)
        let done = queue.takeFinished()
        #expect(done.map(\.kind) == [.policy, .draft] && done.map(\.version) == [3, 2])
        #expect(done.first?.assembledAt == 1.5 && (done.first?.decodeSeconds ?? -1) >= 0)
        guard case .policy(let decoded) = try #require(try done.first?.weights.get()) else {
            Issue.record("a policy artifact decoded as a draft")
            return
        }
        #expect(Self.sameTensors(decoded, weights))
        #expect(throws: ModelError.self) { try done.last?.weights.get() }
        #expect(queue.takeFinished().isEmpty)
    }
}
