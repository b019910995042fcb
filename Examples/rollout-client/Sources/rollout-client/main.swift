// Publishes a policy checkpoint to a running rollspec job, asks for samples of one prompt, and
// prints each trajectory as it arrives: the smallest RL loop, without the learning.
//
//   swift run rollout-client ENDPOINT CHECKPOINT [TOKEN ...]
//
// ENDPOINT is the job's `endpoint` (a job launched with `learner.kind: external`), CHECKPOINT
// an HF folder (config.json + safetensors) or a .gguf file, TOKENs the prompt's ids in the
// policy's tokenizer (tokenizing is the client's job).
import Foundation
import RollspecClient
import RollspecModel

let arguments = CommandLine.arguments.dropFirst()
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: rollout-client ENDPOINT CHECKPOINT [TOKEN ...]\n".utf8))
    exit(64)
}
let endpoint = arguments[arguments.startIndex], checkpoint = arguments[arguments.startIndex + 1]
let prompt = arguments.dropFirst(2).compactMap { Int($0) }

do {
    let weights = try ModelLoader.loadWeights(path: checkpoint)
    let client = try RolloutClient(endpoint: endpoint, name: "example-loop")
    defer { client.close() }
    try client.publishPolicy(weights, version: 1)
    guard client.waitForPolicyConfirmation(1, timeout: 60) else {
        print("the broker did not confirm policy v1: \(client.refusals)")
        exit(1)
    }
    var sampling = JobConfig.Sampling()
    sampling.maxTokens = 16
    let id = client.submit(prompt: prompt.isEmpty ? [1] : prompt, n: 4, sampling: sampling, seed: 7)
    // Each (request, sample) arrives once, already acked; a refusal ends the wait with an error.
    let trajectories = try client.collectUnlessRefused(count: 4, timeout: 120)
    for t in trajectories.sorted(by: { $0.sampleIndex < $1.sampleIndex }) {
        let logprob = t.logprobs.reduce(0, +)
        print("\(t.requestID) sample \(t.sampleIndex): \(t.responseTokens.count) tokens, "
              + "log p = \(String(format: "%.3f", logprob)), policy v\(t.policyVersion), \(t.finishReason)")
    }
    guard trajectories.count == 4 else {
        print("\(id): \(trajectories.count) of 4 samples arrived")
        exit(1)
    }
} catch {
    print("rollout-client: \(error)")
    exit(1)
}
