// The ZeroMQ bus: sockets and the wire protocol. Only this module imports CZeroMQ.
//
// Two halves:
// - `ZMQ/`  — a thin Swift wrapper over libzmq: `ZMQContext`, `ZMQSocket` (options, multipart,
//   zero-copy send), `ZMQPoller`, CURVE keys and a `ZAPHandler` allowlist.
// - `Wire/` — the wire protocol (docs/wire-protocol.md): the `Envelope`, the typed messages,
//   CRC-32C and the piecewise SHA-256 digest, chunk reassembly, per-sender sequence checking
//   and rejection counts.
//
// Threading: a libzmq socket is not thread-safe. Each `ZMQSocket` belongs to one thread (or
// one task that does not hop threads while using it) at a time; it may be handed to another
// thread only with a full memory barrier (e.g. through a lock or a queue). Contexts are
// thread-safe and can be shared freely.
import CZeroMQ
