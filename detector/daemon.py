"""The edge daemon: ``ssbwatch run --config configs/edge.yaml`` (issue 5).

Data path::

    source (URI) --SourcePump thread--> BlockQueue (bounded, max_samples)
        --> processing loop (main thread): ScoringPipeline.push(block, abs_index)
        --> per-SSB records --> AlertStateMachine.update --> events
        --> JSONL (records; events flushed + fsync'd) --> MQTT (events) ; Prometheus (counters)

Accounting (DESIGN.md §9): every sample the source delivers gets an absolute
index in the queue, dropped ones too, so a dropped block is a gap the receiver
sees (it keeps its SSB timing across it) and, at any moment,
``samples_in == samples_processed + samples_dropped + queue_fill_samples``;
after shutdown the queue is empty and ``samples_in == processed + dropped``
exactly.  Samples still queued when the drain deadline passes at shutdown are
counted as dropped.  A full cell search costs far more than real time at wide
band, so the receiver runs its searches in slices beside the tracking, while
the queue is less than a quarter full (an eighth once a cell is tracked), and else
in at most ``receiver.search_duty`` of stream time: while no cell is
locked, each search looks at the newest 22.4 ms and the samples that arrived
during it are skipped (processed, and counted in ``samples_unsearched``);
once locked, the periodic re-acquisition never stalls the tracking.  When a TCP source reconnects (samples were lost in
between and the stream carries no sequence numbers), the receiver is reset at
the first sample of the new connection and re-acquires the cell instead of
trusting a timing that is no longer right.

Output lines (JSONL; ``outputs.jsonl.path``, ``-`` = stdout) carry ``type``:

``"ssb"``   the replay record (DESIGN.md §7) plus ``source``, ``wall_time`` and
            ``samples_dropped`` (total so far: a jump means SSBs may be missing);
``"event"`` an :class:`detector.alerts.AlertEvent` (``kind``, ``pci``, ``t_s``, ...)
            plus ``source`` and ``wall_time``; written, flushed and fsync'd
            before it is handed to MQTT;
``"stats"`` counters every ``outputs.stats_interval_s`` and at exit.

Jammer character for the alert events (from the per-SSB record; thresholds
are fixed here): ``profile_peak_db`` (strongest RB of the interference profile
over the median RB) > 10 dB => ``band: narrowband`` else ``wideband``;
``sym_spread_db`` (max - min interference over the 4 SSB symbols) > 6 dB =>
``temporal: pulsed`` else ``continuous``.  The alert state machine takes the
plurality over the jammed SSBs of the episode.  ``sjnr_db_est`` of an event is
the mean ``snr_est_db`` (SSB power over the power in its null REs) of those SSBs.

Signals: SIGTERM / SIGINT stop reading, process what is queued (for at most
``queue.drain_timeout_s``), flush the receiver, write the last records and
events, close the outputs and exit 0; a second signal skips the drain.
SIGHUP re-reads the configuration file (with the same command-line
overrides): alert thresholds are applied keeping each PCI's state, outputs
that changed are reopened, a changed source / receiver / queue section
reopens the source (after draining and flushing the old one), a changed
detector section reloads the model / baseline.  A configuration that fails
to load or validate is reported and the old one is kept.

systemd: with ``$NOTIFY_SOCKET`` set, READY=1 is sent once the outputs are up,
STATUS= lines with the counters, RELOADING=1 / READY=1 around a reload,
STOPPING=1 at shutdown, and WATCHDOG=1 every ``WATCHDOG_USEC / 2`` *only if
samples arrived since the last ping* (``watchdog.require_samples``), so a
stalled input gets the service restarted by ``WatchdogSec``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional

from signals.config import ConfigError, check_range, from_dict, load_yaml

from .alerts import AlertConfig, AlertStateMachine

if TYPE_CHECKING:  # pragma: no cover
    from .sources import BlockQueue

# numpy and detector.sources are imported where used, so that building the
# command-line parser (ssbwatch --help) stays fast

__all__ = [
    "EdgeConfig", "Daemon", "JsonlWriter", "SdNotifier", "load_edge_config", "config_from_args",
    "add_run_arguments", "run_from_args", "record_features",
]

log = logging.getLogger("ssbwatch.daemon")

NARROWBAND_PROFILE_PEAK_DB = 10.0
PULSED_SYM_SPREAD_DB = 6.0


# ---------------------------------------------------------------------------
# Configuration (configs/edge.yaml)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceSection:
    uri: Optional[str] = None  # tcp://, tcp-listen://, udp://, rtltcp://, zmq+pull://, file path, -
    format: Optional[str] = None  # a SigMF datatype: cf32_le, ci16_le, ci8, cu8, ... (raw sources)
    sample_rate_hz: Optional[float] = None
    center_freq_hz: Optional[float] = None
    follow: bool = False  # follow a growing file (tail -f)
    block_samples: int = 65536  # samples per read
    reconnect_initial_s: float = 0.1  # tcp:// and rtltcp:// reconnect backoff
    reconnect_max_s: float = 5.0

    def __post_init__(self):
        if self.format is not None:
            from .sources import normalize_datatype

            try:
                normalize_datatype(self.format)
            except ValueError as exc:
                raise ConfigError(f"source.format: {exc}") from None
        if self.sample_rate_hz is not None:
            check_range("source.sample_rate_hz", self.sample_rate_hz, 1.0, 1e10)
        check_range("source.block_samples", self.block_samples, 256, 1 << 24)
        check_range("source.reconnect_initial_s", self.reconnect_initial_s, 0.01, 60)
        check_range("source.reconnect_max_s", self.reconnect_max_s, self.reconnect_initial_s, 3600)


@dataclass(frozen=True)
class ReceiverSection:
    scs: Literal["auto", 15, 30] = "auto"
    ssb_freq_hz: Optional[float] = None  # pin the SSB centre (needs source.center_freq_hz)
    period_ms: float = 20.0
    # largest receiver frequency error (Hz) the cell search looks for (ReceiverConfig.cfo_search_hz)
    max_cfo_hz: float = 12000.0
    # fraction of stream time a cell search may take when the input queue is fuller than it can
    # absorb (below that it also uses the time the queue can absorb: a quarter of it while no
    # cell is locked, an eighth while tracking); it runs in slices beside the tracking, and while no cell
    # is locked what arrives during a search is skipped, not queued. 0: every search at once,
    # as in replay (a full search of a wide band then overflows the queue)
    search_duty: float = 0.1
    # search the band blindly for an SSB off the raster (no centre frequency, or a wrong one;
    # ReceiverConfig.blind_search)
    blind_search: bool = True
    # I and Q swapped at the source (Q first, spectrum inverted): conjugate every sample
    # (ReceiverConfig.swap_iq); iq_check: while no cell was ever found, look for it in a failed
    # search block's complex conjugate too, and swap when it is there (ReceiverConfig.iq_swap_check)
    swap_iq: bool = False
    iq_check: bool = True

    def __post_init__(self):
        if self.period_ms not in (5.0, 10.0, 20.0, 40.0, 80.0, 160.0):
            raise ConfigError(f"receiver.period_ms={self.period_ms} not an SSB periodicity (5, 10, 20, 40, 80, 160)")
        check_range("receiver.search_duty", self.search_duty, 0.0, 0.9)
        check_range("receiver.max_cfo_hz", self.max_cfo_hz, 0.0, 100e3)


@dataclass(frozen=True)
class DetectorSection:
    model: str = "default"  # "default" (the shipped DT-DDNN), "classical", or a .onnx / model dir
    baseline: Optional[str] = None  # ssbwatch calibrate output
    # > 0: with no file at ``baseline`` yet, learn it from the stream's first this many seconds
    # (a declared quiet period, detector/learn.py) and write it there
    learn_baseline_s: float = 0.0

    def __post_init__(self):
        check_range("detector.learn_baseline_s", self.learn_baseline_s, 0.0, 86400.0)

    def learns(self) -> bool:
        """Whether the baseline is to be learned (set, and no file there yet)."""
        return self.learn_baseline_s > 0 and self.baseline is not None and not Path(self.baseline).exists()


@dataclass(frozen=True)
class JsonlSection:
    path: Optional[str] = "-"  # file, "-" for stdout, null for none
    records: bool = True  # also write the per-SSB records (events and stats always)
    max_bytes: int = 100 * 1024 * 1024  # rotate when the file would grow beyond this (0: never)
    backups: int = 5  # PATH.1 .. PATH.N kept

    def __post_init__(self):
        check_range("outputs.jsonl.max_bytes", self.max_bytes, 0, 1 << 50)
        check_range("outputs.jsonl.backups", self.backups, 0, 1000)


@dataclass(frozen=True)
class PrometheusSection:
    enabled: bool = False
    host: str = "127.0.0.1"  # loopback unless configured otherwise
    port: int = 9108

    def __post_init__(self):
        check_range("outputs.prometheus.port", self.port, 0, 65535)


@dataclass(frozen=True)
class MqttSection:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "ssbwatch"
    client_id: str = "ssbwatch"
    qos: Literal[1, 2] = 1
    keepalive_s: int = 30
    max_pending: int = 1000  # events kept for retry while the broker is unreachable
    username: Optional[str] = None
    password_file: Optional[str] = None  # file holding the password (not in the config)

    def __post_init__(self):
        check_range("outputs.mqtt.port", self.port, 1, 65535)
        check_range("outputs.mqtt.keepalive_s", self.keepalive_s, 5, 3600)
        check_range("outputs.mqtt.max_pending", self.max_pending, 1, 10**6)
        if not self.topic_prefix or any(c in self.topic_prefix for c in "#+"):
            raise ConfigError(f"outputs.mqtt.topic_prefix={self.topic_prefix!r}: non-empty, no wildcards")


@dataclass(frozen=True)
class OutputsSection:
    jsonl: JsonlSection = field(default_factory=JsonlSection)
    stats_interval_s: float = 10.0  # 0: only at exit
    prometheus: PrometheusSection = field(default_factory=PrometheusSection)
    mqtt: MqttSection = field(default_factory=MqttSection)

    def __post_init__(self):
        check_range("outputs.stats_interval_s", self.stats_interval_s, 0, 86400)


@dataclass(frozen=True)
class QueueSection:
    max_samples: int = 4 * 1024 * 1024  # 32 MB of complex64; ~0.14 s at 30.72 Msps
    drain_timeout_s: float = 2.0  # at shutdown / source change; the rest counts as dropped
    # while the pipeline keeps up with a locked cell, it takes the queued blocks once this much
    # stream time is queued (or twice this in wall time has passed; at most half the queue), as
    # one batch: the SSBs they complete share one batch of band extractions, grids and features
    # (less CPU per SSB), and their records come up to this much later. While no cell is locked,
    # each block as it arrives (the cell search's slices). 0: always each block as it arrives
    batch_s: float = 0.1

    def __post_init__(self):
        check_range("queue.max_samples", self.max_samples, 1024, 1 << 30)
        check_range("queue.drain_timeout_s", self.drain_timeout_s, 0, 60)
        check_range("queue.batch_s", self.batch_s, 0, 1.0)


@dataclass(frozen=True)
class WatchdogSection:
    enabled: bool = True  # systemd sd_notify (only when $NOTIFY_SOCKET is set)
    require_samples: bool = True  # ping WATCHDOG=1 only while samples arrive


@dataclass(frozen=True)
class EdgeConfig:
    source: SourceSection = field(default_factory=SourceSection)
    receiver: ReceiverSection = field(default_factory=ReceiverSection)
    detector: DetectorSection = field(default_factory=DetectorSection)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    outputs: OutputsSection = field(default_factory=OutputsSection)
    queue: QueueSection = field(default_factory=QueueSection)
    watchdog: WatchdogSection = field(default_factory=WatchdogSection)

    def check_runnable(self) -> None:
        """What a config file may leave to the command line, the run needs."""
        s = self.source
        if not s.uri:
            raise ConfigError("source.uri is not set (config file or --source)")
        if self.receiver.ssb_freq_hz is not None and s.center_freq_hz is None:
            raise ConfigError("receiver.ssb_freq_hz needs source.center_freq_hz (or --center-freq)")
        if self.detector.learn_baseline_s > 0 and not self.detector.baseline:
            raise ConfigError("detector.learn_baseline_s needs detector.baseline (or --baseline): "
                              "the file the learned baseline is written to")


def _alert_errors(fn: Callable[[], EdgeConfig], where: str) -> EdgeConfig:
    try:
        return fn()
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:  # AlertConfig raises ValueError("<key>: ...")
        raise ConfigError(f"{where}alerts.{exc}") from None


def edge_config_from_dict(data: dict) -> EdgeConfig:
    data = dict(data or {})
    version = data.pop("schema_version", 1)
    if version != 1:
        raise ConfigError(f"schema_version={version!r} not supported (expected 1)")
    return _alert_errors(lambda: from_dict(EdgeConfig, data), "")


def load_edge_config(path: str | Path) -> EdgeConfig:
    """Read and validate an edge YAML; unknown keys are errors naming the key."""
    return _alert_errors(lambda: load_yaml(path, EdgeConfig), f"{path}: ")


def _replace(obj, **kw):
    kw = {k: v for k, v in kw.items() if v is not None}
    return dataclasses.replace(obj, **kw) if kw else obj


def apply_overrides(cfg: EdgeConfig, args: argparse.Namespace) -> EdgeConfig:
    """Command-line options override the config file."""
    src = _replace(cfg.source, uri=getattr(args, "source", None), format=getattr(args, "format", None),
                   sample_rate_hz=getattr(args, "sample_rate", None),
                   center_freq_hz=getattr(args, "center_freq", None))
    if getattr(args, "follow", False):
        src = dataclasses.replace(src, follow=True)
    scs = getattr(args, "scs", None)
    rx = _replace(cfg.receiver, scs=(None if scs is None else (scs if scs == "auto" else int(scs))),
                  ssb_freq_hz=getattr(args, "ssb_freq", None), period_ms=getattr(args, "period_ms", None),
                  max_cfo_hz=getattr(args, "max_cfo_hz", None))
    det = _replace(cfg.detector, model=getattr(args, "model", None), baseline=getattr(args, "baseline", None),
                   learn_baseline_s=getattr(args, "learn_baseline", None))
    out = cfg.outputs
    if getattr(args, "jsonl", None) is not None:
        out = dataclasses.replace(out, jsonl=dataclasses.replace(out.jsonl, path=args.jsonl))
    if getattr(args, "metrics_port", None) is not None:
        out = dataclasses.replace(out, prometheus=dataclasses.replace(
            out.prometheus, enabled=True, port=int(args.metrics_port)))
    return dataclasses.replace(cfg, source=src, receiver=rx, detector=det, outputs=out)


def config_from_args(args: argparse.Namespace) -> EdgeConfig:
    cfg = load_edge_config(args.config) if getattr(args, "config", None) else EdgeConfig()
    try:
        cfg = apply_overrides(cfg, args)
    except ConfigError:
        raise
    cfg.check_runnable()
    return cfg


# ---------------------------------------------------------------------------
# JSONL output with size-based rotation
# ---------------------------------------------------------------------------
class JsonlWriter:
    """Appends JSON lines to ``path`` (``-``: stdout); rotates by size.

    ``write(obj, durable=True)`` flushes and fsyncs before returning (events);
    records are buffered and flushed by :meth:`flush`.  Rotation renames
    PATH -> PATH.1 -> ... -> PATH.<backups> (the oldest is removed).
    """

    def __init__(self, path: str, max_bytes: int = 0, backups: int = 5, stream=None):
        self.path = path
        self.max_bytes = int(max_bytes)
        self.backups = int(backups)
        self.errors = 0
        self.last_error: Optional[str] = None
        if path == "-":
            self._f = stream if stream is not None else sys.stdout
            self._own = False
            self._size = 0
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._f = open(path, "a", encoding="utf-8")
            self._own = True
            self._size = self._f.tell()

    def _rotate(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                a = f"{self.path}.{i}"
                if os.path.exists(a):
                    os.replace(a, f"{self.path}.{i + 1}")
            os.replace(self.path, f"{self.path}.1")
            self._f = open(self.path, "a", encoding="utf-8")
        else:
            self._f = open(self.path, "w", encoding="utf-8")
        self._size = 0

    def write(self, obj: dict, durable: bool = False) -> bool:
        """Write one line; False (and ``errors`` counted) when it failed, e.g. disk full."""
        line = json.dumps(obj, allow_nan=False, default=_json_default) + "\n"
        try:
            if self._own and self.max_bytes and self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
            self._f.write(line)
            self._size += len(line.encode()) if not line.isascii() else len(line)
            if durable:
                self._f.flush()
                try:
                    os.fsync(self._f.fileno())
                except (OSError, ValueError, AttributeError) as exc:  # a pipe/tty cannot be fsync'd
                    if self._own:
                        raise OSError(f"fsync failed: {exc}") from exc
            return True
        except (OSError, ValueError) as exc:
            self.errors += 1
            self.last_error = str(exc)
            log.error("cannot write %s: %s", self.path, exc)
            return False

    def flush(self) -> None:
        try:
            self._f.flush()
        except (OSError, ValueError) as exc:
            self.errors += 1
            self.last_error = str(exc)

    def close(self) -> None:
        try:
            self._f.flush()
            if self._own:
                os.fsync(self._f.fileno())
                self._f.close()
        except (OSError, ValueError) as exc:
            log.error("closing %s: %s", self.path, exc)


def _json_default(v):
    import numpy as np

    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _sanitize(obj: dict) -> dict:
    """Non-finite floats -> None (JSON has no NaN)."""
    for k, v in obj.items():
        if isinstance(v, float) and not math.isfinite(v):
            obj[k] = None
    return obj


# ---------------------------------------------------------------------------
# systemd notify (pure Python, no libsystemd)
# ---------------------------------------------------------------------------
class SdNotifier:
    """sd_notify over ``$NOTIFY_SOCKET`` plus the watchdog rule of this daemon.

    ``tick(samples_in)`` sends WATCHDOG=1 at most every ``WATCHDOG_USEC / 2``
    and, with ``require_samples``, only when ``samples_in`` grew since the
    previous ping: a stalled input stops the pings and systemd restarts the
    service after ``WatchdogSec``.
    """

    def __init__(self, environ: Optional[dict] = None, *, require_samples: bool = True, enabled: bool = True):
        env = os.environ if environ is None else environ
        addr = env.get("NOTIFY_SOCKET") if enabled else None
        self._sock = None
        self._addr = None
        if addr:
            if addr.startswith("@"):
                addr = "\0" + addr[1:]
            self._addr = addr
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        self.watchdog_s: Optional[float] = None
        if self._sock is not None and usec and (not pid or pid == str(os.getpid())):
            try:
                self.watchdog_s = int(usec) / 1e6
            except ValueError:
                self.watchdog_s = None
        self.require_samples = require_samples
        self._last_ping = -math.inf
        self._last_samples = 0
        self.pings = 0

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, message: str) -> bool:
        if self._sock is None:
            return False
        try:
            self._sock.sendto(message.encode(), self._addr)
            return True
        except OSError as exc:
            log.warning("sd_notify failed: %s", exc)
            return False

    def tick(self, samples_in: int, now: Optional[float] = None) -> bool:
        """Maybe send WATCHDOG=1; returns True when it did."""
        if self.watchdog_s is None:
            return False
        now = time.monotonic() if now is None else now
        if now - self._last_ping < self.watchdog_s / 2:
            return False
        if self.require_samples and samples_in <= self._last_samples:
            return False
        self._last_samples = samples_in
        self._last_ping = now
        self.pings += 1
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
def record_features(rec: dict) -> dict:
    """Alert ``features`` from a per-SSB record (see the module docstring)."""
    out: dict[str, Any] = {}
    peak = rec.get("profile_peak_db")
    if isinstance(peak, (int, float)) and math.isfinite(peak):
        out["narrowband_ratio"] = 1.0 if peak > NARROWBAND_PROFILE_PEAK_DB else 0.0
    spread = rec.get("sym_spread_db")
    if isinstance(spread, (int, float)) and math.isfinite(spread):
        out["pulsed"] = bool(spread > PULSED_SYM_SPREAD_DB)
    return out


def alert_update(alerts, rec: dict) -> list:
    """Feed one per-SSB record to the alert state machine ``alerts``
    (:class:`detector.alerts.AlertStateMachine`), as the daemon does; its events.
    A record without a verdict (invalid, or no score) counts as an SSB but moves no state."""
    valid = bool(rec.get("valid", True)) and rec.get("score") is not None and rec.get("jammed") is not None
    return alerts.update(
        pci=rec.get("pci"), t_s=float(rec.get("t", 0.0)), sample=int(rec.get("sample", 0)),
        jammed=bool(rec.get("jammed")), score=rec.get("score") if valid else float("nan"),
        valid=valid, sjnr_db_est=rec.get("snr_est_db"), features=record_features(rec),
    )


def load_baseline(path: Optional[str]):
    if not path:
        return None
    from .baseline import SiteBaseline

    return SiteBaseline.load(path)


def make_pipeline(cfg: EdgeConfig, detector, baseline, datatype: str):
    from .pipeline import ScoringPipeline
    from .receiver import ReceiverConfig

    s, r = cfg.source, cfg.receiver
    offset = None if r.ssb_freq_hz is None else r.ssb_freq_hz - s.center_freq_hz
    rcfg = ReceiverConfig(scs_khz=None if r.scs == "auto" else int(r.scs), ssb_offset_hz=offset,
                          period_ms=r.period_ms, search_duty=r.search_duty, cfo_search_hz=r.max_cfo_hz,
                          blind_search=r.blind_search, swap_iq=r.swap_iq, iq_swap_check=r.iq_check)
    pipe = ScoringPipeline(s.sample_rate_hz, s.center_freq_hz, datatype, receiver_config=rcfg,
                           detector=detector, baseline=baseline, label=s.uri)
    pipe.receiver.copy_input = False  # the queue hands over fresh blocks: kept by reference, not copied
    return pipe


class _Totals:
    """Counters that survive source changes (plain ints; read by the metrics thread)."""

    def __init__(self) -> None:
        self.samples_in = 0
        self.samples_processed = 0
        self.samples_dropped = 0
        self.samples_nonfinite = 0
        self.samples_unsearched = 0  # processed, but skipped by the receiver while it searched for a cell
        self.timing_jumps = 0  # SSB timing found moved (samples lost upstream, unseen)
        self.malformed_messages = 0
        self.dropped_bytes = 0
        self.reconnects = 0
        self.ssbs_scored = 0
        self.ssbs_jammed = 0
        self.ssbs_invalid = 0
        self.ssbs_faded = 0  # jammed verdicts withdrawn by the fading guard
        self.ssbs_mistimed_cell = 0  # the model's jammed verdicts withdrawn for a mistimed co-channel cell
        self.ssbs_neighbour_cancelled = 0  # uncalibrated jammed verdicts withdrawn (pipeline.ScoringPipeline._neighbour_guard)
        # uncalibrated SSBs the band-excess rule left to the model beside an unsynchronised cell ("offtime_cell",
        # "band_excess_partial")
        self.ssbs_band_excess_offtime = 0
        # SSBs scored by the classical detector: a site the model cannot be calibrated to
        # (model.DTDDNNDetector.site_falls_back), or its own mistimed cell (pipeline.SITE_MISTIMED_RHO2)
        self.ssbs_site_classical = 0
        self.ssbs_clipped = 0  # SSBs with samples at the ADC's rails (receiver gain too high)
        self.ssbs_gain_step = 0  # jammed verdicts made invalid: the receiver's gain stepped inside the SSB
        self.ssbs_clip_overload = 0  # jammed verdicts made invalid: the ADC's clipping distortion explains them
        # SSBs jammed with the cell's PSS lost and the cell not found by a search, their null REs over
        # the stream's clean level (pipeline.HIDDEN_NULL_RISE_DB: a jammer under an AGC, or the cell off the air)
        self.ssbs_cell_hidden = 0
        self.no_cell_blocks = 0  # cell searches that did not find a calibrated site's cell (jammed records)
        self.events: dict[str, int] = {"JAMMING_STARTED": 0, "JAMMING_CLEARED": 0}
        # the cells other than the serving one that the cell searches reported on the channel (a
        # neighbour, or a fake SSB's PCI): PCI -> seen off the serving cell's timing (receiver.cells_seen)
        self.other_cells: dict[int, bool] = {}
        self.event_write_errors = 0
        self.processing_errors = 0
        self.queue_max_fill = 0
        self.reloads = 0
        self.reload_failures = 0
        self.source_opens = 0
        self.busy_s = 0.0
        self.processed_s = 0.0  # seconds of IQ processed


def _all_finite(block) -> bool:
    """True when no sample is NaN/Inf: their sum of squares is finite (one pass; a huge
    but finite value may overflow it, then the caller's exact count finds nothing)."""
    import numpy as np

    v = block.view(np.float32) if block.flags.c_contiguous else np.ascontiguousarray(block).view(np.float32)
    return bool(np.isfinite(np.dot(v, v)))


class _ResyncSource:
    """Wraps a source for the pump: when the source makes a new connection, or a
    recording's next capture segment does not continue the stream (retuned, samples
    lost: ``stats.discontinuities``), remembers the queue index of its first sample
    (the receiver is reset there, since samples between connections are lost
    without a trace) and, for a recording, the centre frequency from there on."""

    def __init__(self, source, queue: "BlockQueue") -> None:
        self._src = source
        self._queue = queue
        self._conns = source.stats.connections
        self._parts = getattr(source.stats, "discontinuities", 0)
        self.resync_at: list[int] = []  # appended by the pump thread, popped by the main loop
        self.retune_at: dict[int, float] = {}  # resync index -> the recording's centre frequency there
        self._lock = threading.Lock()
        self.nonfinite = 0  # NaN/Inf samples read (counted here, on the reader thread)
        self._float_input = getattr(source, "datatype", "cf32_le") == "cf32_le"

    def read(self, timeout_s: float):
        block = self._src.read(timeout_s)
        if block is not None:
            if self._float_input and not _all_finite(block):  # (integer formats cannot hold NaN)
                import numpy as np

                bad = int(np.count_nonzero(~np.isfinite(block)))
                if bad and self.nonfinite == 0:
                    log.warning("non-finite (NaN/Inf) samples in the input; affected SSBs are marked invalid")
                self.nonfinite += bad
            c = self._src.stats.connections
            if c != self._conns:
                first = self._conns == 0
                self._conns = c
                if not first:
                    with self._lock:
                        self.resync_at.append(self._queue.next_index)
            parts = getattr(self._src.stats, "discontinuities", 0)
            if parts != self._parts:
                self._parts = parts
                at = self._queue.next_index
                with self._lock:
                    if not self.resync_at or self.resync_at[-1] != at:
                        self.resync_at.append(at)
                    freq = getattr(self._src, "part_center_freq_hz", None)
                    if freq is not None:
                        self.retune_at[at] = float(freq)
        return block

    def pop_resync(self, index_end: int) -> Optional[tuple[int, Optional[float]]]:
        """The last resync point before ``index_end`` and the centre frequency the
        recording was retuned to there (None: not retuned), all of them consumed;
        None when there is none."""
        with self._lock:
            hit = None
            while self.resync_at and self.resync_at[0] < index_end:
                at = self.resync_at.pop(0)
                hit = (at, self.retune_at.pop(at, hit[1] if hit else None))
            return hit

    def resync_in(self, a: int, b: int) -> bool:
        """Whether a resync point lies in [a, b) (not consumed)."""
        with self._lock:
            return any(a <= r < b for r in self.resync_at)

    def __getattr__(self, name):
        return getattr(self._src, name)


def open_section_source(s: SourceSection):
    """The source the ``source:`` section names, opened (``ssbwatch run`` and ``record``)."""
    from .sources import open_source

    opts: dict[str, Any] = {}
    scheme = s.uri.split("://", 1)[0].lower() if "://" in s.uri else ""
    if scheme in ("tcp", "rtltcp"):
        opts.update(backoff_initial_s=s.reconnect_initial_s, backoff_max_s=s.reconnect_max_s,
                    connect_timeout_s=1.0)
    return open_source(s.uri, datatype=s.format, sample_rate_hz=s.sample_rate_hz,
                       center_freq_hz=s.center_freq_hz, follow=s.follow,
                       block_samples=s.block_samples, **opts)


class _Stream:
    """One opened source with its queue, pump and pipeline."""

    def __init__(self, cfg: EdgeConfig, detector, baseline, pipeline_factory) -> None:
        from .sources import BlockQueue, SourcePump

        s = cfg.source
        self.source = open_section_source(s)
        try:
            if self.source.sample_rate_hz is None:
                raise ConfigError(f"{s.uri}: the sample rate is unknown (source.sample_rate_hz / --sample-rate)")
            self.fs = float(self.source.sample_rate_hz)
            if s.center_freq_hz is None and self.source.center_freq_hz is not None:
                cfg = dataclasses.replace(cfg, source=dataclasses.replace(s, center_freq_hz=self.source.center_freq_hz))
            if cfg.source.sample_rate_hz is None:
                cfg = dataclasses.replace(cfg, source=dataclasses.replace(cfg.source, sample_rate_hz=self.fs))
            self.center_freq_hz = cfg.source.center_freq_hz  # the configured centre, else the recording's own
            self.queue = BlockQueue(cfg.queue.max_samples)
            # a backlog is pushed in blocks of up to what `ssbwatch replay` reads (Daemon._coalesce:
            # the SSBs they complete are one batch of band extractions, grids and features; at 2^18
            # samples, ~3 SSBs of a busy cell at 30.72 Msps, the daemon took 25 % more CPU per SSB
            # than at 2^20)
            from .replay import block_samples_for
            self.coalesce_max = block_samples_for(self.fs)
            self.batch_samples = min(int(cfg.queue.batch_s * self.fs), cfg.queue.max_samples // 2, self.coalesce_max)
            self.pipeline = pipeline_factory(cfg, detector, baseline, self.source.datatype)
            rx = getattr(self.pipeline, "receiver", None)
            if (rx is not None and getattr(rx, "converter", 1) is None and getattr(rx, "n_samples_in", 1) == 0
                    and getattr(self.source, "native_capable", False)):
                # integer samples stay integers in the queue (half the memory) and the receiver
                # converts what it reads (once locked: the SSB windows alone)
                from signals import iq as iqio

                dt = self.source.datatype
                self.source.set_native(True)
                rx.converter = lambda raw: iqio.to_complex64(raw, dt)
            if rx is not None and hasattr(rx, "search_slack"):
                # a cell search may use the time the queue can absorb: a quarter of it while no
                # cell is locked (what queues up meanwhile is skipped cheaply), an eighth while
                # tracking (what queues up then has to be tracked, at a few times real time)
                q, quarter, eighth = self.queue, self.queue.max_samples // 4, self.queue.max_samples // 8
                rx.search_slack = lambda: q.fill_samples < (eighth if rx.locked else quarter)
            self.wrapped = _ResyncSource(self.source, self.queue)
            self.pump = SourcePump(self.wrapped, self.queue, read_timeout_s=0.1)
        except BaseException:
            self.source.close()
            raise
        self.discarded = 0  # left in the queue at close (counted as dropped)
        self.baseline_checked = False  # the baseline's configuration for the locked cell looked up (once)
        self.resyncs = 0
        self.iq_swap_logged = False

    def start(self) -> None:
        self.pump.start()

    def stop_reading(self) -> None:
        self.pump.close(timeout_s=2.0)
        self.queue.close()

    def close(self) -> None:
        self.stop_reading()
        self.source.close()


# ---------------------------------------------------------------------------
# The daemon
# ---------------------------------------------------------------------------
class Daemon:
    """Runs the edge pipeline until stopped; see the module docstring.

    ``config_loader`` (re-)reads the configuration for SIGHUP / :meth:`request_reload`.
    ``learn_in_background`` False: a baseline learned over a quiet period
    (``detector.learn_baseline_s``) is built between two pushes instead of in a
    thread beside them (deterministic: the SSBs after the period are calibrated).
    ``pipeline_factory(cfg, detector, baseline, datatype)`` builds the scoring
    pipeline (tests inject slow or fake ones).  ``stream`` is where
    ``outputs.jsonl.path: "-"`` writes (default stdout).
    """

    def __init__(self, cfg: EdgeConfig, *, config_loader: Optional[Callable[[], EdgeConfig]] = None,
                 pipeline_factory=make_pipeline, stream=None, environ: Optional[dict] = None,
                 learn_in_background: bool = True) -> None:
        cfg.check_runnable()
        self._learn_background = learn_in_background
        self.cfg = cfg
        self._loader = config_loader
        self._pipeline_factory = pipeline_factory
        self._stream = stream
        self._environ = environ
        self.totals = _Totals()
        self._stop = threading.Event()
        self._hard_stop = False
        self._reload = threading.Event()
        self.alerts = AlertStateMachine(cfg.alerts)
        from .pipeline import load_detector

        self.detector = load_detector(cfg.detector.model)
        self.baseline = self._section_baseline(cfg.detector)
        self.learner = None  # a BaselineLearner while the baseline is being learned (detector/learn.py)
        self.stream: Optional[_Stream] = None
        self.jsonl: Optional[JsonlWriter] = None
        self.metrics = None
        self.mqtt = None
        self.notifier: Optional[SdNotifier] = None
        self.exit_reason = ""
        self.started = threading.Event()
        self._last_stats = time.monotonic()
        self._last_status = 0.0

    # -- control (any thread / signal handlers) ------------------------------
    def request_stop(self) -> None:
        if self._stop.is_set():
            self._hard_stop = True
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    def _install_signals(self) -> list:
        if threading.current_thread() is not threading.main_thread():
            return []
        old = []
        for sig, fn in ((signal.SIGTERM, lambda *_: self.request_stop()),
                        (signal.SIGINT, lambda *_: self.request_stop()),
                        (signal.SIGHUP, lambda *_: self.request_reload())):
            old.append((sig, signal.signal(sig, fn)))
        return old

    # -- counters ------------------------------------------------------------
    def snapshot(self) -> dict:
        """All counters (thread-safe enough: plain ints read under the GIL)."""
        t = self.totals
        st = self.stream
        q = st.queue.stats if st is not None else None
        src = st.source.stats if st is not None else None
        rx = getattr(st.pipeline, "receiver", None) if st is not None else None
        snap = {
            "samples_in": t.samples_in + (q.samples_in if q else 0),
            "samples_processed": t.samples_processed,
            "samples_dropped": t.samples_dropped + (q.samples_dropped if q else 0),
            "queue_fill_samples": q.fill_samples if q else 0,
            "queue_max_fill_samples": max(t.queue_max_fill, q.max_fill_samples if q else 0),
            "samples_nonfinite": t.samples_nonfinite + (st.wrapped.nonfinite if st is not None else 0),
            "samples_unsearched": t.samples_unsearched + (getattr(rx, "n_unsearched", 0) if rx is not None else 0),
            "timing_jumps": t.timing_jumps + (getattr(rx, "n_timing_jumps", 0) if rx is not None else 0),
            "dc_offset_power_ratio": getattr(rx, "dc_offset_power_ratio", 0.0),
            "iq_image_power_ratio": getattr(rx, "iq_image_power_ratio", 0.0),
            "malformed_messages": t.malformed_messages + (src.malformed_messages if src else 0),
            "dropped_bytes": t.dropped_bytes + (src.dropped_bytes if src else 0),
            "source_reconnects": t.reconnects + (src.reconnects if src else 0),
            "ssbs_scored": t.ssbs_scored,
            "ssbs_jammed": t.ssbs_jammed,
            "ssbs_invalid": t.ssbs_invalid,
            "ssbs_faded": t.ssbs_faded,
            "ssbs_mistimed_cell": t.ssbs_mistimed_cell,
            "ssbs_neighbour_cancelled": t.ssbs_neighbour_cancelled,
            "ssbs_band_excess_offtime": t.ssbs_band_excess_offtime,
            "ssbs_site_classical": t.ssbs_site_classical,
            "ssbs_clipped": t.ssbs_clipped,
            "ssbs_gain_step": t.ssbs_gain_step,
            "ssbs_clip_overload": t.ssbs_clip_overload,
            "ssbs_cell_hidden": t.ssbs_cell_hidden,
            "no_cell_blocks": t.no_cell_blocks,
            "events": dict(t.events),
            "other_cells": sorted(t.other_cells),
            "offtime_cells": sorted(p for p, off in t.other_cells.items() if off),
            "other_cells_seen": len(t.other_cells),
            "event_write_errors": t.event_write_errors,
            "processing_errors": t.processing_errors,
            "lock_state": 1 if (rx is not None and getattr(rx, "locked", False)) else 0,
            "iq_swapped": 1 if (rx is not None and getattr(rx, "cfg", None) is not None
                                and getattr(rx.cfg, "swap_iq", False)) else 0,
            "pci": getattr(rx, "pci", None),
            "calibrated": 1 if self.baseline is not None else 0,
            "baseline_learning": 1 if self.learner is not None else 0,
            "real_time_factor": (t.processed_s / t.busy_s) if t.busy_s > 0 else 0.0,
            "reloads": t.reloads,
            "reload_failures": t.reload_failures,
            "mqtt_events_dropped": self.mqtt.dropped if self.mqtt is not None else 0,
        }
        if self.mqtt is not None:
            snap["mqtt"] = self.mqtt.stats()
        return snap

    def _dropped_now(self) -> int:
        st = self.stream
        return self.totals.samples_dropped + (st.queue.stats.samples_dropped if st is not None else 0)

    def stats_record(self) -> dict:
        snap = self.snapshot()
        snap.pop("mqtt", None)
        return {"type": "stats", "source": self.cfg.source.uri, "wall_time": round(time.time(), 3),
                "real_time_factor": round(snap.pop("real_time_factor"), 3), **snap,
                "source_errors": list(self.stream.source.stats.errors[-5:]) if self.stream else []}

    # -- outputs -------------------------------------------------------------
    def _open_jsonl(self, sec: JsonlSection) -> Optional[JsonlWriter]:
        if sec.path is None:
            return None
        return JsonlWriter(sec.path, sec.max_bytes, sec.backups, stream=self._stream)

    def _open_metrics(self, sec: PrometheusSection):
        if not sec.enabled:
            return None
        from .metrics import MetricsServer

        m = MetricsServer(self.snapshot, sec.host, sec.port)
        log.info("Prometheus metrics on http://%s:%d/metrics", m.host, m.port)
        return m

    def _open_mqtt(self, sec: MqttSection):
        if not sec.enabled:
            return None
        from .mqtt import MqttPublisher

        password = None
        if sec.password_file:
            password = Path(sec.password_file).read_text().strip()
        return MqttPublisher(sec.host, sec.port, topic_prefix=sec.topic_prefix, client_id=sec.client_id,
                             qos=sec.qos, keepalive_s=sec.keepalive_s, max_pending=sec.max_pending,
                             username=sec.username, password=password)

    def _open_outputs(self) -> None:
        o = self.cfg.outputs
        self.jsonl = self._open_jsonl(o.jsonl)
        self.metrics = self._open_metrics(o.prometheus)
        self.mqtt = self._open_mqtt(o.mqtt)

    def _close_outputs(self) -> None:
        if self.mqtt is not None:
            self.mqtt.close(timeout_s=1.0)
        if self.metrics is not None:
            self.metrics.close()
        if self.jsonl is not None:
            self.jsonl.close()

    # -- processing ----------------------------------------------------------
    def _emit_records(self, recs: list[dict]) -> None:
        t = self.totals
        write = self.jsonl is not None and self.cfg.outputs.jsonl.records
        dropped = None if not recs else self._dropped_now()
        for rec in recs:
            t.ssbs_scored += 1
            t.ssbs_jammed += rec.get("jammed") is True
            t.ssbs_invalid += rec.get("valid") is False
            t.ssbs_faded += "fade_db" in rec
            t.ssbs_mistimed_cell += "mistimed_cell" in rec
            t.ssbs_neighbour_cancelled += "neighbour_cancelled" in rec
            t.ssbs_band_excess_offtime += "offtime_cell" in rec or bool(rec.get("band_excess_partial"))
            t.ssbs_site_classical += rec.get("detector") not in (None, self.detector.name)
            if "clipped" in rec and t.ssbs_clipped == 0:
                log.warning("ADC clipping: samples at the converter's rails in the SSBs' windows (the receiver gain is "
                            "too high); SSBs whose interference the clipping distortion explains are not scored")
            t.ssbs_clipped += "clipped" in rec
            t.ssbs_gain_step += "gain_step_db" in rec
            t.ssbs_clip_overload += "clip_overload_db" in rec
            t.ssbs_cell_hidden += "cell_hidden_db" in rec
            t.no_cell_blocks += bool(rec.get("no_cell"))
            if write:
                out = {"type": "ssb", **rec, "wall_time": round(time.time(), 3), "samples_dropped": dropped}
                self.jsonl.write(_sanitize(out))
            for ev in alert_update(self.alerts, rec):
                self._emit_event(ev)
        if write and recs:
            self.jsonl.flush()

    def _emit_event(self, ev) -> None:
        if self.learner is not None and ev.kind == "JAMMING_STARTED" and self.learner.state == "learning":
            self.learner.restart()
            log.warning("jamming alert during the baseline's quiet period: the period starts over "
                        "(%d restarts); the baseline is learned from %.6g s without an alert",
                        self.learner.restarts, self.learner.seconds)
        d = {"type": "event", **ev.to_dict(), "source": self.cfg.source.uri, "wall_time": round(time.time(), 3)}
        self.totals.events[ev.kind] = self.totals.events.get(ev.kind, 0) + 1
        # durable first (DESIGN.md §9): written + fsync'd before it is sent anywhere
        if self.jsonl is not None and not self.jsonl.write(d, durable=True):
            self.totals.event_write_errors += 1
        log.warning("%s pci=%s t=%.3f s score=%.2f %s", ev.kind, ev.pci, ev.t_s, ev.score,
                    json.dumps(ev.character))
        if self.mqtt is not None:
            self.mqtt.publish_event(d)

    def _process(self, block, index: int) -> None:
        """Push one block, or a list of consecutive blocks (a backlog, see
        :meth:`_coalesce`) that starts at sample ``index``."""
        st = self.stream
        t = self.totals
        blocks = block if isinstance(block, list) else [block]
        n = sum(len(b) for b in blocks)
        resync = st.wrapped.pop_resync(index + n)
        if resync is not None:
            st.resyncs += 1
            rx = getattr(st.pipeline, "receiver", None)
            if rx is not None:
                recs = st.pipeline.flush()
                self._emit_records(recs)
                self._reset_receiver(rx)
                freq = resync[1]
                if freq is None:
                    log.warning("source reconnected, or the recording's samples do not continue: receiver reset "
                                "at sample %d (samples lost in between)", index)
                else:
                    log.warning("the recording's next capture segment (retuned to %.6g Hz, or samples lost): "
                                "receiver reset at sample %d", freq, index)
                    self._retune(st, freq)
        t0 = time.perf_counter()
        try:
            if len(blocks) == 1:
                recs = st.pipeline.push(blocks[0], index)
            elif hasattr(st.pipeline, "push_blocks"):
                recs = st.pipeline.push_blocks(blocks, index)
            else:
                import numpy as np

                recs = st.pipeline.push(np.concatenate(blocks), index)
        except Exception:  # noqa: BLE001 - one bad block must not stop the daemon
            t.processing_errors += 1
            log.exception("processing failed at sample %d; receiver reset", index)
            recs = []
            rx = getattr(st.pipeline, "receiver", None)
            if rx is not None:
                self._reset_receiver(rx)
        t.busy_s += time.perf_counter() - t0
        t.samples_processed += n
        t.processed_s += n / st.fs
        rx = getattr(st.pipeline, "receiver", None)
        if getattr(rx, "iq_swap_detected", False) and not st.iq_swap_logged:
            st.iq_swap_logged = True
            log.warning("I and Q of %s look swapped (the cell PCI %s found only in the samples' complex "
                        "conjugate): conjugating every sample from now on; set receiver.swap_iq: true, or fix "
                        "the source's I/Q order", self.cfg.source.uri, getattr(rx, "pci", None))
        self._emit_records(recs)
        if rx is not None:
            self._note_cells(rx)
        if self.learner is not None:
            self._learn_step(index, index + n)
        if (self.baseline is not None and not st.baseline_checked and rx is not None
                and getattr(rx, "locked", False) and getattr(rx, "scs_khz", None)):
            st.baseline_checked = True
            if self.baseline.lookup(rx.scs_khz, st.fs, st.source.datatype) is None:
                from .replay import baseline_unmatched

                log.warning("%s", baseline_unmatched(self.baseline, rx.scs_khz, st.fs))

    def _coalesce(self, st: "_Stream", block, index: int):
        """A backlog as one push: ``block`` and the blocks queued right behind it
        (the next samples, nothing dropped between them, no source resync
        inside), up to the stream's ``coalesce_max`` samples in all, as a list for
        :meth:`_process`. The receiver gives the same records however its input
        is cut; one push of several blocks processes the SSB windows they
        complete together (batched band extraction, grids and features: less CPU
        per SSB while the pipeline is behind). While it keeps up, the queue holds
        one block and nothing changes."""
        n = len(block)
        parts = [block]
        while n < st.coalesce_max:
            nxt = st.queue.get_next(index + n, st.coalesce_max - n)
            if nxt is None:
                break
            if st.wrapped.resync_in(index + len(block), index + n + len(nxt)):
                # (a resync point is handled at the start of its block: keep it separate)
                self._process(parts if len(parts) > 1 else block, index)
                return nxt, index + n
            parts.append(nxt)
            n += len(nxt)
        return (parts if len(parts) > 1 else block), index

    def _note_cells(self, rx) -> None:
        """Keep the other cells the receiver's searches reported (``cells_seen``, which a
        receiver reset clears); log each cell the first time, and once more if it is later
        seen off the serving cell's timing."""
        seen = getattr(rx, "cells_seen", None)
        if not seen:
            return
        from .receiver import merge_cells

        for p in merge_cells(self.totals.other_cells, seen):
            log.info("another cell on the channel: PCI %d%s (serving PCI %s)", p,
                     " (off the serving cell's timing)" if self.totals.other_cells[p] else "",
                     getattr(rx, "pci", None))

    def _retune(self, st: "_Stream", freq_hz: float) -> None:
        """The stream's centre frequency from here on (a recording's next capture
        segment; ScoringPipeline.retune): the segment's own, moved as the configured
        centre moves the recording's first segment where one was given in its place."""
        parts = getattr(st.source, "parts", None)
        first = parts[0][2] if parts else None
        if first is not None and st.center_freq_hz is not None:
            freq_hz = st.center_freq_hz + (freq_hz - first)
        retune = getattr(st.pipeline, "retune", None)
        if callable(retune):
            retune(freq_hz)

    def _reset_receiver(self, rx) -> None:
        self._note_cells(rx)
        self.totals.samples_unsearched += getattr(rx, "n_unsearched", 0)
        self.totals.timing_jumps += getattr(rx, "n_timing_jumps", 0)
        rx.reset_states()

    def _drain(self, deadline_s: float) -> None:
        """Process what is queued (the pump has stopped) until empty or the deadline;
        the rest is discarded and counted as dropped."""
        st = self.stream
        end = time.monotonic() + deadline_s
        while not self._hard_stop and time.monotonic() < end:
            item = st.queue.get(0.0)
            if item is None:
                break
            self._process(*item)
        left = 0
        while True:
            item = st.queue.get(0.0)
            if item is None:
                break
            left += len(item[0])
        if left:
            log.warning("shutdown: %d queued samples not processed (counted as dropped)", left)
        st.discarded += left

    def _retire_stream(self, drain: bool = True) -> None:
        """Stop reading, drain, flush the receiver, close the source; fold its counters."""
        st = self.stream
        if st is None:
            return
        st.stop_reading()
        if drain:
            self._drain(self.cfg.queue.drain_timeout_s)
        else:
            self._drain(0.0)
        if not self._hard_stop:
            t0 = time.perf_counter()
            recs = st.pipeline.flush()
            self.totals.busy_s += time.perf_counter() - t0
            self._emit_records(recs)
        st.source.close()
        q, s, t = st.queue.stats, st.source.stats, self.totals
        t.samples_in += q.samples_in
        t.samples_dropped += q.samples_dropped + st.discarded
        t.malformed_messages += s.malformed_messages
        t.samples_nonfinite += st.wrapped.nonfinite
        t.samples_unsearched += getattr(getattr(st.pipeline, "receiver", None), "n_unsearched", 0)
        t.timing_jumps += getattr(getattr(st.pipeline, "receiver", None), "n_timing_jumps", 0)
        t.dropped_bytes += s.dropped_bytes
        t.reconnects += s.reconnects
        t.queue_max_fill = max(t.queue_max_fill, q.max_fill_samples)
        self.stream = None

    def _open_stream(self) -> None:
        self.stream = _Stream(self.cfg, self.detector, self.baseline, self._pipeline_factory)
        self.totals.source_opens += 1
        self._setup_learner()
        self.stream.start()
        log.info("reading %s (%s, %.6g Msps)", self.cfg.source.uri, self.stream.source.datatype,
                 self.stream.fs / 1e6)

    # -- the baseline learned over a quiet period (detector/learn.py) -----------
    @staticmethod
    def _section_baseline(sec: DetectorSection):
        """The baseline of a detector section: its file's, or None while it is to be learned."""
        if sec.learns():
            log.info("no baseline at %s yet: it is learned from the stream's first %.6g s (declared quiet)",
                     sec.baseline, sec.learn_baseline_s)
            return None
        if sec.learn_baseline_s > 0:
            log.info("baseline %s exists: loaded, not learned again (delete it to learn anew)", sec.baseline)
        return load_baseline(sec.baseline)

    def _setup_learner(self) -> None:
        """A learner for the current stream when the configuration asks for one (a new
        stream starts the quiet period over)."""
        self._collect_building()
        self.learner = None
        st = self.stream
        sec = self.cfg.detector
        rx = getattr(st.pipeline, "receiver", None) if st is not None else None
        if st is None or self.baseline is not None or not sec.learns() or not hasattr(st.pipeline, "observation_tap"):
            return
        from .learn import BaselineLearner

        s = self.cfg.source
        center = getattr(st.pipeline, "center_freq_hz", None) or s.center_freq_hz or None  # (a SigMF file's own)
        learner = BaselineLearner(sec.learn_baseline_s, sec.baseline, st.fs, center,
                                  st.source.datatype, label=s.uri, background=self._learn_background,
                                  detector=self.detector)
        st.pipeline.observation_tap = lambda obs: learner.take(obs, getattr(rx, "offset_hz", None))
        self.learner = learner

    def _collect_building(self) -> None:
        """A baseline being built: waited for (30 s at most) and, once built, used and reported."""
        lr = self.learner
        if lr is not None and lr.state == "building":
            lr.result(wait_s=30.0)
            self._learn_step(lr.position, lr.position)

    def _finish_learning(self) -> None:
        """At exit: a baseline being built is waited for and reported; a quiet period
        cut short is said to have written nothing."""
        self._collect_building()
        lr = self.learner
        if lr is not None and lr.state == "learning":
            log.warning("stopped %.3g s into the baseline's %.6g s quiet period (%d SSBs kept): no baseline "
                        "written", lr.elapsed_s, lr.seconds, lr.n_kept)
            self.learner = None

    def _learn_step(self, start: int, end: int) -> None:
        """Advance the learner; a finished baseline is used from here on and reported
        (a JSONL ``baseline`` line, written durably, and the log)."""
        lr = self.learner
        if lr.state == "learning" and self.alerts.jammed_pcis():
            lr.restart(count=False)  # (an alert is active: the quiet period starts when it clears)
        if lr.advance(start, end):
            log.info("baseline quiet period over: %d of its SSBs (%.6g s of stream) make it; building it",
                     lr.n_used, lr.elapsed_s)
        if lr.state not in ("done", "failed"):
            return
        self.learner = None
        st = self.stream
        if st is not None and getattr(st.pipeline, "observation_tap", None) is not None:
            st.pipeline.observation_tap = None
        rec = {"type": "baseline", "source": self.cfg.source.uri, "wall_time": round(time.time(), 3),
               "path": str(lr.path), "learned_s": round(lr.elapsed_s, 3), "restarts": lr.restarts,
               "ok": lr.state == "done", "sample": int(end)}
        if lr.state == "done":
            base = lr.baseline
            self.baseline = base
            if st is not None:
                st.pipeline.baseline = base
                st.pipeline.baseline_from_sample = int(end)
            falls_back = getattr(self.detector, "site_falls_back", lambda c: False)
            rec["configs"] = [{"key": c.key, "ssbs": c.n_ssb, "pcis": list(c.pcis),
                               "noise_floor_db": round(c.noise_floor_db, 2),
                               "snr_db": round(c.stats["snr_est_db"].median, 2) if "snr_est_db" in c.stats else None,
                               # what scores the site: the classical detector where the model cannot be
                               # calibrated to it (model.DTDDNNDetector.site_falls_back)
                               "detector": "classical" if falls_back(c) else self.detector.name}
                              for c in base.configs.values()]
            for c in rec["configs"]:
                if c["detector"] != self.detector.name:
                    log.warning("baseline %s: the model scores this site's clean SSBs as jammed beyond the most its "
                                "thresholds may be raised; its SSBs are scored by the classical detector against the "
                                "baseline (a co-channel cell off the serving cell's timing -- or a quiet period that "
                                "was not clean)", c["key"])
            from .replay import one_state_advice

            for c in base.configs.values():
                advice = one_state_advice(c, 1)  # (one stream: one state of the site's other cells)
                if advice:
                    log.warning("baseline %s", advice)
            log.info("baseline learned and written to %s: %s; scoring calibrated from sample %d", lr.path,
                     "; ".join(f"{c['key']}: {c['ssbs']} SSBs, PCI {c['pcis']}, SNR {c['snr_db']} dB"
                               for c in rec["configs"]), end)
        else:
            rec["error"] = lr.error
            log.error("baseline could not be learned (%s): scoring stays uncalibrated", lr.error)
        if self.jsonl is not None and not self.jsonl.write(rec, durable=True):
            self.totals.event_write_errors += 1
        if self.mqtt is not None:
            self.mqtt.publish_event(rec)  # (on <prefix>/events beside the alerts: the site is calibrated now)

    # -- reload --------------------------------------------------------------
    def _do_reload(self) -> None:
        self._reload.clear()
        if self._loader is None:
            log.warning("SIGHUP: no configuration file to reload")
            return
        if self.notifier:
            self.notifier.notify(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
        try:
            self._apply_config(self._loader())
            self.totals.reloads += 1
            log.info("configuration reloaded")
        except Exception as exc:  # noqa: BLE001 - any failure keeps the old configuration
            self.totals.reload_failures += 1
            log.error("reload failed, keeping the old configuration: %s", exc)
        finally:
            if self.notifier:
                self.notifier.notify("READY=1")

    def _apply_config(self, new: EdgeConfig) -> None:
        new.check_runnable()
        old = self.cfg
        # everything that can fail is built before anything is swapped
        det, base = self.detector, self.baseline
        if new.detector != old.detector:
            from .pipeline import load_detector

            det = load_detector(new.detector.model) if new.detector.model != old.detector.model else det
            base = self._section_baseline(new.detector)
        o_old, o_new = old.outputs, new.outputs
        jsonl = self._open_jsonl(o_new.jsonl) if o_new.jsonl != o_old.jsonl else self.jsonl
        # the metrics port may be the same one: close the old server first
        if o_new.prometheus != o_old.prometheus and self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        try:
            metrics = self._open_metrics(o_new.prometheus) if o_new.prometheus != o_old.prometheus else self.metrics
        except Exception:
            if jsonl is not self.jsonl and jsonl is not None:
                jsonl.close()
            try:
                self.metrics = self._open_metrics(o_old.prometheus)
            except Exception as exc:  # noqa: BLE001
                log.error("metrics endpoint could not be reopened: %s", exc)
            raise
        mqtt = self._open_mqtt(o_new.mqtt) if o_new.mqtt != o_old.mqtt else self.mqtt
        # swap
        if jsonl is not self.jsonl:
            if self.jsonl is not None:
                self.jsonl.close()
            self.jsonl = jsonl
        self.metrics = metrics
        if mqtt is not self.mqtt:
            if self.mqtt is not None:
                self.mqtt.close(timeout_s=1.0)
            self.mqtt = mqtt
        if new.alerts != old.alerts:
            self.alerts = _migrate_alerts(self.alerts, new.alerts)
        self.detector, self.baseline = det, base
        restart = (new.source != old.source or new.receiver != old.receiver or new.queue != old.queue)
        self.cfg = new
        if restart:
            log.info("source settings changed: reopening %s", new.source.uri)
            self._retire_stream(drain=True)
            try:
                self._open_stream()
            except Exception:
                # the new source cannot be opened: back to the old one
                self.cfg = dataclasses.replace(new, source=old.source, receiver=old.receiver, queue=old.queue)
                try:
                    self._open_stream()
                except Exception as exc:  # noqa: BLE001 - the main loop keeps retrying
                    log.error("cannot reopen %s either: %s", old.source.uri, exc)
                raise
        elif self.stream is not None and new.detector != old.detector:
            self.stream.pipeline.detector = det
            self.stream.pipeline.baseline = base
            self.stream.baseline_checked = False
            if getattr(self.stream.pipeline, "observation_tap", None) is not None:
                self.stream.pipeline.observation_tap = None
            self._setup_learner()

    # -- main loop -----------------------------------------------------------
    def run(self) -> int:
        """Run until stopped (signal / :meth:`request_stop`) or a finite source ends."""
        old_handlers = self._install_signals()
        self.notifier = SdNotifier(self._environ, require_samples=self.cfg.watchdog.require_samples,
                                   enabled=self.cfg.watchdog.enabled)
        try:
            self._open_outputs()
            self._open_stream()
            self.notifier.notify(f"READY=1\nSTATUS=reading {self.cfg.source.uri}\nMAINPID={os.getpid()}")
            self.started.set()
            self._loop()
            self.exit_reason = self.exit_reason or "stopped"
        finally:
            self.notifier.notify("STOPPING=1")
            try:
                self._retire_stream(drain=not self._hard_stop)
            finally:
                self._finish_learning()
                if self.jsonl is not None:
                    self.jsonl.write(self.stats_record(), durable=True)
                self._close_outputs()
                self.notifier.close()
                for sig, h in old_handlers:
                    signal.signal(sig, h)
                self.started.set()
        s = self.totals
        log.info("exit (%s): samples in %d = processed %d + dropped %d; %d SSBs, %d jammed, events %s",
                 self.exit_reason, s.samples_in, s.samples_processed, s.samples_dropped, s.ssbs_scored,
                 s.ssbs_jammed, s.events)
        return 0

    def _loop(self) -> None:
        backoff = self.cfg.source.reconnect_initial_s
        while not self._stop.is_set():
            if self._reload.is_set():
                self._do_reload()
            st = self.stream
            if st is None:  # the source failed and could not be reopened yet
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, self.cfg.source.reconnect_max_s)
                try:
                    self._open_stream()
                except (OSError, ValueError) as exc:
                    log.error("cannot reopen %s: %s", self.cfg.source.uri, exc)
                continue
            item = st.queue.get(0.2)
            if item is not None:
                if len(item[0]) < st.batch_samples and getattr(getattr(st.pipeline, "receiver", None), "locked", False):
                    # keeping up while tracking: wait for a batch's worth (queue.batch_s); a cell
                    # search runs on what arrives, in slices, so that the first lock is not delayed
                    st.queue.wait_fill(st.batch_samples - len(item[0]), 2 * self.cfg.queue.batch_s)
                self._process(*self._coalesce(st, *item))
                backoff = self.cfg.source.reconnect_initial_s
            elif st.queue.drained:
                if st.pump.eof:
                    self.exit_reason = "end of input"
                    return
                log.error("source %s failed: %r; reopening", self.cfg.source.uri, st.pump.error)
                self._retire_stream(drain=False)
                continue
            self._housekeeping()

    def _housekeeping(self) -> None:
        now = time.monotonic()
        snap_in = self.totals.samples_in + (self.stream.queue.stats.samples_in if self.stream else 0)
        self.notifier.tick(snap_in, now)
        if self.notifier.enabled and now - self._last_status >= 5.0:
            self._last_status = now
            t = self.totals
            self.notifier.notify(f"STATUS={t.ssbs_scored} SSBs, {t.ssbs_jammed} jammed, "
                                 f"dropped {self.snapshot()['samples_dropped']} samples")
        iv = self.cfg.outputs.stats_interval_s
        if iv > 0 and now - self._last_stats >= iv and self.jsonl is not None:
            self._last_stats = now
            self.jsonl.write(self.stats_record(), durable=False)
            self.jsonl.flush()


def _migrate_alerts(old: AlertStateMachine, cfg: AlertConfig) -> AlertStateMachine:
    """New thresholds, same per-PCI state (window deques re-sized).  Uses the
    state machine's internals; alerts.py has no public API for it yet."""
    new = AlertStateMachine(cfg)
    if old.config.method != cfg.method:
        return new  # different statistics: start over (no events)
    from collections import OrderedDict, deque

    pcis = OrderedDict()
    for pci, st in list(old._pcis.items())[-cfg.max_pcis:]:
        st.recs = deque(st.recs, maxlen=new._win)
        st.validity = deque(st.validity, maxlen=new._win)
        pcis[pci] = st
    new._pcis = pcis
    return new


# ---------------------------------------------------------------------------
# Command line (`ssbwatch run`)
# ---------------------------------------------------------------------------
def add_source_arguments(sp: argparse.ArgumentParser, config_help: str) -> None:
    """The options that name the daemon's source (``run`` and ``record``)."""
    from .cli import datatype_arg

    sp.add_argument("--config", help=config_help)
    sp.add_argument("--source", help="source URI: tcp://H:P, tcp-listen://H:P, udp://H:P, rtltcp://H:P, "
                                     "zmq+pull://H:P, a file path, or - for stdin")
    sp.add_argument("--format", type=datatype_arg, metavar="DATATYPE",
                    help="sample format of raw sources (SigMF name: cf32_le, ci16_le, ci8, cu8, cf64_le, ci32_le, ...)")
    sp.add_argument("--sample-rate", "--rate", type=float, dest="sample_rate", help="sample rate (Hz)")
    sp.add_argument("--center-freq", type=float, help="centre frequency of the stream (Hz)")


def add_run_arguments(sp: argparse.ArgumentParser) -> None:
    add_source_arguments(sp, "edge YAML (see configs/edge.yaml); options below override it")
    sp.add_argument("--ssb-freq", type=float, help="pin the SSB centre frequency (Hz)")
    sp.add_argument("--scs", choices=["auto", "15", "30"], help="SSB subcarrier spacing (kHz)")
    sp.add_argument("--period-ms", type=float, help="SSB period assumed until a shorter one is seen")
    sp.add_argument("--max-cfo-hz", type=float, help="largest receiver frequency error the cell search looks for (Hz)")
    sp.add_argument("--follow", action="store_true", help="follow a growing file (tail -f)")
    sp.add_argument("--baseline", help="site baseline from ssbwatch calibrate (with --learn-baseline: where the "
                                       "learned one is written, unless it exists)")
    sp.add_argument("--learn-baseline", type=float, metavar="SECONDS",
                    help="no file at --baseline yet: learn it from the stream's first SECONDS (declared clean), "
                         "write it there and score calibrated from then on")
    sp.add_argument("--model", help="'default' (the shipped DT-DDNN; the default), 'classical', or a model file/directory")
    sp.add_argument("--jsonl", help="records/events/stats JSONL file ('-' for stdout)")
    sp.add_argument("--metrics-port", type=int, help="enable the Prometheus endpoint on this port (127.0.0.1 "
                                                     "unless outputs.prometheus.host says otherwise)")
    sp.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def run_from_args(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(logging, args.log_level, logging.INFO), stream=sys.stderr,
                        format="%(asctime)s ssbwatch %(levelname)s %(name)s: %(message)s")
    cfg = config_from_args(args)
    loader = (lambda: config_from_args(args)) if args.config else None
    try:
        daemon = Daemon(cfg, config_loader=loader)
        return daemon.run()
    except OSError as exc:  # cannot bind / open / write: a named error, not a traceback
        log.error("%s", exc)
        return 1
