"""Loops compiled with numba on first use, and run one call at a time.

Compiled on first use, not at import (numba's import and compile cost seconds, and a CLI command
that never scores should not pay them), and cached on disk where numba finds a writable place
(`NUMBA_CACHE_DIR`, else next to the module, else the user's cache folder), so a process after
the first loads them in a fraction of a second. Each call holds a process-wide lock: numba's
fallback threading layer aborts the process when two threads launch parallel loops at once.

A loop written for `compiled` takes `prange` from its own module, where it is `range` until the
loop is compiled (the plain-Python loop then runs as written, serially).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

LOCK = threading.Lock()  # held while any compiled loop runs
_COMPILED: dict[str, Callable[..., Any]] = {}


def compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` compiled (parallel, no GIL, cached on disk), once per process."""
    name = f"{function.__module__}.{function.__qualname__}"
    if name not in _COMPILED:
        import numba

        function.__globals__["prange"] = numba.prange
        try:
            _COMPILED[name] = numba.njit(parallel=True, nogil=True, cache=True)(function)
        except RuntimeError:  # no writable cache location: compile in this process only
            _COMPILED[name] = numba.njit(parallel=True, nogil=True)(function)
    return _COMPILED[name]
