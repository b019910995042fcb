"""Python client for rollspec, speculative-decoding RL rollouts over ZeroMQ.

    from rollspec import RolloutClient, Sampling

See README.md beside this package, and docs/wire-protocol.md in the rollspec repository for
the protocol it speaks.
"""
from .checkpoint import CheckpointError
from .checksum import IMPLEMENTATION as CRC32C_IMPLEMENTATION
from .client import BrokerError, Published, RolloutClient, RolloutError, RolloutTimeout, Sampling
from .wire import Acceptance, TopK, Trajectory, WireError

__version__ = "0.1.0"
__all__ = ["RolloutClient", "Sampling", "Trajectory", "Acceptance", "TopK", "Published", "RolloutError",
           "RolloutTimeout", "BrokerError", "CheckpointError", "WireError", "CRC32C_IMPLEMENTATION"]
