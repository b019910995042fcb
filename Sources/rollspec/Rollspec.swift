import ArgumentParser

@main
struct Rollspec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollspec",
        abstract: "Speculative-decoding rollouts for RL training of language models.",
        subcommands: [GenerateCommand.self, SampleCommand.self, ScoreCommand.self, DistillCommand.self, BenchCommand.self, KeysCommand.self, RoleCommand.self, LaunchCommand.self, MetricsCommand.self])
}
