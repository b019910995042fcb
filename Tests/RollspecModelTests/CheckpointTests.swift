import Foundation
import Testing
import RollspecKernels
@testable import RollspecModel

/// The little-endian bytes of `v`.
private func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

/// Checkpoint formats against fixtures written by the reference libraries (safetensors,
/// gguf-py; see `Resources/checkpoints/make_fixtures.py`), plus one malformed file per
/// rejection rule, built here from hand-laid bytes.
@Suite struct CheckpointTests {
    // MARK: Fixtures and helpers

    static let fixtures: URL = Bundle.module.url(forResource: "checkpoints", withExtension: nil, subdirectory: "Resources")!

    static func fixture(_ name: String) -> URL { fixtures.appendingPathComponent(name) }

    /// A fresh empty directory under the system temporary directory.
    /// One folder per test process for every scratch folder, removed when the process exits.
    static let scratchRoot: URL = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("rollspec-ckpt-tests-\(getpid())")
        atexit { try? FileManager.default.removeItem(at: CheckpointTests.scratchRoot) }
        return root
    }()

    static func scratch() throws -> URL {
        let url = scratchRoot.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func sameTensors(_ a: LlamaWeights, _ b: LlamaWeights) -> Bool {
        let x = a.namedTensors, y = b.namedTensors
        return x.map(\.name) == y.map(\.name) && zip(x, y).allSatisfy { $0.buffer.array == $1.buffer.array }
    }

    /// Runs `body`, requires a `ModelError`, and checks that its message holds every word.
    static func expectError(_ words: [String], _ body: () throws -> Void,
                            sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("expected an error mentioning \(words)", sourceLocation: sourceLocation)
        } catch let error as ModelError {
            for word in words {
                #expect(error.description.contains(word), "'\(word)' not in: \(error.description)",
                        sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("not a ModelError: \(error)", sourceLocation: sourceLocation)
        }
    }

    /// A safetensors file: header length, `header` padded to 8 bytes, `data`.
    static func safetensors(_ header: String, _ data: [UInt8]) -> [UInt8] {
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(32) }
        return le(UInt64(h.count)) + h + data
    }


    /// A malformed file and the words its rejection must mention (besides the file name).
    struct Malformed: Sendable, CustomTestStringConvertible {
        let label: String
        let bytes: [UInt8]
        let words: [String]
        var testDescription: String { label }
    }

    // MARK: SafeTensors

    static let bad = "model.bad_tensor"
    static func entry(_ fields: String) -> String { "{\"\(bad)\":{\(fields)}}" }

    static let malformedSafeTensors: [Malformed] = [
        Malformed(label: "short-file", bytes: [1, 2, 3], words: ["shorter than the 8-byte"]),
        Malformed(label: "absurd-header", bytes: le(UInt64(1) << 40) + [0, 0], words: ["header length", "absurd"]),
        Malformed(label: "header-past-end", bytes: le(UInt64(64)) + Array("{}".utf8), words: ["header length 64", "larger than"]),
        Malformed(label: "not-json", bytes: safetensors("{not json", []), words: ["not valid JSON"]),
        Malformed(label: "not-object", bytes: safetensors("[1,2]", []), words: ["not a JSON object"]),
        Malformed(label: "entry-not-object", bytes: safetensors("{\"\(bad)\":5}", []), words: [bad, "not an object"]),
        Malformed(label: "bad-metadata", bytes: safetensors("{\"__metadata__\":{\"format\":1}}", []), words: ["__metadata__", "format"]),
        Malformed(label: "missing-dtype", bytes: safetensors(entry("\"shape\":[1],\"data_offsets\":[0,4]"), [0, 0, 0, 0]), words: [bad, "missing 'dtype'"]),
        Malformed(label: "missing-shape", bytes: safetensors(entry("\"dtype\":\"F32\",\"data_offsets\":[0,4]"), [0, 0, 0, 0]), words: [bad, "missing 'shape'"]),
        Malformed(label: "missing-offsets", bytes: safetensors(entry("\"dtype\":\"F32\",\"shape\":[1]"), [0, 0, 0, 0]), words: [bad, "missing 'data_offsets'"]),
        Malformed(label: "dtype-not-string", bytes: safetensors(entry("\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]"), [0, 0, 0, 0]), words: [bad, "dtype is a number"]),
        Malformed(label: "unknown-dtype", bytes: safetensors(entry("\"dtype\":\"F12\",\"shape\":[1],\"data_offsets\":[0,4]"), [0, 0, 0, 0]), words: [bad, "unknown dtype 'F12'"]),
        Malformed(label: "shape-not-array", bytes: safetensors(entry("\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]"), [0, 0, 0, 0]), words: [bad, "shape is a string"]),
        Malformed(label: "shape-fraction", bytes: safetensors(entry("\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]"), [0, 0, 0, 0]), words: [bad, "not an integer"]),
        Malformed(label: "negative-dim", bytes: safetensors(entry("\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]"), [0, 0, 0, 0]), words: [bad, "negative dimension"]),
        Malformed(label: "shape-overflow", bytes: safetensors(entry("\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,4]"), [0, 0, 0, 0]), words: [bad, "too many elements"]),
        Malformed(label: "offsets-one", bytes: safetensors(entry("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]"), [0, 0, 0, 0]), words: [bad, "two integers"]),
        Malformed(label: "offsets-negative", bytes: safetensors(entry("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]"), [0, 0, 0, 0]), words: [bad, "non-negative"]),
        Malformed(label: "offsets-reversed", bytes: safetensors(entry("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]"), [0, 0, 0, 0]), words: [bad, "end before they begin"]),
        Malformed(label: "offsets-outside", bytes: safetensors(entry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]"), [0, 0, 0, 0]), words: [bad, "outside the data section"]),
        Malformed(label: "length-mismatch", bytes: safetensors(entry("\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]"), [0, 0, 0, 0]), words: [bad, "byte length 4", "8 bytes"]),
        Malformed(label: "gap-at-start", bytes: safetensors(entry("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]"), Array(repeating: 0, count: 8)), words: [bad, "not contiguous (gap)"]),
        Malformed(label: "gap-between",
                  bytes: safetensors("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"\(bad)\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", Array(repeating: 0, count: 12)),
                  words: [bad, "not contiguous (gap)", "'a' ends at 4"]),
        Malformed(label: "overlap",
                  bytes: safetensors("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"\(bad)\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", Array(repeating: 0, count: 8)),
                  words: [bad, "not contiguous (overlap)"]),
        Malformed(label: "trailing-bytes", bytes: safetensors(entry("\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]"), Array(repeating: 0, count: 8)), words: ["4 trailing bytes"]),
    ]

    @Test(arguments: malformedSafeTensors)
    func safeTensorsRejects(_ c: Malformed) throws {
        let url = try Self.scratch().appendingPathComponent("\(c.label).safetensors")
        try Data(c.bytes).write(to: url)
        Self.expectError([url.lastPathComponent] + c.words) { _ = try SafeTensorsFile(url: url) }
    }

    @Test func safeTensorsConvertsEachDtype() throws {
        // 1.0, -2.0 and 0.5 in each encoding, laid out by hand.
        let f32 = le(Float(1).bitPattern) + le(Float(-2).bitPattern) + le(Float(0.5).bitPattern)
        let f16: [UInt8] = le(UInt16(0x3C00)) + le(UInt16(0xC000)) + le(UInt16(0x3800))
        let bf16: [UInt8] = le(UInt16(0x3F80)) + le(UInt16(0xC000)) + le(UInt16(0x3F00))
        let header = """
            {"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},\
            "b":{"dtype":"F16","shape":[1,3],"data_offsets":[12,18]},"c":{"dtype":"BF16","shape":[3,1],"data_offsets":[18,24]},\
            "empty":{"dtype":"F32","shape":[0,5],"data_offsets":[24,24]}}
            """
        let url = try Self.scratch().appendingPathComponent("dtypes.safetensors")
        try Data(Self.safetensors(header, f32 + f16 + bf16)).write(to: url)
        let file = try SafeTensorsFile(url: url)
        #expect(file.metadata == ["format": "pt"])
        #expect(file.tensorNames == ["a", "b", "c", "empty"])
        for (name, shape) in [("a", [3]), ("b", [1, 3]), ("c", [3, 1])] {
            let t = try file.tensor(named: name)
            #expect(t.shape == shape)
            #expect(t.data.array == [1, -2, 0.5])
        }
        #expect(try file.tensor(named: "empty").shape == [0, 5])
        Self.expectError(["dtypes.safetensors", "nope", "no such tensor"]) { _ = try file.tensor(named: "nope") }
    }

    @Test func safeTensorsFormatsAgree() throws {
        // Written by three writers (safetensors F32, hand-laid BF16 shards, safetensors F16
        // tied with a redundant head); the values are exact in all three.
        let f32 = try ModelLoader.loadWeights(path: Self.fixture("tiny-f32").path)
        let bf16 = try ModelLoader.loadWeights(path: Self.fixture("tiny-bf16-sharded").path)
        #expect(f32.config.numHiddenLayers == 1 && !f32.config.tieWordEmbeddings)
        #expect(Self.sameTensors(f32, bf16))
        let tied = try ModelLoader.loadWeights(path: Self.fixture("tiny-f16-tied").path)
        #expect(tied.config.tieWordEmbeddings)
        #expect(tied.lmHead === tied.embedding)
        let untiedNames = f32.namedTensors.filter { $0.name != "lm_head.weight" }
        #expect(zip(untiedNames, tied.namedTensors).allSatisfy { $0.name == $1.name && $0.buffer.array == $1.buffer.array })
    }

    // MARK: Sharded checkpoints

    /// A copy of the BF16 sharded fixture whose index (or a shard) `edit` then changes.
    static func shardedCopy() throws -> URL {
        let dir = try scratch().appendingPathComponent("sharded")
        try FileManager.default.copyItem(at: fixture("tiny-bf16-sharded"), to: dir)
        return dir
    }

    static func writeIndex(_ dir: URL, _ json: String) throws {
        try Data(json.utf8).write(to: dir.appendingPathComponent(SafeTensorsCheckpoint.indexFileName))
    }

    static func weightMap(_ dir: URL) throws -> [String: String] {
        let data = try Data(contentsOf: dir.appendingPathComponent(SafeTensorsCheckpoint.indexFileName))
        let root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return root["weight_map"] as! [String: String]
    }

    static func indexJSON(_ map: [String: String]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: ["weight_map": map], options: [.sortedKeys]), as: UTF8.self)
    }

    @Test func shardedIndexRejections() throws {
        let shard1 = "model-00001-of-00002.safetensors", shard2 = "model-00002-of-00002.safetensors"
        let index = SafeTensorsCheckpoint.indexFileName

        var dir = try Self.shardedCopy()
        try Self.writeIndex(dir, "{\"weight_map\": ")
        Self.expectError([index, "not valid JSON"]) { _ = try SafeTensorsCheckpoint(directory: dir) }

        try Self.writeIndex(dir, "{\"metadata\": {}}")
        Self.expectError([index, "no 'weight_map'"]) { _ = try SafeTensorsCheckpoint(directory: dir) }

        try Self.writeIndex(dir, "{\"weight_map\": {\"a\": 3}}")
        Self.expectError([index, "'a'", "not a shard file name"]) { _ = try SafeTensorsCheckpoint(directory: dir) }

        try Self.writeIndex(dir, "{\"weight_map\": {\"a\": \"../x.safetensors\"}}")
        Self.expectError([index, "not a plain file name"]) { _ = try SafeTensorsCheckpoint(directory: dir) }

        dir = try Self.shardedCopy()
        var map = try Self.weightMap(dir)
        map["model.norm.weight"] = "model-00003-of-00002.safetensors"
        try Self.writeIndex(dir, try Self.indexJSON(map))
        Self.expectError(["model-00003-of-00002.safetensors", "not found"]) { _ = try SafeTensorsCheckpoint(directory: dir) }

        // A tensor the index places in the other shard.
        dir = try Self.shardedCopy()
        map = try Self.weightMap(dir)
        let moved = map.keys.sorted().first { map[$0] == shard2 }!
        map[moved] = shard1
        try Self.writeIndex(dir, try Self.indexJSON(map))
        Self.expectError([shard2, moved, "the index places it in \(shard1)"]) { _ = try SafeTensorsCheckpoint(directory: dir) }

        // A tensor the index lists but no shard holds.
        dir = try Self.shardedCopy()
        map = try Self.weightMap(dir)
        map["model.ghost.weight"] = shard1
        try Self.writeIndex(dir, try Self.indexJSON(map))
        Self.expectError([shard1, "model.ghost.weight", "is not in this shard"]) { _ = try SafeTensorsCheckpoint(directory: dir) }

        // The same tensor in both shards: rewrite shard 2 with an extra copy of a shard-1 tensor.
        dir = try Self.shardedCopy()
        let shard1File = try SafeTensorsFile(url: dir.appendingPathComponent(shard1))
        let shard2File = try SafeTensorsFile(url: dir.appendingPathComponent(shard2))
        let duplicate = shard1File.tensorNames[0]
        var tensors = try shard2File.tensorNames.map { name in
            let t = try shard2File.tensor(named: name)
            return (name: name, shape: t.shape, data: t.data)
        }
        let extra = try shard1File.tensor(named: duplicate)
        tensors.append((name: duplicate, shape: extra.shape, data: extra.data))
        try SafeTensorsWriter.write(tensors, to: dir.appendingPathComponent(shard2), dtype: .bf16)
        Self.expectError([shard2, duplicate, "appears in two shards"]) { _ = try SafeTensorsCheckpoint(directory: dir) }

        let empty = try Self.scratch()
        Self.expectError(["model.safetensors"]) { _ = try SafeTensorsCheckpoint(directory: empty) }
    }

    // MARK: Writer

    @Test(arguments: [SafeTensorsFile.DType.f32, .f16, .bf16])
    func writerRoundTrips(_ dtype: SafeTensorsFile.DType) throws {
        let original = try ModelLoader.loadWeights(path: Self.fixture("tiny-f32").path)
        let dir = try Self.scratch()
        try original.save(to: dir, dtype: dtype)
        let reloaded = try ModelLoader.loadWeights(path: dir.path)
        #expect(reloaded.config == original.config)
        #expect(Self.sameTensors(original, reloaded))

        let bytes = try Data(contentsOf: dir.appendingPathComponent("model.safetensors"))
        let headerLength = bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(headerLength % 8 == 0)
        let header = String(decoding: bytes[8..<(8 + Int(headerLength))], as: UTF8.self)
        #expect(header.hasPrefix("{\"__metadata__\":{\"format\":\"pt\"},\"lm_head.weight\":{\"data_offsets\":[0,"))
        #expect(header.contains("\"dtype\":\"\(dtype.rawValue)\""))
    }

    @Test func writerRejectsBadInput() throws {
        let url = try Self.scratch().appendingPathComponent("x.safetensors")
        Self.expectError(["'w'", "shape [3]", "2 values"]) {
            try SafeTensorsWriter.write([(name: "w", shape: [3], data: FloatBuffer([1, 2]))], to: url)
        }
        Self.expectError(["duplicate", "'w'"]) {
            try SafeTensorsWriter.write([(name: "w", shape: [1], data: FloatBuffer([1])),
                                         (name: "w", shape: [1], data: FloatBuffer([2]))], to: url)
        }
        #expect(SafeTensorsWriter.jsonString("a\"b\\c\u{1}") == "\"a\\\"b\\\\c\\u0001\"")
    }

    /// The writer's BF16 is the kernels' rounding (nearest, ties to even; NaN stays NaN), read
    /// back from the bytes it writes.
    @Test func bf16RoundsToNearestEven() throws {
        let values: [UInt32] = [0x3F80_8000, 0x3F81_8000, 0x3F80_8001, 0x7F80_0000, 0x7FC0_0000]
        let bytes = try SafeTensorsWriter.encode([(name: "w", shape: [values.count],
                                                   data: FloatBuffer(values.map { Float(bitPattern: $0) }))], dtype: .bf16)
        let written = bytes.suffix(2 * values.count).withUnsafeBytes { raw in
            (0..<values.count).map { raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self) }
        }
        #expect(Array(written.prefix(4)) == [0x3F80, 0x3F82, 0x3F81, 0x7F80])  // tie → even twice
        #expect(HalfPrecision.bf16ToFloat(written[4]).isNaN)
    }

    /// Encoding over kept bytes writes where they are, and gives the bytes a fresh encode gives,
    /// in every dtype; bytes still shared (a slice kept alive, as a publisher's queued chunks)
    /// are left as they were, and the new file goes to fresh storage instead.
    @Test(arguments: [SafeTensorsFile.DType.f32, .f16, .bf16])
    func encodingOverKeptBytesWritesInPlaceAndSparesSharedOnes(dtype: SafeTensorsFile.DType) throws {
        func tensors(_ seed: Float) -> [(name: String, shape: [Int], data: FloatBuffer)] {
            [(name: "b", shape: [3, 5], data: FloatBuffer((0..<15).map { seed * Float($0) - 0.37 })),
             (name: "a", shape: [7], data: FloatBuffer((0..<7).map { seed / Float($0 + 1) }))]
        }
        func address(_ d: Data) -> UnsafeRawPointer? { d.withUnsafeBytes { $0.baseAddress } }
        var out = Data()
        try SafeTensorsWriter.encode(tensors(1.5), dtype: dtype, into: &out)
        let first = try SafeTensorsWriter.encode(tensors(1.5), dtype: dtype)
        #expect(out == first)
        let storage = address(out)
        try SafeTensorsWriter.encode(tensors(-2.25), dtype: dtype, into: &out)
        #expect(out == (try SafeTensorsWriter.encode(tensors(-2.25), dtype: dtype)))
        #expect(address(out) == storage)

        let kept = out[8..<out.count]
        try SafeTensorsWriter.encode(tensors(1.5), dtype: dtype, into: &out)
        #expect(out == first)
        #expect(kept == (try SafeTensorsWriter.encode(tensors(-2.25), dtype: dtype)).dropFirst(8))
        #expect(address(out) != storage)
    }

    // MARK: GGUF

    /// A GGUF file laid out by hand, so that each malformed case changes one field.
    struct GGUFBytes {
        var magic = Array("GGUF".utf8)
        var version: UInt32 = 3
        var tensorCount: UInt64?
        var kvCount: UInt64?
        var kvs: [[UInt8]] = []
        var infos: [[UInt8]] = [GGUFBytes.info(bad, dims: [8], type: 0, offset: 0)]
        var data: [UInt8] = Array(repeating: 0, count: 32)
        /// Cut the file to this many bytes.
        var truncate: Int?

        static func string(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }
        static func kv(_ key: String, type: UInt32, _ payload: [UInt8]) -> [UInt8] { string(key) + le(type) + payload }
        static func info(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64) -> [UInt8] {
            string(name) + le(UInt32(dims.count)) + dims.flatMap { le($0) } + le(type) + le(offset)
        }

        var bytes: [UInt8] {
            var out = magic + le(version) + le(tensorCount ?? UInt64(infos.count)) + le(kvCount ?? UInt64(kvs.count))
            out += kvs.flatMap { $0 } + infos.flatMap { $0 }
            while out.count % 32 != 0 { out.append(0) }
            out += data
            return truncate.map { Array(out.prefix($0)) } ?? out
        }

        func with(_ edit: (inout GGUFBytes) -> Void) -> GGUFBytes { var copy = self; edit(&copy); return copy }
    }

    static let malformedGGUF: [Malformed] = {
        let base = GGUFBytes()
        var nested: [UInt8] = []
        for _ in 0..<20 { nested += le(UInt32(9)) + le(UInt64(1)) }
        nested += le(UInt32(4)) + le(UInt64(0))
        let cases: [(String, GGUFBytes, [String])] = [
            ("bad-magic", base.with { $0.magic = Array("GGUX".utf8) }, ["bad magic"]),
            ("tiny-file", base.with { $0.truncate = 3 }, ["bad magic"]),
            ("version-1", base.with { $0.version = 1 }, ["unsupported GGUF version 1"]),
            ("version-4", base.with { $0.version = 4 }, ["unsupported GGUF version 4"]),
            ("absurd-tensor-count", base.with { $0.tensorCount = 1 << 40 }, ["tensor count 1099511627776", "absurd"]),
            ("absurd-kv-count", base.with { $0.kvCount = 1 << 40 }, ["metadata count 1099511627776", "absurd"]),
            ("string-past-end", base.with { $0.kvs = [le(UInt64(1000)) + Array("ab".utf8)]; $0.infos = []; $0.data = [] },
             ["metadata key 0", "runs past the end"]),
            ("array-past-end", base.with { $0.kvs = [GGUFBytes.kv("big.array", type: 9, le(UInt32(4)) + le(UInt64(1_000_000)))] },
             ["big.array", "1000000 elements runs past the end"]),
            ("unknown-value-type", base.with { $0.kvs = [GGUFBytes.kv("odd.key", type: 13, [0])] }, ["odd.key", "unknown value type 13"]),
            ("unknown-element-type", base.with { $0.kvs = [GGUFBytes.kv("odd.key", type: 9, le(UInt32(42)) + le(UInt64(0)))] },
             ["odd.key", "unknown value type 42"]),
            ("nested-arrays", base.with { $0.kvs = [GGUFBytes.kv("deep.key", type: 9, nested)] }, ["deep.key", "too deeply"]),
            ("duplicate-key", base.with { $0.kvs = Array(repeating: GGUFBytes.kv("twice.key", type: 4, le(UInt32(1))), count: 2) },
             ["twice.key", "appears twice"]),
            ("truncated-infos", base.with { $0.truncate = 24 + 8 + bad.utf8.count + 6 }, ["tensor '\(bad)'", "runs past the end"]),
            ("bad-alignment", base.with { $0.kvs = [GGUFBytes.kv("general.alignment", type: 4, le(UInt32(3)))] },
             ["general.alignment", "power of two"]),
            ("too-many-dims", base.with { $0.infos = [GGUFBytes.info(bad, dims: [1, 1, 1, 1, 8], type: 0, offset: 0)] },
             [bad, "5 dimensions"]),
            ("unknown-type", base.with { $0.infos = [GGUFBytes.info(bad, dims: [8], type: 99, offset: 0)] }, [bad, "unknown ggml type 99"]),
            ("block-multiple", base.with { $0.infos = [GGUFBytes.info(bad, dims: [16, 2], type: 8, offset: 0)] },
             [bad, "ne[0] = 16", "Q8_0 block size 32"]),
            ("data-outside-file", base.with { $0.infos = [GGUFBytes.info(bad, dims: [64], type: 0, offset: 0)] },
             [bad, "outside the file"]),
            ("offset-outside-file", base.with { $0.infos = [GGUFBytes.info(bad, dims: [8], type: 0, offset: 1 << 62)] },
             [bad, "outside the file"]),
            ("misaligned", base.with { $0.infos = [GGUFBytes.info(bad, dims: [1], type: 0, offset: 4)] },
             [bad, "offset 4 is not aligned to 32"]),
            ("overlap", base.with { $0.data = Array(repeating: 0, count: 64)
                $0.infos = [GGUFBytes.info("first", dims: [16], type: 0, offset: 0), GGUFBytes.info(bad, dims: [8], type: 0, offset: 32)] },
             [bad, "overlaps tensor 'first'"]),
            ("duplicate-tensor", base.with { $0.infos = [GGUFBytes.info(bad, dims: [1], type: 0, offset: 0), GGUFBytes.info(bad, dims: [1], type: 0, offset: 0)] },
             [bad, "appears twice"]),
        ]
        return cases.map { Malformed(label: $0.0, bytes: $0.1.bytes, words: $0.2) }
    }()

    @Test(arguments: malformedGGUF)
    func ggufRejects(_ c: Malformed) throws {
        let url = try Self.scratch().appendingPathComponent("\(c.label).gguf")
        try Data(c.bytes).write(to: url)
        Self.expectError([url.lastPathComponent] + c.words) { _ = try GGUFFile(url: url) }
    }

    /// A llama header whose sizes are forged: each is refused by name before the loader derives
    /// anything from it or allocates for it (a 0xFFFFFFFF block count once allocated until the
    /// process aborted; a 4e9 width was reported as partial rotary embeddings).
    @Test(arguments: [
        ("block_count", UInt32.max, "4294967295"), ("embedding_length", UInt32(4_000_000_000), "4000000000"),
        ("feed_forward_length", UInt32.max, "4294967295"), ("attention.head_count", UInt32(1 << 20), "1048576"),
        ("vocab_size", UInt32(1 << 30), "1073741824"),
    ])
    func ggufLlamaSizesAreBoundedBeforeUse(key: String, value: UInt32, shown: String) throws {
        var sizes: [String: UInt32] = ["block_count": 2, "embedding_length": 64, "feed_forward_length": 128,
                                       "attention.head_count": 4, "vocab_size": 32]
        sizes[key] = value
        let kvs = [GGUFBytes.kv("general.architecture", type: 8, GGUFBytes.string("llama"))]
            + sizes.sorted { $0.key < $1.key }.map { GGUFBytes.kv("llama.\($0.key)", type: 4, le($0.value)) }
        let url = try Self.scratch().appendingPathComponent("forged-\(key).gguf")
        try Data(GGUFBytes().with { $0.kvs = kvs }.bytes).write(to: url)
        let file = try GGUFFile(url: url)
        Self.expectError([url.lastPathComponent, "llama.\(key)", shown]) { _ = try LlamaConfig(gguf: file) }
        // The same header with sane sizes reads.
        sizes[key] = ["block_count": 2, "embedding_length": 64, "feed_forward_length": 128, "attention.head_count": 4, "vocab_size": 32][key]
        let fine = try Self.scratch().appendingPathComponent("fine-\(key).gguf")
        let saneKVs = [GGUFBytes.kv("general.architecture", type: 8, GGUFBytes.string("llama"))]
            + sizes.sorted { $0.key < $1.key }.map { GGUFBytes.kv("llama.\($0.key)", type: 4, le($0.value)) }
        try Data(GGUFBytes().with { $0.kvs = saneKVs }.bytes).write(to: fine)
        #expect(try LlamaConfig(gguf: GGUFFile(url: fine)).numHiddenLayers == 2)
    }

    @Test func configSizesPastTheirMaximaAreRefused() throws {
        let json = #"{"vocab_size": 32, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 5000, "num_attention_heads": 4}"#
        Self.expectError(["num_hidden_layers", "5000", "1024"]) { _ = try JSONDecoder().decode(LlamaConfig.self, from: Data(json.utf8)) }
    }

    @Test func ggufBuilderBaseIsValid() throws {
        let url = try Self.scratch().appendingPathComponent("base.gguf")
        try Data(GGUFBytes().bytes).write(to: url)
        let file = try GGUFFile(url: url)
        #expect(file.tensors.map(\.name) == [Self.bad])
        #expect(try file.tensor(named: Self.bad).data.array == Array(repeating: 0, count: 8))
    }

    @Test func ggufUnsupportedTypeNamesTensorAndType() throws {
        let url = try Self.scratch().appendingPathComponent("q6k.gguf")
        let bytes = GGUFBytes().with {
            $0.infos = [GGUFBytes.info("blk.0.ffn_down.weight", dims: [256], type: 14, offset: 0)]
            $0.data = Array(repeating: 0, count: 224)
        }.bytes
        try Data(bytes).write(to: url)
        let file = try GGUFFile(url: url)
        Self.expectError(["q6k.gguf", "blk.0.ffn_down.weight", "Q6_K"]) { _ = try file.tensor(named: "blk.0.ffn_down.weight") }
    }

    struct ExpectedTensor: Decodable {
        let type: String
        let shape: [Int]
        let values: [Double]
    }

    @Test func ggufDequantizesLikeGGUFPy() throws {
        let file = try GGUFFile(url: Self.fixture("quants.gguf"))
        #expect(file.alignment == 64)
        #expect(file.dataOffset % 64 == 0)
        let expected = try JSONDecoder().decode([String: ExpectedTensor].self,
                                                from: Data(contentsOf: Self.fixture("quants.json")))
        #expect(Set(expected.keys) == Set(file.tensors.map(\.name)))
        for (name, want) in expected {
            #expect(file.info(named: name)?.type.description == want.type)
            let got = try file.tensor(named: name)
            #expect(got.shape == want.shape, "\(name)")
            #expect(got.data.array == want.values.map { Float($0) }, "\(name)")
        }
    }

    @Test func ggufMetadataOfEveryType() throws {
        let meta = try ModelLoader.ggufMetadata(path: Self.fixture("tiny.gguf").path)
        #expect(meta["general.architecture"] == .string("llama"))
        #expect(meta["test.u8"] == .uint(200))
        #expect(meta["test.i8"] == .int(-100))
        #expect(meta["test.u16"] == .uint(60000))
        #expect(meta["test.i16"] == .int(-30000))
        #expect(meta["test.u32"] == .uint(4_000_000_000))
        #expect(meta["test.i32"] == .int(-2_000_000_000))
        #expect(meta["test.f32"] == .float(0.25))
        #expect(meta["test.bool"] == .bool(true))
        #expect(meta["test.string"] == .string("héllo"))
        #expect(meta["test.array"] == .array([.int(1), .int(2), .int(3)]))
        #expect(meta["test.u64"] == .uint(1 << 63 + 5))
        #expect(meta["test.i64"] == .int(-(1 << 62)))
        #expect(meta["test.f64"] == .float(1.5e300))
        #expect(meta["tokenizer.ggml.tokens"]?.arrayValue?.count == 48)
        #expect(meta["tokenizer.ggml.tokens"]?.arrayValue?[5] == .string("tok5"))
    }

    @Test func ggufLlamaLoadsToHuggingFaceLayout() throws {
        // tiny.gguf holds tiny-f32's weights as llama.cpp writes them (Q/K rows permuted for
        // interleaved RoPE); loading must undo the permutation.
        let hf = try ModelLoader.loadWeights(path: Self.fixture("tiny-f32").path)
        let loaded = try ModelLoader.load(path: Self.fixture("tiny.gguf").path)
        #expect(loaded.weights.config == hf.config)
        #expect(Self.sameTensors(loaded.weights, hf))
        #expect(loaded.ggufMetadata?["llama.block_count"] == .uint(1))
    }

    @Test func ggufQwen2KeepsRowOrderAndBiases() throws {
        let weights = try ModelLoader.loadWeights(path: Self.fixture("tiny-qwen2.gguf").path)
        #expect(weights.config.modelType == "qwen2")
        #expect(weights.config.attentionBias)
        #expect(weights.config.tieWordEmbeddings)
        let expected = try JSONDecoder().decode([String: [Int]].self, from: Data(contentsOf: Self.fixture("tiny-qwen2.json")))
        let named = Dictionary(uniqueKeysWithValues: weights.namedTensors.map { ($0.name, $0.buffer) })
        #expect(expected.count == 5)
        for (name, values) in expected {
            #expect(named[name]?.array == values.map { Float($0) / 256 }, "\(name)")
        }
    }

    @Test func unpermuteInvertsLlamaCppPermutation() {
        // One head of 4 rows: GGUF holds rotation pairs interleaved (0, 2), (1, 3) → HF halves.
        let out = GGUFFile.unpermuteRows(FloatBuffer([0, 1, 2, 3]), rows: 4, heads: 1)
        #expect(out.array == [0, 2, 1, 3])
        let two = GGUFFile.unpermuteRows(FloatBuffer((0..<8).map(Float.init)), rows: 4, heads: 2)
        #expect(two.array == [0, 1, 2, 3, 4, 5, 6, 7])  // head dim 2: nothing to undo
    }

    @Test func ggufNameMapping() {
        #expect(GGUFFile.huggingFaceName(for: "token_embd.weight") == "model.embed_tokens.weight")
        #expect(GGUFFile.huggingFaceName(for: "output.weight") == "lm_head.weight")
        #expect(GGUFFile.huggingFaceName(for: "output_norm.weight") == "model.norm.weight")
        #expect(GGUFFile.huggingFaceName(for: "blk.12.attn_output.weight") == "model.layers.12.self_attn.o_proj.weight")
        #expect(GGUFFile.huggingFaceName(for: "blk.0.attn_k.bias") == "model.layers.0.self_attn.k_proj.bias")
        #expect(GGUFFile.huggingFaceName(for: "blk.3.ffn_norm.weight") == "model.layers.3.post_attention_layernorm.weight")
        #expect(GGUFFile.huggingFaceName(for: "rope_freqs.weight") == nil)
        #expect(GGUFFile.huggingFaceName(for: "blk.01.attn_q.weight") == nil)
        #expect(GGUFFile.huggingFaceName(for: "blk.0.attn_q.scale") == nil)
    }

    @Test func ggufConfigRejections() throws {
        let dir = try Self.scratch()
        func file(_ name: String, _ kvs: [[UInt8]]) throws -> GGUFFile {
            let url = dir.appendingPathComponent(name)
            try Data(GGUFBytes().with { $0.kvs = kvs }.bytes).write(to: url)
            return try GGUFFile(url: url)
        }
        let gpt2 = try file("gpt2.gguf", [GGUFBytes.kv("general.architecture", type: 8, GGUFBytes.string("gpt2"))])
        Self.expectError(["gpt2.gguf", "'gpt2'"]) { _ = try LlamaConfig(gguf: gpt2) }
        let bare = try file("bare.gguf", [GGUFBytes.kv("general.architecture", type: 8, GGUFBytes.string("llama"))])
        Self.expectError(["bare.gguf", "missing metadata key 'llama.embedding_length'"]) { _ = try LlamaConfig(gguf: bare) }
        let none = try file("none.gguf", [])
        Self.expectError(["none.gguf", "general.architecture"]) { _ = try LlamaConfig(gguf: none) }
    }

    // MARK: Loader checks

    /// tiny-f32's config with `edit` applied, and its tensors after `tensors`, written to a fresh directory.
    static func variant(config edit: (inout [String: Any]) -> Void = { _ in },
                        tensors: (inout [(name: String, shape: [Int], data: FloatBuffer)]) -> Void = { _ in }) throws -> URL {
        let dir = try scratch()
        let source = fixture("tiny-f32")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("config.json"))) as! [String: Any]
        edit(&config)
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        let file = try SafeTensorsFile(url: source.appendingPathComponent("model.safetensors"))
        var list = try file.tensorNames.map { name in
            let t = try file.tensor(named: name)
            return (name: name, shape: t.shape, data: t.data)
        }
        tensors(&list)
        try SafeTensorsWriter.write(list, to: dir.appendingPathComponent("model.safetensors"))
        return dir
    }

    @Test func loaderListsMissingAndUnexpectedTensors() throws {
        let dir = try Self.variant(tensors: { list in
            list.removeAll { $0.name == "model.norm.weight" || $0.name == "model.layers.0.mlp.up_proj.weight" }
            list.append((name: "model.extra.weight", shape: [2], data: FloatBuffer([1, 2])))
            list.append((name: "model.layers.0.self_attn.rotary_emb.inv_freq", shape: [4], data: FloatBuffer(count: 4)))
        })
        Self.expectError([dir.lastPathComponent, "missing tensors: model.layers.0.mlp.up_proj.weight, model.norm.weight",
                          "unexpected tensors: model.extra.weight"]) { _ = try ModelLoader.loadWeights(path: dir.path) }
    }

    @Test func loaderNamesShapeMismatch() throws {
        let dir = try Self.variant(config: { $0["intermediate_size"] = 128 })
        Self.expectError(["model.layers.0.mlp.gate_proj.weight", "shape [64, 32]", "expected [128, 32]"]) {
            _ = try ModelLoader.loadWeights(path: dir.path)
        }
    }

    @Test func loaderRejectsTiedHeadThatDiffers() throws {
        let dir = try Self.variant(config: { $0["tie_word_embeddings"] = true })
        Self.expectError(["lm_head.weight", "differs", "tie_word_embeddings"]) { _ = try ModelLoader.loadWeights(path: dir.path) }
    }

    @Test func loaderReportsUnmappedGGUFTensors() throws {
        let config = try ModelLoader.loadWeights(path: Self.fixture("tiny-f32").path).config
        let shapes = Dictionary(uniqueKeysWithValues: LlamaWeights.expectedTensors(for: config).map { ($0.name, $0.shape) })
        Self.expectError(["x.gguf", "unexpected tensors: rope_freqs.weight"]) {
            _ = try ModelLoader.checkTensors(shapes, config: config, file: "x.gguf", unmapped: ["rope_freqs.weight"])
        }
    }

    @Test func loaderRejectsOtherPaths() throws {
        Self.expectError(["/no/such/model", "not found"]) { _ = try ModelLoader.loadWeights(path: "/no/such/model") }
        Self.expectError(["quants.json", "directory or a .gguf file"]) {
            _ = try ModelLoader.loadWeights(path: Self.fixture("quants.json").path)
        }
    }
}
