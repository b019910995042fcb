import Foundation
import Yams

/// The Kubernetes objects `JobEmitter.kubernetes` writes, as Codable values: only the fields
/// it sets, with the API's field names (kubernetes.io/docs/reference/kubernetes-api).
enum KubernetesManifest: Encodable {
    case configMap(ConfigMap)
    case service(Service)
    case job(Job)

    struct Metadata: Codable {
        var name: String
        var labels: [String: String]
    }

    struct ConfigMap: Codable {
        var apiVersion = "v1", kind = "ConfigMap"
        var metadata: Metadata
        var data: [String: String]
    }

    struct Service: Codable {
        struct Port: Codable {
            var name: String
            var port: Int
            var targetPort: Int
            init(name: String, port: Int) { (self.name, self.port, targetPort) = (name, port, port) }
        }
        struct Spec: Codable {
            var selector: [String: String]
            var ports: [Port]
        }
        var apiVersion = "v1", kind = "Service"
        var metadata: Metadata
        var spec: Spec
    }

    /// An Indexed Job: each pod reads its index from `JOB_COMPLETION_INDEX`.
    struct Job: Codable {
        struct Mount: Codable { var name: String, mountPath: String }
        struct Container: Codable {
            var name: String
            var image: String
            var command: [String]
            var volumeMounts: [Mount]
        }
        struct ConfigMapSource: Codable { var name: String }
        struct Volume: Codable { var name: String, configMap: ConfigMapSource }
        struct PodSpec: Codable {
            var restartPolicy: String
            var containers: [Container]
            var volumes: [Volume]
        }
        struct LabelsOnly: Codable { var labels: [String: String] }
        struct Template: Codable { var metadata: LabelsOnly, spec: PodSpec }
        struct Spec: Codable {
            var completionMode = "Indexed"
            var completions: Int
            var parallelism: Int
            var backoffLimit: Int
            var template: Template
        }
        var apiVersion = "batch/v1", kind = "Job"
        var metadata: Metadata
        var spec: Spec
    }

    static func configMap(name: String, labels: [String: String], data: [String: String]) -> Self {
        .configMap(ConfigMap(metadata: Metadata(name: name, labels: labels), data: data))
    }

    static func service(name: String, labels: [String: String], selector: [String: String], ports: [Service.Port]) -> Self {
        .service(Service(metadata: Metadata(name: name, labels: labels), spec: .init(selector: selector, ports: ports)))
    }

    /// `completions` pods at once, each running `command` in `image` with the config map
    /// `configMap` mounted at /etc/rollspec.
    static func job(name: String, labels: [String: String], completions: Int, backoffLimit: Int, restartPolicy: String,
                    image: String, command: [String], configMap: String) -> Self {
        let container = Job.Container(name: labels["role"] ?? name, image: image, command: command,
                                      volumeMounts: [.init(name: "config", mountPath: "/etc/rollspec")])
        let pod = Job.PodSpec(restartPolicy: restartPolicy, containers: [container],
                              volumes: [.init(name: "config", configMap: .init(name: configMap))])
        return .job(Job(metadata: Metadata(name: name, labels: labels),
                        spec: .init(completions: completions, parallelism: completions, backoffLimit: backoffLimit,
                                    template: .init(metadata: .init(labels: labels), spec: pod))))
    }

    func encode(to encoder: Encoder) throws {
        switch self {
        case .configMap(let m): try m.encode(to: encoder)
        case .service(let s): try s.encode(to: encoder)
        case .job(let j): try j.encode(to: encoder)
        }
    }

    /// The manifest as one YAML document, keys sorted (so the same job gives the same bytes),
    /// and strings of several lines (the embedded config) as literal blocks, the way a person
    /// would write them, rather than one quoted line of `\n` escapes.
    func yaml() throws -> String {
        guard let node = try Yams.compose(yaml: try YAMLEncoder().encode(self)) else { return "" }
        return try Yams.serialize(node: Self.literalBlocks(node), sortKeys: true)
    }

    private static func literalBlocks(_ node: Node) -> Node {
        switch node {
        case .scalar(var scalar):
            if scalar.string.contains("\n") { scalar.style = .literal }
            return .scalar(scalar)
        case .mapping(let mapping):
            return Node(mapping.map { ($0.key, literalBlocks($0.value)) }, mapping.tag, mapping.style)
        case .sequence(let sequence):
            return Node(sequence.map(literalBlocks), sequence.tag, sequence.style)
        }
    }
}
