"""One BLAS thread for the receiver.

The receiver's matrix products are small (an SSS match, a channel fit per SSB); a
threaded BLAS spins up its pool for each of them, which on a busy machine costs tens
of times the work itself (SSS match 7.7 ms vs 0.2 ms; the dataset of
``ssbwatch train``: 0.39 s against 0.71 s of CPU per capture beside a running
``ssbwatch simulate``) and takes a core from the daemon's reader thread. The
environment variables are read when the BLAS library loads, so they must be set
before numpy is imported -- in this process (:func:`limit_blas_threads`, the CLI's
receiver commands) or in the processes a pool spawns
(:func:`one_blas_thread_children`). An explicit setting in the environment wins.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads() -> None:
    """One BLAS thread in this process: the environment (for a BLAS not yet
    loaded), else the loaded BLAS through threadpoolctl where it is installed."""
    for var in BLAS_THREAD_VARS:
        os.environ.setdefault(var, "1")
    if "numpy" in sys.modules:  # too late for the environment: ask the loaded BLAS, if we can
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(1, user_api="blas")
        except Exception:  # noqa: BLE001 - optional
            pass


@contextlib.contextmanager
def one_blas_thread_children() -> Iterator[None]:
    """Processes spawned inside get one BLAS thread (the variables the user did
    not set are set to 1 for the spawn and removed again after; this process's
    own BLAS, already loaded, is not affected)."""
    added = [v for v in BLAS_THREAD_VARS if v not in os.environ]
    for v in added:
        os.environ[v] = "1"
    try:
        yield
    finally:
        for v in added:
            os.environ.pop(v, None)
