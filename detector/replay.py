"""Offline scoring of recordings: ``ssbwatch replay`` and ``ssbwatch calibrate``.

Each file is read in blocks (memory-mapped; a multi-GB recording is never
loaded whole) and pushed through the same :class:`ScoringPipeline` the daemon
uses. One unreadable file is reported and skipped; the others go on.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, TextIO

from signals import iq as iqio

from .baseline import SiteBaseline
from .pipeline import ScoringPipeline, calibration_observations, config_baseline
from .progress import Progress
from .receiver import ReceiverConfig, merge_cells

# The blocks a recording is read in: a quarter second of stream (at 30.72 Msps 7.68 M samples,
# views of the memory map, converted only where the receiver looks), at most 2^23 samples. The
# SSBs a block completes are processed together (one batch of band extractions, PSS
# correlations, grids and features): at 30.72 Msps with one SSB per 20 ms, 2^20-sample blocks
# (34 ms) spent 2.6 ms of CPU per SSB, quarter-second ones 0.7-1.1 ms (README, "Speed").
BLOCK_S = 0.25
BLOCK_SAMPLES_MAX = 1 << 23


def block_samples_for(sample_rate_hz: float) -> int:
    """Samples per block read from a recording at ``sample_rate_hz`` (BLOCK_S, at most
    BLOCK_SAMPLES_MAX, at least 2^16)."""
    return int(min(max(BLOCK_S * float(sample_rate_hz), 1 << 16), BLOCK_SAMPLES_MAX))


# A recording shorter than this holds less than one SSB burst (a half frame, TS 38.213 4.1): what
# the receiver estimates from the recording itself -- its DC offset, its IQ image, the cell's
# CFO -- rests on that alone. The 1200 evaluation captures cut to 1 ms (bench/eval_split.py
# --cut-ms 1): calibrated FAR 12/698, 8 of them those estimates' errors (4 a DC offset read in the
# carrier's own content near 0 Hz, 3 a CFO off by 3.6 % of the SCS, 1 an IQ image); cut to 5 ms:
# 12/1662 (whole: 7/2692). The summary of such a recording with jammed SSBs says so.
SHORT_RECORDING_S = 5e-3


@dataclass
class FileSummary:
    file: str
    ok: bool
    error: str = ""
    seconds: float = 0.0
    ssbs: int = 0
    jammed: int = 0
    invalid: int = 0
    flywheel: int = 0
    pcis: list = field(default_factory=list)
    # PCI -> off the serving cell's timing: the other cells the searches reported (receiver.cells_seen)
    other_cells: dict = field(default_factory=dict)
    # the cells the site baseline knows (its cells and neighbours) where the recording was scored
    # calibrated: an other cell not among them is new since the calibration
    site_cells: set = field(default_factory=set)
    scs_khz: Optional[int] = None
    ssb_freq_hz: Optional[float] = None
    ssb_offset_hz: Optional[float] = None  # SSB centre minus capture centre
    mode: str = ""
    nonfinite_samples: int = 0
    dc_offset_dbc: Optional[float] = None  # the receiver's DC offset removed, relative to the signal power
    iq_image_dbc: Optional[float] = None  # the receiver's IQ imbalance image removed (receiver.iq_image_power_ratio)
    # SSBs whose null REs had the leakage of traffic half a subcarrier off the SSB's grid taken out
    # (k_SSB odd at 30 kHz: dsp.OFFGRID_BINS, receiver.n_offgrid_grids)
    offgrid_fitted: int = 0
    slots_dropped: int = 0
    # predicted SSB positions without PSS or energy beyond the cell's own (receiver.n_quiet_losses):
    # not sent (a period over 20 ms, SSBs the gNB leaves out) or timing lost upstream
    empty_positions: int = 0
    ssb_outside_band: bool = False  # the cell's SSB reaches past the usable band (receiver.OUT_OF_BAND_REASON)
    unproven_locks: int = 0  # cells a search found whose PSS tracking did not find (receiver.UNPROVEN_REASON)
    iq_swapped: bool = False  # the cell found only in the samples' complex conjugate (receiver.swap_iq)
    timing_jumps: int = 0
    faded: int = 0  # jammed verdicts withdrawn by the fading guard (pipeline.FADE_WINDOW)
    mistimed_cell: int = 0  # the model's jammed verdicts withdrawn for a mistimed co-channel cell
    neighbour_cancelled: int = 0  # uncalibrated jammed verdicts withdrawn (pipeline.ScoringPipeline._neighbour_guard)
    # uncalibrated SSBs the band-excess rule would have jammed beside a cell not synchronised with
    # the serving one (receiver.OFFTIME_MIN_SSB_SAMPLES): left to the model
    band_excess_offtime: int = 0
    pinned: bool = False  # the cell search pinned to one SSB frequency (--ssb-freq)
    # SSBs jammed with the cell hidden from its search, their null REs over the stream's clean
    # level (pipeline.HIDDEN_NULL_RISE_DB)
    hidden_jammed: int = 0
    site_neighbour: int = 0  # SSBs of the baseline's neighbour cell (not the site's own): scored uncalibrated
    # SSBs scored by the classical detector at a site the model cannot be calibrated to
    # (model.DTDDNNDetector.site_falls_back) or showing its own mistimed cell (pipeline.SITE_MISTIMED_RHO2)
    site_classical: int = 0
    clipped: int = 0  # SSBs with samples at the ADC's rails
    gain_step: int = 0  # jammed verdicts made invalid: the receiver's gain stepped inside the SSB (pipeline.GAIN_STEP_DB)
    clip_overload: int = 0  # jammed verdicts made invalid: the ADC's clipping distortion explains them (pipeline.CLIP_DOMINANT_RATIO)
    no_cell_jammed: int = 0  # cell searches that did not find a calibrated site's cell (records, jammed)
    dropped_bytes: int = 0
    parts: int = 1  # streams the recording was cut into (iqio.capture_parts: retuned, or samples lost)
    channels: str = ""  # "channel k of N" for a multi-channel recording
    datatype: str = ""
    sample_rate_hz: float = 0.0
    # a baseline was given but holds no configuration for this recording's: what it lacks, what it holds
    baseline_unmatched: str = ""

    def line(self) -> str:
        if not self.ok:
            return f"{self.file}: ERROR {self.error}"
        notes = f"; {self.channels}" if self.channels else ""
        if self.parts > 1:
            notes += (f"; {self.parts} capture segments that do not continue one stream (another core:frequency, "
                      f"or a core:global_index gap), each searched afresh")
        if self.dropped_bytes:
            notes += f"; {self.dropped_bytes} trailing bytes ignored (not a whole {self.datatype} sample)"
        if self.nonfinite_samples:
            notes += f"; {self.nonfinite_samples} NaN/Inf samples read as 0"
        if self.dc_offset_dbc is not None:
            notes += f"; DC offset {self.dc_offset_dbc:.1f} dBc removed"
        if self.iq_image_dbc is not None:
            notes += f"; IQ imbalance image {self.iq_image_dbc:.1f} dBc removed"
        if self.offgrid_fitted:
            notes += (f"; {self.offgrid_fitted} SSB(s) with the cell's traffic half a subcarrier off the SSB's grid "
                      f"(k_SSB odd): its leakage into the null REs taken out")
        if self.timing_jumps:
            notes += f"; SSB timing moved {self.timing_jumps}x (samples lost upstream?)"
        if self.faded:
            notes += f"; {self.faded} SSB(s) faded, not jammed (the cell weaker, the floor unchanged)"
        if self.mistimed_cell:
            notes += (f"; {self.mistimed_cell} SSB(s) with a co-channel cell more than 2/3 of a CP off its timing, "
                      f"not jammed (uncalibrated: calibrate the site to tell a fake SSB from a neighbour; calibrated: "
                      f"the site's own such cell, by the classical detector)")
        if self.neighbour_cancelled:
            notes += (f"; {self.neighbour_cancelled} SSB(s) clean once the co-channel cell the search saw was "
                      f"cancelled (uncalibrated: calibrate the site to tell a fake SSB from a neighbour)")
        others = {p: off for p, off in self.other_cells.items() if p not in self.pcis}
        if others:
            def what(p: int, off: bool) -> str:
                tags = (["off the serving cell's timing"] if off else []) + (
                    ["not in the site baseline"] if self.site_cells and p not in self.site_cells else [])
                return f"{p}" + (f" ({'; '.join(tags)})" if tags else "")

            notes += "; other cells seen: PCI " + ", ".join(what(p, off) for p, off in sorted(others.items()))
        if self.hidden_jammed:
            notes += (f"; {self.hidden_jammed} SSB(s) jammed with the cell's PSS lost and the cell not found by a "
                      f"search, their null REs over the stream's clean level (a jammer; under a receiver's AGC "
                      f"also the cell going off the air)")
        if self.band_excess_offtime:
            notes += (f"; {self.band_excess_offtime} SSB(s) with interference in the SSB's band beside a co-channel "
                      f"cell not synchronised with the serving one (seen by the search, or on part of the SSB's "
                      f"symbols only), left to the model (uncalibrated: calibrate the site to learn that cell's level)")
        if self.site_neighbour:
            notes += (f"; {self.site_neighbour} SSB(s) of a cell the baseline lists as the site's neighbour, not its own: "
                      f"scored uncalibrated (recalibrate if this is the site's cell)")
        if self.site_classical:
            notes += (f"; {self.site_classical} SSB(s) scored by the classical detector against the baseline: a "
                      f"site the model cannot be calibrated to (see calibrate's warning), or SSBs showing the site's "
                      f"own co-channel cell off its timing")
        if self.gain_step:
            notes += (f"; {self.gain_step} SSB(s) not scored: the receiver's gain changed inside them (an AGC step, "
                      f"proven by the cell's PBCH-DMRS)")
        if self.clipped:
            notes += (f"; {self.clipped} SSB(s) with samples at the ADC's rails (clipped: lower the receiver "
                      f"gain; the clipping distortion was removed as a known floor)")
        if self.clip_overload:
            notes += (f"; {self.clip_overload} SSB(s) not scored: they held no more interference than the ADC's "
                      f"clipping distortion (the receiver overdriven: lower its gain)")
        if self.empty_positions:
            notes += (f"; {self.empty_positions} predicted SSB position(s) held no SSB, not scored (an SSB period "
                      f"over 20 ms, SSBs the gNB does not send, or samples lost upstream)")
        if self.slots_dropped:
            notes += f"; {self.slots_dropped} SSB position(s) dropped (never showed a PSS while the others did)"
        if self.ssb_outside_band:
            notes += ("; the SSB reaches into the captured band's edge (receiver.usable_band) or past it: its SSBs "
                      "not scored (retune towards it or raise the sample rate)")
        if self.unproven_locks:
            notes += (f"; {self.unproven_locks} cell(s) the search found not confirmed by tracking (their PSS "
                      f"not found where the search saw it), their SSBs not scored")
        if self.no_cell_jammed:
            notes += (f"; the site's cell not found in {self.no_cell_jammed} search block(s), recorded as jammed "
                      f"(pci null: a jammer hiding the cell, or the cell off the air)")
        if self.baseline_unmatched:
            notes += f"; {self.baseline_unmatched}"
        if self.jammed and 0.0 < self.seconds < SHORT_RECORDING_S:
            notes += (f"; a recording under {SHORT_RECORDING_S * 1e3:g} ms: the receiver's DC offset, IQ image and "
                      f"the cell's CFO were estimated from it alone, and a jammed verdict can be their error -- "
                      f"confirm on a recording of a burst or more (README, \"Recordings of 1 ms\")")
        if self.iq_swapped:
            notes += ("; I and Q are swapped (the spectrum inverted: the cell was found only in the samples' "
                      "complex conjugate, and scored so) -- check the recorder's I/Q order, or pass --swap-iq")
        if self.ssbs == 0 or not self.pcis:
            counts = f" ({self.ssbs} records, {self.jammed} jammed, {self.invalid} invalid)" if self.ssbs else ""
            if self.ok and not self.pinned and not self.no_cell_jammed:
                notes += ("; a jammer over a cell can hide its PSS from the search of every band: where the "
                          "cell's SSB frequency is known, pin it (--ssb-freq)")
            return f"{self.file}: {self.seconds * 1e3:.1f} ms, no cell found{counts}{notes}"
        f = (f", SSB at {self.ssb_freq_hz / 1e6:.3f} MHz" if self.ssb_freq_hz else
             f", SSB at {self.ssb_offset_hz / 1e6:+.3f} MHz from the capture centre" if self.ssb_offset_hz else "")
        return (f"{self.file}: {self.seconds * 1e3:.1f} ms, PCI {','.join(map(str, self.pcis))}, "
                f"{self.scs_khz} kHz SCS{f}: {self.ssbs} SSBs, {self.jammed} jammed, "
                f"{self.flywheel} without PSS, {self.invalid} invalid ({self.mode}){notes}")


def open_capture(path: str, datatype: Optional[str], sample_rate_hz: Optional[float],
                 center_freq_hz: Optional[float], channel: int = 0) -> iqio.IQReader:
    return iqio.open_iq(path, datatype=datatype, sample_rate_hz=sample_rate_hz,
                        center_freq_hz=center_freq_hz, allow_partial=True, channel=channel)


def replay_file(path: str, *, datatype=None, sample_rate_hz=None, center_freq_hz=None, channel: int = 0,
                receiver_config: ReceiverConfig = ReceiverConfig(), detector=None,
                baseline: Optional[SiteBaseline] = None, emit: Callable[[dict], None] = lambda r: None,
                progress: bool = False, block_samples: Optional[int] = None, collect_features: bool = False,
                ssb_freq_hz: Optional[float] = None):
    """Score one recording; ``emit`` receives each record. Returns (summary, records or features).
    ``block_samples``: samples per read (default :func:`block_samples_for` the recording's rate).
    ``ssb_freq_hz``: the SSB centre frequency (Hz) the cell search is pinned to, taken to an
    offset from each capture segment's own centre (SigMF ``core:frequency``, or
    ``center_freq_hz``); a recording without a centre is an error of its own."""
    summary = FileSummary(file=path, ok=True)
    extra: list = []
    try:
        reader = open_capture(path, datatype, sample_rate_hz, center_freq_hz, channel)
    except (iqio.IQFormatError, OSError, ValueError) as exc:
        summary.ok, summary.error = False, str(exc)
        return summary, extra
    with reader:
        m = reader.meta
        summary.seconds = m.n_samples / m.sample_rate_hz
        summary.datatype, summary.sample_rate_hz = m.datatype, m.sample_rate_hz
        if m.num_channels > 1:
            summary.channels = f"channel {m.channel} of {m.num_channels} (--channel picks another)"
        summary.dropped_bytes = reader.n_dropped_bytes
        parts = iqio.capture_parts(m)
        if len(parts) > 1:
            summary.parts = len(parts)
        summary.pinned = ssb_freq_hz is not None or receiver_config.ssb_offset_hz is not None
        with Progress(m.n_samples, Path(path).name[:24], " samples", force=progress) as bar:
            for start, stop, center in parts:
                try:
                    rcfg = receiver_config
                    if ssb_freq_hz is not None:
                        if not center:
                            raise ValueError(f"the SSB frequency {ssb_freq_hz:.0f} Hz was given but the recording "
                                             "has no centre frequency (SigMF core:frequency): give --center-freq")
                        rcfg = dataclasses.replace(receiver_config, ssb_offset_hz=float(ssb_freq_hz) - float(center))
                    _replay_part(reader, start, stop, center, summary, extra, bar, receiver_config=rcfg,
                                 detector=detector, baseline=baseline, label=path, emit=emit,
                                 block_samples=block_samples, collect_features=collect_features)
                except ValueError as exc:
                    summary.ok, summary.error = False, str(exc)
                    return summary, extra
        if collect_features:
            summary.ssbs = len(extra)
    return summary, extra


def _replay_part(reader: iqio.IQReader, start: int, stop: int, center: Optional[float], summary: FileSummary,
                 extra: list, bar, *, receiver_config, detector, baseline, label, emit, block_samples,
                 collect_features) -> None:
    """Samples [start, stop) of an open recording, one stream at centre
    frequency ``center`` (a part of :func:`signals.iq.capture_parts`), through a
    pipeline of its own; its counts are added to ``summary`` and, with
    ``collect_features``, its valid observations to ``extra``."""
    m = reader.meta
    # the samples stay in the file's format in the receiver's buffer, read from the
    # memory map without a copy: only the parts it looks at (the SSB windows, once
    # locked) are read and converted to complex64
    pipe = ScoringPipeline(m.sample_rate_hz, center, m.datatype,
                           receiver_config=receiver_config, detector=detector,
                           baseline=baseline, label=label,
                           converter=lambda raw, _dt=m.datatype: iqio.to_complex64(raw, _dt))
    pipe.receiver.copy_input = False  # the blocks are read-only views, never written
    if collect_features:
        # calibration: keep the valid observations (without their raw IQ) instead
        # of verdicts; their features follow once the site's neighbours are known
        def handle(obs_list):
            if detector is not None:
                # the verdicts they get without a baseline, as replay gives them (counted in the
                # summary: calibrate warns of a recording that does not look clean)
                pipe.records(obs_list)
            extra.extend(calibration_observations(obs_list))
        run_push = lambda b, s: handle(pipe.receiver.push(b, s))  # noqa: E731
        run_flush = lambda: handle(pipe.receiver.flush())  # noqa: E731
    else:
        def run_push(b, s):
            for r in pipe.push(b, s):
                emit(r)

        def run_flush():
            for r in pipe.flush():
                emit(r)
    if block_samples is None:
        block_samples = block_samples_for(m.sample_rate_hz)
    pos = start
    while pos < stop:
        n = min(block_samples, stop - pos)
        run_push(reader.read_native(pos, n, copy=False), pos)
        pos += n
        bar.set(pos)
    run_flush()
    rx = pipe.receiver
    st = pipe.stats
    for key in ("ssbs", "jammed", "invalid", "flywheel", "faded", "mistimed_cell", "neighbour_cancelled",
                "site_neighbour", "clipped", "gain_step", "clip_overload", "site_classical",
                "no_cell_jammed", "band_excess_offtime", "hidden_jammed"):
        setattr(summary, key, getattr(summary, key) + st[key])
    summary.nonfinite_samples += rx.n_nonfinite
    summary.slots_dropped += rx.n_slots_dropped
    summary.empty_positions += rx.n_quiet_losses + st["hidden_quiet"]
    summary.unproven_locks += rx.n_unproven_locks
    summary.timing_jumps += rx.n_timing_jumps
    summary.offgrid_fitted += rx.n_offgrid_grids
    if rx.dc_offset_power_ratio:
        dc = 10 * math.log10(rx.dc_offset_power_ratio)
        summary.dc_offset_dbc = dc if summary.dc_offset_dbc is None else max(summary.dc_offset_dbc, dc)
    if rx.iq_image_power_ratio:
        img = 10 * math.log10(rx.iq_image_power_ratio)
        summary.iq_image_dbc = img if summary.iq_image_dbc is None else max(summary.iq_image_dbc, img)
    summary.iq_swapped = summary.iq_swapped or rx.iq_swap_detected
    merge_cells(summary.other_cells, rx.cells_seen)
    if rx.pci is not None:
        summary.ssb_outside_band = summary.ssb_outside_band or not rx.ssb_in_band
        if rx.pci not in summary.pcis:
            summary.pcis.append(rx.pci)
        summary.scs_khz = rx.scs_khz
        summary.ssb_freq_hz = (center + rx.offset_hz) if center else None
        summary.ssb_offset_hz = rx.offset_hz
    base = baseline.lookup(rx.scs_khz, m.sample_rate_hz, m.datatype) if (baseline and rx.scs_khz) else None
    if base is not None:
        summary.site_cells.update(base.known_cells)
    if base is not None or not summary.mode:
        summary.mode = "calibrated" if base is not None else "uncalibrated"
    if baseline is not None and rx.scs_khz and base is None:
        summary.baseline_unmatched = baseline_unmatched(baseline, rx.scs_khz, m.sample_rate_hz)


def baseline_unmatched(baseline: SiteBaseline, scs_khz: int, sample_rate_hz: float) -> str:
    """What to say when ``baseline`` holds no configuration for a stream's SCS and
    sample rate (SiteBaseline.lookup gave None): the stream is scored uncalibrated."""
    held = ", ".join(sorted(baseline.configs)) or "none"
    return (f"the baseline holds no configuration for {scs_khz} kHz SCS at {sample_rate_hz / 1e6:g} Msps "
            f"(it holds {held}): scored uncalibrated -- calibrate with a recording at this sample rate")


def replay(paths: Iterable[str], out: Optional[TextIO], *, annotate: bool = False, err: Optional[TextIO] = None,
           **kw) -> list[FileSummary]:
    err = err or sys.stderr
    summaries = []
    for path in paths:
        records: list[dict] = []

        def emit(r, _records=records):
            if out is not None:
                out.write(json.dumps(r) + "\n")
            if annotate:
                _records.append(r)

        s, _ = replay_file(path, emit=emit, **kw)
        if out is not None:
            out.flush()
        if s.ok and annotate:
            try:
                n = annotate_file(path, records)
                print(f"{path}: wrote {n} annotations", file=err)
            except (iqio.IQFormatError, OSError) as exc:
                s.ok, s.error = False, f"cannot annotate: {exc}"
        print(s.line(), file=err)
        summaries.append(s)
    return summaries


def annotate_file(path: str, records: list[dict]) -> int:
    """Append the detections as SigMF annotations (SigMF recordings only)."""
    if iqio.is_sigmf_archive(path):
        raise iqio.IQFormatError(f"{path}: --annotate does not write into a SigMF archive; extract it (tar -xf) "
                                 "and annotate its .sigmf-meta")
    if not iqio.is_sigmf_path(path):
        raise iqio.IQFormatError(f"{path}: --annotate needs a SigMF recording (raw files have no metadata)")
    meta_path, _ = iqio.sigmf_paths(path)
    anns = []
    for r in records:
        anns.append({
            "core:sample_start": r["sample"],
            "core:sample_count": 0,
            "core:label": "SSB jammed" if r["jammed"] else ("SSB invalid" if r["jammed"] is None else "SSB clean"),
            "core:generator": "ssbwatch replay",
            "ssbwatch:pci": r["pci"],
            "ssbwatch:ssb_index": r["ssb_index"],
            "ssbwatch:jammed": r["jammed"],
            "ssbwatch:score": r["score"],
            "ssbwatch:detector": r["detector"],
            "ssbwatch:mode": r["mode"],
        })
    iqio.append_annotations(meta_path, anns)
    return len(anns)


RECOMMENDED_CAL_SSBS = 10  # below this a baseline is kept but reported as thin


def _prob(cb, detector, k: int) -> str:
    """The model's clean score ``k`` (0: p1, 1: p2) kept in ``cb``, as text."""
    from .model import sigmoid

    return f"{sigmoid(cb.clean_scores[detector.weights_sha256][k]):.6f}"


# calibrate warns of a recording declared clean whose SSBs the detector, without a baseline, calls
# jammed: this many of them at least, and this fraction of them (the shipped model with its rules
# calls 0.0 % of the evaluation split's clean SSBs jammed uncalibrated, 0.9 % of the field mix's)
CAL_JAMMED_MIN_SSBS = 3
CAL_JAMMED_FRACTION = 0.1


def one_state_advice(cb, recordings: int) -> Optional[str]:
    """Advice for a baseline ``cb`` (a ConfigBaseline) learnt from ``recordings``
    recordings (a stream learnt by the daemon: 1) where the site shares its channel
    with other cells (the baseline's neighbours and cells off its timing): their
    interference at the receiver moves with their channel and their load, and one
    recording holds one state of it, which later clean SSBs can stand well over
    (bench/events.py --cal-parts; docs/CALIBRATION.md "Calibrating over time").
    None where there is nothing to advise."""
    others = sorted(set(cb.neighbours) | set(cb.offtime_cells))
    if recordings > 1 or not others:
        return None
    return (f"{cb.key}: other cells share this channel (PCI {', '.join(map(str, others))}), and this baseline "
            f"knows their interference from one recording: one state of their channel and load. Calibrate "
            f"from several recordings made hours apart, the neighbours' busy hour among them (ssbwatch "
            f"calibrate REC1 REC2 ...), or expect false alarms when their interference rises over it")


def _same_file(path: str) -> str:
    """One name per recording however it was named (a path given twice is one recording)."""
    p = Path(path)
    try:
        return str(iqio.sigmf_paths(p)[1].resolve()) if iqio.is_sigmf_path(p) else str(p.resolve())
    except (OSError, ValueError):
        return str(path)


def calibrate(paths: Iterable[str], *, err: Optional[TextIO] = None, min_ssbs: int = 2,
              cancel_neighbour: bool = True, detector=None, **kw) -> SiteBaseline:
    """Learn the site baseline from captures declared clean. A configuration
    needs ``min_ssbs`` clean SSBs (2, as the shipped model's training baselines
    from one 10 ms companion capture); fewer than RECOMMENDED_CAL_SSBS is kept
    with a warning: record longer for a steadier baseline. ``cancel_neighbour``
    False: the site's co-channel neighbour is listed but never cancelled
    (:func:`detector.pipeline.config_baseline`). ``detector``: the DT-DDNN the
    site will be scored with; its scores of the clean SSBs are kept
    (:func:`detector.pipeline.site_clean_scores`), and where they reach its
    thresholds the site's are raised, with a warning; a recording whose SSBs it
    calls jammed without a baseline (CAL_JAMMED_MIN_SSBS, CAL_JAMMED_FRACTION) is
    kept, with a warning."""
    err = err or sys.stderr
    groups: dict[tuple, list] = {}
    where: dict[tuple, tuple] = {}  # config -> (SSB frequency, offset from the capture centre) first seen
    recordings: dict[tuple, set] = {}  # config -> the recordings its SSBs came from
    sources = []
    for path in paths:
        s, obs = replay_file(path, collect_features=True, detector=detector, **kw)
        if not s.ok:
            print(f"{path}: ERROR {s.error}", file=err)
            continue
        print(f"{path}: {len(obs)} clean SSBs" + (f" of PCI {s.pcis[0]}" if s.pcis else ", no cell found")
              + ("; the SSB reaches into the captured band's edge (receiver.usable_band) or past it (retune towards "
                 "it or raise the sample rate)"
                 if s.ssb_outside_band else ""), file=err)
        if detector is not None and s.jammed >= max(CAL_JAMMED_MIN_SSBS, CAL_JAMMED_FRACTION * s.ssbs):
            print(f"calibrate: {path}: {s.jammed} of its {s.ssbs} SSBs look jammed scored without a baseline (the "
                  f"{detector.name} with its rules, as `ssbwatch replay` scores them): a baseline learned from them "
                  f"takes that interference for the site's clean state, and the same jammer later for no jamming. "
                  f"They are kept; if the site was not known to be quiet, calibrate on another recording",
                  file=err)
        sources.append(path)
        recording = _same_file(path)
        for o in obs:
            groups.setdefault((o.scs_khz, s.sample_rate_hz, s.datatype), []).append(o)
            where.setdefault((o.scs_khz, s.sample_rate_hz, s.datatype), (s.ssb_freq_hz, s.ssb_offset_hz))
            recordings.setdefault((o.scs_khz, s.sample_rate_hz, s.datatype), set()).add(recording)
    configs = {}
    for (scs, rate, dt), obs in groups.items():
        if len(obs) < min_ssbs:
            print(f"calibrate: {scs} kHz / {rate / 1e6:g} Msps / {dt}: only {len(obs)} SSBs "
                  f"(at least {min_ssbs} needed, see --min-ssbs); skipped", file=err)
            continue
        if len(obs) < RECOMMENDED_CAL_SSBS:
            print(f"calibrate: {scs} kHz / {rate / 1e6:g} Msps / {dt}: baseline from only {len(obs)} SSBs; "
                  f"{RECOMMENDED_CAL_SSBS} or more (a few seconds of clean recording) give a steadier one", file=err)
        f_hz, off_hz = where[(scs, rate, dt)]
        cb = config_baseline(obs, scs, rate, dt, cancel_neighbour=cancel_neighbour, ssb_freq_hz=f_hz,
                             ssb_offset_hz=off_hz, detector=detector)
        configs[cb.key] = cb
        advice = one_state_advice(cb, len(recordings[(scs, rate, dt)]))
        if advice:
            print(f"calibrate: {advice}", file=err)
        if detector is not None and hasattr(detector, "thresholds_at"):
            lo, hi, t2 = detector.thresholds(True)
            _, hi_s, t2_s = detector.thresholds_at(cb)
            if detector.site_falls_back(cb):
                print(f"calibrate: {cb.key}: the model ({detector.name}) scores this site's clean SSBs as jammed "
                      f"(p1 up to {_prob(cb, detector, 0)}, stage 2 {_prob(cb, detector, 1)}) beyond the most its "
                      f"thresholds may be raised: this configuration's SSBs will be scored by the classical "
                      f"detector against this baseline (records say \"detector\": \"classical\"). A site "
                      f"unlike the model's training mix (a co-channel cell off the serving cell's timing: an "
                      f"unsynchronised neighbour) -- or a recording that was not clean: check it, then calibrate "
                      f"again", file=err)
            elif (hi_s, t2_s) != (hi, t2):
                print(f"calibrate: {cb.key}: the model ({detector.name}) scores this site's clean SSBs as high as "
                      f"its thresholds (p1 {hi:.4f}, stage 2 {t2:.4f}): the site's are raised to {hi_s:.4f} and "
                      f"{t2_s:.4f}. A site unlike the model's training mix (co-timed cells, traffic, channel) -- "
                      f"or a recording that was not clean: check it, then calibrate again", file=err)
    return SiteBaseline(configs, sources=sources)
