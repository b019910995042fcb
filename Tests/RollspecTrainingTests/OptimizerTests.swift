import Foundation
import RollspecKernels
import RollspecModel
import RollspecTesting
import RollspecTraining
import Testing

@Suite struct OptimizerTests {
    /// Two AdamW steps against numbers computed by hand (PyTorch's update rule, in Python):
    /// lr 0.1, β (0.9, 0.999), eps 1e-8, wd 0.01, p = [1, −2], g1 = [0.5, 0.1], g2 = [−0.25, 0.3].
    @Test func adamWMatchesHandComputedSteps() {
        let p = FloatBuffer([1, -2])
        let config = AdamWConfig(schedule: .constant(0.1), beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: nil)
        let opt = AdamW(parameters: [("w", p)], config: config, noDecay: { _ in false })
        opt.step(gradients: ["w": FloatBuffer([0.5, 0.1])])
        #expect(abs(p[0] - 0.899) < 1e-6 && abs(p[1] - -2.098) < 1e-6)
        let stats = opt.step(gradients: ["w": FloatBuffer([-0.25, 0.3])])
        #expect(abs(p[0] - 0.8714673) < 2e-6 && abs(p[1] - -2.1876801) < 2e-6)
        #expect(abs(stats.gradNorm - (0.25 * 0.25 + 0.09).squareRoot()) < 1e-6)
        #expect(opt.step == 2)
    }

    @Test func clippingAndNoDecayGroup() {
        let w = FloatBuffer([1, 1]), b = FloatBuffer([1])
        let config = AdamWConfig(schedule: .constant(0.1), weightDecay: 0.5, maxGradNorm: 1)
        let opt = AdamW(parameters: [("x.weight", w), ("x.bias", b)], config: config)
        // Zero gradient: only decay acts, and not on the bias.
        let s = opt.step(gradients: ["x.weight": FloatBuffer([0, 0]), "x.bias": FloatBuffer([0])])
        #expect(abs(w[0] - 0.95) < 1e-6 && b[0] == 1)
        #expect(s.gradNorm == 0 && s.clipScale == 1)
        let s2 = opt.step(gradients: ["x.weight": FloatBuffer([3, 4]), "x.bias": FloatBuffer([0])])
        #expect(abs(s2.gradNorm - 5) < 1e-5 && abs(s2.clipScale - 0.2) < 1e-5)
    }

    @Test func warmupCosineSchedule() {
        let s = LearningRateSchedule(peak: 1, warmupSteps: 10, totalSteps: 110, minimum: 0.1)
        #expect(abs(s.rate(at: 0) - 0.1) < 1e-6)
        #expect(abs(s.rate(at: 4) - 0.5) < 1e-6)
        #expect(abs(s.rate(at: 9) - 1) < 1e-6)
        #expect(abs(s.rate(at: 10) - 1) < 1e-6)
        #expect(abs(s.rate(at: 60) - 0.55) < 1e-6)
        #expect(abs(s.rate(at: 35) - (0.1 + 0.9 * Float((1 + cos(Double.pi / 4)) / 2))) < 1e-6)
        #expect(abs(s.rate(at: 110) - 0.1) < 1e-6)
        #expect(abs(s.rate(at: 500) - 0.1) < 1e-6)
        #expect(LearningRateSchedule.constant(0.3).rate(at: 1000) == 0.3)
    }

    @Test func aScheduleEndedSoonerDecaysToItsMinimumThere() {
        let planned = LearningRateSchedule(peak: 1, warmupSteps: 10, totalSteps: 1000, minimum: 0.1)
        let fitted = planned.ending(by: 110)
        #expect(fitted.totalSteps == 110 && fitted.warmupSteps == 10 && fitted.peak == 1 && fitted.minimum == 0.1)
        #expect(abs(fitted.rate(at: 60) - 0.55) < 1e-6)     // halfway down by step 60, not 505
        #expect(abs(fitted.rate(at: 110) - 0.1) < 1e-6)
        #expect(planned.ending(by: 2000) == planned)        // never later than planned
        #expect(planned.ending(by: 3).totalSteps == 11)     // never inside the warmup
        #expect(LearningRateSchedule.constant(0.3).ending(by: 5) == .constant(0.3))
    }
}
