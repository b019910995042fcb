import Testing
import RollspecKernels
import RollspecModel
import RollspecTesting
@testable import RollspecTraining

/// A head restricted to a token subset is the full head with the other columns cut away:
/// same logits on the subset, same gradients as the full path with zero dLogits elsewhere.
@Suite struct OutputVocabularyTests {
    let subset: [Int32] = [2, 3, 7, 11, 19, 40, 63]
    let sequences = [[1, 5, 9, 2, 7], [3, 3, 8], [60, 61, 62, 2]]

    @Test(arguments: [true, false])
    func subsetHeadEqualsTheFullHeadOnItsColumns(tied: Bool) {
        let config = TinyModels.llamaConfig(vocab: 64, tied: tied)
        let weights = TinyModels.randomWeights(config: config, seed: 5)
        let full = TrainingModel(weights: weights), part = TrainingModel(weights: weights)
        part.outputVocabulary = subset
        let a = full.forward(sequences), b = part.forward(sequences)
        let rows = a.count / 64
        #expect(b.count == rows * subset.count)

        var rng = RandomSource(seed: 9)
        let dFull = FloatBuffer(count: a.count), dPart = FloatBuffer(count: b.count)
        for r in 0..<rows {
            for (j, t) in subset.enumerated() {
                #expect(abs(a[r * 64 + Int(t)] - b[r * subset.count + j]) < 1e-5)
                let g = Float(rng.nextUnit() - 0.5)
                dFull[r * 64 + Int(t)] = g
                dPart[r * subset.count + j] = g
            }
        }
        let gFull = LlamaGradients(config: config), gPart = LlamaGradients(config: config)
        full.backward(dFull.pointer, into: gFull)
        part.backward(dPart.pointer, into: gPart)
        for ((name, x), (_, y)) in zip(gFull.namedTensors, gPart.namedTensors) {
            let worst = (0..<x.count).reduce(Float(0)) { max($0, abs(x[$1] - y[$1])) }
            #expect(worst < 1e-5, "\(name): max |Δ| \(worst)")
        }
    }
}
