import Foundation
import Testing
@testable import RollspecModel

/// Safetensors bytes in memory (`SafeTensorsFile(data:name:)`, `ModelLoader.loadSafeTensors`)
/// against the file path they stand in for: the same weights, and the same errors word for word
/// (with the name where the path was).
@Suite struct SafeTensorsInMemoryTests {
    /// The description of the `ModelError` `body` throws (nil if it throws none).
    static func message(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as ModelError {
            return error.description
        } catch {
            return "not a ModelError: \(error)"
        }
    }

    @Test(arguments: CheckpointTests.malformedSafeTensors)
    func malformedBytesAreRefusedAsTheFileIs(_ c: CheckpointTests.Malformed) throws {
        let dir = try CheckpointTests.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("\(c.label).safetensors")
        try Data(c.bytes).write(to: url)
        let fromFile = Self.message { _ = try SafeTensorsFile(url: url) }
        let fromMemory = Self.message { _ = try SafeTensorsFile(data: Data(c.bytes), name: url.path) }
        #expect(fromFile != nil)
        #expect(fromMemory == fromFile)
    }

    @Test(arguments: ["tiny-f32", "tiny-f16-tied"])
    func bytesLoadTheSameWeightsAsTheDirectory(_ fixture: String) throws {
        let dir = CheckpointTests.fixture(fixture)
        let fromDirectory = try ModelLoader.loadHuggingFace(directory: dir)
        let fromMemory = try ModelLoader.loadSafeTensors(
            configJSON: try Data(contentsOf: dir.appendingPathComponent("config.json")),
            safetensors: try Data(contentsOf: dir.appendingPathComponent("model.safetensors")), name: fixture)
        #expect(fromMemory.config == fromDirectory.config)
        #expect(CheckpointTests.sameTensors(fromMemory, fromDirectory))
    }

    /// A slice of a bigger buffer (non-zero start index) reads the right bytes.
    @Test func aSliceOfLargerDataLoads() throws {
        let dir = CheckpointTests.fixture("tiny-f32")
        let bytes = try Data(contentsOf: dir.appendingPathComponent("model.safetensors"))
        let padded = (Data([9, 9, 9]) + bytes + Data([7]))
        let slice = padded[padded.startIndex + 3..<padded.endIndex - 1]
        let file = try SafeTensorsFile(data: slice, name: "slice")
        let reference = try SafeTensorsFile(url: dir.appendingPathComponent("model.safetensors"))
        #expect(file.tensorNames == reference.tensorNames)
        for name in file.tensorNames { #expect(try file.tensor(named: name).data.array == reference.tensor(named: name).data.array) }
    }

    /// Tensors that do not fit the config, and a config that is not one: the directory loader's
    /// errors, with the name where the directory was.
    @Test func mismatchesNameTheSameProblem() throws {
        let source = CheckpointTests.fixture("tiny-f32")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("config.json"))) as! [String: Any]
        let weights = try Data(contentsOf: source.appendingPathComponent("model.safetensors"))
        for (label, change) in [("layers", ["num_hidden_layers": (config["num_hidden_layers"] as! Int) + 1]),
                                ("hidden", ["hidden_size": 999]), ("vocab", ["vocab_size": -1])] as [(String, [String: Any])] {
            let dir = try CheckpointTests.scratch()
            defer { try? FileManager.default.removeItem(at: dir) }
            let json = try JSONSerialization.data(withJSONObject: config.merging(change) { _, new in new })
            try json.write(to: dir.appendingPathComponent("config.json"))
            try weights.write(to: dir.appendingPathComponent("model.safetensors"))
            let fromDirectory = try #require(Self.message { _ = try ModelLoader.loadHuggingFace(directory: dir) }, "\(label)")
            let fromMemory = try #require(Self.message {
                _ = try ModelLoader.loadSafeTensors(configJSON: json, safetensors: weights, name: "NAME")
            }, "\(label)")
            // The directory loader names config.json or the directory; the memory one, NAME.
            let normalised = fromDirectory.replacingOccurrences(of: dir.appendingPathComponent("config.json").path, with: "NAME config")
                .replacingOccurrences(of: dir.path, with: "NAME")
            #expect(fromMemory == normalised, "\(label)")
        }
    }
}
