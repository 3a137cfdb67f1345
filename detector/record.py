"""``ssbwatch record``: a SigMF recording of the live source ``ssbwatch run`` reads.

A site baseline (``ssbwatch calibrate``) is learnt from recordings of the site
while its cell is clean, made with the SDR, gain and sample rate the daemon
will use. This takes them from the same ``source:`` section (or the same
``--source`` options) as ``ssbwatch run``, so that nothing differs between the
calibration and the watch: the samples are written as they arrive, in the
source's own datatype (integer streams stay integers), with the sample rate,
centre frequency and start time in the metadata.

Nothing is dropped silently: where the source reconnected or threw bytes away
mid-recording, the recording gets a new capture segment marked
``ssbwatch:discontinuity`` (``signals.iq.DISCONTINUITY_KEY``), at which
``calibrate`` and ``replay`` cut it; a datagram lost on UDP or a message
dropped by ZMQ PUB/SUB cannot be seen at this layer (as in ``run``). A
recording cut short -- Ctrl-C, the end of a finite source, a source silent
for ``timeout_s`` -- keeps what arrived.
"""
from __future__ import annotations

import datetime as _dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

log = logging.getLogger("ssbwatch.record")


@dataclass
class RecordResult:
    meta_path: Optional[Path]  # None: nothing arrived, nothing written
    data_path: Optional[Path]
    n_samples: int
    sample_rate_hz: float
    datatype: str
    discontinuities: int
    ended: str  # "complete", "end of source", "interrupted", "timeout"

    @property
    def seconds(self) -> float:
        return self.n_samples / self.sample_rate_hz


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _loss_counters(stats) -> tuple[int, int, int]:
    """What a source counts when samples went missing: (connections, dropped bytes,
    malformed messages)."""
    return stats.connections, stats.dropped_bytes, stats.malformed_messages


def record(source, seconds: float, out: str | Path, *, overwrite: bool = False, timeout_s: float = 10.0,
           progress: Optional[Callable[[int, int], None]] = None, description: Optional[str] = None) -> RecordResult:
    """Write ``seconds`` of ``source`` (an opened :class:`detector.sources.IQSource`
    whose sample rate is known) to the SigMF recording ``out`` (``X``,
    ``X.sigmf-meta`` or ``X.sigmf-data``). ``progress(done, total)`` is called
    per block. Returns what was written; raises ``signals.iq.IQFormatError``
    when ``out`` exists (and not ``overwrite``) before reading anything."""
    from signals import iq as iqio

    if source.sample_rate_hz is None:
        raise ValueError(f"{source.uri}: the sample rate is unknown (source.sample_rate_hz / --sample-rate)")
    if not seconds > 0:
        raise ValueError(f"--seconds must be > 0, got {seconds}")
    fs = float(source.sample_rate_hz)
    total = max(1, int(round(seconds * fs)))
    datatype = source.datatype
    if getattr(source, "native_capable", False):
        source.set_native(True)  # integer samples written as they came
    else:
        datatype = "cf32_le"  # complex64 blocks (float formats, ZMQ, SigMF files)
    writer = iqio.SigMFWriter(out, fs, datatype, center_freq_hz=source.center_freq_hz,
                              description=description or f"ssbwatch record of {source.uri}",
                              global_extra={"core:recorder": "ssbwatch record"}, overwrite=overwrite)
    n = 0
    n_disc = 0
    ended = "complete"
    seen = _loss_counters(source.stats)
    last = time.monotonic()
    try:
        while n < total:
            try:
                blk = source.read(timeout_s=0.5)
            except EOFError:
                ended = "end of source"
                break
            now = time.monotonic()
            if blk is None:
                if now - last > timeout_s:
                    ended = "timeout"
                    break
                continue
            last = now
            counters = _loss_counters(source.stats)
            if n > 0 and counters != seen:
                c, d, m = (a - b for a, b in zip(counters, seen))
                why = ", ".join(w for w in (f"{c} reconnection(s)" if c else "", f"{d} bytes dropped" if d else "",
                                            f"{m} malformed message(s)" if m else "") if w)
                writer.mark_discontinuity(f"source: {why}")
                n_disc += 1
                log.warning("%s: %s at sample %d; the recording gets a new capture segment there", source.uri, why, n)
            seen = counters
            take = blk[: total - n]
            writer.write(take, datetime_utc=_utc_now() if n == 0 else None)
            n += len(take)
            if progress is not None:
                progress(n, total)
    except KeyboardInterrupt:
        ended = "interrupted"
    if n == 0:
        writer.abort()
        return RecordResult(None, None, 0, fs, datatype, 0, ended)
    meta_path, data_path = writer.close()
    return RecordResult(meta_path, data_path, n, fs, datatype, n_disc, ended)
