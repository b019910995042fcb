// The ZeroMQ bus: sockets and the wire protocol. Only this module imports CZeroMQ.
import CZeroMQ
