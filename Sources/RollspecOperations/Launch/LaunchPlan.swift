import Foundation
import RollspecClient
import RollspecRoles

/// The kinds of process a job runs, in start order; the raw value is the `rollspec role` name.
public enum JobRole: String, Sendable, Hashable, CaseIterable, Codable {
    case broker, worker, trainer, learner, driver

    /// The learner (or the driver standing in for one) decides when the job is over; the
    /// others serve until stopped.
    public var endsTheJob: Bool { self == .learner || self == .driver }
}

/// The processes a job consists of, in start order: broker, workers, speculator trainer, learner.
public struct LaunchPlan: Sendable, Equatable {
    /// One process of the job: `rollspec role <role> --config <file> --index <index>`.
    public struct RoleInstance: Sendable, Equatable, Hashable {
        public var role: JobRole
        public var index: Int
        /// `broker`, `worker-0`, …: the log file's name and the progress line's label.
        public var label: String { role == .broker ? role.rawValue : "\(role.rawValue)-\(index)" }
        /// The learner decides when the job is over; the others serve until stopped.
        public var isLearner: Bool { role.endsTheJob }
    }

    public var roles: [RoleInstance]

    public init(config: JobConfig) {
        var roles = [RoleInstance(role: .broker, index: 0)]
        roles += (0..<config.workers).map { RoleInstance(role: .worker, index: $0) }
        roles += (0..<config.trainers).map { RoleInstance(role: .trainer, index: $0) }
        switch config.learner.kind {
        case .grpo: roles.append(RoleInstance(role: .learner, index: 0))
        case .driver: roles.append(RoleInstance(role: .driver, index: 0))
        case .external: break
        }
        self.roles = roles
    }

    /// How many processes of `role` the job runs.
    public func count(of role: JobRole) -> Int { roles.filter { $0.role == role }.count }

    /// The arguments after the executable that start `instance`.
    public static func arguments(for instance: RoleInstance, configPath: String) -> [String] {
        ["role", instance.role.rawValue, "--config", configPath, "--index", String(instance.index)]
    }
}
