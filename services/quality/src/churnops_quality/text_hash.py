"""A 64-bit hash of every string of an Arrow array, computed from its buffers with numpy.

What id uniqueness needs across chunks: 8 bytes per row instead of the ids themselves. pandas'
`hash_pandas_object` first turns Arrow strings into Python objects (about 0.13 s per 200k ids);
this reads the offsets and bytes in place, 8 bytes of every string at a time.

The hash: the length, then each 8-byte word of the string (zero-padded), each folded in with
the MurmurHash3 64-bit finalizer, a bijection: strings of one length up to 8 bytes never
collide, longer ones as rarely as any 64-bit hash.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_SEED = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_SHIFT = np.uint64(33)
# _KEEP_MASKS[k]: the low k bytes of a little-endian word (k = 0..8).
_KEEP_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype="uint64")


def text_hashes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """uint64 hash per string (nulls hash as empty strings: drop them first)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    if values.type not in (pa.string(), pa.large_string()):
        values = values.cast(pa.large_string())
    offset_type = "int64" if values.type == pa.large_string() else "int32"
    buffers = values.buffers()
    offsets = np.frombuffer(buffers[1], dtype=offset_type)[
        values.offset : values.offset + len(values) + 1
    ].astype("int64")
    data = np.frombuffer(buffers[2], dtype="uint8") if buffers[2] is not None else np.empty(0)
    return _hash_words(data, offsets[:-1], np.diff(offsets))


def _hash_words(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    hashes = _mix(lengths.astype("uint64") ^ _SEED)
    longest = int(lengths.max()) if lengths.size else 0
    # Every 8-byte window of the (zero-padded) bytes, without copying: row i starts at byte i.
    windows = np.lib.stride_tricks.sliding_window_view(
        np.concatenate([data.astype("uint8"), np.zeros(8, dtype="uint8")]), 8
    )
    last = len(windows) - 1
    for word_start in range(0, longest, 8):
        # The string's bytes [word_start, word_start + 8) as one uint64, zero past its end.
        raw = windows[np.minimum(starts + word_start, last)]
        word = raw.view("<u8")[:, 0].astype("uint64")
        keep = np.clip(lengths - word_start, 0, 8)
        hashes = _mix(hashes ^ (word & _KEEP_MASKS[keep]))
    return hashes


def _mix(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's fmix64 (wrapping uint64 arithmetic)."""
    x = x ^ (x >> _SHIFT)
    x = x * _M1
    x = x ^ (x >> _SHIFT)
    x = x * _M2
    result: np.ndarray = x ^ (x >> _SHIFT)
    return result
