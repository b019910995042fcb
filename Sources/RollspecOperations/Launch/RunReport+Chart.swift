import Foundation
import RollspecClient
import RollspecRoles

extension RunReport {
    /// Reward (left axis) and acceptance rate (right axis) per policy version; both in [0, 1].
    public func chart() -> LineChart {
        let x = byPolicyVersion.map { Double($0.policyVersion) }
        return LineChart(
            title: "\(name): reward and acceptance rate per policy version", xLabel: "policy version",
            leftAxis: .init(label: "mean reward", range: 0...1), rightAxis: .init(label: "acceptance rate", range: 0...1),
            series: [
                .init("mean reward", color: .blue, x: x, y: byPolicyVersion.map { $0.rewardMean ?? .nan }, markers: true),
                .init("acceptance rate", color: .orange, x: x, y: byPolicyVersion.map { $0.acceptanceRate ?? .nan },
                      axis: .right, markers: true),
            ])
    }
}
