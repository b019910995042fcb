import ArgumentParser
import Foundation
import RollspecModel

struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Print each token's log-probability under the model (teacher forcing).",
        discussion: """
            Position 0 has no prediction and is printed without a logprob. With --logits, prints \
            one JSON object instead: {"tokens": [...], "logits": [...]} where logits is the full \
            vector of the last position.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Text to tokenize and score.")
    var text: String?

    @Option(name: .long, help: "Comma-separated token ids to score, e.g. 1,2,3.")
    var tokens: String?

    @Flag(name: .long, help: "Print the last position's full logits as JSON.")
    var logits = false

    @Option(name: .long, help: "Also write every position's logits to this file as raw little-endian float32 [tokens, vocab].")
    var dumpLogits: String?

    func validate() throws {
        if (text == nil) == (tokens == nil) { throw ValidationError("give exactly one of --text or --tokens") }
    }

    func run() throws {
        let loaded = try LoadedModel.load(modelOptions)
        let ids = try tokens.map(parseTokenList) ?? loaded.tokenizer.encode(text!)
        try GenerationRequest(prompt: ids, maxTokens: 0).validate(vocabSize: loaded.model.config.vocabSize)
        let model = loaded.model
        let result = model.verify(ids, cache: model.makeCache(capacity: ids.count))
        if let dumpLogits {
            let data = Data(bytes: result.buffer.pointer, count: result.buffer.count * MemoryLayout<Float>.size)
            try data.write(to: URL(fileURLWithPath: dumpLogits))
        }
        if logits {
            struct Output: Encodable { var tokens: [Int]; var logits: [Float] }
            let data = try JSONEncoder().encode(Output(tokens: ids, logits: result.rowArray(ids.count - 1)))
            FileHandle.standardOutput.write(data + Data("\n".utf8))
            return
        }
        var total: Double = 0
        print("position\ttoken\tlogprob\ttext")
        for (i, id) in ids.enumerated() {
            let piece = loaded.tokenizer.decode([id]).debugDescription
            if i == 0 {
                print("0\t\(id)\t-\t\(piece)")
                continue
            }
            let lp = logSoftmax(result.row(i - 1), vocabSize: model.config.vocabSize, at: id)
            total += Double(lp)
            print("\(i)\t\(id)\t\(String(format: "%.6f", lp))\t\(piece)")
        }
        if ids.count > 1 {
            let mean = total / Double(ids.count - 1)
            print(String(format: "total logprob %.4f, mean %.4f, perplexity %.3f", total, mean, exp(-mean)))
        }
    }
}
