import Foundation
import RollspecBus
import RollspecModel
import RollspecTesting
@testable import RollspecClient
@testable import RollspecRoles
import Testing

/// Draft artifacts of either kind on the bus: what the codec writes and reads back, and what a
/// worker refuses (by reason) when a draft does not fit its policy.
@Suite struct DraftArtifactTests {
    static let policy = BuiltinModels.randomWeights(config: BuiltinModels.policyConfig(), seed: 5)

    static func metadata(_ data: Data) throws -> [String: Any] {
        let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<8 + length)) as? [String: Any]
        return try #require(header?["__metadata__"] as? [String: Any])
    }

    @Test func aFeatureDraftRoundTripsAsItsOwnTensors() throws {
        let draft = TinyModels.randomFeatureDraft(target: Self.policy, seed: 9)
        let bytes = try CheckpointCodec.encode(.eagle(draft.ownTensors))
        #expect(try Self.metadata(bytes)[CheckpointCodec.draftKindKey] as? String == "eagle")
        guard case .eagle(let own) = try CheckpointCodec.decodeDraft(bytes, name: "draft v2") else {
            Issue.record("decoded as a token draft")
            return
        }
        // Its own tensors only: no embedding or head travels.
        #expect(Set(own.tensors.keys) == Set(FeatureDraftWeights.expectedTensors(for: draft.config).map(\.name)))
        #expect(!own.tensors.keys.contains("model.embed_tokens.weight"))
        #expect(own.config == draft.config)
        for (name, buffer) in draft.namedTensors { #expect(own.tensors[name]?.array == buffer.array, "\(name)") }
        // Bound to the policy, it drafts exactly as the original.
        let bound = try own.bound(to: Self.policy)
        #expect(bound.body.embedding === Self.policy.embedding)
        let a = FeatureDraftModel(weights: draft), b = FeatureDraftModel(weights: bound)
        let features = (0..<3 * 32).map { Float($0 % 7) / 7 - 0.5 }
        let la = a.forward(tokens: [4, 9, 2], features: features, cache: a.makeCache()).rowArray(0)
        let lb = b.forward(tokens: [4, 9, 2], features: features, cache: b.makeCache()).rowArray(0)
        #expect(la == lb)
        // The same bytes as a saved draft directory read back.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rollspec-eagle-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try draft.save(to: dir)
        let fromDirectory = try FeatureDraftTensors.load(directory: dir)
        #expect(fromDirectory.config == draft.config, "\(fromDirectory.config) vs \(draft.config)")
        for (name, buffer) in draft.namedTensors { #expect(fromDirectory.tensors[name]?.array == buffer.array, "\(name)") }
    }

    @Test func tokenDraftsSayTheirKindAndOldArtifactsStillDecode() throws {
        let draft = BuiltinModels.randomWeights(config: BuiltinModels.draftConfig(), seed: 6)
        let labelled = try CheckpointCodec.encode(.tokens(draft))
        #expect(try Self.metadata(labelled)[CheckpointCodec.draftKindKey] as? String == "tokens")
        // Written before drafts had kinds: no key, a token draft.
        let old = try CheckpointCodec.encode(draft)
        #expect(try Self.metadata(old)[CheckpointCodec.draftKindKey] == nil)
        for bytes in [labelled, old] {
            guard case .tokens(let decoded) = try CheckpointCodec.decodeDraft(bytes) else {
                Issue.record("decoded as a feature draft")
                continue
            }
            #expect(CheckpointDecodeTests.sameTensors(decoded, draft))
        }
    }

    /// The reason a worker files a draft refusal under, for each way a draft can be forged.
    static func refusal(_ artifact: () throws -> Data) -> RejectionReason? {
        do {
            let draft = try CheckpointCodec.decodeDraft(try artifact())
            _ = try ServedDraft(draft, policy: policy)
            return nil
        } catch {
            return RejectionReason(draftRefusal: error)
        }
    }

    @Test func forgedDraftsAreRefusedByReason() throws {
        var wide = Self.policy.config
        wide.hiddenSize = 48
        wide.headDim = 12
        let widePolicy = TinyModels.randomWeights(config: wide, seed: 1)
        var bigger = Self.policy.config
        bigger.vocabSize = 300
        let otherVocabulary = TinyModels.randomWeights(config: bigger, seed: 2)
        var untied = Self.policy.config
        untied.tieWordEmbeddings = false
        let untiedPolicy = TinyModels.randomWeights(config: untied, seed: 3)
        let good = TinyModels.randomFeatureDraft(target: Self.policy)

        #expect(Self.refusal { try CheckpointCodec.encode(.eagle(good.ownTensors)) } == nil)
        #expect(Self.refusal { try CheckpointCodec.encode(.eagle(TinyModels.randomFeatureDraft(target: widePolicy).ownTensors)) }
                == .draftWidthMismatch)
        #expect(Self.refusal { try CheckpointCodec.encode(.eagle(TinyModels.randomFeatureDraft(target: otherVocabulary).ownTensors)) }
                == .draftVocabMismatch)
        #expect(Self.refusal { try CheckpointCodec.encode(.eagle(TinyModels.randomFeatureDraft(target: untiedPolicy).ownTensors)) }
                == .draftHeadMismatch)
        #expect(Self.refusal { try CheckpointCodec.encode(.tokens(otherVocabulary)) } == .draftVocabMismatch)
        // A kind nobody knows, and a feature draft's tensors labelled as a token draft.
        let config = String(decoding: try JSONEncoder().encode(good.config), as: UTF8.self)
        let tensors = FeatureDraftWeights.expectedTensors(for: good.config).map { e in
            (name: e.name, shape: e.shape, data: good.namedTensors.first { $0.name == e.name }!.buffer)
        }
        #expect(Self.refusal {
            try SafeTensorsWriter.encode(tensors, metadata: [CheckpointCodec.configKey: config, CheckpointCodec.draftKindKey: "medusa"])
        } == .draftKindMismatch)
        #expect(Self.refusal {
            try SafeTensorsWriter.encode(tensors, metadata: [CheckpointCodec.configKey: config, CheckpointCodec.draftKindKey: "tokens"])
        } == .draftKindMismatch)
        #expect(Self.refusal { try SafeTensorsWriter.encode(tensors, metadata: [CheckpointCodec.configKey: config]) }
                == .draftKindMismatch)
        // The messages name the mismatch.
        #expect("\(DraftMismatch.hiddenWidth(draft: 48, policy: 32))".contains("48 wide, the policy's hidden width is 32"))
        #expect("\(CheckpointCodecError.unknownDraftKind("medusa"))".contains("\"medusa\""))
    }
}
