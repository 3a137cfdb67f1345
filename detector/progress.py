"""A dependency-free progress bar on stderr (the edge install has no tqdm).

Shown only when stderr is a terminal (or ``force=True``), so logs and pipes
stay clean; it redraws at most ``max_rate_hz`` times a second.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: float, desc: str = "", unit: str = "", *, stream: TextIO | None = None,
                 force: bool = False, max_rate_hz: float = 5.0):
        self.total = float(total)
        self.desc = desc
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = force or (hasattr(self.stream, "isatty") and self.stream.isatty())
        self.done = 0.0
        self._t0 = time.monotonic()
        self._last = 0.0
        self._min_dt = 1.0 / max_rate_hz

    def update(self, n: float = 1.0) -> None:
        self.set(self.done + n)

    def set(self, done: float) -> None:
        self.done = float(done)
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < self._min_dt and self.done < self.total:
            return
        self._last = now
        frac = min(1.0, self.done / self.total) if self.total > 0 else 1.0
        width = 28
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        elapsed = now - self._t0
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        self.stream.write(
            f"\r{self.desc} [{bar}] {frac * 100:5.1f}% {self.done:g}/{self.total:g}{self.unit} "
            f"{elapsed:6.1f}s eta {eta:5.1f}s"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.set(self.done)
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
