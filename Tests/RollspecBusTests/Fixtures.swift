import Foundation
import RollspecBus
import RollspecDigest

/// The fixed example messages behind the committed test vectors (Resources/vectors/), and the
/// JSON form of their decoded fields that docs/wire-protocol.md and the Python cross-check use.
enum Fixtures {
    static let checkpointBytes = Data("safetensors\u{0}policy-v42 weights: 0123456789abcdef".utf8)

    /// (vector name, envelope) for every message type; names are file stems under vectors/.
    static let vectors: [(name: String, envelope: Envelope)] = [
        ("policy_checkpoint_chunk", Envelope(
            sender: "learner-0", sequence: 7,
            message: PolicyCheckpointChunk(version: 42, chunk: WeightsChunk.split(checkpointBytes, chunkSize: 20)[1]))),
        ("draft_weights_chunk", Envelope(
            sender: "trainer-0", sequence: 3,
            message: DraftWeightsChunk(
                draftVersion: 5, policyVersion: 41, acceptanceRate: 0.625,
                chunk: WeightsChunk.split(Data("draft!".utf8), chunkSize: 64)[0]))),
        ("rollout_request", Envelope(
            sender: "learner-0", sequence: 1_000_000_000_000,
            message: RolloutRequest(
                requestID: "req-0001", groupID: "grp-α", promptTokens: [1, 15043, 29892, -1], n: 4,
                temperature: 0.75, topK: 50, topP: 0.875, maxTokens: 256, stopTokens: [2, 32000], seed: 1234))),
        ("trajectory", Envelope(
            sender: "worker-3", sequence: 19,
            message: Trajectory(
                requestID: "req-0001", groupID: "grp-α", sampleIndex: 2, promptTokens: [1, 15043],
                responseTokens: [450, 2], logprobs: [-0.5, -0.0078125], temperature: 0.75, topK: 50, topP: 0.875,
                finishReason: .stop,
                policyVersion: 42, draftVersion: 5,
                acceptance: AcceptanceCounts(
                    drafts: 1, draftedTokens: 4, acceptedTokens: 1, acceptedPerPosition: [1, 0, 0, 0],
                    proposers: ["draft", "suffix"]),
                targetTopK: TargetTopK(k: 2, tokenIDs: [450, 13, 2, 450], probabilities: [0.75, 0.125, 0.5, 0.25])))),
        ("trajectory_minimal", Envelope(
            sender: "w", sequence: UInt64.max,
            message: Trajectory(
                requestID: "", groupID: "", sampleIndex: 0, promptTokens: [], responseTokens: [], logprobs: [],
                finishReason: .aborted, policyVersion: 0, draftVersion: 0))),
        ("ack", Envelope(sender: "broker", sequence: 8, message: Ack(sequence: 19, requestID: "req-0001", sampleIndex: 2, status: .duplicate))),
        ("heartbeat", Envelope(
            sender: "worker-3", sequence: 20,
            message: Heartbeat(
                role: .worker, index: 3, status: .busy, credit: 6, policyVersion: 42, draftVersion: 5,
                stats: Heartbeat.Stats(requestsCompleted: 1000, tokensGenerated: 123_456, uptimeSeconds: 3600.5,
                                       acceptanceRate: 0.6875)))),
        ("metrics_snapshot", Envelope(
            sender: "worker-3", sequence: 21,
            message: MetricsSnapshot(timestampUnixNanos: 1_767_225_600_000_000_000, samples: [
                .init(name: "rollspec_spec_decode_accepted_tokens_total",
                      labels: [MetricLabel("proposer", "draft"), MetricLabel("note", "a \"quoted\" value, ünï")],
                      kind: .counter, value: 4096),
                .init(name: "rollspec_queue_depth", kind: .gauge, value: -1.5),
            ]))),
        ("error", Envelope(
            sender: "broker", sequence: 9,
            message: ErrorMessage(code: .checksum, reason: .checksum, message: "checksum: CRC-32C mismatch", sequence: 17))),
        ("acks", Envelope(
            sender: "learner-0", sequence: 23,
            message: Acks([
                Acks.Entry(sequence: 19, sample: SampleKey(requestID: "req-0001", sampleIndex: 2)),
                Acks.Entry(sequence: 20, sample: SampleKey(requestID: "req-0002", sampleIndex: 0)),
            ]))),
    ]


    static func bytes(hex: String) -> Data? {
        let chars = Array(hex.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out = Data(capacity: chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let byte = UInt8(String(decoding: chars[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(byte)
            i += 2
        }
        return out
    }

    // MARK: JSON form of a vector

    static func json(_ e: Envelope, encoded: Data) -> JSON {
        let header = try! EnvelopeHeader(encoded)
        let crc = encoded.suffix(4).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return .object([
            ("envelope", .object([
                ("magic", .string("RSPC")), ("version", .uint(UInt64(Envelope.protocolVersion))), ("type", .uint(UInt64(e.body.type.rawValue))),
                ("type_name", .string(typeName(e.body.type))), ("flags", .uint(0)), ("sequence", .uint(e.sequence)),
                ("sender", .string(e.sender)), ("payload_length", .uint(UInt64(header.payloadLength))),
                ("checksum", .uint(crc)),
            ])),
            ("payload", payload(e.body)),
        ])
    }

    static func typeName(_ t: WireMessageType) -> String {
        switch t {
        case .policyCheckpointChunk: "policy_checkpoint_chunk"
        case .draftWeightsChunk: "draft_weights_chunk"
        case .rolloutRequest: "rollout_request"
        case .trajectory: "trajectory"
        case .ack: "ack"
        case .heartbeat: "heartbeat"
        case .metricsSnapshot: "metrics_snapshot"
        case .error: "error"
        case .acks: "acks"
        }
    }

    static func chunk(_ c: WeightsChunk) -> [(String, JSON)] {
        [("index", .uint(UInt64(c.index))), ("count", .uint(UInt64(c.count))), ("offset", .uint(c.offset)),
         ("total_size", .uint(c.totalSize)), ("digest", .string(hexString(c.digest))), ("bytes", .string(hexString(c.bytes)))]
    }

    static func ints(_ a: [Int32]) -> JSON { .array(a.map { .int(Int64($0)) }) }
    static func floats(_ a: [Float]) -> JSON { .array(a.map { .double(Double($0)) }) }

    static func payload(_ body: WireMessageBody) -> JSON {
        switch body {
        case .policyCheckpointChunk(let m):
            return .object([("version", .uint(m.version))] + chunk(m.chunk))
        case .draftWeightsChunk(let m):
            return .object([("draft_version", .uint(m.draftVersion)), ("policy_version", .uint(m.policyVersion)),
                            ("acceptance_rate", .double(m.acceptanceRate))] + chunk(m.chunk))
        case .rolloutRequest(let m):
            return .object([
                ("request_id", .string(m.requestID)), ("group_id", .string(m.groupID)),
                ("prompt_tokens", ints(m.promptTokens)), ("n", .uint(UInt64(m.n))),
                ("temperature", .double(Double(m.temperature))), ("top_k", .uint(UInt64(m.topK))),
                ("top_p", .double(Double(m.topP))), ("max_tokens", .uint(UInt64(m.maxTokens))),
                ("stop_tokens", ints(m.stopTokens)), ("seed", m.seed.map { .uint($0) } ?? .null),
            ])
        case .trajectory(let m):
            let topK: JSON = m.targetTopK.map { t in
                .object([("k", .uint(UInt64(t.k))), ("positions", .uint(UInt64(t.positions))),
                         ("token_ids", ints(t.tokenIDs)), ("probabilities", floats(t.probabilities))])
            } ?? .null
            let a = m.acceptance
            return .object([
                ("request_id", .string(m.requestID)), ("group_id", .string(m.groupID)),
                ("sample_index", .uint(UInt64(m.sampleIndex))), ("prompt_tokens", ints(m.promptTokens)),
                ("response_tokens", ints(m.responseTokens)), ("logprobs", floats(m.logprobs)),
                ("temperature", .double(Double(m.temperature))), ("top_k", .uint(UInt64(m.topK))),
                ("top_p", .double(Double(m.topP))),
                ("finish_reason", .string(["stop", "length", "aborted"][Int(m.finishReason.rawValue)])),
                ("policy_version", .uint(m.policyVersion)), ("draft_version", .uint(m.draftVersion)),
                ("acceptance", .object([
                    ("drafts", .uint(a.drafts)), ("drafted_tokens", .uint(a.draftedTokens)),
                    ("accepted_tokens", .uint(a.acceptedTokens)),
                    ("accepted_per_position", .array(a.acceptedPerPosition.map { .uint($0) })),
                    ("proposers", .array(a.proposers.map { .string($0) })),
                ])),
                ("target_top_k", topK),
            ])
        case .ack(let m):
            return .object([("sequence", .uint(m.sequence)), ("request_id", .string(m.requestID)),
                            ("sample_index", .uint(UInt64(m.sampleIndex))),
                            ("status", .string(["accepted", "duplicate", "rejected"][Int(m.status.rawValue)]))])
        case .acks(let m):
            return .object([("entries", .array(m.entries.map { e in
                .object([("sequence", .uint(e.sequence)), ("request_id", .string(e.sample.requestID)),
                         ("sample_index", .uint(UInt64(e.sample.sampleIndex)))])
            }))])
        case .heartbeat(let m):
            return .object([
                ("role", .string(["broker", "worker", "trainer", "learner", "client"][Int(m.role.rawValue)])),
                ("index", .uint(UInt64(m.index))),
                ("status", .string(["starting", "ready", "busy", "draining", "stopping"][Int(m.status.rawValue)])),
                ("credit", .uint(UInt64(m.credit))), ("policy_version", .uint(m.policyVersion)),
                ("draft_version", .uint(m.draftVersion)),
                ("stats", .object([
                    ("requests_completed", .uint(m.stats.requestsCompleted)),
                    ("tokens_generated", .uint(m.stats.tokensGenerated)),
                    ("uptime_seconds", .double(m.stats.uptimeSeconds)),
                    ("acceptance_rate", .double(m.stats.acceptanceRate)),
                ])),
            ])
        case .metricsSnapshot(let m):
            return .object([
                ("timestamp_unix_nanos", .uint(m.timestampUnixNanos)),
                ("samples", .array(m.samples.map { s in
                    .object([("name", .string(s.name)),
                             ("labels", .array(s.labels.map { .object([("name", .string($0.name)), ("value", .string($0.value))]) })),
                             ("kind", .string(s.kind == .counter ? "counter" : "gauge")),
                             ("value", .double(s.value))])
                })),
            ])
        case .error(let m):
            let names = ["", "malformed", "unsupported_version", "unknown_type", "checksum", "too_large",
                         "out_of_sequence", "unauthorized", "overloaded", "bad_request", "internal_error"]
            return .object([("code", .uint(UInt64(m.code.rawValue))), ("code_name", .string(names[Int(m.code.rawValue)])),
                            ("reason", m.reasonLabel.map { .string($0) } ?? .null),
                            ("message", .string(m.message)), ("sequence", m.sequence.map { .uint($0) } ?? .null)])
        }
    }
}

/// A tiny ordered JSON writer, so the committed files are byte-stable.
indirect enum JSON {
    case null, int(Int64), uint(UInt64), double(Double), string(String), array([JSON]), object([(String, JSON)])

    func render(indent: String = "") -> String {
        let inner = indent + "  "
        switch self {
        case .null: return "null"
        case .int(let v): return String(v)
        case .uint(let v): return String(v)
        case .double(let v): return v == v.rounded() && abs(v) < 1e15 ? String(format: "%.1f", v) : "\(v)"
        case .string(let s): return Self.quote(s)
        case .array(let a):
            if a.isEmpty { return "[]" }
            if a.allSatisfy({ if case .object = $0 { false } else { true } }) {
                return "[" + a.map { $0.render() }.joined(separator: ", ") + "]"
            }
            return "[\n" + a.map { inner + $0.render(indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        case .object(let o):
            if o.isEmpty { return "{}" }
            return "{\n" + o.map { inner + Self.quote($0.0) + ": " + $0.1.render(indent: inner) }.joined(separator: ",\n")
                + "\n" + indent + "}"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
