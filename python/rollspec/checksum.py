"""CRC-32C (Castagnoli), the checksum of every envelope, and the piecewise SHA-256 digest of
checkpoints and drafts (docs/wire-protocol.md §4).

A 538 MB checkpoint goes out as ~135 messages of 4 MiB, each checksummed, so the CRC must run at
memory speed. The native helpers (`crc32c`, `google-crc32c`, both using the SSE4.2 / ARMv8 CRC
instructions) do; without either, a numpy version runs many lanes of the table-driven CRC side
by side and joins them (tens of MB/s instead of plain Python's ~1 MB/s), with a warning.
"""
from __future__ import annotations

import hashlib
import warnings

import numpy as np

POLY = 0x82F63B78  # 0x1EDC6F41 bit-reflected


def _table() -> np.ndarray:
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> 1) ^ np.uint32(POLY), t >> 1).astype(np.uint32)
    return t


TABLE = _table()
_TABLE_LIST = [int(v) for v in TABLE]


def crc32c_reference(data) -> int:
    """The bitwise definition of §4, one byte at a time: the slow twin the fast ones are held to."""
    crc = 0xFFFFFFFF
    for b in bytes(data):
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (POLY if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


# --- numpy fallback ------------------------------------------------------------------------------
#
# The register update reg' = T[(reg ^ b) & 0xff] ^ (reg >> 8) is linear over GF(2), so the
# register after A‖B is Z_|B|(reg after A) ^ (register of B started at 0), where Z_n feeds n zero
# bytes. The data is cut into `lanes` equal pieces, all advanced at once by vector operations,
# and neighbours are joined pairwise: Z_L is a 32×32 bit matrix applied to many registers at once.

_SMALL = 512


def _update_bytes(reg: int, data) -> int:
    t = _TABLE_LIST
    for b in bytes(data):
        reg = t[(reg ^ b) & 0xFF] ^ (reg >> 8)
    return reg


def _apply(columns: np.ndarray, regs: np.ndarray) -> np.ndarray:
    """The bit matrix with `columns` (images of bits 0…31) applied to each register."""
    out = np.zeros_like(regs)
    for j in range(32):
        out ^= np.where((regs >> np.uint32(j)) & np.uint32(1), columns[j], np.uint32(0))
    return out


_ZEROS: dict[int, np.ndarray] = {}


def _zeros_operator(n: int) -> np.ndarray:
    """Columns of Z_n (feeding n zero bytes), by repeated squaring of Z_1."""
    if n in _ZEROS:
        return _ZEROS[n]
    one = np.array([_update_bytes(1 << j, b"\0") for j in range(32)], dtype=np.uint32)
    result = np.array([1 << j for j in range(32)], dtype=np.uint32)  # identity
    power, k = one, n
    while k:
        if k & 1:
            result = _apply(power, result)
        power = _apply(power, power)
        k >>= 1
    _ZEROS[n] = result
    return result


def _update_numpy(reg: int, data) -> int:
    view = memoryview(data).cast("B")
    n = len(view)
    if n < _SMALL:
        return _update_bytes(reg, view)
    lanes = 1 << min(14, (n // 64).bit_length() - 1)
    width = n // lanes
    block = np.frombuffer(view[: lanes * width], dtype=np.uint8).reshape(lanes, width)
    columns = np.ascontiguousarray(block.T)  # [width, lanes]: one step reads one row
    regs = np.zeros(lanes, dtype=np.uint32)
    regs[0] = reg
    for row in columns:
        regs = TABLE[(regs ^ row) & 0xFF] ^ (regs >> np.uint32(8))
    span = width
    while len(regs) > 1:
        regs = _apply(_zeros_operator(span), regs[0::2]) ^ regs[1::2]
        span *= 2
    return _update_numpy(int(regs[0]), view[lanes * width:])


def crc32c_numpy(data) -> int:
    return _update_numpy(0xFFFFFFFF, data) ^ 0xFFFFFFFF


# --- choice of implementation -------------------------------------------------------------------

def _pick():
    try:
        import crc32c as native  # accepts any buffer, no copy

        return "crc32c", native.crc32c
    except ImportError:
        pass
    try:
        import google_crc32c as google

        if google.implementation == "c":
            # It takes only read-only bytes: other buffers are copied (memcpy speed).
            return "google-crc32c", lambda data: google.value(data if isinstance(data, bytes) else bytes(data))
    except ImportError:
        pass
    warnings.warn(
        "rollspec: no native CRC-32C found (pip install google-crc32c or crc32c); using the numpy "
        "fallback, which takes seconds per 100 MB of checkpoint",
        RuntimeWarning,
        stacklevel=3,
    )
    return "numpy", crc32c_numpy


IMPLEMENTATION, crc32c = _pick()
"""`crc32c(data) -> int` over any bytes-like object; `IMPLEMENTATION` names which one runs."""


PIECE_SIZE = 1 << 20


def digest(data) -> bytes:
    """The digest of a whole checkpoint or draft (§4): SHA-256 of the SHA-256s of its 1 MiB pieces."""
    view = memoryview(data).cast("B")
    pieces = (hashlib.sha256(view[i:i + PIECE_SIZE]).digest() for i in range(0, len(view), PIECE_SIZE))
    return hashlib.sha256(b"".join(pieces)).digest()
