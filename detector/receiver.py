"""Cell search and SSB tracking.

:func:`acquire` is a pure function over one block of IQ: it searches the PSS
over both SCS and N_ID2 at the capture centre and at the synchronization-raster
points inside the captured band, decides the serving cell (PCI from the SSS,
ī_SSB from the PBCH-DMRS) and returns where its SSBs are.

:class:`Receiver` is the thin stateful object around it: it owns a bounded
sample buffer, the SSB timing flywheel (one slot per SSB index, over the burst
period) and the tracked CFO, and turns an IQ stream -- fed whole or in
arbitrary chunks, with the same result -- into one :class:`SSBObservation` per
SSB. Once locked only the SSB windows are processed. When the PSS is lost the
flywheel position is still observed and scored (a strong jammer must give
"jammed", never silence); re-acquisition runs periodically and on loss.

A cell search costs far more than real time at wide-band rates (every raster
point in both SCS). :func:`acquire_steps` is the same search as a generator
that stops every few milliseconds; with ``ReceiverConfig.search_duty`` > 0 (live
streams, the daemon) the receiver runs searches in those slices, using at most
that fraction of stream time: a periodic re-acquisition goes on beside the
tracking instead of stalling it, and while no cell is locked each search looks
at the newest block and skips what arrived meanwhile (``n_unsearched``). With
``search_duty`` 0 (replay, the dataset) every search runs where it falls in the
stream, so the observations do not depend on timing.
"""
from __future__ import annotations

import bisect
import collections
import dataclasses
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from scipy.ndimage import maximum_filter1d

from signals import nr
from signals.config import ConfigError, check_range

from . import dsp
from .features import PSS_TRACE_HALF

PERIODS_MS = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0)  # TS 38.331 ssb-periodicityServingCell
# DC refresh blocks while tracking: 10 ms, the mean to 1 / n of the power (-46 dB at 3.84 Msps,
# in the SSB's DC RE ~-22 dB under an average RE's power), and no more than DC_BLOCK_MAX_SAMPLES:
# the precision is the samples' count, not their duration (-51 dB, 4.3 ms at 30.72 Msps; the
# full 10 ms there cost 0.34 ms of every 20 ms of stream, a fifth of tracking one SSB per period)
DC_BLOCK_S = 10e-3
DC_BLOCK_MAX_SAMPLES = 131072
# A jammer that hides the PSS (SINR under ~-8 dB there) brings several times the SSB's
# energy into its band; a lost SSB with its loudest symbol under twice what the cell
# brings (its locked SSBs' times their PSS correlation, S / (S + I + N): a jammer already
# on is not counted as the cell's) is not scored as jammed (Receiver._finish)
QUIET_LOSS_RATIO = 2.0
# ... unless the cell was searched for after its PSS was lost on every slot (lost_reacquire
# SSBs in a row; and, unless tracking saw the cell's PSS in consecutive periods of the flywheel,
# none of it over CONFIRM_CLEAR_PEAK for HIDDEN_AFTER_S: a cell whose SSB period is longer than
# the flywheel's shows its PSS every period, and the positions between its bursts hold nothing or
# traffic) and not found: a receiver under an AGC holds a jammed band at the level the
# clean one had (the cell's SSB ~10 dB down under a jammer 10 dB over it, and further where the
# AGC holds the average of a cell with little traffic), while a timing lost to dropped samples
# is found again by that search. Such an SSB is passed on marked SSBObservation.cell_hidden, and
# the scoring pipeline tells it by its null REs (detector.pipeline.HIDDEN_NULL_RISE_DB)
HIDDEN_AFTER_S = 0.2  # over the longest SSB period (PERIODS_MS)
# More looks at the null REs (SSBObservation.null_early_per_re, the band-excess rule of
# detector.pipeline) with the FFT windows this many SSB-rate samples earlier: mid-CP (9 of
# the 18 samples before its end) and near the CP's start (16 before it), instead of 3 before
# it; the lowest reading is kept. A co-channel cell that arrives earlier than the serving one
# (a neighbour site closer to the receiver) spills its next symbol into the later windows, a
# late multipath tap the previous symbol into the earliest; stationary interference reads the
# same in all. (Simulated neighbours 3-6 dB under the cell, 0.7-0.9 CP early: their spill
# stood up to -15 dB against the cell in the standard and mid-CP windows.)
NULL_EARLY_SAMPLES = (6, 13)
# the reason of an observation of a fresh lock's slot without its PSS before the cell's PSS was
# seen by tracking at all (Receiver._prove): not scored, since the cell itself is in doubt (a
# 15 kHz "cell" the search made of the band edge of a 30 kHz SSB cut by the capture's band was
# called jammed)
UNPROVEN_REASON = "cell not confirmed: its PSS not found where the cell search saw it"
# An SSB the capture's band cuts (the SDR tuned too far from it, or too narrow a sample rate)
# is searched for when its PSS and SSS, the middle 127 subcarriers, lie inside the band with
# this many subcarriers in all (room for an SDR's anti-alias filter's roll-off), and found
# with its PCI; its null REs and PBCH are partly missing, so its SSBs are not scored. Before,
# such a cell was not searched for, and its PSS matched another N_ID2's in the band 43
# subcarriers (1.29 MHz at 30 kHz) closer in: a cell not on air, called jammed (3 of 8
# simulated 30 kHz cells 7.38 MHz off the centre of a 19.5 Msps capture; the OAI recording
# resampled so).
EDGE_SPAN_SUBCARRIERS = 144
OUT_OF_BAND_REASON = ("SSB partly outside the captured band or in its edge (receiver.usable_band): not scored "
                      "(retune towards it or raise the sample rate)")
# Tracked SSBs' grids from each symbol's FFT at the input rate where fs / SCS is a whole
# number (dsp.ssb_grids_input_rate), else from the SSB-rate signal (dsp.ssb_grids_at)
GRID_AT_INPUT_RATE = True
# SSBs per batch of a push's grid and identity work (Receiver._finish). A push's SSBs all in one
# batch (100 at 8 SSBs per 20 ms in replay's 0.25 s blocks) streamed arrays of (100, 4, fs / SCS)
# complex64 through memory, several MB each at 30.72 Msps; in batches of 32 they stay near the
# core's caches: dsp.ssb_grids_input_rate ~95 -> ~50 us per SSB, tracking ~550 -> ~460 us per SSB
# in all (stop 51, this VM; batches of 4, 8, 16 cost more in per-call overhead). Every row is
# computed alone, so the batch changes no value
FINISH_BATCH = 32
# ... where its null REs read no more than this over the SSB-rate grid's (Receiver._finish). A
# symbol's own FFT keeps the cell's traffic orthogonal to the SSB, but not a signal of another
# timing or numerology: the four real captures with white noise over 40 % of the band on the far
# side from the SSB, 20 dB over the recording (another operator's carrier ~26 dB over the cell
# per Hz), read 5-7 dB less SNR through it, and amarisoft-n78-pci500 was called jammed (30 dB:
# three of four); through the SSB-rate band, unchanged. Both read the same noise and the same
# in-band jammer (the ratio on the reference recordings, 4 real and 32 simulated: 0.49-1.22; on 45
# training-mix sites, clean 1.26 at most, jammed 1.23 but for fake SSBs: 2 of 112 over 2, 2.13)
LEAK_GRID_RATIO = 2.0
UNCONFIRMED_DROP = 2  # misses that drop a tracked slot never seen with its PSS (Receiver._confirm)
# ... but not while the cell's PSS, where tracking sees it, stands this low (the median of its last
# CONFIRM_PEAKS PSS peaks): a jammer over the cell hides most of its PSS and leaves the rest just
# over track_threshold (partial-band noise 8 dB over the cell: peaks 0.15-0.18), where a clean
# cell's stand at 0.37-0.53 at 0 dB SNR and 0.82-0.98 at 20 dB; its SSBs are there, jammed, and
# dropping their slots left 212 of 800 SSBs of a 2 s recording scored (the daemon bench's loop)
CONFIRM_CLEAR_PEAK = 0.25
CONFIRM_PEAKS = 16
# Tracking takes the SSB windows of one CFO epoch (10 ms of stream, from sample 0) to the
# SSB rate around the same frequency, the tracked CFO as it stood when the epoch's first
# window came: their PSS correlations are one batch (a burst's SSBs), and the epochs are
# the stream's, so any chunking gives the same records. Each SSB still updates the CFO.
CFO_EPOCH_S = 10e-3
# The windows of a tracked slot's coming SSBs that are already buffered are taken to the SSB
# rate in the same batch as the one asked for (Receiver._band), one period apart as the
# stream's sample clock runs: from the slot's last DRIFT_SSBS locked SSBs (a clock some ppm
# off moves them 0.6 samples per 20 ms per ppm at 30.72 Msps), no further ahead than those
# SSBs span (until two were seen, only the next SSB of each slot). A window the tracking
# then puts elsewhere is computed again where asked for: the records are the same, only the
# batch is smaller.
DRIFT_SSBS = 8
FINE_CANDIDATES = 3  # bands the fine stage of a cell search tries, best coarse metric first


def _ssb_rate_grids(ys: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dsp.ssb_grids_at's grids of SSB-rate signals ys (N, n) with the leakage of traffic half
    a subcarrier off the SSB's grid taken out of their null REs (dsp.OFFGRID_BINS), and that
    leakage: complex64 (N, 4, 240), (N, 130)."""
    leak = np.zeros((len(ys), dsp.N_NULL_RES), dtype=np.complex64)
    grids = dsp.ssb_grids_at(ys, starts, offgrid_leak=leak)
    dsp.subtract_null_leakage(grids, leak)
    return grids, leak


@dataclass(frozen=True)
class ReceiverConfig:
    scs_khz: Optional[int] = None  # None: try 15 and 30 kHz
    ssb_offset_hz: Optional[float] = None  # pinned SSB centre minus capture centre
    period_ms: float = 20.0  # assumed SSB period until a shorter one is seen
    # PSS detection at acquisition on rho2 summed over PATH_WINDOW lags (multipath energy);
    # noise alone gives ~0.07 on average and rarely above 0.25 over a 20 ms search
    acq_threshold: float = 0.3
    acq_single_threshold: float = 0.45  # a cell seen at one SSB only needs this ...
    single_sss_margin: float = 1.3  # ... and this N_ID1 margin
    track_threshold: float = 0.15  # rho2 to count the PSS as found at a predicted position
    track_search: int = 8  # +- lags (SSB-rate samples) searched around a prediction
    min_sss_margin: float = 1.1  # best / second-best N_ID1 metric (summed over SSBs) to accept a cell
    sss_peak_ratio: float = 2.5  # each SSB's own SSS match of that N_ID1 over its median (noise: ~1)
    # when the N_ID1 margin over all PSS peaks of an N_ID2 falls short, it is decided again on
    # the peaks whose best SSS match stands this far over its median (noise peaks reach ~3.2)
    clear_sss_ratio: float = 4.0
    # two N_ID1s of one N_ID2 whose summed SSS match both stand this far over the next one are
    # two co-timed cells (a neighbour with the serving cell's N_ID2): the PSS channel the match
    # goes through is both cells' there, so the cell is the stronger by their jointly fitted
    # power (_joint_cell_power), not the better match
    co_timed_sss_ratio: float = 1.5
    # a cell other than the serving one is reported (Acquisition.others, a site baseline's
    # neighbour) only when its N_ID1 margin or its PBCH-DMRS margin (mean over its SSBs) shows
    # a real cell: on 300 simulated sites the 32 cells these reject were all noise (SSS margin
    # <= 1.26, DMRS <= 1.55), and every real neighbour passes (SSS >= 1.33, or DMRS 1.76)
    other_min_sss_margin: float = 1.3
    other_min_dmrs_margin: float = 1.7
    # cells to lock onto whenever the search finds them, stronger cells or not (a site
    # baseline's serving cells: a fake cell louder than the real one must not take the lock)
    preferred_pcis: tuple = ()
    # where a site baseline saw its cell's SSB (its centre minus the capture centre): a cell
    # search over the raster that finds no cell searches that band alone before it gives up, and
    # keeps one of preferred_pcis found there (under a jammer over the cell, whose PSS then
    # correlates no better than noise somewhere among the raster's bands, its own band still
    # shows it; ScoringPipeline sets it from the baseline)
    site_ssb_offset_hz: Optional[float] = None
    reacquire_s: float = 2.0  # periodic re-acquisition interval (stream time)
    # ... doubled after each periodic re-acquisition that finds the tracked cell as it was
    # (the same PCI, SSB indices, timing, L_max and period), up to this; back to reacquire_s
    # after any that does not. A loss of the PSS searches at once whatever the interval.
    reacquire_max_s: float = 8.0
    lost_reacquire: int = 16  # consecutive SSBs without PSS before a new cell search
    cfo_alpha: float = 0.3  # smoothing of the tracked CFO
    # Frequency hypotheses of the cell search: a receiver's crystal puts the cell off by
    # ppm x carrier (an SDR's TCXO at +-2 ppm: +-7 kHz at 3.5 GHz; 1.1 SCS at 15 kHz), and
    # the PSS correlation falls apart beyond ~SCS/3 (at 2/3 SCS it no longer clears the
    # threshold). The search tries offsets in steps of SCS/3 out to +-cfo_search_hz (the
    # tracked CFO the centre at a re-acquisition), nearest first, until a hypothesis gives a
    # PSS of acq_single_threshold; the fine stage then measures the CFO to within +-SCS/6
    # of it (dsp.pss_cfo_hz). 0: the capture's own frequency only.
    cfo_search_hz: float = 12000.0
    # Live streams: 0 runs every cell search at once where it falls in the stream (replay,
    # deterministic). > 0 runs searches in slices of ~10-25 ms that use at most this
    # fraction of stream time (wall clock per second of samples pushed): tracking goes on
    # during a periodic re-acquisition, and while no cell is locked the samples that arrive
    # during a search are skipped (counted in Receiver.n_unsearched), never queued up.
    search_duty: float = 0.0
    # Receiver DC offset (a zero-IF SDR's LO leakage, an ADC's offset): the mean of the quieter
    # half of each cell search's block (~22 ms) and, while tracking, of a 10 ms block every
    # dc_refresh_s, is subtracted from everything the receiver looks at until the next one, when
    # it stands out of its own estimation noise by dc_min_ratio -- the stream's first block and
    # an offset held; a new one mid-stream by dsp.DC_ONSET_RATIO, or pooled over the last blocks
    # (dsp.dc_track: a loud carrier's own content at 0 Hz passes dc_min_ratio in a few % of the
    # blocks, and subtracted it lands on the SSB's RE at 0 Hz as a CW jammer). A DC spike on
    # an SSB centred on the capture (the natural tuning) reads as a CW jammer otherwise: at
    # -40 dBc it flagged 28 % of clean simulated SSBs with the shipped model, at -20 dBc 92 %.
    # (A fast periodic sweep jammer has a spectral line at DC too: it is subtracted while the
    # jammer is on, and the refresh keeps it from outliving the jammer by more than
    # dc_refresh_s.)
    dc_removal: bool = True
    dc_min_ratio: float = dsp.DC_MIN_RATIO
    dc_refresh_s: float = 0.1
    # IQ imbalance: measured on the same blocks as the DC offset (dsp.iq_image: the block's
    # improperness) and its mirror image taken out of every window, y - w conj(y). An image
    # 20 dB down of an SSB near the capture centre lands on its null REs (0.36 MHz off: 24
    # subcarriers away): two of the four real captures with such an image were called jammed.
    iq_balance: bool = True
    # Blind SSB frequency search (dsp.blind_ssb_offsets_hz): without a centre frequency
    # (a raw file, a SigMF recording without core:frequency) there is no raster to search,
    # and an SSB off the capture centre would never be found; with one, a recording whose
    # core:frequency is not where the SDR was tuned (an LO offset) has its SSB off the
    # raster. The blind_candidates best PSS-like spectra of the band are searched after the
    # centre (no centre frequency), or once the centre and the raster held no cell.
    blind_search: bool = True
    blind_candidates: int = 4
    # I and Q swapped at the source (a recorder or driver that writes Q first, a mixer whose
    # quadrature sign is inverted): the spectrum arrives mirrored and no PSS matches. True
    # takes the complex conjugate of every sample before anything else (swapping I and Q is
    # j * conj(x); the constant j is the channel's phase to the receiver).
    swap_iq: bool = False
    # while no cell has been found, a failed cell search is tried once more on the complex
    # conjugate of its block (Receiver._iq_check_due: the first failure, a live stream's second,
    # then every BLIND_EVERY-th, IQ_SWAP_CHECKS at most): a clear cell there (_real_cell) turns
    # swap_iq on for the rest of the stream
    iq_swap_check: bool = True
    # The share of +-fs / 2 that the receiver's anti-alias filter passes flat
    # (dsp.USABLE_BAND_FRACTION): the SSBs of a cell that reaches beyond it, or beyond the
    # band the last cell search measured (dsp.passband_half_width_hz), are reported with
    # OUT_OF_BAND_REASON and not scored. 1.0: the whole band (a front end flat to the edge).
    usable_band: float = dsp.USABLE_BAND_FRACTION

    def __post_init__(self):
        if self.scs_khz not in (None, 15, 30):
            raise ConfigError(f"scs_khz={self.scs_khz!r} not in [15, 30] (or auto)")
        if self.period_ms not in PERIODS_MS:
            raise ConfigError(f"period_ms={self.period_ms} not an SSB periodicity {list(PERIODS_MS)}")
        check_range("acq_threshold", self.acq_threshold, 0.05, 1.0)
        check_range("acq_single_threshold", self.acq_single_threshold, self.acq_threshold, 1.0)
        check_range("track_threshold", self.track_threshold, 0.02, 1.0)
        check_range("track_search", self.track_search, 1, 64)
        check_range("reacquire_s", self.reacquire_s, 0.1, 3600)
        check_range("reacquire_max_s", self.reacquire_max_s, self.reacquire_s, 3600)
        check_range("lost_reacquire", self.lost_reacquire, 1, 10**6)
        check_range("cfo_alpha", self.cfo_alpha, 0.0, 1.0)
        check_range("cfo_search_hz", self.cfo_search_hz, 0.0, 100e3)
        check_range("dc_min_ratio", self.dc_min_ratio, 1.0, 1e6)
        check_range("dc_refresh_s", self.dc_refresh_s, 0.01, 3600.0)
        if self.site_ssb_offset_hz is not None and not math.isfinite(self.site_ssb_offset_hz):
            raise ConfigError(f"site_ssb_offset_hz={self.site_ssb_offset_hz!r} is not a finite frequency")
        object.__setattr__(self, "preferred_pcis", tuple(int(p) for p in self.preferred_pcis))
        for p in self.preferred_pcis:
            check_range("preferred_pcis", p, 0, nr.N_CELL_ID_COUNT - 1)
        check_range("other_min_sss_margin", self.other_min_sss_margin, 1.0, 100.0)
        check_range("clear_sss_ratio", self.clear_sss_ratio, 1.0, 100.0)
        check_range("co_timed_sss_ratio", self.co_timed_sss_ratio, 1.0, 100.0)
        check_range("other_min_dmrs_margin", self.other_min_dmrs_margin, 1.0, 100.0)
        check_range("search_duty", self.search_duty, 0.0, 1.0)
        check_range("blind_candidates", self.blind_candidates, 1, 64)
        check_range("usable_band", self.usable_band, 0.5, 1.0)


@dataclass
class Detection:
    """One PSS/SSS detection at acquisition (positions in input samples)."""

    sample: float  # CP start of the SSB's first symbol, input-rate samples from block start
    nid2: int
    rho2: float
    cell: dsp.CellId
    cfo_hz: float


@dataclass
class Acquisition:
    scs_khz: int
    ssb_offset_hz: float
    cfo_hz: float
    pci: int
    detections: list[Detection]  # the serving cell's, sorted by sample
    period_ms: Optional[float]  # from repeated ī_SSB, if seen
    others: list[int] = field(default_factory=list)  # PCIs of other cells seen, strongest first
    l_max: int = 8  # the cell's L_max (l_max_candidates; where the band leaves it open, its burst)
    l_max_seen: bool = False  # l_max from the burst (its ī_SSB over 3 fit one candidate better)
    # the null REs' energy over the SSS REs' at its detections, dB (median; _null_to_sss_db)
    null_to_sss_db: float = float("nan")
    # cells seen that are not synchronised with the serving one (_offtime_cells)
    offtime_cells: list[int] = field(default_factory=list)


def _period_from(dets: list[Detection], fs_hz: float) -> Optional[float]:
    by_ibar: dict[int, list[float]] = {}
    for d in dets:
        by_ibar.setdefault(d.cell.ibar, []).append(d.sample)
    diffs = [b - a for v in by_ibar.values() for a, b in zip(sorted(v), sorted(v)[1:])]
    if not diffs:
        return None
    ms = min(diffs) / fs_hz * 1e3
    best = min(PERIODS_MS, key=lambda p: abs(p - ms))
    return best if abs(best - ms) < 0.05 * best else None


run_steps = dsp.run_steps  # a step generator (acquire_steps) run to its end


def acquire(
    x: np.ndarray,
    fs_hz: float,
    center_freq_hz: Optional[float],
    cfg: ReceiverConfig = ReceiverConfig(),
    *,
    scs_khz: Optional[int] = None,
    offsets_hz: Optional[list[float]] = None,
    cfo_hint_hz: float = 0.0,
) -> Optional[Acquisition]:
    """Cell search over one block.

    Parameters
    ----------
    x : complex64, shape (n,) at ``fs_hz``
    center_freq_hz : the capture centre (for the raster search) or None
    scs_khz, offsets_hz : restrict the search (re-acquisition of a known cell)
    cfo_hint_hz : the CFO expected (the tracked one at a re-acquisition): the
        frequency hypotheses (:func:`cfo_hypotheses_hz`) centre on it

    Returns
    -------
    The serving (strongest) cell and its SSB detections, or None.
    """
    return run_steps(acquire_steps(x, fs_hz, center_freq_hz, cfg, scs_khz=scs_khz, offsets_hz=offsets_hz,
                                   cfo_hint_hz=cfo_hint_hz, whiten_fallback=True))


def cfo_hypotheses_hz(scs_khz: int, max_hz: float, centre_hz: float = 0.0) -> list[float]:
    """The cell search's frequency hypotheses (Hz): ``centre_hz`` and steps of
    SCS/3 around it, nearest first (+ before -), out to the step whose +-SCS/6
    reach covers ``max_hz``."""
    step = scs_khz * 1e3 / 3
    k_max = max(0, math.ceil((max_hz - step / 2) / step - 1e-9)) if max_hz > 0 else 0
    out = [centre_hz]
    for k in range(1, k_max + 1):
        out += [centre_hz + k * step, centre_hz - k * step]
    return out


def _real_cell(dets: list[Detection], cfg: ReceiverConfig) -> bool:
    """Whether the detections of a cell other than the serving one show a real
    cell rather than noise that passed the PSS and SSS thresholds (traffic and
    multipath make such peaks): a clear N_ID1 margin, or PBCH-DMRS that match."""
    return (dets[0].cell.sss_margin >= cfg.other_min_sss_margin
            or float(np.mean([d.cell.dmrs_margin for d in dets])) >= cfg.other_min_dmrs_margin)


# An off-timing co-channel cell. A cell not synchronised with the serving one (an FDD
# neighbour, a cell of another network) has SSBs at places of its own, which lie over the
# serving SSBs now and then, and sends its PBCH, SSS and PSS -- and its traffic -- on their null
# REs: interference confined to the SSB's band, which the uncalibrated band-excess rule would
# call jamming (pipeline.BAND_EXCESS_ISR_DB; simulated neighbours 3-15 dB under the cell, up to
# 200 CPs off its timing, configs/sim-train-field.yaml: 200 of 910 clean SSBs jammed by that
# rule with the field-mix model). A cell is synchronised when every SSB the search saw of it
# starts where one of the serving cell's burst could (TS 38.213 §4.1), to within a CP
# (propagation: ~1 km; a cell a few CPs off is what pipeline.MISTIMED_CELL_RHO2 looks for).
OFFTIME_MIN_SSB_SAMPLES = dsp.SSB_CP
# An off-timing cell seen at one SSB only is held to the serving cell's test for a cell seen
# once: its PSS at acq_single_threshold (its SSS or PBCH-DMRS margin is _real_cell's). A jammer
# under the cell makes PSS-like peaks off its timing whose SSS and DMRS pass _real_cell by
# chance now and then; such a cell, reported as an unsynchronised neighbour, turned the
# uncalibrated band-excess verdicts on the jammer to "offtime_cell" (stop 51: 8 of 1108
# evaluation captures without a spoofer -- cw, reactive, pulsed, SSB-band and partial-band
# noise, multi-tone -- and 4 of 400 field captures reported such a cell not on the air, every one
# seen at one SSB but one (seen at two), its PSS at rho2 0.29-0.37 but one (0.50); the 13
# unsynchronised neighbours of the field captures seen at one SSB had 0.46-1.51)
OFFTIME_SINGLE_SSB = True
# ... and a cell with the serving cell's N_ID2, which the N_ID1 decision per N_ID2 leaves out of
# Acquisition.others, is looked for among that N_ID2's PSS peaks that do not carry the serving
# cell's SSS: an N_ID1 decided on them alone, with Acquisition.others' tests. A cell whose PSS
# stays under the search's threshold (where it lands on the serving cell's own symbols) is not
# seen: a search around the serving SSBs (the PSS correlation summed over them at each lag, then
# the SSS there) found one 10 dB down, but the serving cell's own SSS and PBCH made a cell of
# some other N_ID1 on 8 of 24 clean field captures without any neighbour (stop 47).


def _weaker_same_nid2(rest: list, nid2: int, nid1: int, in_per_ssb: float,
                      cfg: ReceiverConfig) -> dict[int, list[Detection]]:
    """A second cell of N_ID2 ``nid2`` among the PSS peaks (acquire_steps' tuples)
    that do not carry N_ID1 ``nid1``: {its PCI: its detections (input-rate
    samples: SSB-rate ones times ``in_per_ssb``)}, or {} where they show none
    (an N_ID1 margin under cfg.min_sss_margin, no peak carrying its SSS, or
    not a real cell by :func:`_real_cell`)."""
    nid1b, margin, acc = _decide_nid1(rest, nid2, cfg)
    if nid1b == nid1 or margin < cfg.min_sss_margin:
        return {}
    dets = [Detection(c[0] * in_per_ssb, nid2, c[2], dsp.identify(c[4], nid2, nid1=nid1b, sss=acc), c[3])
            for c in rest if _own_sss_ratio(c[5], nid1b) >= cfg.sss_peak_ratio]
    if not dets or not _real_cell(dets, cfg):
        return {}
    return {3 * nid1b + nid2: dets}


# A second cell of the serving cell's N_ID2 off its timing (an unsynchronised neighbour: another
# site, another operator's network) has its PSS peaks within the peak spacing of the stronger
# cell's own -- the serving SSBs of a burst lie 2-4 symbols apart (TS 38.213 §4.1) -- and the
# search's peak picking (dsp.find_peaks, strongest first, 3 symbols apart) never looks at them:
# such a cell was not found, the pipeline did not know it (Acquisition.offtime_cells), and its
# SSB on the serving SSB's null REs read as SSB-band noise uncalibrated (a Case B cell, whose SSBs
# come in back-to-back pairs, with a neighbour of its N_ID2 10 dB down 12-40 CPs off: 4 of 60
# SSBs jammed, `bench/receiver_eval.py mistimed --seed 13`; found now 12-20 CPs early and 20
# late). Beside each loud peak (single-SSB strength), on either side, the strongest local
# maximum (over PATH_WINDOW lags both ways) of its N_ID2's metric over the search's threshold,
# NEAR_PEAK_MIN_LAGS or more from it and from every other candidate of that N_ID2 (the cell's
# own multipath lies within PATH_WINDOW lags; a neighbour closer than 3 CPs is the mistimed-cell
# test's, dsp.mistimed_cell_rho2), is a candidate; these candidates never enter the serving
# cell's N_ID1 decision, only the search for a weaker cell of that N_ID2 beside it
# (_weaker_same_nid2, with its SSS and real-cell tests: a neighbour whose SSS the serving
# PBCH leaves unclear stays unseen -- a Case B site of the field captures, N_ID1 margin 1.08).
NEAR_PEAK_MIN_LAGS = 3 * dsp.SSB_CP


def _near_same_nid2_peaks(pe_ic: np.ndarray, peak_cands: list[tuple[int, int]], loud: list[tuple[int, int]],
                          threshold: float, spacing: int) -> list[tuple[int, int]]:
    """(lag, N_ID2) candidates of a weaker cell of a loud peak's N_ID2 within
    ``spacing`` lags of that peak (see NEAR_PEAK_MIN_LAGS): on each side the
    strongest local maximum over the threshold. ``pe_ic`` float (3, lags)."""
    out: list[tuple[int, int]] = []
    n = pe_ic.shape[1]
    w = dsp.PATH_WINDOW
    for c0, c2 in loud:
        row = pe_ic[c2]
        for lo, hi in ((c0 - spacing + 1, c0 - NEAR_PEAK_MIN_LAGS + 1), (c0 + NEAR_PEAK_MIN_LAGS, c0 + spacing)):
            lo, hi = max(lo, 0), min(hi, n)
            if hi <= lo:
                continue
            a0 = max(lo - w, 0)
            seg = row[a0 : min(hi + w, n)]
            top = maximum_filter1d(seg, 2 * w + 1, mode="constant", cval=-np.inf)
            ks = a0 + np.flatnonzero((seg >= threshold) & (seg >= top))  # local maxima over the threshold
            ks = ks[(ks >= lo) & (ks < hi)]
            if ks.size == 0:
                continue
            k = int(ks[np.argmax(row[ks])])
            if any(b == c2 and abs(a - k) < NEAR_PEAK_MIN_LAGS for a, b in peak_cands + out):
                continue
            out.append((k, int(c2)))
    return out


def _offtime_cells(ref: Detection, cells: dict[int, list[Detection]], scs: int, fs_hz: float,
                   l_max: int, min_single_rho2: float = 0.0) -> list[int]:
    """The PCIs of ``cells`` not synchronised with the serving cell: with a
    detection at no SSB position of the serving detection ``ref``'s burst
    pattern (:func:`_index_at`, any case of ``scs``, L_max 8 -- whose first four
    are L_max 4's -- to within OFFTIME_MIN_SSB_SAMPLES, in any half frame); ``ref``'s
    index its ī_SSB modulo the serving cell's ``l_max``. Positions in input-rate
    samples at ``fs_hz``. A cell seen at one SSB only is one of them where its PSS
    reached ``min_single_rho2`` (see OFFTIME_SINGLE_SSB)."""
    rate, starts, cases = _burst_layout(scs)
    half_frame = 5e-3 * rate
    firsts = [nr.ssb_first_symbols(c, 8) for c in cases]
    ref_y = ref.sample * rate / fs_hz
    i_ref = ref.cell.ibar % l_max
    out = []
    for p, dets in cells.items():
        if len(dets) == 1 and dets[0].rho2 < min_single_rho2:
            continue
        if any(all(_index_at(d.sample * rate / fs_hz - ref_y, i_ref, first, starts, half_frame,
                             OFFTIME_MIN_SSB_SAMPLES) is None for first in firsts) for d in dets):
            out.append(int(p))
    return sorted(out)


def acquire_steps(
    x: np.ndarray,
    fs_hz: float,
    center_freq_hz: Optional[float],
    cfg: ReceiverConfig = ReceiverConfig(),
    *,
    scs_khz: Optional[int] = None,
    offsets_hz: Optional[list[float]] = None,
    cfo_hint_hz: float = 0.0,
    blind_fallback: bool = True,
    blind_if_thin: bool = True,
    whiten_fallback: bool = False,
):
    """:func:`acquire` as a generator that yields (None) between units of work of
    ~1-25 ms (one block FFT, one raster hypothesis, the fine correlation, a few
    candidates), so that a live receiver can spread a search over time; it
    returns the :func:`acquire` result (``StopIteration.value``, see
    :func:`run_steps`). With a centre frequency the blind search follows the
    centre and the raster when they gave no cell (``blind_fallback``) or a cell
    seen at a single SSB (``blind_if_thin``); without one it is the search.
    With ``whiten_fallback``, a search that finds no cell at all is run once
    more on the block whitened (:func:`dsp.whiten`), and a clear cell found
    there (:func:`_real_cell`, or one of ``cfg.preferred_pcis``) is the result
    (see WHITENED_SEARCH)."""
    x, _ = dsp.sanitize(x)
    scs_list = [scs_khz] if scs_khz else ([cfg.scs_khz] if cfg.scs_khz else [30, 15])
    coarse = []  # (metric, scs, raster offset, frequency hypothesis) of every coarse search
    plans = {}  # scs -> [block spectrum, n_in, n_out, raster offsets, hypotheses, next hypothesis]
    blind_offs: set = set()  # (scs, offset) of the bands the blind search proposed
    edge_offs: dict = {}  # scs -> raster points whose SSB the band edge cuts, its PSS inside (EDGE_SPAN_SUBCARRIERS)
    by_len: dict[int, np.ndarray] = {}  # one FFT of the block serves every SCS with the same length
    for scs in scs_list:
        rate = dsp.ssb_rate_hz(scs)
        if fs_hz < rate * 240 / 256 * 0.999:
            continue
        n_in, n_out = dsp.fft_len_for(len(x), float(fs_hz), float(rate))
        if n_in not in by_len:
            by_len[n_in] = dsp.band_spectrum(x, fs_hz, rate)[0]
            yield
        if offsets_hz is not None:
            offs = list(offsets_hz)
        elif cfg.ssb_offset_hz is not None:
            offs = [cfg.ssb_offset_hz]
        else:
            offs = [0.0]
            if center_freq_hz:
                offs += [float(o) for o in dsp.gscn_candidates_hz(center_freq_hz, fs_hz, scs) if o != 0.0]
                edge_offs[scs] = [float(o) for o in dsp.gscn_candidates_hz(center_freq_hz, fs_hz, scs,
                                                                            EDGE_SPAN_SUBCARRIERS) if o not in offs]
            elif cfg.blind_search:  # no raster without a centre frequency: where the band looks like a PSS
                blind = yield from dsp.blind_ssb_offsets_steps(x, fs_hz, scs, cfg.blind_candidates)
                offs += [o for o in blind if abs(o) >= scs * 500.0]
                blind_offs.update((scs, o) for o in offs[1:])
        plans[scs] = [by_len[n_in], n_in, n_out, offs, cfo_hypotheses_hz(scs, cfg.cfo_search_hz, cfo_hint_hz), 0]
    del by_len
    blind_ok = cfg.blind_search and bool(center_freq_hz) and offsets_hz is None and cfg.ssb_offset_hz is None

    def rings(until_found: bool):
        """Coarse searches of the frequency hypotheses not yet searched, nearest first;
        with ``until_found``, the next hypothesis of an SCS only while no PSS stands out
        of the noise (over 20 raster points and ~10^4 lags noise alone reaches ~0.33:
        acq_threshold is not evidence enough to stop looking elsewhere)."""
        for scs, plan in plans.items():
            X, _, n_out, offs, hyps, _ = plan
            while plan[5] < len(hyps):
                if until_found and plan[5] > 0 and coarse and max(c[0] for c in coarse) >= cfg.acq_single_threshold:
                    break
                h = hyps[plan[5]]
                for off in offs:
                    v, _, _ = dsp.coarse_pss_search(X, fs_hz, n_out, off + h, len(x))
                    coarse.append((v, scs, off, h))
                    yield
                plan[5] += 1

    # The fine stage runs in the best (raster point, hypothesis) band and the next best
    # (up to FINE_CANDIDATES, each another band). The NR PSS sequences are cyclic shifts of
    # one m-sequence by 43 subcarriers (TS 38.211 §7.4.2.2), so a band moved by 43 or 86 SCS
    # from the cell -- a raster point 1.3 MHz away with a frequency hypothesis or the cell's
    # own CFO making up the fraction -- matches another N_ID2's PSS over part of its 127
    # subcarriers and can come out of the coarse search above the cell itself, and its fine
    # stage can yield a cell that is not on air with margins ~1.1 (so can co-timed cells
    # summed in another band). A cell that shows it is one (a clear N_ID1 or PBCH-DMRS
    # margin, _real_cell), or one of the site's own (preferred_pcis), is taken at once; a
    # doubtful one from the best band only when no other band, the frequency hypotheses not
    # searched yet included, holds a clear cell (at 122.88 Msps, a cell 8 kHz off scored 0.66
    # in its own band and 0.78 in the band 43 SCS away).
    tried: list[tuple[int, float]] = []
    weak = []

    def fine(cands, n_max):
        for v, scs, off, hyp in sorted(cands, key=lambda c: -c[0]):
            if v < cfg.acq_threshold * (0.7 if not tried else 1.0) or n_max <= 0:
                break
            if any(s_ == scs and abs(f_ - (off + hyp)) < scs * 500.0 for s_, f_ in tried):
                continue  # within SCS/2 of a band already searched
            tried.append((scs, off + hyp))
            n_max -= 1
            acq = yield from _fine_steps(x, plans[scs][0], fs_hz, plans[scs][2], center_freq_hz, cfg, scs, off, hyp)
            if acq is not None and abs(acq.cfo_hz - hyp) > scs * 1e3 * REFINE_CFO_SCS:
                # found far off its hypothesis (the rings stop at the first one that shows a PSS,
                # nearest the centre first): its PSS and SSS were matched through the frequency
                # error, and its PSS strength, which ranks it against cells of other bands, reads
                # low. Again in the band moved by the CFO it measured
                again = yield from _fine_steps(x, plans[scs][0], fs_hz, plans[scs][2], center_freq_hz, cfg, scs,
                                               off, acq.cfo_hz)
                if again is not None and again.pci == acq.pci:
                    acq = again
            if acq is not None:
                if _real_cell(acq.detections, cfg) or acq.pci in cfg.preferred_pcis:
                    return acq
                if (scs, off) not in blind_offs and (len(tried) == 1 or (
                        not weak and len(acq.detections) >= WEAK_LATER_BAND_SSBS)):
                    # (a blind band must show a clear cell; a later band, a cell at several SSBs
                    # where the bands before it held none)
                    weak.append(acq)
            yield
        return None

    yield from rings(until_found=True)
    acq = yield from fine(coarse, FINE_CANDIDATES)
    if acq is None:
        n_before = len(coarse)
        yield from rings(until_found=False)  # no clear cell: the hypotheses not searched yet
        acq = yield from fine(coarse[n_before:], FINE_CANDIDATES)
    # every band (scs -> raster / blind offsets) searched so far, which the blind search leaves out
    searched = {scs: list(plan[3]) for scs, plan in plans.items()}

    def further(offs_by_scs):
        """The coarse and fine searches of more bands (scs -> offsets): a cell or None."""
        for scs, plan in plans.items():
            plan[3], plan[5] = offs_by_scs.get(scs, []), 0
            searched[scs] += plan[3]
        n_before = len(coarse)
        yield from rings(until_found=True)
        return (yield from fine(coarse[n_before:], FINE_CANDIDATES))

    thin = acq is not None and len(acq.detections) < 2
    if any(edge_offs.values()) and ((acq is None and blind_fallback) or thin):
        # no cell (as often as the blind search), or one seen at a single SSB: the raster points
        # whose SSB the band edge cuts (else a cell there is not looked for, and its PSS, 43
        # subcarriers off in a band that is searched, matches another N_ID2's: a cell not on
        # air); the stronger PSS wins
        alt = yield from further(edge_offs)
        if alt is not None and (acq is None or (alt.pci != acq.pci and acq.pci not in cfg.preferred_pcis
                                                 and _pss_strength(alt) > _pss_strength(acq)
                                                 and not _shifted_band(alt, acq))):
            acq = alt  # (a calibrated site's own cell is kept)
    if blind_ok and ((acq is None and blind_fallback) or (acq is not None and blind_if_thin
                                                           and len(acq.detections) < 2)):
        # no clear cell at the centre or on the raster, or one seen at a single SSB (noise and
        # traffic in a loaded band make such cells): the band's PSS-like spectra off the raster
        # too (a core:frequency that is not where the SDR was tuned), the stronger PSS wins;
        # a doubtful cell of the raster search stands only if none of them holds a clear one
        blind_by_scs = {}
        for scs in plans:
            blind = yield from dsp.blind_ssb_offsets_steps(x, fs_hz, scs, cfg.blind_candidates)
            # (not those the frequency hypotheses around a point searched already covered)
            reach = max(cfg.cfo_search_hz, scs * 500.0)
            blind_by_scs[scs] = [o for o in blind if all(abs(o - r) > reach for r in searched[scs])]
            blind_offs.update((scs, o) for o in blind_by_scs[scs])
        alt = yield from further(blind_by_scs)
        if alt is not None and (acq is None or (alt.pci != acq.pci
                                                and _pss_strength(alt) > BLIND_OVERRIDE * _pss_strength(acq)
                                                and not _shifted_band(alt, acq))):
            acq = alt
    if (acq is None and not weak and cfg.site_ssb_offset_hz is not None and cfg.preferred_pcis
            and offsets_hz is None and cfg.ssb_offset_hz is None):
        # the site's own band alone (ReceiverConfig.site_ssb_offset_hz): its cell or nothing
        site = yield from acquire_steps(x, fs_hz, center_freq_hz,
                                        dataclasses.replace(cfg, ssb_offset_hz=cfg.site_ssb_offset_hz,
                                                            site_ssb_offset_hz=None),
                                        scs_khz=scs_khz, cfo_hint_hz=cfo_hint_hz, blind_fallback=False,
                                        blind_if_thin=False)
        if site is not None and site.pci in cfg.preferred_pcis:
            return site
    if acq is None and not weak and whiten_fallback:
        yield
        xw = yield from dsp.whiten_steps(x, fs_hz)
        yield
        alt = yield from acquire_steps(xw, fs_hz, center_freq_hz, cfg, scs_khz=scs_khz, offsets_hz=offsets_hz,
                                       cfo_hint_hz=cfo_hint_hz, blind_fallback=blind_fallback,
                                       blind_if_thin=blind_if_thin)
        if alt is not None and (alt.pci in cfg.preferred_pcis
                                or (_real_cell(alt.detections, cfg) and not _whitened_phantom(alt))):
            return alt
    return acq if acq is not None else (weak[0] if weak else None)


def _whitened_phantom(acq: Acquisition) -> bool:
    """Whether a cell of the whitened search is one seen at a single SSB whose SSS REs
    stand less than -WHITENED_SINGLE_NULL_TO_SSS_DB dB over its null REs (or unmeasured)."""
    return len(acq.detections) < 2 and not acq.null_to_sss_db <= WHITENED_SINGLE_NULL_TO_SSS_DB


# WHITENED_SEARCH: a jammer that holds part of the SSB's band -- partial-band noise, tones -- from
# the first sample stands 10-20 dB over the cell on the PSS subcarriers it covers, and the PSS
# correlation, summed over all 127, drowns there: no cell found, so no record at all without a
# baseline (`bench/receiver_eval.py strong --sites 12 --seed 1`: SJNR -10...-3 dB, 20 ms
# recordings, uncalibrated: 54 of 83 SSBs under partial-band noise gave no record, 27 with this
# search). Whitened, the block's jammed bins stand at the level of the others, and the PSS is
# found on the subcarriers the jammer leaves alone (a jammer over the whole band, or a sweep that
# crosses it within a symbol, leaves none). Tracking then scores the raw stream, where the jammer
# is (records, jammed). The whitened search runs only after every other stage found nothing (a
# cell the plain search finds is found as before), and keeps only a clear cell.


# A cell the whitened search saw at one SSB stands only where its SSS REs carry energy over its
# null REs (Acquisition.null_to_sss_db at most this): whitened, the traffic of a loaded band
# makes PSS, SSS and PBCH-DMRS matches that pass _real_cell now and then, with the SSS REs no
# louder than the null REs beside them. A 20 ms clean recording at 10 Msps whose SSB the band
# edge cut (`bench/receiver_eval.py rates --n 12 --seed 64 --model default --rates 9.6,10`,
# capture 0) gave PCI 872 at -0.2 dB, one SSB over 8 ms from any of the cell's, scored jammed;
# the cells this search found under jammers from the first sample (`strong --sites 12 --seed 1`)
# seen at one SSB stood at -9.1 to -22.4 dB, those seen at more down to -0.1 dB (a jammer over
# the whole band fills the null REs and the SSS REs alike: they keep their cell).
WHITENED_SINGLE_NULL_TO_SSS_DB = -3.0
# A cell the fine stage finds more than this many SCS off the band's frequency hypothesis is
# looked for again in the band moved by the CFO it measured (the hypotheses are SCS/3 apart: a
# cell nearest its own is at most SCS/6 off). oai-n78-pci1 through an SDR 11 kHz off (3 ppm at
# 3.4 GHz; 30 kHz SCS) was found at hypothesis 0 with a PSS strength of 1.21 (1.9 within SCS/6),
# and the blind search then replaced it by a band of traffic 2.5 MHz away (PCI 18, jammed).
REFINE_CFO_SCS = 1.0 / 6.0
# A doubtful cell (not _real_cell) of a band other than the best is kept (taken when no band holds
# a clear one) where it was seen at this many SSBs and the bands before it gave no cell: in a
# synchronised network of several cells within a few dB, every cell's SSS and PBCH-DMRS lie under
# the others' (margins ~1.1-1.2), and the best coarse band can be the one 43 subcarriers off the
# cells (see fine()), which holds none (five co-timed cells within 4 dB, `bench/receiver_eval.py
# cells --seed 5 --extra 3`, site 4: no cell in 40 ms without this, PCI 305 at 5 SSBs with it);
# cells that noise and traffic make are seen at one or two SSBs
WEAK_LATER_BAND_SSBS = 3
# a cell of the blind search replaces one the raster search saw at a single SSB when its PSS
# correlates this much better (the real captures' cells: ~1.9; cells that noise and traffic
# make in a loaded band: ~0.35-0.6)
BLIND_OVERRIDE = 1.25
# ... and neither it nor a cell of a band cut by the capture's edge does so where its null REs
# stand this much louder (over its SSS) than the raster cell's (_shifted_band)
SHIFTED_BAND_NULL_GAP_DB = 10.0
IQ_SWAP_CHECKS = 3  # conjugated searches a stream that never had a cell tries (ReceiverConfig.iq_swap_check)
BLIND_EVERY = 4  # a live receiver's cell searches that try the blind search, while none finds a cell


def _pss_strength(acq: "Acquisition") -> float:
    """The best PSS correlation among a cell's detections."""
    return max(d.rho2 for d in acq.detections)


def _fine_steps(x, X, fs_hz, n_out, center_freq_hz, cfg, scs, off, hyp):
    """The fine stage of :func:`acquire_steps` in the band at raster point
    ``off`` moved by the frequency hypothesis ``hyp`` (Hz): PSS correlation, SSS,
    PBCH-DMRS, the burst. Returns the Acquisition or None."""
    # the band around the SSB's raster point moved by the hypothesis; the CFO found in it is
    # relative to that hypothesis (added back at the end: the Acquisition's is the whole CFO)
    y = dsp.extract_band_from_spectrum(X, fs_hz, n_out, off + hyp, n_valid_in=len(x))
    yield
    rho2, _ = yield from dsp.pss_correlate_steps(y)
    if rho2.size == 0:
        return None
    yield
    pe = dsp.path_energy(rho2)  # multipath energy per lag and N_ID2 (ranks the cells)
    # detection on the energy with the other N_ID2's taken out: a loud fake PSS of
    # another N_ID2 does not hide the cell (dsp.pss_rho2_ic)
    pe_ic = dsp.path_energy(dsp.pss_rho2_ic(rho2))
    if pe_ic.max() < cfg.acq_threshold:
        return None
    rate = dsp.ssb_rate_hz(scs)
    metric = pe_ic.max(axis=0)
    peaks = dsp.find_peaks(metric, cfg.acq_threshold, min_distance=dsp.SSB_SYMBOL_LEN * 3)
    cands = []  # (start+frac, nid2, rho2, cfo, grid, sss metrics)
    # every N_ID2 above the threshold at a peak is a candidate, not only the strongest:
    # a PSS spoofer (or a co-timed cell) must not hide the serving cell's PSS
    peak_cands = [(int(n0), nid2) for n0 in peaks for nid2 in np.flatnonzero(pe_ic[:, n0] >= cfg.acq_threshold)]
    # ... nor one a few lags off it: each N_ID2's own peaks whose place a clear PSS (single-SSB
    # strength) of another N_ID2 within the peak spacing took (a fake PSS 1.8 us before a real
    # cell's, 3.8 dB over it: the cell's own peak, 0.70, 14 lags after the fake's, was never
    # looked at, and a 1 ms recording gave no cell; a neighbour of another N_ID2 a few hundred
    # metres nearer). Not beside noise peaks: more noise candidates, more cells made of noise
    spacing = dsp.SSB_SYMBOL_LEN * 3
    loud = [(c0, c2) for c0, c2 in peak_cands if pe_ic[c2, c0] >= cfg.acq_single_threshold]
    for nid2 in range(3):
        if not any(c2 != nid2 for _, c2 in loud):
            continue
        for n1 in dsp.find_peaks(pe_ic[nid2], cfg.acq_threshold, min_distance=spacing):
            n1 = int(n1)
            if any(c2 != nid2 and abs(c0 - n1) < spacing for c0, c2 in loud) and \
                    not any(c2 == nid2 and abs(c0 - n1) < spacing for c0, c2 in peak_cands):
                peak_cands.append((n1, nid2))
    near = _near_same_nid2_peaks(pe_ic, peak_cands, loud, cfg.acq_threshold, spacing)
    near_cands: dict[int, list] = {}  # N_ID2 -> candidates of a weaker cell off a loud peak's timing
    for ci, (n0, nid2) in enumerate(peak_cands + near):
        if ci and ci % 8 == 0:
            yield
        nid2 = int(nid2)
        energy = float(pe[nid2, n0])
        n = dsp.first_path(rho2[nid2], n0)
        start = int(n) - dsp.SSB_CP
        if start + dsp.SSB_CP - dsp.FFT_BACKOFF - 1 < 0 or start + dsp.SSB_LEN > y.size:
            continue  # the SSB's FFT windows are not wholly inside the block (its first CP may be cut)
        cfo = dsp.pss_cfo_hz(y, int(n), nid2, scs)
        frac = dsp.parabolic_offset(*(float(rho2[nid2, i]) if 0 <= i < rho2.shape[1] else 0.0 for i in (n - 1, n, n + 1)))
        seg0 = max(0, start - dsp.SSB_CP)
        seg = dsp.derotate(y[seg0 : start + dsp.SSB_LEN + dsp.SSB_CP], cfo, rate, seg0)
        grid = dsp.suppress_tones_grid(dsp.ssb_grid_at(seg, start - seg0 + frac))
        c = (start + frac, nid2, energy, cfo, grid, dsp.sss_metrics(grid, nid2))
        if ci < len(peak_cands):
            cands.append(c)
        else:
            near_cands.setdefault(nid2, []).append(c)
    del rho2, pe, pe_ic
    yield
    cands = _cancel_cotimed(cands, cfg)
    # N_ID1 per N_ID2, decided on the SSS energy summed over all its PSS peaks: a
    # weak cell is identified from several SSBs, and a weaker co-channel cell with
    # the same N_ID2 is ignored, never mixed in
    by_pci: dict[int, list[Detection]] = {}
    cell_grids: dict[int, np.ndarray] = {}  # each cell's grids at its detections (m, 4, 240)
    weaker: dict[int, list[Detection]] = {}  # cells under another of their N_ID2 (_weaker_same_nid2)
    for nid2 in {c[1] for c in cands}:
        mine = [c for c in cands if c[1] == nid2]
        nid1, margin, acc = _decide_nid1(mine, nid2, cfg)
        pair = _grouped_sss_decision(mine, nid2)
        if pair is not None and (nid1 not in pair[4] if len(pair[4]) == 2 else margin < cfg.single_sss_margin):
            # two co-timed cells of this N_ID2 whose PSS merged, or a cell whose SSS matched
            # through the PSS's channel is unclear: decided on the grouped SSS match
            nid1, margin, acc = pair[:3]
        else:
            pair = None
        if margin < cfg.min_sss_margin:
            # PSS-like peaks that carry no SSS (traffic, a co-timed cell of another N_ID2
            # whose PSS partly matches) add noise to every N_ID1 and can drown a cell seen
            # at one or two SSBs (17 peaks, two of them the cell's: margin 1.08): decide
            # again on the peaks whose own SSS match stands clear of its median
            clear = [c for c in mine if _own_sss_ratio(c[5]) >= cfg.clear_sss_ratio]
            agreed = _agreed_nid1(clear)
            if clear and len(clear) < len(mine):
                nid1, margin, acc = _decide_nid1(clear, nid2, cfg)
            if margin >= cfg.min_sss_margin:
                mine = clear
            elif agreed is not None:
                # co-timed cells of this N_ID2 within a few dB: each one's SSS is under the
                # others' in the sum (margin ~1.02-1.08 with 3 such cells), but the peaks that
                # carry an SSS clearly all carry the same one (noise peaks stay under
                # clear_sss_ratio, and two of them agree by chance 1 in 336)
                mine = clear
                nid1, acc = agreed, np.sqrt(np.sum([c[5] ** 2 for c in clear], axis=0))
                margin = float(acc[nid1] / max(float(np.max(np.delete(acc, nid1))), 1e-30))
            else:
                continue
        single_ok = max(c[2] for c in mine) >= cfg.acq_single_threshold and margin >= cfg.single_sss_margin
        if len(mine) < 2 and not single_ok:
            continue  # noise makes isolated weak PSS peaks with random N_ID1
        dets = []
        owns = []
        grids = []
        rest = []  # the peaks that do not carry it (another cell of this N_ID2, traffic, noise)
        for k, (st, _, r2, cfo, grid, m) in enumerate(mine):
            own = _own_sss_ratio(m, nid1) if pair is None else pair[3][k]
            if own < cfg.sss_peak_ratio:
                rest.append(mine[k])
                continue  # a PSS-like peak that does not carry this cell's SSS
            cell = dsp.identify(grid, nid2, nid1=nid1, sss=acc)
            dets.append(Detection(st * fs_hz / rate, nid2, r2, cell, cfo))  # (relative to hyp until the end)
            owns.append(own)
            grids.append(grid)
        if len(dets) == 1 and len(mine) > 1 and owns[0] < cfg.clear_sss_ratio and not (
                dets[0].rho2 >= cfg.acq_single_threshold and margin >= cfg.single_sss_margin):
            # the N_ID1 decided over several PSS peaks is carried by one of them alone, and not
            # clearly: a cell seen at one SSB held to that test, or to a clear SSS of its own
            # (co-timed cells of one N_ID2, each SSS under the others, sum to an N_ID1 none of
            # them has: PCI 153 out of cells 36 and 60 5 dB apart with three more cells of
            # other N_ID2 within 4 dB; its one peak's own match 3.4 x its median)
            continue
        if dets:
            by_pci[3 * nid1 + nid2] = dets
            cell_grids[3 * nid1 + nid2] = np.stack(grids)
            # (with the near candidates that do not carry this cell's own SSS: the cell's own SSBs
            # among them, those a louder peak of the other cell took the place of, stay out)
            if pair is None:
                beside = [c for c in near_cands.get(nid2, []) if _own_sss_ratio(c[5], nid1) < cfg.sss_peak_ratio]
                if rest or beside:
                    weaker.update(_weaker_same_nid2(rest + beside, nid2, nid1, fs_hz / rate, cfg))
    if not by_pci:
        return None
    # the strongest cell by the power its SSS and PBCH-DMRS carry (_cell_power: a PSS-only
    # spoofer, a fake PSS with no SSS behind it, gets PSS peaks but no such power), summed
    # over its SSBs
    strength = {p: float(np.sum(_cell_power(cell_grids[p], p, [d.cell.ibar for d in by_pci[p]]))) for p in by_pci}
    known = [p for p in by_pci if p in cfg.preferred_pcis]
    pci = max(known or by_pci, key=strength.get)
    ssb_freq = center_freq_hz + off if center_freq_hz else None
    yield
    l_max, l_max_seen = _pick_l_max(by_pci[pci], scs, fs_hz, l_max_candidates(ssb_freq, scs))
    ref, kept = _consistent_core(by_pci[pci], scs, fs_hz, l_max)
    if len(by_pci[pci]) >= 2 and len(kept) < 2 and ref.rho2 < cfg.acq_single_threshold:
        # two or more SSBs whose times fit no burst of one cell, none of single-SSB strength:
        # noise or traffic that passed the PSS, SSS and DMRS tests (a search between the bursts
        # of a 160 ms cell locked onto such a pair, 16.4 ms apart, and scored its flywheel
        # positions: periods --sites 8 --seed 503)
        return None
    mine = yield from _probe_burst_steps(y, ref, kept, scs, fs_hz, l_max, cfg)
    mine = [dataclasses.replace(d, cfo_hz=d.cfo_hz + hyp) for d in mine]  # the receiver's whole CFO
    w = np.array([d.rho2 for d in mine])
    cfo = float(np.sum(w * np.array([d.cfo_hz for d in mine])) / w.sum())
    others = sorted((p for p in by_pci if p != pci and _real_cell(by_pci[p], cfg)), key=lambda p: (-strength[p], p))
    seen = {p: by_pci[p] for p in others}
    seen.update((p, d) for p, d in weaker.items() if p != pci and p not in seen)
    return Acquisition(scs, off, cfo, pci, mine, _period_from(mine, fs_hz), others, l_max, l_max_seen,
                       _null_to_sss_db(cell_grids[pci]),
                       _offtime_cells(ref, seen, scs, fs_hz, l_max,
                                      cfg.acq_single_threshold if OFFTIME_SINGLE_SSB else 0.0))


def merge_cells(into: dict[int, bool], cells: dict[int, bool]) -> list[int]:
    """Merge ``cells`` (PCI -> seen off the serving cell's timing, as
    ``Receiver.cells_seen``) into ``into``, a cell off-timing once staying so;
    returns the PCIs it added or first marked off-timing, in ``cells``' order."""
    changed = []
    for p, off in cells.items():
        if p not in into or (off and not into[p]):
            changed.append(p)
        into[p] = into.get(p, False) or bool(off)
    return changed


COTIMED_ROUNDS = 2  # rounds of _cancel_cotimed: each cell's SSS decided with the others' taken out


def _cancel_cotimed(cands: list, cfg: ReceiverConfig) -> list:
    """Co-timed cells of different N_ID2 (acquire_steps' candidates whose SSBs start
    within half a CP of each other): each one's SSS is matched on a grid with the
    others' PSS taken out (:func:`dsp.cancel_cell_sync`: the channel the SSS is
    equalised with is its own cell's), and then in COTIMED_ROUNDS rounds with their
    SSS taken out as well where they show one clearly (their own best match
    clear_sss_ratio over its median; that N_ID1) and that makes its own best match
    stand clearer without changing it (no N_ID1 is made by a cancellation). Two such
    cells within ~1 dB put each one's SSS under the other's: N_ID1 margins 1.03-1.29,
    under single_sss_margin, and a 1 ms recording of them gave no cell
    (cyberx-n78-pci1 with amarisoft-n78-pci500 at its SSB's power, 0 and 1 dB over it)."""
    half_cp = dsp.SSB_CP / 2
    pairs = [(i, j) for i, ci in enumerate(cands) for j, cj in enumerate(cands)
             if ci[1] != cj[1] and abs(ci[0] - cj[0]) <= half_cp]
    if not pairs:
        return cands
    out = list(cands)
    base = {}
    for i in sorted({i for i, _ in pairs}):
        st, nid2, energy, cfo, grid, _ = cands[i]
        grid = dsp.cancel_cell_sync(grid, nid2, [cands[j][1] for a, j in pairs if a == i])
        base[i] = grid
        out[i] = (st, nid2, energy, cfo, grid, dsp.sss_metrics(grid, nid2))
    first = list(out)
    for _ in range(COTIMED_ROUNDS):
        nxt = list(out)
        for i in base:
            partners = [j for a, j in pairs if a == i and _own_sss_ratio(out[j][5]) >= cfg.clear_sss_ratio]
            if not partners:
                continue
            st, nid2, energy, cfo, _, m_first = first[i]
            # from the PSS-cleaned grid each round: the partners' latest N_ID1
            grid = dsp.cancel_cell_sync(base[i], nid2, (), [3 * int(np.argmax(out[j][5])) + out[j][1] for j in partners])
            m = dsp.sss_metrics(grid, nid2)
            if int(np.argmax(m)) == int(np.argmax(m_first)) and _own_sss_ratio(m) > _own_sss_ratio(m_first):
                nxt[i] = (st, nid2, energy, cfo, grid, m)
        out = nxt
    return out


def _cell_power(grids: np.ndarray, pci: int, ibars) -> np.ndarray:
    """The power per RE that cell ``pci`` carries in SSB grids complex64 (m, 4,
    240) with ī_SSB ``ibars`` (m,), float64 (m,): the mean of what its SSS
    (TS 38.211 §7.4.2.3; symbol 2, subcarriers 56..182) and its PBCH-DMRS
    (§7.4.1.4.1; symbols 1 and 3, every 4th subcarrier over all 240) show, each
    matched to its known values in groups spanning 8 subcarriers (about a cell's
    coherence bandwidth: a dispersive channel loses little), |sum|^2 / n^2
    averaged over the groups. Another cell's signal on the same REs, the noise
    and traffic add about 1/n of their power (n = 8 SSS REs, 2 DMRS REs a
    group). The cell search ranks cells by it: the PSS correlation's normalised
    peak is no power (a cell whose channel spreads its PSS over several paths
    peaks lower than a flat one 3 dB weaker), and the SSS's band alone is half
    the SSB's (a frequency-selective channel can fade it under a weaker cell's)."""
    grids = np.asarray(grids)
    rx = dsp.sss_rx_groups(grids[:, 2, nr.ssb_re_indices(pci)["sss"][1]])  # (m, 16, 8)
    p_sss = dsp.sss_group_energy(rx, dsp.sss_groups()[pci : pci + 1])[:, 0] / (rx.shape[1] * 64.0)
    return 0.5 * (p_sss + _dmrs_power(grids, pci, ibars))


def _dmrs_power(grids: np.ndarray, pci: int, ibars) -> np.ndarray:
    """The PBCH-DMRS half of :func:`_cell_power`: float64 (m,), the power per RE
    that the DMRS of cell ``pci`` with ī_SSB ``ibars`` (m,) shows on symbols 1 and
    3 of grids complex64 (m, 4, 240), matched in groups of 2 REs (8 subcarriers)."""
    sym, sc = nr.ssb_re_indices(pci)["dmrs"]
    d = np.stack([np.conj(nr.pbch_dmrs(pci, int(ib))) for ib in ibars]).astype(np.complex128)  # (m, 144)
    zd = np.asarray(grids)[:, sym, sc] * d
    # (r(m) in order: 60 on symbol 1, 12 + 12 on symbol 2's edges, 60 on symbol 3; Table 7.4.3.1-1)
    zd = np.concatenate([zd[:, :60], zd[:, 84:]], axis=1).reshape(-1, 60, 2).sum(axis=2)  # symbols 1 and 3
    return np.mean(zd.real * zd.real + zd.imag * zd.imag, axis=1) / 4.0


def _joint_cell_power(grids: np.ndarray, pcis, ibars) -> np.ndarray:
    """The power per RE of each of k cells ``pcis`` of one N_ID2 in SSB grids
    complex64 (m, 4, 240) that hold them all at once (co-timed cells), fitted
    together: float64 (k,). ``ibars`` (k, m) is each cell's ī_SSB per grid.

    Cells of one N_ID2 send their SSS on the same 127 REs (TS 38.211 §7.4.3.1),
    and cells with the same N_ID^cell mod 4 their PBCH-DMRS on the same REs too
    (§7.4.3.1.3, v). Matched alone (:func:`_cell_power`), each cell's group sum
    also holds the other's signal through the two sequences' cross term, fixed
    over SSBs on a static channel: a neighbour 3 dB down read as strong as the
    serving cell (0.4 dB under it, pci --n 40 --seed 503, capture 32). Here each group (8 SSS REs; 4 DMRS REs, 16 subcarriers, on
    symbols 1 and 3) is solved by least squares for one channel gain per cell
    sharing those REs, and a cell's power is the mean |gain|^2 over its groups,
    SSS and DMRS halves averaged as in :func:`_cell_power`. The grids are timed
    on one arrival (the earliest path of the cells' common PSS); each cell's own
    timing offset turns its channel by a phase per subcarrier, read from its SSS
    (the lag-1 product of its matched REs) and put into its sequence: with the
    grids timed on a neighbour 12 samples early (7.68 Msps, a 512-point FFT),
    the serving cell's phase turns 0.15 rad per subcarrier, which takes ~10 %
    off its SSS groups' power and ~40 % off its DMRS groups' (seed 506, capture
    19: the neighbour read the stronger without it)."""
    grids = np.asarray(grids)
    m = grids.shape[0]
    pcis = [int(q) for q in pcis]
    ibars = np.asarray(ibars, dtype=np.int64).reshape(len(pcis), m)
    k_sss = nr.ssb_re_indices(pcis[0])["sss"][1]
    y_sss = grids[:, 2, k_sss].astype(np.complex128)  # (m, 127)
    seqs = np.stack([nr.sss(q) for q in pcis]).astype(np.float64)  # (k, 127)
    z = y_sss[None] * seqs[:, None, :]  # (k, m, 127)
    slope = np.angle(np.sum(z[:, :, 1:] * np.conj(z[:, :, :-1]), axis=(1, 2)))  # (k,) rad per subcarrier
    a = dsp.sss_rx_groups(seqs * np.exp(1j * slope[:, None] * k_sss[None, :]))  # (k, 16, 8)
    g = np.einsum("gkn,mgn->mgk", np.linalg.pinv(np.moveaxis(a, 0, -1)), dsp.sss_rx_groups(y_sss))
    p_sss = np.mean(np.abs(g) ** 2, axis=(0, 1))
    p_dmrs = np.zeros(len(pcis))
    keep = np.r_[0:60, 84:144]  # symbols 1 and 3 (r(m) order, Table 7.4.3.1-1)
    for v in {q % 4 for q in pcis}:
        mine = [i for i, q in enumerate(pcis) if q % 4 == v]
        sym, sc = nr.ssb_re_indices(pcis[mine[0]])["dmrs"]
        sym, sc = sym[keep], sc[keep]
        yd = grids[:, sym, sc].astype(np.complex128).reshape(m, 30, 4)
        d = np.stack([np.stack([nr.pbch_dmrs(pcis[i], int(ib))[keep] for ib in ibars[i]])
                      * np.exp(1j * slope[i] * sc)[None, :] for i in mine], axis=-1)  # (m, 120, k_v)
        gd = np.einsum("mgkn,mgn->mgk", np.linalg.pinv(d.reshape(m, 30, 4, len(mine))), yd)
        p_dmrs[mine] = np.mean(np.abs(gd) ** 2, axis=(0, 1))
    return 0.5 * (p_sss + p_dmrs)


COTIMED_GROUPED_RATIO = 1.6  # _grouped_sss_decision: two cells, the 2nd grouped SSS match over the 3rd (energy)
CLEAR_GROUPED_RATIO = 1.8  # _grouped_sss_decision: one cell, the best grouped SSS match over the 2nd (energy)


def _grouped_sss_decision(cands: list, nid2: int):
    """The N_ID1 of acquire_steps' candidates of ``nid2`` by the grouped SSS match
    (:func:`dsp.sss_group_energy`: coherent over SSS_GROUP_SC subcarriers, no channel
    estimate), where it is clear and the usual one (:func:`dsp.sss_metrics`, the SSS
    equalised with the PSS's channel) may not be:

    - two co-timed cells of one N_ID2: one PSS, whose channel holds both cells' with
      their timing difference, so that the equalised match loses either cell's
      coherence over the band (the two cells of a 1 ms recording within ±1 dB: their
      N_ID1s ranked 2nd-272nd, another PCI found in 8 of 300); the grouped match
      ranks them first and second, the 2nd 1.35-2.7x the 3rd (150 such recordings;
      one cell, or cells of other N_ID2: at most 1.35). Where the 2nd stands
      COTIMED_GROUPED_RATIO over the 3rd: the stronger of the two by their jointly
      fitted power;
    - else a cell whose best grouped match stands CLEAR_GROUPED_RATIO over the 2nd
      (a co-timed cell of another N_ID2 about as loud spoils the PSS's channel:
      the equalised margin under 1.3 in 39 of 220 such decisions, the grouped ratio
      over 1.8 in 37 of them; candidates that hold no cell: at most 1.47 over 420
      decisions, SNR -3..35 dB).

    Returns (N_ID1, its margin (ratio ** 0.5), the grouped match's amplitude (336,)
    with the other cell's taken out for a pair (the margin :func:`dsp.identify` gives
    is then this cell's over the 3rd), each candidate's own grouped match of the
    N_ID1 over its median, the N_ID1s: the pair, or the one), or None."""
    rx = dsp.sss_rx_groups(np.stack([c[4][2, dsp.PSS_K] for c in cands]))
    g = dsp.sss_group_energy(rx, dsp.sss_groups()[nid2::3])  # (m, 336)
    total = g.sum(axis=0)
    order = np.argsort(total)[::-1]
    acc = np.sqrt(total)
    if total[order[1]] >= COTIMED_GROUPED_RATIO * total[order[2]]:
        nid1s = (int(order[0]), int(order[1]))
        nid1 = _strongest_nid1(cands, nid2, nid1s)
        acc[nid1s[1] if nid1 == nid1s[0] else nid1s[0]] = 0.0  # the other cell is no rival of this one's N_ID1
        ratio = total[order[1]] / total[order[2]]
    elif total[order[0]] >= CLEAR_GROUPED_RATIO * total[order[1]]:
        nid1 = int(order[0])
        nid1s = (nid1,)
        ratio = total[order[0]] / total[order[1]]
    else:
        return None
    owns = (g[:, nid1] / np.maximum(np.median(g, axis=1), 1e-30)).tolist()
    return nid1, float(np.sqrt(ratio)), acc, owns, nid1s


def _strongest_nid1(cands: list, nid2: int, nid1s) -> int:
    """Of the N_ID1s ``nid1s`` of one N_ID2, the one whose cell carries the most
    power in the candidates' grids (acquire_steps' tuples) fitted jointly
    (:func:`_joint_cell_power`; each cell's ī_SSB per grid from its PBCH-DMRS)."""
    grids = np.stack([c[4] for c in cands])
    nid1s = [int(n) for n in nid1s]
    ibars = [[dsp.best_ibar(c[4], 3 * n + nid2) for c in cands] for n in nid1s]
    power = _joint_cell_power(grids, [3 * n + nid2 for n in nid1s], ibars)
    return nid1s[int(np.argmax(power))]


def _null_to_sss_db(grids: np.ndarray) -> float:
    """The median over SSB grids complex64 (m, 4, 240) of their null REs' mean energy
    (TS 38.211 §7.4.3.1) over their SSS REs' (subcarriers 56-182 of symbol 2), dB."""
    nul = dsp.null_re_power(grids)
    sss = np.mean(np.abs(grids[:, 2, 56:183]).astype(np.float64) ** 2, axis=1)
    return float(np.median(10 * np.log10(np.maximum(nul, 1e-30) / np.maximum(sss, 1e-30))))


def _shifted_band(alt: "Acquisition", acq: "Acquisition") -> bool:
    """Whether ``alt`` (a cell of another band) shows the band shift of ``acq``'s
    cell rather than a cell: NR's PSS sequences are cyclic shifts of one m-sequence
    and its SSS sequences pairs of shifted m-sequences (TS 38.211 §7.4.2.2-3), so a
    band 43 or 86 subcarriers off the cells' holds PSS and SSS of another
    PCI -- and there the cells' PSS, SSS and PBCH lie on its null REs, which are
    then about as loud as its SSS (-1..-4 dB in a five-cell network where the
    cells' own band read -21 dB)."""
    return alt.null_to_sss_db - acq.null_to_sss_db >= SHIFTED_BAND_NULL_GAP_DB


def _own_sss_ratio(m: np.ndarray, nid1: Optional[int] = None) -> float:
    """One PSS peak's SSS match of ``nid1`` (default: its best) over the median of its
    336 matches (:func:`dsp.sss_metrics`; noise alone reaches ~3.2)."""
    v = float(m.max()) if nid1 is None else float(m[nid1])
    return v / max(float(np.median(m)), 1e-30)


def _agreed_nid1(clear: list) -> Optional[int]:
    """The N_ID1 that every one of two or more candidates with a clear SSS
    (acquire_steps' tuples) matches best, or None."""
    best = {int(np.argmax(c[5])) for c in clear}
    return best.pop() if len(clear) >= 2 and len(best) == 1 else None


def _decide_nid1(cands: list, nid2: int, cfg: ReceiverConfig) -> tuple[int, float, np.ndarray]:
    """N_ID1 from the SSS metrics (each (336,), the candidates' last element) summed
    in energy over the candidates: (N_ID1, its margin best / second best, the sum (336,)).
    Where two N_ID1s stand clear of the rest (cfg.co_timed_sss_ratio: two co-timed
    cells of this N_ID2), the margin of the better match over the other is no test of
    either: the N_ID1 is the stronger cell's by their jointly fitted power
    (:func:`_strongest_nid1`), its margin that of both over the next N_ID1."""
    acc = np.sqrt(np.sum([c[5] ** 2 for c in cands], axis=0))
    order = np.argsort(acc)[::-1]
    if acc[order[1]] >= cfg.co_timed_sss_ratio * acc[order[2]]:
        return _strongest_nid1(cands, nid2, order[:2]), float(acc[order[1]] / max(float(acc[order[2]]), 1e-30)), acc
    return int(order[0]), float(acc[order[0]] / max(acc[order[1]], 1e-30)), acc


def _probe_at(y: np.ndarray, start: float, pci: int, cfo_hz: float, scs: int, cfg: ReceiverConfig,
              want: Optional[int] = None):
    """PSS + PBCH-DMRS check of a known cell at a predicted SSB start (SSB-rate
    samples in ``y``) where ī_SSB ``want`` is expected. Returns (start, rho2, ī_SSB,
    grid) or None."""
    rate = dsp.ssb_rate_hz(scs)
    s = cfg.track_search
    lo = int(round(start)) + dsp.SSB_CP - s
    a = lo - dsp.SSB_CP
    if a < 0 or lo + 2 * s + dsp.SSB_LEN + dsp.SSB_CP > y.size:
        return None
    seg = dsp.derotate(y[a : lo + 2 * s + dsp.SSB_LEN + dsp.SSB_CP], cfo_hz, rate, a)
    rho2, _ = dsp.pss_correlate(seg[dsp.SSB_CP : dsp.SSB_CP + 2 * s + dsp.SSB_FFT_SIZE], nid2s=(pci % 3,))
    k = int(np.argmax(rho2[0]))
    peak = float(rho2[0, k])
    if peak < cfg.track_threshold:
        return None
    st = lo + k - dsp.SSB_CP  # SSB start in y
    grid = dsp.ssb_grid_at(seg, st - a)
    clean = dsp.suppress_tones_grid(grid)
    # the cell's SSS must be there too (as at acquisition): a PSS-like peak of traffic at a
    # position the cell does not use, with the PBCH-DMRS guess right by chance (1 in L_max),
    # would become a tracked SSB where there is none, and every one of its records "jammed"
    m = dsp.sss_metrics(clean, pci % 3)
    own = m[pci // 3] >= cfg.sss_peak_ratio * np.median(m)
    if not own and want is None:
        return None
    ibar = dsp.best_ibar(clean, pci) if own else None
    if want is not None and ibar != want:
        # the SSS and DMRS matched through the PSS's channel (a co-timed cell with this N_ID2
        # shares it; a weak PSS reads it poorly) missed the cell or read another ī_SSB; matched alone in groups of 8
        # subcarriers, the cell's SSS stands out and its DMRS reads the predicted ī_SSB (pci
        # --n 40 --seed 509, capture 11: SSBs 2 and 3 of the burst were not tracked; seed 505,
        # capture 8, and 508, 22: the SSS match through the PSS's channel 1.0-1.7 x its median)
        if (own or _grouped_sss_ratio(clean, pci) >= PROBE_GROUPED_SSS_RATIO) and \
                int(np.argmax(_dmrs_power(np.broadcast_to(clean, (8, *clean.shape)), pci, range(8)))) == want:
            ibar = want
        elif not own:
            return None
    return st, peak, ibar, grid


# A predicted SSB whose SSS, matched through the PSS's channel, falls short is still the cell's
# when its SSS matched alone in groups of 8 subcarriers (_grouped_sss_ratio) stands this far over
# the median of its N_ID2's 336 sequences and its DMRS so matched reads the predicted ī_SSB: the
# cell's SSBs beside a co-timed cell of its N_ID2 read 5.7-5.9, positions without an SSB 0.6-1.7
PROBE_GROUPED_SSS_RATIO = 3.0


def _grouped_sss_ratio(grid: np.ndarray, pci: int) -> float:
    """The power that cell ``pci``'s SSS shows in an SSB grid complex64 (4, 240),
    matched in groups of 8 subcarriers (:func:`dsp.sss_groups`), over the median
    of the 336 SSS sequences of its N_ID2 (TS 38.211 §7.4.2.3)."""
    y = dsp.sss_rx_groups(np.asarray(grid)[None, 2, nr.ssb_re_indices(pci)["sss"][1]])  # (1, 16, 8)
    e = dsp.sss_group_energy(y, dsp.sss_groups()[pci % 3 :: 3])[0]
    return float(e[pci // 3] / max(float(np.median(e)), 1e-30))


def _burst_consistent(dets: list[Detection], ref: Detection, scs: int, fs_hz: float, l_max: int) -> list[Detection]:
    """The detections whose time agrees with their ī_SSB relative to ``ref``.

    Every SSB of a cell sits at its index's first symbol in a half frame (TS
    38.213 §4.1: Case A at 15 kHz, B or C at 30 kHz) and bursts repeat at
    multiples of 5 ms (periodicities 5..160 ms, TS 38.331 ssb-PeriodicityServingCell).
    A detection that is at no such position for its ī_SSB under any case is a
    false one (noise or another signal that passed the PSS, SSS and DMRS tests),
    and is dropped instead of becoming a tracked SSB where the cell sends none.
    "At such a position" is to within a CP: one cell's SSBs in a search block are
    timed to a few samples, and a symbol's tolerance let a random detection pass
    3 % of the time (2 x 274 of a half frame's 19200 SSB-rate samples at 15 kHz).
    """
    rate, starts, cases = _burst_layout(scs)
    half_frame = 5e-3 * rate  # SSB-rate samples
    ref_y = ref.sample * rate / fs_hz
    firsts = [nr.ssb_first_symbols(c, l_max) for c in cases]
    i_ref = ref.cell.ibar % l_max
    keep = []
    for d in dets:
        i = d.cell.ibar % l_max
        dy = d.sample * rate / fs_hz - ref_y
        if d is ref or any(_index_at(dy, i_ref, first, starts, half_frame, dsp.SSB_CP) == i
                           for first in firsts):
            keep.append(d)
    return keep


def _consistent_core(dets: list[Detection], scs: int, fs_hz: float, l_max: int) -> tuple[Detection, list[Detection]]:
    """The detection to which the most of ``dets`` are burst-consistent
    (:func:`_burst_consistent`; ties: the stronger PSS) and those detections. Not
    simply the strongest: a PBCH-DMRS misread at the strongest PSS (an SSB
    taken for ī_SSB 4 where the cell's ī_SSB 0 is) would make every other SSB of
    the burst inconsistent with it."""
    best = None
    for d in sorted(dets, key=lambda d: -d.rho2):
        kept = _burst_consistent(dets, d, scs, fs_hz, l_max)
        if best is None or len(kept) > len(best[1]):
            best = (d, kept)
            if len(kept) == len(dets):
                break
    return best


def _burst_layout(scs: int) -> tuple[float, np.ndarray, tuple[str, ...]]:
    """(the SSB rate (Hz), the start of each OFDM symbol of one half frame in
    SSB-rate samples, the SSB patterns of ``scs``: TS 38.213 §4.1, Case A at
    15 kHz, B or C at 30 kHz)."""
    rate = dsp.ssb_rate_hz(scs)
    num = nr.Numerology.create(scs, rate)
    return rate, num.symbol_starts(5 * num.symbols_per_subframe), (("A",) if scs == 15 else ("B", "C"))


def _index_at(dy: float, i_ref: int, first: np.ndarray, starts: np.ndarray, half_frame: float,
              tol: float) -> Optional[int]:
    """The SSB index whose first symbol (``first``: one pattern's, nr.ssb_first_symbols)
    lies ``dy`` SSB-rate samples after index ``i_ref``'s, to within ``tol``, in any
    half frame (bursts repeat at multiples of 5 ms); None where no candidate does."""
    for i in range(len(first)):
        r = (dy - (starts[first[i]] - starts[first[i_ref]])) % half_frame
        if min(r, half_frame - r) < tol:
            return i
    return None


def _probe_burst_steps(y: np.ndarray, ref: Detection, dets: list[Detection], scs: int, fs_hz: float, l_max: int,
                       cfg: ReceiverConfig):
    """Complete the serving cell's detections ``dets``, burst-consistent with
    ``ref`` (:func:`_consistent_core`), from the burst structure.

    From ``ref``, predict every candidate SSB of its half frame (TS 38.213 §4.1,
    Case A at 15 kHz, B or C at 30 kHz) and the same SSB 5 and 10 ms later;
    accept a prediction when the PSS is there and the PBCH-DMRS gives the
    predicted ī_SSB. Weak SSBs that missed the acquisition threshold are found
    this way, and the period when it is shorter than the block.
    """
    rate, starts, cases = _burst_layout(scs)  # (starts: one half frame, SSB-rate samples)
    ref_y = ref.sample * rate / fs_hz
    i_ref, hf = ref.cell.ibar % l_max, ref.cell.ibar // l_max if l_max == 4 else 0
    found = {round(d.sample * rate / fs_hz): d for d in dets}
    n_probes = 0
    best_extra: list[Detection] = []
    for case in cases:
        first = nr.ssb_first_symbols(case, l_max)
        extra = []
        for i in range(l_max):
            if i == i_ref:
                continue
            st = ref_y + starts[first[i]] - starts[first[i_ref]]
            if any(abs(st - f) < dsp.SSB_SYMBOL_LEN for f in found):
                continue
            want = i + 4 * hf if l_max == 4 else i
            r = _probe_at(y, st, ref.cell.pci, ref.cfo_hz, scs, cfg, want)
            n_probes += 1
            if n_probes % 16 == 0:
                yield
            if r is not None and r[2] == want:
                extra.append(Detection(r[0] * fs_hz / rate, ref.nid2, r[1], dataclasses.replace(ref.cell, ibar=want), ref.cfo_hz))
        if len(extra) > len(best_extra):
            best_extra = extra
    out = list(dets) + best_extra
    # the same SSBs one period later, for the periods shorter than the block
    for d in list(out):
        for p_ms in (5.0, 10.0, 15.0, 20.0):
            st = d.sample * rate / fs_hz + p_ms * 1e-3 * rate
            if any(abs(st - e.sample * rate / fs_hz) < dsp.SSB_SYMBOL_LEN for e in out):
                continue
            hf_flip = (int(p_ms / 5) % 2) * 4 if l_max == 4 else 0
            want = d.cell.ibar ^ hf_flip
            r = _probe_at(y, st, d.cell.pci, d.cfo_hz, scs, cfg, want)
            n_probes += 1
            if n_probes % 16 == 0:
                yield
            if r is None:
                continue
            if r[2] == want:
                out.append(Detection(r[0] * fs_hz / rate, d.nid2, r[1], dataclasses.replace(d.cell, ibar=want), d.cfo_hz))
    return sorted(out, key=lambda d: d.sample)


# ---------------------------------------------------------------------------
# Observations and the streaming receiver
# ---------------------------------------------------------------------------
@dataclass
class SSBObservation:
    """One SSB as the receiver saw it (input to features and the detector)."""

    sample: int  # CP start of the SSB's first symbol, absolute stream sample
    t_s: float
    pci: int
    ibar: int
    ssb_index: int
    scs_khz: int
    locked: bool  # PSS found here (else the flywheel position)
    pss_peak: float  # rho2 at the peak (or at the prediction)
    nid2_margin_db: float
    sss_metric: float
    dmrs_metric: float
    cfo_hz: float
    grid: np.ndarray  # (4, 240) complex64
    ssb_iq: np.ndarray  # (1096,) complex64: the SSB's 4 symbols at the SSB rate (raw-IQ models)
    pss_trace: np.ndarray  # (65,) float32
    n_nonfinite: int = 0
    valid: bool = True
    reason: str = ""
    others: tuple = ()  # other cells the acquisition saw on this SSB's resources, strongest first
    offtime_cells: tuple = ()  # cells it saw not synchronised with this one (Acquisition.offtime_cells)
    # ADC clipping in the SSB's window: the fraction of its I/Q components at the converter's
    # rail, and the power per RE of the grid that clipping adds (dsp.clip_distortion_power,
    # white over the recorded band): a known floor, like the quantisation noise
    clip_fraction: float = 0.0
    clip_floor_per_re: float = 0.0
    # the noise floor of the spectrum around the SSB during its symbols, per RE of the grid
    # (dsp.band_floors_per_re; where the capture holds too little of it, the floor in the SSB's
    # band just before and after it, dsp.adjacent_floor_per_re; NaN where neither is there) and
    # the bins it was taken from (that floor: the band floor's bin count of the same spread):
    # what an interferer confined to the SSB's band (or to its time) does not raise
    band_floor_per_re: float = float("nan")
    band_floor_bins: int = 0
    # the same near the SSB alone (dsp.BAND_FLOOR_NEAR_SC; the adjacent floor where that was taken)
    band_floor_near_per_re: float = float("nan")
    band_floor_near_bins: int = 0
    # the null REs' mean energy with the FFT windows NULL_EARLY_SAMPLES earlier in the CP (the
    # lowest), computed where a rule needs it (:func:`null_early_readings`; NaN: not yet) from
    # the SSB's window at the SSB rate and where its first CP starts there
    null_early_per_re: float = float("nan")
    band_y: Optional[np.ndarray] = field(default=None, repr=False)
    band_start: float = 0.0
    # the CP start of the SSB's first symbol in ssb_iq (its fraction of a sample, |.| <= 0.5)
    ssb_iq_start: float = 0.0
    # samples (stream rate) from ``sample`` on to the timing of the strongest path, where the
    # flywheel keeps the SSB (``sample`` is timed earlier where an earlier path would leak: dsp.least_isi_timing)
    lead: float = 0.0
    # dsp.mistimed_cell_rho2 of ssb_iq: the PSS of a co-channel cell more than 2/3 of a CP early
    # / late; computed where a verdict needs it (pipeline.mistimed_readings; NaN: not yet)
    early_cell_rho2: float = float("nan")
    late_cell_rho2: float = float("nan")
    # its PSS missing with no more energy than the cell brought, after the cell's search when its
    # PSS was lost everywhere did not find it: passed on valid (see QUIET_LOSS_RATIO), and made
    # jammed or not scored by detector.pipeline.HIDDEN_NULL_RISE_DB
    cell_hidden: bool = False


def null_early_readings(obs: list[SSBObservation]) -> np.ndarray:
    """SSBObservation.null_early_per_re of each of ``obs`` (float64 (n,)): the null
    REs' energy with the FFT windows NULL_EARLY_SAMPLES earlier in the CP, the lowest
    (a neighbour cell arriving early spills its next symbol into the later windows);
    computed in one batch per window length for those that lack it, and kept on them.
    NaN for an observation without its window."""
    todo: dict[int, list[SSBObservation]] = {}
    for o in obs:
        if not (o.null_early_per_re == o.null_early_per_re) and o.band_y is not None:
            todo.setdefault(o.band_y.size, []).append(o)
    for group in todo.values():
        ys = np.stack([o.band_y for o in group])
        starts = np.array([o.band_start for o in group])
        low = np.min([dsp.null_re_power(dsp.ssb_grids_at(ys, starts - d, dsp.NULL_RE_SYMBOLS))
                      for d in NULL_EARLY_SAMPLES], axis=0)
        for o, v in zip(group, low.tolist()):
            o.null_early_per_re = v
    return np.array([o.null_early_per_re for o in obs], np.float64)


@dataclass(slots=True)
class _Pending:
    """The sequential part of an observation (window, PSS, timing, CFO update):
    what the tracking loop needs at once. The grid and the identity of the SSBs
    that one push completes are then computed together (Receiver._finish)."""

    sample: int
    locked: bool
    ibar: int  # the slot's ī_SSB (kept when the PSS is not found)
    pci: int
    scs_khz: int
    l_max: int
    pss_peak: float
    nid2_margin_db: float
    cfo_hz: float
    y0: np.ndarray  # the window at the SSB rate before the rotation by w (complex64)
    w: float  # rad / sample: y = dsp.rotate_band(y0, w)
    start: float  # the SSB's start in y
    pss_trace: np.ndarray
    n_nonfinite: int
    valid: bool
    reason: str
    others: tuple = ()
    offtime_cells: tuple = ()
    clip: tuple = (0.0, 0.0)  # (fraction of the window's I/Q components at the ADC rail, the rail)
    band_floor: tuple = (float("nan"), 0, float("nan"), 0)  # (dsp.band_floors_per_re of the window: floor,
    #                                                            its bins, near floor, its bins)
    lead: float = 0.0  # SSBObservation.lead
    x_in: Optional[np.ndarray] = None  # the window at the input rate (complex64, DC removed): the grid's source
    center_hz: float = 0.0  # the SSB centre the window was taken to DC with (offset + the epoch's CFO)
    hidden: bool = False  # Receiver.cell_hidden when it was observed


def l_max_candidates(ssb_freq_hz: Optional[float], scs_khz: int) -> tuple[int, ...]:
    """The L_max a cell may have (TS 38.213 §4.1), the likelier first. Case A
    (15 kHz) and B (30 kHz, paired spectrum): 4 at or below 3 GHz, 8 above in
    FR1; Case C (30 kHz): paired like B, unpaired 4 at or below 1.88 GHz and 8
    above. So at 30 kHz between 1.88 and 3 GHz both occur: 8 first (the TDD
    bands n34, n38-n41 there send Case C), but 4 first over 2110-2200 MHz (the
    paired n66 downlink, Case B). Without the SSB's frequency, both (15 kHz: 4
    first, the FR1 bands below 3 GHz; 30 kHz: 8 first)."""
    if ssb_freq_hz is None:
        return (4, 8) if scs_khz == 15 else (8, 4)
    if ssb_freq_hz > 3e9:
        return (8,)
    if scs_khz == 15 or ssb_freq_hz <= 1.88e9:
        return (4,)
    return (4, 8) if 2.11e9 <= ssb_freq_hz <= 2.2e9 else (8, 4)


def _pick_l_max(dets: list[Detection], scs: int, fs_hz: float, candidates: tuple[int, ...]) -> tuple[int, bool]:
    """The candidate L_max under which most of a cell's detections sit where
    their ī_SSB says (:func:`_burst_consistent`): an L_max 4 cell's ī_SSB 4-7
    are its SSBs of the other half frame (ī_SSB carries the half-frame bit,
    TS 38.211 §7.4.1.4.1), 5 ms on, an L_max 8 cell's within the same half
    frame; the first on a tie (no ī_SSB over 3 seen). Each candidate is judged
    from its own :func:`_consistent_core` (not from the strongest detection: a
    DMRS misread there makes the rest inconsistent under every L_max, a tie).
    Returns (L_max, whether the burst decided it)."""
    if len(candidates) == 1:
        return candidates[0], False
    kept = [len(_consistent_core(dets, scs, fs_hz, lm)[1]) for lm in candidates]
    return candidates[int(np.argmax(kept))], len(set(kept)) > 1


_CREDIT_MAX_S = 0.03  # search work (s) a live receiver may bank while it has none to do


class _Search:
    """A cell search over the block [a, b) in progress (see :func:`acquire_steps`)."""

    __slots__ = ("kind", "a", "b", "x", "steps", "result")

    def __init__(self, kind: str, a: int, b: int, x: np.ndarray, steps):
        self.kind, self.a, self.b, self.x, self.steps = kind, a, b, x, steps
        self.result: Optional[Acquisition] = None

    def step(self, _=None) -> bool:
        """One unit of work; True when the search has ended (``result`` set)."""
        try:
            next(self.steps)
            return False
        except StopIteration as stop:
            self.result = stop.value
            # a re-acquisition may go on to a full search, a failed first one to the I/Q check
            self.x = self.x if self.kind in ("reacquire", "acquire") else None
            return True


class _Buffer:
    """Samples [start, end) of the stream, kept as the pushed blocks (no
    concatenation per push: a window is gathered only when it is read)."""

    __slots__ = ("blocks", "starts", "start", "end", "_empty")

    def __init__(self, empty: np.ndarray, start: int = 0):
        self._empty = empty  # a zero-length block of the stream's dtype and shape
        self.reset(start)

    def reset(self, start: int) -> None:
        self.blocks: list[np.ndarray] = []
        self.starts: list[int] = []  # absolute index of each block's first sample
        self.start = self.end = start

    def append(self, block: np.ndarray) -> None:
        if len(block):
            self.blocks.append(block)
            self.starts.append(self.end)
            self.end += len(block)

    def trim(self, keep: int) -> None:
        """Forget the samples before ``keep`` (start <= keep <= end)."""
        if keep <= self.start:
            return
        i = bisect.bisect_right(self.starts, keep) - 1  # the block holding ``keep`` (or the last)
        if i > 0:
            del self.blocks[:i]
            del self.starts[:i]
        if self.blocks and keep > self.starts[0]:
            cut = min(keep - self.starts[0], len(self.blocks[0]))
            self.blocks[0] = self.blocks[0][cut:]
            self.starts[0] += cut
            if not len(self.blocks[0]):
                del self.blocks[0]
                del self.starts[0]
        self.start = keep

    def get(self, a: int, b: int) -> np.ndarray:
        """Samples [a, b) (start <= a <= b <= end): a view when they lie in one block."""
        if b <= a:
            return self._empty
        i = bisect.bisect_right(self.starts, a) - 1
        blk, s0 = self.blocks[i], self.starts[i]
        if b - s0 <= len(blk):
            return blk[a - s0 : b - s0]
        parts = [blk[a - s0 :]]
        pos = s0 + len(blk)
        while pos < b:
            i += 1
            blk = self.blocks[i]
            parts.append(blk[: b - pos])
            pos += len(blk)
        return np.concatenate(parts)


class Receiver:
    """Streaming SSB receiver: ``push`` blocks, get observations; ``flush`` at the end.

    ``copy_input`` (default True): ``push`` copies each block, so the caller may
    reuse its array; a caller that hands over fresh blocks (the daemon's queue)
    sets it to False and the blocks are kept by reference.

    ``search_slack`` (live streams, ``search_duty`` > 0): an optional callable;
    while it returns True a running search may go on beyond its time budget
    (the daemon: while its input queue is less than half full).
    """

    def __init__(self, sample_rate_hz: float, center_freq_hz: Optional[float] = None,
                 config: ReceiverConfig = ReceiverConfig(), converter=None):
        """``converter``: when given, ``push`` takes native sample blocks (e.g. int16
        of shape (n, 2)) and only the parts the receiver looks at are converted to
        complex64 with it -- once locked, that is the SSB windows alone."""
        if not sample_rate_hz or sample_rate_hz < dsp.ssb_rate_hz(15) * 240 / 256:
            raise ValueError(f"sample_rate_hz={sample_rate_hz!r}: at least 3.6 Msps are needed to hold an SSB")
        self.fs = float(sample_rate_hz)
        self.converter = converter
        # smallest |I| / |Q| taken for an ADC rail (dsp.clip_stats): the pipeline sets 64 LSB
        # of an integer datatype
        self.min_clip_rail = 0.0
        # set by the pipeline at a calibrated site whose cell should be on air here: every cell
        # search that finds no cell goes to unlocked_blocks (a jammer strong enough to hide the
        # cell from the search must not leave silence)
        self.report_failed_searches = False
        self.center_freq_hz = center_freq_hz
        self.cfg = config
        self.copy_input = True
        self.search_slack = None
        self.acq_len = int(math.ceil((20e-3 + 2 * 1.2e-3) * self.fs))  # a 20 ms period + SSB + margins
        self.dc_len = min(int(math.ceil(DC_BLOCK_S * self.fs)), DC_BLOCK_MAX_SAMPLES)  # DC blocks while tracking
        self._win_cache: dict[int, tuple[int, int]] = {}
        # SSB windows of this push already taken to the SSB rate (all the windows that lie
        # in the buffer, in one batch): (w0, length, k0) -> (unrotated band, n_bad, valid)
        self._bands: dict[tuple[int, int, int], tuple[np.ndarray, int, bool]] = {}
        # the PSS correlations of this push's SSB windows of the current CFO epoch, computed
        # in one batch: (predicted position, rotation) -> (PSS search segment, its start, rho2)
        self._pss: dict[tuple[float, float], tuple[np.ndarray, int, np.ndarray]] = {}
        # the DC blocks of this push that its batch of SSB windows reached past, measured ahead
        # of the tracking loop's turn: (start, end) -> ((dc, dc_power, iq_w), the stream's DC state after it)
        self._dc_ahead: dict[tuple[int, int], tuple[tuple[complex, float, complex], Optional[tuple]]] = {}
        self._epoch_len = CFO_EPOCH_S * self.fs
        # set when a failed cell search found the cell in its block's complex conjugate: from
        # then on every sample is conjugated (cfg.swap_iq); kept across reset_states
        self.iq_swap_detected = False
        self.n_iq_checks = 0
        self.ever_locked = False
        self.reset_states()

    # -- state -------------------------------------------------------------
    def reset_states(self) -> None:
        self._buf: Optional[_Buffer] = None  # buffered samples (complex64, or native blocks with a converter)
        self.dc = 0j  # the receiver's DC offset (input units), from the last DC blocks (search or refresh)
        self._dc_track: Optional[tuple] = None  # the stream's DC state (dsp.dc_track), None before its first block
        self.dc_power = 0.0  # that block's mean power
        self.iq_w = 0j  # the receiver's IQ image coefficient (dsp.iq_image), from the same block
        self._bands = {}
        self._pss = {}
        self._dc_ahead = {}
        self._epoch: Optional[int] = None  # CFO epoch of the last SSB window taken to the SSB rate
        self._epoch_cfo = 0.0  # the CFO its windows are rotated by
        self._acq_start = 0  # where the next acquisition block starts
        self.locked = False
        self.acq: Optional[Acquisition] = None
        # PCI -> whether off the serving cell's timing, of every cell other than the tracked one
        # that a search of this stream reported (Acquisition.others and offtime_cells)
        self.cells_seen: dict[int, bool] = {}
        self.scs_khz: Optional[int] = None
        self.offset_hz = 0.0
        self.ssb_in_band = True  # the locked cell's SSB lies wholly inside the usable band (cfg.usable_band)
        # the half width of the recorded band that holds the receiver's noise, from the last
        # cell search's block (dsp.passband_half_width_hz; None: not measured yet)
        self.passband_hz: Optional[float] = None
        # where the receiver's filter skirt begins inside the band floor's bins (dsp.skirt_half_width_hz)
        self.skirt_hz: Optional[float] = None
        self.cfo_hz = 0.0
        self.pci: Optional[int] = None
        self.period_samples = 0.0
        self.slots: dict[int, float] = {}  # ī_SSB -> predicted next position (absolute, float)
        self._seen: dict[int, collections.deque] = {}  # ī_SSB -> its last locked positions (prefetch)
        self._backstep: dict[int, float] = {}  # ī_SSB -> a position before the search's first detection
        self.lost_run = 0
        self.cell_hidden = False  # the cell searched for after its PSS was lost everywhere, not found
        self._last_clear_pss = 0  # stream sample of the last SSB whose PSS stood over CONFIRM_CLEAR_PEAK
        self._loss_backoff = 0  # samples between searches on a sustained loss (0: none failed yet)
        self._loss_retry_at = 0
        self._next_reacq = 0
        self._reacq_interval_s = self.cfg.reacquire_s
        self._next_dc = 0  # start of the next DC block while tracking
        self.n_samples_in = 0
        self.n_nonfinite = 0
        self.n_acquisitions = 0
        # (first sample, end) of each cell search that found no cell (report_failed_searches)
        self.unlocked_blocks: list[tuple[int, int]] = []
        self.n_failed_searches = 0  # cell searches in a row that found no cell (BLIND_EVERY)
        self.n_gaps = 0
        # slots not yet seen with their PSS in tracking: ī_SSB -> (unlocked observations in a row,
        # locked observations of the cell when the first of them came)
        self._unconfirmed: dict[int, tuple[int, int]] = {}
        self._n_locked_obs = 0
        self._locked_peaks: collections.deque = collections.deque(maxlen=CONFIRM_PEAKS)
        self.n_slots_dropped = 0
        self.n_relabelled_slots = 0  # slots given the SSB index their burst position says (_relabel_by_burst)
        self.n_timing_jumps = 0  # SSB timing found moved at a re-acquisition (samples lost upstream)
        # running mean of each cell's own peak SSB-symbol energy, by PCI (an SSB of the cell
        # locked before still pending when another cell is locked is held to its own cell's)
        self._ssb_energy: dict[int, float] = {}
        self.n_quiet_losses = 0
        self.n_ssb_rate_grids = 0  # SSB grids taken at the SSB rate: the input rate's leaked (LEAK_GRID_RATIO)
        # SSB grids (either rate) whose null REs had the leakage of signals off the SSB's grid
        # taken out (dsp.OFFGRID_BINS: traffic half a subcarrier off, k_SSB odd at 30 kHz)
        self.n_offgrid_grids = 0
        # a cell search's cell not yet seen with its PSS by tracking at the very SSBs the search
        # detected it at: the search block, and the slots observed without their PSS so far
        # (UNPROVEN_REASON); n_unproven_locks: such locks given up
        self._unproven: Optional[tuple[int, int]] = None
        self._unproven_missed: set = set()
        self.n_unproven_locks = 0
        self.n_doubtful_switches = 0  # re-acquisitions whose single-SSB cell was not followed at once
        self._switch_pending: Optional[tuple[int, int]] = None  # that cell (pci, scs): followed if found next
        # sliced searches (search_duty > 0)
        self._search = None  # the running search: _Search
        self._credit = 0.0  # seconds of search work allowed now
        self._searched_to: Optional[int] = None  # end of the last block a cell search looked at
        self.n_unsearched = 0  # samples skipped while searching for a cell (search_duty > 0)
        self.search_busy_s = 0.0  # wall time spent in sliced searches

    @property
    def _buf_start(self) -> int:
        return self._buf.start if self._buf is not None else 0

    @property
    def dc_offset_power_ratio(self) -> float:
        """The DC offset being removed: its power over the signal's (0.0: none)."""
        return abs(self.dc) ** 2 / self.dc_power if self.dc and self.dc_power else 0.0

    @property
    def iq_image_power_ratio(self) -> float:
        """The IQ imbalance's mirror image being removed: its power over the signal's (0.0: none)."""
        return abs(self.iq_w) ** 2

    def _correct(self, x: np.ndarray, copy: bool,
                 state: Optional[tuple[complex, complex]] = None) -> np.ndarray:
        """complex64 ``x`` less the DC offset and the IQ image (in place unless ``copy``;
        ``x`` itself when there is neither): the receiver's, or ``state`` (DC offset, IQ
        image coefficient: a DC block's measured ahead, :meth:`_dc_blocks_ahead`)."""
        dc, w = (self.dc, self.iq_w) if state is None else state
        if dc:
            x = x - np.complex64(dc) if copy else np.subtract(x, np.complex64(dc), out=x)
            copy = False
        return self._correct_image(x, copy, w)

    def _correct_image(self, x: np.ndarray, copy: bool = False, w: Optional[complex] = None) -> np.ndarray:
        """complex64 ``x`` (the DC offset already out) less the IQ image (the receiver's,
        or coefficient ``w``; in place unless ``copy``; ``x`` itself when there is none)."""
        w = self.iq_w if w is None else w
        if w:
            img = np.conj(x)
            img *= np.complex64(w)
            x = x - img if copy else np.subtract(x, img, out=x)
        return x

    @property
    def rate(self) -> float:
        return dsp.ssb_rate_hz(self.scs_khz) if self.scs_khz else 0.0

    def _window_in(self) -> tuple[int, int]:
        """(margin before, total length) of an SSB window of the locked SCS, in input samples."""
        return self._window_for(self.scs_khz)

    def _window_for(self, scs_khz: int) -> tuple[int, int]:
        """(margin before, total length) of an SSB window at ``scs_khz``, in input samples."""
        w = self._win_cache.get(scs_khz)
        if w is None:
            ratio = self.fs / dsp.ssb_rate_hz(scs_khz)
            margin = int(math.ceil((dsp.SSB_CP + self.cfg.track_search + PSS_TRACE_HALF + 48) * ratio))
            w = self._win_cache[scs_khz] = (margin, int(math.ceil(dsp.SSB_LEN * ratio)) + 2 * margin)
        return w

    # -- input -------------------------------------------------------------
    def push(self, block: np.ndarray, start_sample: Optional[int] = None) -> list[SSBObservation]:
        """Add samples; return the observations that became complete.

        ``start_sample`` is the absolute index of ``block[0]``; a jump forward
        (samples dropped upstream) restarts buffering there.
        """
        self._append(block, start_sample)
        return self._process(final=False)

    def push_blocks(self, blocks: list[np.ndarray], start_sample: Optional[int] = None) -> list[SSBObservation]:
        """:meth:`push` of consecutive blocks (the first at ``start_sample``) at
        once: the same observations as pushing them one after the other (the
        stream is cut into blocks in another place), without joining them; the
        SSB windows they complete are processed as one batch."""
        for i, block in enumerate(blocks):
            self._append(block, start_sample if i == 0 else None)
        return self._process(final=False)

    def _append(self, block: np.ndarray, start_sample: Optional[int]) -> None:
        block = np.asarray(block) if self.converter is not None else np.asarray(block, dtype=np.complex64)
        if self.copy_input:
            block = block.copy()
        if self._buf is None:
            self._buf = _Buffer(block[:0].copy())
        end = self._buf.end
        if start_sample is not None and start_sample != end:
            if start_sample < end:
                raise ValueError(f"start_sample={start_sample} goes back in time (buffer ends at {end})")
            self.n_gaps += 1
            self._buf.reset(start_sample)
            self._searched_to = None  # lost upstream: not "unsearched"
            self._next_reacq = max(self._next_reacq, start_sample)
            self._next_dc = max(self._next_dc, start_sample)
            if not self.locked:
                self._acq_start = start_sample
        self.n_samples_in += len(block)
        self._buf.append(block)
        if self.cfg.search_duty > 0:
            # search work earned by these samples; a little is banked, not more
            self._credit = min(self._credit + self.cfg.search_duty * len(block) / self.fs, _CREDIT_MAX_S)

    def flush(self) -> list[SSBObservation]:
        """End of stream: use what is buffered (a capture shorter than one period)."""
        return self._process(final=True)

    # -- processing --------------------------------------------------------
    def _convert(self, raw: np.ndarray) -> np.ndarray:
        """Buffered samples as complex64 (the converter's, when there is one), I and Q
        swapped back when the configuration says so (a new array then)."""
        x = self.converter(raw) if self.converter is not None else raw
        return np.conjugate(x) if self.cfg.swap_iq else x

    def _seg(self, a: int, b: int) -> np.ndarray:
        return self._convert(self._buf.get(a, b))

    def _clean_seg(self, a: int, b: int) -> np.ndarray:
        """Samples [a, b) as complex64 less the DC offset and the IQ image (a new array
        when there is either)."""
        return self._correct(self._seg(a, b), copy=True)

    def _window(self, w0: int, length: int) -> np.ndarray:
        """Samples [w0, w0 + length) less the DC offset and the IQ image, zero-padded where they
        lie outside the buffer."""
        a = max(w0, self._buf.start)
        b = min(w0 + length, self._buf.end)
        if a == w0 and b == w0 + length:
            return self._clean_seg(a, b)
        out = np.zeros(length, np.complex64)
        if b > a:
            out[a - w0 : b - w0] = self._clean_seg(a, b)
        return out

    def _process(self, final: bool) -> list[SSBObservation]:
        out: list[_Pending] = []
        if self._buf is None:
            return []
        while True:
            self._track(final, out)
            # a sliced search (search_duty > 0) goes on with the time the samples earned
            if self._search is None or not self._step_search(final):
                break
        self._bands.clear()
        self._pss.clear()
        self._dc_ahead.clear()
        self._trim()
        return self._finish(out)

    def _track(self, final: bool, out: list) -> None:
        """Acquisition and tracking over what is buffered (the old loop)."""
        end = self._buf.end
        while True:
            if not self.locked:
                if self._search is not None:
                    return  # a sliced cell search is running
                a = max(self._acq_start, self._buf.start)
                if self.cfg.search_duty > 0 and not (self.search_slack is not None and self.search_slack()):
                    a = max(a, end - self.acq_len)  # live: the newest block; what it skips is not searched
                b = a + self.acq_len
                if b > end and not (final and end - a > 0):
                    break
                b = min(b, end)
                if self._searched_to is not None and a > self._searched_to:
                    self.n_unsearched += a - self._searched_to
                self._searched_to = max(b, self._searched_to or 0)
                # next search overlaps by one SSB window so no SSB falls between blocks
                nxt = b if b >= end else max(a + 1, b - self._window_in_any())
                self._start_search("acquire", a, b, nxt)
                if self._search is not None:
                    return  # sliced: goes on as time allows
                continue
            # tracking: the earliest predicted SSB, or a due re-acquisition, whichever
            # block ends first (the order is the same however the stream is chunked)
            ib = min(self.slots, key=self.slots.get)
            pos = self.slots[ib]
            margin, length = self._window_in()
            w0 = int(math.floor(pos)) - margin
            # the SSB's FFT windows (from its first CP's end, to FFT_BACKOFF before its end): a
            # window reaching past the data on either side (a recording cut right at the SSB) is
            # zero-padded there
            ratio = self.fs / self.rate
            core0 = w0 + margin + int(math.ceil(dsp.SSB_CP * ratio))
            core1 = w0 + length - margin - int(dsp.FFT_BACKOFF * ratio)
            r_start = max(self._next_reacq, self._buf.start)  # (later only while a sliced search ran)
            r_end = r_start + self.acq_len
            if r_end <= w0 + length and self._search is None:
                if r_end > end:
                    break
                self._start_search("reacquire", r_start, r_end)
                continue
            d_end = self._next_dc + self.dc_len
            if self.cfg.dc_removal and d_end <= w0 + length and not (final and d_end > end):
                if d_end > end:
                    break
                d_start = max(self._next_dc, self._buf.start)  # (= _next_dc but after a gap)
                if d_end - d_start >= self.dc_len // 2:
                    ahead = self._dc_ahead.pop((d_start, d_end), None)
                    if ahead is None:
                        self._measure_dc(self._seg(d_start, d_end), d_end)
                    else:
                        self._set_dc(ahead[0], d_end, ahead[1])
                else:
                    self._next_dc += int(self.cfg.dc_refresh_s * self.fs)
                continue
            if w0 + length > end and not (final and core1 <= end):
                break
            if core0 < self._buf.start or core1 > end:
                # the SSB itself fell into a gap or beyond the data: skip one period
                if core1 > end:
                    break
                self.slots[ib] = pos + self.period_samples
                continue
            obs = self._observe(pos, ib)
            if self._backstep.pop(ib, None) == pos and not obs.locked:
                # a period before the search's first SSB of this index, no PSS: passed over
                self.slots[ib] = pos + self.period_samples
                continue
            out.append(obs)
            if self._unproven is not None and self._prove(obs, ib):
                continue  # the lock was given up: search again after its block
            nxt = (obs.sample + obs.lead + obs_frac(obs, pos)) + self.period_samples
            if obs.locked:  # where the slot's SSBs were seen (its period as the sample clock runs: prefetch)
                self._seen.setdefault(ib, collections.deque(maxlen=DRIFT_SSBS)).append(nxt)
            self.slots[ib] = nxt
            self._confirm(ib, obs.locked, obs.pss_peak)
            self.lost_run = 0 if obs.locked else self.lost_run + 1
            if obs.locked:
                self._loss_backoff = 0
                if obs.pss_peak >= CONFIRM_CLEAR_PEAK:  # (a PSS just over track_threshold: still under it)
                    self.cell_hidden = False
                    self._last_clear_pss = obs.sample
            if self.lost_run >= self.cfg.lost_reacquire:
                due = max(obs.sample + length, self._loss_retry_at)
                if self._next_reacq > due:
                    self._next_reacq = due

    def _prove(self, obs: _Pending, ib: int) -> bool:
        """While a fresh lock on a doubtful cell seen at a single SSB (no clear
        N_ID1 or PBCH-DMRS margin, _real_cell, nor a calibrated site's own) is
        unproven: its first observations are of the SSBs the search detected
        (the same samples), so tracking, whose PSS threshold is half the
        search's, finds their PSS whenever the cell is real. Each one observed
        without it is not scored (UNPROVEN_REASON); once every slot has been,
        the lock is given up -- the
        search made a cell of a block edge, of traffic, of a PSS cut by the
        capture's band edge -- and True returned. (Not for a clear cell, nor one
        seen at several SSBs: under a fake SSB at SJNR 0 dB the search, which
        cancels the other N_ID2's PSS and sums multipath, saw a site's cell at
        0.29, tracking at 0.11-0.14; under one 5 dB over the cell, a cell seen at 4
        SSBs with an N_ID1 margin of 1.13 -- their SSBs must be scored, jammed.)"""
        if obs.locked:
            self._unproven = None
            self._unproven_missed = set()
            return False
        obs.valid, obs.reason = False, UNPROVEN_REASON
        self._unproven_missed.add(ib)
        if not self._unproven_missed.issuperset(self.slots):
            return False
        a, b = self._unproven
        self._unproven = None
        self._unproven_missed = set()
        self.n_unproven_locks += 1
        self.n_failed_searches += 1
        if self.report_failed_searches:
            self.unlocked_blocks.append((a, b))
        self.locked = False
        self.acq = None
        self.pci = None
        self.slots = {}
        self._unconfirmed = {}
        return True

    def _confirm(self, ib: int, locked: bool, pss_peak: float = 1.0) -> None:
        """A slot is confirmed by its first observation with the PSS. One whose first
        UNCONFIRMED_DROP observations all miss it while the cell's other SSBs show
        theirs is dropped (``n_slots_dropped``): the cell does not send that SSB
        (a traffic peak taken for it at acquisition, an SSB the gNB no longer
        sends), and tracking it would give a "jammed" record every period. Once
        confirmed a slot is kept, PSS or not (a jammer must give "jammed"). None is
        dropped while the PSS peaks tracking sees stand under CONFIRM_CLEAR_PEAK
        (a jammer on the cell)."""
        if locked:
            self._n_locked_obs += 1
            self._locked_peaks.append(float(pss_peak))
            self._unconfirmed.pop(ib, None)
            return
        state = self._unconfirmed.get(ib)
        if state is None:
            return
        misses, locked_before = state
        misses += 1
        if (misses >= UNCONFIRMED_DROP and self._n_locked_obs > locked_before and len(self.slots) > 1
                and float(np.median(self._locked_peaks)) >= CONFIRM_CLEAR_PEAK):
            del self.slots[ib]
            del self._unconfirmed[ib]
            self.n_slots_dropped += 1
        else:
            self._unconfirmed[ib] = (misses, locked_before)

    def _window_in_any(self) -> int:
        """SSB window length (input samples) before the SCS is known: the longer (15 kHz)."""
        return self._window_for(self.scs_khz or 15)[1]

    def _trim(self) -> None:
        if self._buf is None:
            return
        end = self._buf.end
        if self.locked and self.slots:
            margin, _ = self._window_in()
            keep = int(math.floor(min(self.slots.values()))) - margin
            if self._search is None:  # (a running sliced search holds its own copy of its block)
                keep = min(keep, self._next_reacq)
            if self.cfg.dc_removal:
                keep = min(keep, self._next_dc)
        elif self.locked:
            keep = end
        elif self._search is not None:
            keep = end - self.acq_len  # searching (sliced): only the newest block may be needed next
        else:
            keep = self._acq_start
        keep = max(self._buf.start, min(keep, end))
        if keep > self._buf.start:
            self._buf.trim(keep)

    # -- cell searches -------------------------------------------------------
    def _start_search(self, kind: str, a: int, b: int, acq_next: Optional[int] = None) -> None:
        """Cell search over [a, b): ``acquire`` (no cell: full search, then lock) or
        ``reacquire`` (the known cell's SCS and raster point; a full search when
        that fails after a loss). Run at once (search_duty 0) or in slices."""
        self.n_acquisitions += 1
        x = self._seg(a, b)
        if self.cfg.dc_removal:
            # the block's own DC offset and IQ image, for it and for what follows (x less the DC: a
            # new array when there is one, the image then taken out of it in place)
            xd = self._measure_dc(x, b, pooled=kind != "reacquire")
            if kind != "reacquire":
                self._dc_ahead.clear()  # (measured after the pool this block joins)
            x = self._correct_image(xd, copy=xd is x)
        else:
            x = self._correct(x, copy=True)
        self.passband_hz, self.skirt_hz = dsp.band_widths_hz(x, self.fs)
        if kind == "acquire":
            # the blind search off the raster when a search finds no cell: at the first search (live
            # streams: the second, so that a cell on the raster is found as fast as before) and
            # every BLIND_EVERY-th after it while none does (it doubles the cost of a search of an
            # empty band); after any search that finds a cell at a single SSB
            k = self.n_failed_searches - (1 if self.cfg.search_duty > 0 else 0)
            steps = acquire_steps(x, self.fs, self.center_freq_hz, self.cfg,
                                  blind_fallback=k >= 0 and k % BLIND_EVERY == 0,
                                  whiten_fallback=k >= 0 and k % BLIND_EVERY == 0)
            self._acq_start = acq_next
        else:
            steps = acquire_steps(x, self.fs, self.center_freq_hz, self.cfg,
                                  scs_khz=self.scs_khz, offsets_hz=[self.offset_hz], cfo_hint_hz=self.cfo_hz)
            self._next_reacq = a + int(self._reacq_interval_s * self.fs)
        search = _Search(kind, a, b, x, steps)
        if self.cfg.search_duty > 0:
            self._search = search
            return
        while not search.step(None):  # at once
            pass
        self._search_done(search)

    def _iq_check_due(self) -> bool:
        """Whether a failed cell search is to be tried once more on its block's
        complex conjugate (swap_iq): while no cell was ever locked in this stream and
        the configuration does not swap already, at the first failed search (live
        streams: the second, as the blind search, so that a cell on the raster is found
        as fast as before) and every BLIND_EVERY-th after it, IQ_SWAP_CHECKS times at most."""
        k = self.n_failed_searches - (2 if self.cfg.search_duty > 0 else 1)
        return (self.cfg.iq_swap_check and not self.cfg.swap_iq and not self.ever_locked
                and self.n_iq_checks < IQ_SWAP_CHECKS and k >= 0 and k % BLIND_EVERY == 0)

    def _measure_dc(self, x: np.ndarray, b: int, pooled: bool = True) -> np.ndarray:
        """The DC offset and the IQ image from block ``x`` (complex64, ending at stream
        sample ``b``) and the DC blocks before it, used until the next block, which ends
        dc_refresh_s later; with ``pooled`` False (a periodic re-acquisition's block) the
        block is not kept among those before the next (the tracking loop's DC blocks
        measured ahead stay as measured). Returns ``x`` less the DC offset (a new array;
        ``x`` itself when there is none)."""
        state, x, track = self._dc_state(x, self._dc_track)
        self._set_dc(state, b, track if pooled else self._dc_track)
        return x

    def _dc_state(self, x: np.ndarray, track: Optional[tuple]) -> tuple[tuple[complex, float, complex], np.ndarray, tuple]:
        """((DC offset, the block's mean power, IQ image coefficient) of block ``x``
        (complex64) after the stream's DC blocks before it (``track``, dsp.dc_track: the
        offset is this block's mean, or their pooled one, where it stands out), ``x`` less
        that DC offset (a new array; ``x`` itself when there is none), the stream's DC
        state with this block)."""
        m, var, power, part_energy = dsp.dc_estimate(x)
        dc, track = dsp.dc_track(track, m, var, self.cfg.dc_min_ratio)
        if dc:
            x = x - np.complex64(dc)
            part_energy = None  # (those were of the block with its DC)
        else:
            power = 0.0
        return (dc, power, dsp.iq_image(x, part_energy) if self.cfg.iq_balance else 0j), x, track

    def _set_dc(self, state: tuple[complex, float, complex], b: int, track: Optional[tuple]) -> None:
        """Use a DC block's (DC offset, mean power, IQ image) and the stream's DC state
        (dsp.dc_track) from its end ``b`` on."""
        self.dc, self.dc_power, self.iq_w = state
        self._dc_track = track
        self._next_dc = self._dc_block_after(b)

    def _dc_block_after(self, b: int) -> int:
        """Where the DC block after one ending at ``b`` starts (it ends dc_refresh_s later)."""
        return b + int(self.cfg.dc_refresh_s * self.fs) - self.dc_len

    def _dc_blocks_ahead(self, horizon: int) -> Optional[list[tuple[int, tuple[complex, float, complex]]]]:
        """The tracking loop's coming DC blocks that end by ``horizon`` (inside the
        buffer), measured now as the loop will measure them: [(end, (dc, dc_power,
        iq_w))], in order, kept in _dc_ahead for the loop's turn. An SSB window that ends
        at or after a block's end is corrected with that block's DC (the loop measures a
        block before the first window reaching its end). None where the next block does
        not lie whole in the buffer (after a gap): the caller stops at it."""
        out = []
        a = self._next_dc
        if a < self._buf.start:
            return None
        track = self._dc_track
        while a + self.dc_len <= horizon:
            b = a + self.dc_len
            hit = self._dc_ahead.get((a, b))
            if hit is None:
                state, _, track = self._dc_state(self._seg(a, b), track)
                hit = self._dc_ahead[(a, b)] = (state, track)
            state, track = hit
            out.append((b, state))
            a = self._dc_block_after(b)
        return out

    def _step_search(self, final: bool) -> bool:
        """Work on the running search while the time budget allows (to its end when
        ``final``); True when it ended (and its result was applied)."""
        s = self._search
        slack = self.search_slack
        while final or self._credit > 0 or (slack is not None and slack()):
            t0 = time.perf_counter()
            done = s.step(None)
            dt = time.perf_counter() - t0
            self.search_busy_s += dt
            if not final and self._credit > 0:
                self._credit -= dt
            if done:
                self._search = None
                self._search_done(s)
                return True
        return False

    def _queue_or_run(self, search: "_Search") -> bool:
        """A search that follows one just ended: True when it was queued to run in
        slices (search_duty > 0; :meth:`_search_done` follows when it ends), else
        it has been run to its end here (False; the caller applies its result)."""
        if self.cfg.search_duty > 0:
            self._search = search
            return True
        while not search.step(None):
            pass
        return False

    def _search_done(self, s: "_Search") -> None:
        if s.kind == "conjugate":
            if s.result is not None and _real_cell(s.result.detections, self.cfg):
                # the cell is there with its spectrum mirrored: I and Q are swapped at the source
                self.iq_swap_detected = True
                self.cfg = dataclasses.replace(self.cfg, swap_iq=True)
                self.dc = complex(self.dc).conjugate()
                if self._dc_track is not None:
                    self._dc_track = (tuple((m.conjugate(), v) for m, v in self._dc_track[0]), self._dc_track[1])
                self.iq_w = complex(self.iq_w).conjugate()
                # what was taken from the samples before they were conjugated is not used
                self._bands.clear()
                self._pss.clear()
                self._dc_ahead.clear()
                s.kind = "acquire"  # lock onto it as the search of that block
            else:
                if self.report_failed_searches:
                    self.unlocked_blocks.append((s.a, s.b))
                return
        if s.result is not None:
            self._note_cells(s.result)
            self.cell_hidden = False
        if s.kind == "acquire":
            self.n_failed_searches = 0 if s.result is not None else self.n_failed_searches + 1
            if s.result is None and self._iq_check_due():
                # no cell in a stream that never had one: is it there with I and Q swapped?
                self.n_iq_checks += 1
                # (the conjugate holds the cell where it is on air: the centre and the raster; the
                # blind stage only where it is the search, without a centre frequency)
                conj = _Search("conjugate", s.a, s.b, None,
                               acquire_steps(np.conjugate(s.x), self.fs, self.center_freq_hz, self.cfg,
                                             blind_fallback=False, blind_if_thin=False))
                if not self._queue_or_run(conj):
                    self._search_done(conj)
                return
            if s.result is None and self.report_failed_searches:
                self.unlocked_blocks.append((s.a, s.b))
            if s.result is not None:
                if self._buf.start > s.b:  # sliced: what arrived during the search and is gone
                    self.n_unsearched += self._buf.start - s.b
                self._lock(s.result, s.a)
                if len(s.result.detections) < 2 and not (_real_cell(s.result.detections, self.cfg)
                                                         or s.result.pci in self.cfg.preferred_pcis):
                    # a doubtful cell seen at a single SSB (see _prove)
                    self._unproven = (s.a, s.b)
                    self._unproven_missed = set()
            return
        if s.kind == "reacquire" and s.result is None and self.lost_run >= self.cfg.lost_reacquire:
            # the known cell is not where it was: full search over the same block
            full = _Search("full", s.a, s.b, s.x, acquire_steps(s.x, self.fs, self.center_freq_hz, self.cfg,
                                                                 blind_fallback=False, blind_if_thin=False))
            if self._queue_or_run(full):
                return
            s = full
        if s.result is None and self.lost_run >= self.cfg.lost_reacquire:
            # (a cell seen in consecutive periods of the flywheel has no longer one to wait for)
            consecutive = any(len(d) >= 2 and d[-1] - d[-2] < 1.5 * self.period_samples for d in self._seen.values())
            if consecutive or s.a - self._last_clear_pss >= HIDDEN_AFTER_S * self.fs:
                self.cell_hidden = True  # (see QUIET_LOSS_RATIO)
            # the PSS stays lost (a jammer over it, the cell gone): the next search on loss waits
            # twice as long each time, up to the periodic interval (one per SSB window otherwise,
            # each a full search: 13 in 0.5 s of strong barrage, 40x slower than real time)
            self._loss_backoff = min(max(2 * self._loss_backoff, self.acq_len), int(self.cfg.reacquire_s * self.fs))
            self._loss_retry_at = s.a + self._loss_backoff
        before = self._tracked_state()
        self._apply_reacquisition(s.result, s.a)
        if (s.kind == "reacquire" and s.result is not None and self.lost_run == 0
                and self._switch_pending is None and self._tracked_state() == before):
            # the cell as it was: the next periodic search comes twice as late (reacquire_max_s)
            self._reacq_interval_s = min(2 * self._reacq_interval_s, self.cfg.reacquire_max_s)
            self._next_reacq = max(self._next_reacq, s.a + int(self._reacq_interval_s * self.fs))
        else:
            self._reacq_interval_s = self.cfg.reacquire_s
            self._next_reacq = min(self._next_reacq, s.a + int(self._reacq_interval_s * self.fs))

    def _tracked_state(self) -> tuple:
        """What a periodic re-acquisition may change: the cell, its SSB indices, timing
        jumps, L_max and period."""
        return (self.locked, self.pci, self.scs_khz, tuple(sorted(self.slots)), self.n_timing_jumps,
                self.acq.l_max if self.acq is not None else None, self.period_samples)

    def _apply_reacquisition(self, acq: Optional[Acquisition], a: int) -> None:
        pending, self._switch_pending = self._switch_pending, None
        if acq is None:
            return  # keep the flywheel
        if acq.pci != self.pci or acq.scs_khz != self.scs_khz:
            if len(acq.detections) < 2 and acq.pci not in self.cfg.preferred_pcis \
                    and pending != (acq.pci, acq.scs_khz):
                # another cell seen at a single SSB takes the lock from the tracked one only when
                # the next block's search finds it again: a search of a block without the tracked
                # cell's SSBs (its period longer than the flywheel's 20 ms, a jammer over its PSS)
                # can make one of traffic or of the jammer, some with a clear N_ID1 margin, and
                # tracking it would score the cell's SSBs no more (a cell seen at one SSB of a
                # 22 ms block sends every 20 ms or less: the next block holds it too)
                self._switch_pending = (acq.pci, acq.scs_khz)
                self._next_reacq = a + self.acq_len
                self.n_doubtful_switches += 1
                return
            # another cell is now the strongest: follow it from the next period
            nxt = {d.cell.ibar: a + d.sample for d in acq.detections}
            next_reacq = self._next_reacq
            self._lock(acq, a)
            self._next_reacq = next_reacq
            self.slots = {ib: p + self.period_samples if p < a + self.acq_len else p for ib, p in nxt.items()}
            return
        # same cell: an L_max its burst now shows (ī_SSB over 3 seen) replaces one taken on a tie
        if acq.l_max_seen and self.acq is not None and acq.l_max != self.acq.l_max:
            self.acq = dataclasses.replace(self.acq, l_max=acq.l_max, l_max_seen=True)
        # same cell. While its PSS is lost where the flywheel expects it, the SSBs found
        # elsewhere mean the stream lost or gained samples upstream unseen (an SDR or
        # rtl_tcp overflow): every slot moves by the median shift (else the flywheel would
        # score empty windows, "jammed", for good)
        if self.lost_run >= 2 and self.slots:
            tol = 4 * self.cfg.track_search * self.fs / self.rate
            seen: dict[int, float] = {}
            for d in acq.detections:
                seen.setdefault(d.cell.ibar, a + d.sample)
            shifts = []
            for ib, p in seen.items():
                if ib in self.slots:
                    old = self.slots[ib]
                    new = p + round((old - p) / self.period_samples) * self.period_samples
                    if abs(new - old) > tol:
                        shifts.append(new - old)
            # ... unless the search found the cell where the flywheel has its SSBs: a jammer that
            # hides the PSS from tracking leaves the search's PBCH-DMRS reading indices off by
            # one SSB of the burst as often as not, and moving every slot by that spacing put the
            # records between the SSBs, under the wrong indices (a 7.68 Msps recording under
            # partial-band noise 8 dB over the cell: 20 of 40 records, from 80 ms on)
            if shifts and 2 * sum(self._on_a_slot(p) for p in seen.values()) < len(seen):
                dt = float(np.median(shifts))
                self.slots = {ib: pos + dt for ib, pos in self.slots.items()}
                self._seen = {}
                self.n_timing_jumps += 1
        # add SSB indices not yet tracked, projected past the current predictions (not where
        # another slot has its SSBs: the same SSB under another index, read under a jammer)
        horizon = min(self.slots.values()) if self.slots else a
        for d in acq.detections:
            if d.cell.ibar not in self.slots and not self._on_a_slot(a + d.sample):
                p = a + d.sample
                while p < horizon:
                    p += self.period_samples
                self.slots[d.cell.ibar] = p
                self._unconfirmed[d.cell.ibar] = (0, self._n_locked_obs)
        if acq.period_ms and acq.period_ms * 1e-3 * self.fs < self.period_samples:
            self.period_samples = acq.period_ms * 1e-3 * self.fs
        self._relabel_by_burst()

    def _relabel_by_burst(self) -> None:
        """Give the tracked slots the SSB indices their positions in the half frame
        say (TS 38.213 §4.1: Case A at 15 kHz, B or C at 30 kHz), where most of them
        agree and a few do not: a lock made on one SSB under a jammer can take its
        index from a PBCH-DMRS read wrong, and the SSBs a later search adds sit where
        their own indices put them (a 23.04 Msps recording under partial-band noise
        5 dB over the cell: the SSB 6 tracked as 2 beside 3 and 5 found later). The
        hypothesis kept is the one, anchored on one slot's index, that the most slots
        agree with; it must be more than half of them (two at least), and a slot is
        moved only onto an index no other slot holds. With L_max 4 the half-frame
        bit (ī_SSB's third) stays as it was."""
        if len(self.slots) < 3 or self.acq is None:
            return
        l_max = self.acq.l_max
        rate, starts, cases = _burst_layout(self.scs_khz)
        to_y = rate / self.fs  # input samples -> SSB-rate samples
        items = list(self.slots.items())
        best: tuple[int, dict] = (0, {})
        for case in cases:
            first = nr.ssb_first_symbols(case, l_max)
            for ib_a, p_a in items:
                implied = {}
                for ib, p in items:
                    i = _index_at((p - p_a) * to_y, ib_a % l_max, first, starts, 5e-3 * rate,
                                  0.5 * dsp.SSB_SYMBOL_LEN)
                    if i is not None:
                        implied[ib] = i
                agree = sum(implied.get(ib) == ib % l_max for ib, _ in items)
                if agree > best[0]:
                    best = (agree, implied)
        agree, implied = best
        if agree < 2 or 2 * agree <= len(items) or agree == len(items):
            return
        for ib, i in implied.items():
            new = i + (ib - ib % l_max)  # (L_max 4: the half-frame bit kept)
            if new == ib or new in self.slots:
                continue
            self.slots[new] = self.slots.pop(ib)
            for d in (self._unconfirmed, self._seen, self._backstep):
                if ib in d:
                    d[new] = d.pop(ib)
            self.n_relabelled_slots += 1

    def _on_a_slot(self, pos: float) -> bool:
        """Whether stream position ``pos`` is, to within one SSB symbol, where a tracked
        slot puts its SSBs (its next prediction plus or minus whole periods)."""
        tol = dsp.SSB_SYMBOL_LEN * self.fs / self.rate
        for q in self.slots.values():
            r = (pos - q) % self.period_samples
            if min(r, self.period_samples - r) <= tol:
                return True
        return False

    def _note_cells(self, acq: Acquisition) -> None:
        """Add the cells a search reported beside its own to ``cells_seen`` (once per search
        result, from _search_done)."""
        merge_cells(self.cells_seen, {int(p): p in acq.offtime_cells
                                      for p in list(acq.others) + list(acq.offtime_cells) if p != acq.pci})

    def _lock(self, acq: Acquisition, block_start: int) -> None:
        self.acq = acq
        self.locked = True
        self.ever_locked = True
        self.scs_khz = acq.scs_khz
        self.offset_hz = acq.ssb_offset_hz
        usable = self.cfg.usable_band * self.fs / 2
        if self.passband_hz is not None:
            usable = min(usable, self.passband_hz)
        self.ssb_in_band = dsp.ssb_in_band(acq.ssb_offset_hz, self.fs, acq.scs_khz, usable)
        self.cfo_hz = acq.cfo_hz
        self._epoch = None
        self.pci = acq.pci
        period_ms = acq.period_ms or self.cfg.period_ms
        self.period_samples = period_ms * 1e-3 * self.fs
        self.slots = {}
        self._seen = {}
        for d in acq.detections:  # first detection of each ī_SSB
            self.slots.setdefault(d.cell.ibar, block_start + d.sample)
        # ... or a period earlier where that still lies in the searched block and no other
        # SSB the search found is: an SSB the search missed there (a fake SSB over it, a fade)
        # is scored when tracking finds its PSS (else that position is passed over: the cell's
        # period may be longer than the one assumed)
        found = sorted(block_start + d.sample for d in acq.detections)
        tol = self._window_in()[0]
        self._backstep = {}
        for ib, p in list(self.slots.items()):
            q = p
            while q - self.period_samples >= block_start:
                q -= self.period_samples
                i = bisect.bisect_left(found, q - tol)
                if i < len(found) and found[i] <= q + tol:
                    break  # another SSB found there
                self._backstep[ib] = self.slots[ib] = q
        self._unconfirmed = {ib: (0, self._n_locked_obs) for ib in self.slots}
        self.lost_run = 0
        self.cell_hidden = False
        self._last_clear_pss = block_start
        self._loss_backoff = 0
        self._reacq_interval_s = self.cfg.reacquire_s
        self._next_reacq = block_start + int(self._reacq_interval_s * self.fs)
        if len(acq.detections) < 2:
            # one SSB of the cell seen in a whole search block: its burst's other SSBs and its
            # period (20 ms assumed) may have been missed (a co-timed cell with the same N_ID2
            # corrupted that block's CFO), and the flywheel would keep to that one slot until
            # the periodic re-acquisition, seconds later: look once more over the next block
            self._next_reacq = block_start + self.acq_len

    def _ssb_span(self, length: int) -> slice:
        """The SSB's own samples in a window of ``length`` (its margin, then 4 symbols):
        where clipping is counted (the SSB is where a cell is loudest)."""
        margin, _ = self._window_in()
        n_ssb = int(math.ceil(dsp.SSB_LEN * self.fs / self.rate))
        return slice(min(margin, max(length - n_ssb, 0)), min(margin + n_ssb, length))

    def _checked_windows(self, starts: list[int], length: int,
                         states: Optional[list[tuple[complex, complex]]] = None):
        """Windows [s0, s0 + length) as complex64 (N, length) with NaN/Inf zeroed,
        the number of non-finite samples of each, whether each is valid input
        (under 1 % non-finite, and not all zero), and each one's ADC clipping
        ((fraction of I/Q components at the rail, the rail), dsp.clip_stats).
        ``states``: each window's (DC offset, IQ image coefficient) where they are not
        the receiver's own (windows after a DC block measured ahead; all inside the buffer)."""
        buf = self._buf
        if all(buf.start <= s0 and s0 + length <= buf.end for s0 in starts):
            # all inside the buffer: one conversion of them all (it is per sample)
            raw = [buf.get(s0, s0 + length) for s0 in starts]
            xs = (self._convert(np.stack(raw)) if self.converter is None
                  else self._convert(np.concatenate(raw)).reshape(len(starts), length))
            frac, rail = dsp.clip_stats(xs[:, self._ssb_span(length)], self.min_clip_rail)
            if states is None:
                xs = self._correct(xs, copy=False)
            else:
                i = 0
                for state, run in itertools.groupby(states):  # runs of windows under one DC block's
                    j = i + sum(1 for _ in run)
                    self._correct(xs[i:j], copy=False, state=state)  # (in place, on the view)
                    i = j
        else:
            assert states is None, "windows measured ahead lie inside the buffer"
            # (the clipping is read with the DC added back; an IQ image taken out stays out: the
            # rail reads up to |w| off on these windows alone, those a recording cuts)
            xs = np.stack([self._window(s0, length) for s0 in starts])
            core = xs[:, self._ssb_span(length)]
            frac, rail = dsp.clip_stats(core + np.complex64(self.dc) if self.dc else core, self.min_clip_rail)
        v = xs.view(np.float32)
        e = np.einsum("ij,ij->i", v, v)  # finite: no NaN/Inf in the window (the usual case)
        n_bad = [0] * len(starts)
        valid = [True] * len(starts)
        for i in range(len(starts)):
            ei = float(e[i])
            if not math.isfinite(ei):
                xs[i], n_bad[i] = dsp.sanitize(xs[i])
                ei = 0.0
            valid[i] = n_bad[i] < 0.01 * length and (ei >= 1e-30 or _has_energy(xs[i]))
        return xs, n_bad, valid, list(zip(frac.tolist(), rail.tolist()))

    def _band(self, w0: int, length: int, cfo_hz: float):
        """The window [w0, w0 + length) at the SSB rate, around the SSB centre
        (offset + ``cfo_hz``): (y0 complex64, w, n_bad, valid, clip, k0, floor:
        (dsp.band_floors_per_re: floor, bins, near floor, bins), x: the window at the input rate,
        complex64, DC removed, what the grid is taken from) with
        ``dsp.rotate_band(y0, w)`` what :func:`dsp.extract_band` gives (k0, w:
        :func:`dsp.band_cut`). The first window asked for in a push is taken to the
        SSB rate together with every other SSB window that lies in the buffer (one
        batch, at any rate ratio since stop 56; the rotation w, which holds the CFO of
        the moment, is the observation's own), the values of one window alone."""
        rate = self.rate
        center = self.offset_hz + cfo_hz
        k0, w = dsp.band_cut(length, self.fs, center, rate)
        first = self._window_in()[0]  # the SSB's start in each window (within a sample)
        hit = self._bands.pop((w0, length, k0), None)
        if hit is None:
            margin, _ = self._window_in()
            starts = {w0}
            # not the windows that come after the next re-acquisition (a new DC offset); those after
            # the coming DC blocks with those blocks' DC offsets, measured ahead (_dc_blocks_ahead)
            horizon = min(self._buf.end, max(self._next_reacq, self._buf.start) + self.acq_len)
            dc_ahead = None
            if self.cfg.dc_removal:
                inside = self._buf.start <= w0 and w0 + length <= self._buf.end
                dc_ahead = self._dc_blocks_ahead(horizon) if inside else None
                if dc_ahead is None:
                    horizon = min(horizon, self._next_dc + self.dc_len)
            for ib, p in self.slots.items():
                # this slot's SSBs in the coming periods too, while they lie in the buffer, where the
                # slot's timing drift puts them (a window the tracking then puts elsewhere is not
                # used: it is computed again where asked for)
                step, ahead = self._slot_period(ib)
                for _ in range(ahead + 1):
                    s0 = int(math.floor(p)) - margin
                    if s0 + length >= horizon:
                        break
                    if s0 >= self._buf.start and (s0, length, k0) not in self._bands:
                        starts.add(s0)
                    p += step
            starts = sorted(starts)
            states = None
            if dc_ahead:
                ends = np.array([b for b, _ in dc_ahead], np.int64)
                idx = np.searchsorted(ends, np.asarray(starts, np.int64) + length, side="right")
                states = [(self.dc, self.iq_w)] + [(st[0], st[2]) for _, st in dc_ahead]
                states = [states[i] for i in idx]
            xs, n_bad, valid, clip = self._checked_windows(starts, length, states)
            ys = dsp.extract_bands_unrotated(xs, self.fs, k0, rate)
            floors = self._floors(xs, first, center)
            for i, s0 in enumerate(starts):
                self._bands[(s0, length, k0)] = (ys[i], n_bad[i], valid[i], clip[i], floors[i], xs[i])
            hit = self._bands.pop((w0, length, k0))
        y0, n_bad, valid, clip, floor, x = hit
        return y0, w, n_bad, valid, clip, k0, floor, x

    def _floors(self, xs: np.ndarray, first: float, center: float) -> list[tuple[float, int, float, int]]:
        """The floors the null REs are held against and their bins, per window
        (_Pending.band_floor: floor, bins, near floor, near bins): dsp.band_floors_per_re
        (over the band beside the SSB, and near it), or where the recording holds too
        little band beside the SSB, dsp.adjacent_floor_per_re (the SSB's band just
        before and after it) for both."""
        fl, nc, fn, nn = dsp.band_floors_per_re(xs, first, self.fs, center, self.scs_khz, self.passband_hz,
                                                self.skirt_hz)
        bad = np.isnan(fl)
        if bad.any():
            pf, pn = dsp.adjacent_floor_per_re(xs[bad], first, self.fs, center, self.scs_khz, self.passband_hz,
                                               self.skirt_hz)
            fl, nc, fn, nn = fl.copy(), nc.copy(), fn.copy(), nn.copy()
            fl[bad], nc[bad], fn[bad], nn[bad] = pf, pn, pf, pn
        return [(float(a), int(b), float(c), int(d)) for a, b, c, d in zip(fl, nc, fn, nn)]

    def _slot_period(self, ib: int) -> tuple[float, int]:
        """(The period of slot ``ib``'s SSBs in samples as the stream's sample clock
        runs, from its last DRIFT_SSBS locked SSBs; how many periods past its next SSB
        that may be extrapolated: no more than those SSBs span, 0 while fewer than two
        were seen)."""
        seen = self._seen.get(ib)
        if seen is None or len(seen) < 2:
            return self.period_samples, 0
        n = round((seen[-1] - seen[0]) / self.period_samples)
        return ((seen[-1] - seen[0]) / n, n) if n > 0 else (self.period_samples, 0)

    def _epoch_cfo_at(self, pos: float) -> float:
        """The CFO that the SSB window at ``pos`` is taken to the SSB rate with
        (see CFO_EPOCH_S)."""
        epoch = int(pos // self._epoch_len)
        if epoch != self._epoch:
            self._epoch, self._epoch_cfo = epoch, self.cfo_hz
        return self._epoch_cfo

    def _pss_lo(self, pos: float, w0: int) -> int:
        """Start of the PSS search segment in the window at w0 of the SSB predicted at pos."""
        e_pss = (pos - w0) * self.rate / self.fs + dsp.SSB_CP
        return int(round(e_pss)) - self.cfg.track_search - PSS_TRACE_HALF

    def _pss_search(self, pos: float, y0: np.ndarray, w: float, k0: int):
        """(segment, its start, rho2 (3, lags)) of the PSS search around the SSB
        predicted at ``pos``: the window's segment of y = rotate_band(y0, w) and
        its correlations. Computed in one batch with the other windows of the
        push in the same CFO epoch (those share k0 and w), kept for them."""
        hit = self._pss.pop((pos, w), None)
        if hit is not None:
            return hit
        margin, length = self._window_in()
        items = [(pos, y0)]
        epoch = self._epoch
        for p in self.slots.values():
            if p != pos and int(p // self._epoch_len) == epoch:
                band = self._bands.get((int(math.floor(p)) - margin, length, k0))
                if band is not None:
                    items.append((p, band[0]))
        n_seg = 2 * (self.cfg.track_search + PSS_TRACE_HALF) + dsp.SSB_FFT_SIZE
        los = np.array([self._pss_lo(p, int(math.floor(p)) - margin) for p, _ in items])
        segs = dsp.rotate_band_rows(np.stack([y for _, y in items]), w, los, n_seg)
        rho2 = dsp.pss_correlate_rows(segs)
        for i, (p, _) in enumerate(items[1:], 1):
            self._pss[(p, w)] = (segs[i], int(los[i]), rho2[i])
        return segs[0], int(los[0]), rho2[0]

    def _observe(self, pos: float, ibar: int) -> _Pending:
        """Process the window around a predicted SSB position (absolute, float):
        the PSS, the timing and the CFO update (the grid and identity follow in
        :meth:`_finish`)."""
        margin, length = self._window_in()
        w0 = int(math.floor(pos)) - margin
        cfo_rot = self._epoch_cfo_at(pos)
        y0, w, n_bad, valid, clip, k0, floor, x_in = self._band(w0, length, cfo_rot)
        self.n_nonfinite += n_bad
        rate = self.rate
        e_start = (pos - w0) * rate / self.fs  # expected SSB start in y (float)
        s = self.cfg.track_search
        # the PSS search range of y = rotate_band(y0, w) (the rest is rotated in _finish)
        seg, lo, rho2 = self._pss_search(pos, y0, w, k0)
        nid2 = self.pci % 3
        centre = s + PSS_TRACE_HALF  # index of the predicted lag in rho2
        row = rho2[nid2]
        win = row[centre - s : centre + s + 1]
        k = int(np.argmax(win))
        peak = float(win[k])
        locked = peak >= self.cfg.track_threshold
        if locked:
            n = centre - s + k
            # the SSB's timing where the channel's paths bring the least of the neighbouring
            # symbols into its FFT windows (dsp.least_isi_timing): on the strongest path unless
            # a strong one comes before it, whose next symbol a window timed on the strongest
            # takes in (a TDL-B channel, strongest path 0.9 us after the first: interference
            # 9 dB over the noise at 25 dB SNR with loud traffic around the SSB, read as a fake
            # PSS at a calibrated site). The PSS trace and the CFO stay on the peak
            t = dsp.least_isi_timing(row, n)
            frac_n = dsp.parabolic_offset(float(row[n - 1]), peak, float(row[n + 1]))
            frac = frac_n if t == n else 0.0
            start = lo + t + frac - dsp.SSB_CP
            lead = (n + frac_n - t - frac) * self.fs / rate  # the flywheel stays on the strongest path
            resid = dsp.pss_cfo_hz(seg, n, nid2, self.scs_khz)  # y[lo + n:], inside seg
            # (relative to the epoch's CFO, which the window was rotated by)
            self.cfo_hz += self.cfg.cfo_alpha * (cfo_rot + resid - self.cfo_hz)
        else:
            n = centre
            start = e_start
            lead = 0.0
        trace = row[n - PSS_TRACE_HALF : n + PSS_TRACE_HALF + 1].copy()
        other = max(float(rho2[(nid2 + 1) % 3, n]), float(rho2[(nid2 + 2) % 3, n]))
        margin_db = 10 * math.log10(max(float(row[n]), 1e-12) / max(other, 1e-12))
        reason = "" if valid else ("non-finite samples" if n_bad else "all-zero input")
        if valid and not self.ssb_in_band:
            valid, reason = False, OUT_OF_BAND_REASON
        sample = int(round(w0 + start * self.fs / rate))
        l_max = self.acq.l_max if self.acq is not None else 8
        return _Pending(sample=sample, locked=bool(locked), ibar=ibar, pci=self.pci, scs_khz=self.scs_khz,
                        l_max=l_max, pss_peak=peak, nid2_margin_db=margin_db, cfo_hz=self.cfo_hz, y0=y0, w=w,
                        start=start, pss_trace=trace, n_nonfinite=n_bad, valid=valid, reason=reason,
                        others=tuple(self.acq.others) if self.acq is not None else (),
                        offtime_cells=tuple(self.acq.offtime_cells) if self.acq is not None else (), clip=clip,
                        band_floor=floor, lead=lead, x_in=x_in, center_hz=self.offset_hz + cfo_rot,
                        hidden=self.cell_hidden)

    def _finish(self, pending: list[_Pending]) -> list[SSBObservation]:
        """The observations of a push: the SSB grids and the cell identity checks
        of all its SSBs at once (per window length: one per SCS)."""
        out: list[Optional[SSBObservation]] = [None] * len(pending)
        rates = np.array([dsp.ssb_rate_hz(p.scs_khz) for p in pending])  # (the lock may be gone by now)
        peak_e = np.zeros(len(pending))  # each SSB's loudest symbol energy (the quiet-loss rule below)
        groups: dict[int, list[int]] = {}
        for i, p in enumerate(pending):
            groups.setdefault(p.y0.size, []).append(i)
        clip = np.array([p.clip for p in pending]).reshape(-1, 2)
        clip_floor = np.zeros(len(pending))
        if clip[:, 0].any():  # the clipping's distortion per RE of the grid (white over the recorded band)
            clip_floor = dsp.clip_distortion_power(clip[:, 0], clip[:, 1]) * (rates / self.fs)
        batches = [g[c : c + FINISH_BATCH] for g in groups.values() for c in range(0, len(g), FINISH_BATCH)]
        for idx in batches:
            ys = dsp.rotate_bands(np.stack([pending[i].y0 for i in idx]), [pending[i].w for i in idx])
            starts = np.array([pending[i].start for i in idx])
            if (GRID_AT_INPUT_RATE and dsp.input_rate_fft_size(self.fs, pending[idx[0]].scs_khz) is not None
                    and all(pending[i].x_in is not None for i in idx)):
                # each symbol's own FFT at the input rate (dsp.ssb_grids_input_rate): the
                # traffic beside the SSB stays out of its REs
                offgrid = np.zeros((len(idx), dsp.N_NULL_RES), dtype=np.complex64)
                grids = dsp.ssb_grids_input_rate(np.stack([pending[i].x_in for i in idx]), starts, self.fs,
                                                 pending[idx[0]].scs_khz, [pending[i].center_hz for i in idx],
                                                 offgrid_leak=offgrid)
                # ... unless the SSB-rate grid's null REs stand LEAK_GRID_RATIO lower: a strong
                # signal outside the SSB's band that is not the cell's own OFDM (another
                # operator's carrier in the recorded band) leaks through the symbol's FFT
                # into every RE, and the SSB-rate band leaves it out. The input rate's grid keeps
                # the cell's traffic where that is half a subcarrier off the SSB's grid (k_SSB odd
                # at 30 kHz, dsp.OFFGRID_BINS), as long as its null REs, that traffic's leakage
                # fitted out, read no more than the SSB-rate grid's: the traffic nearest the SSB
                # is inside the SSB rate's band and leaks into both
                alt = dsp.null_re_power_at(ys, starts)
                unfitted = dsp.null_re_power(grids)
                dsp.subtract_null_leakage(grids, offgrid)
                leak = np.flatnonzero((unfitted > LEAK_GRID_RATIO * alt) & (dsp.null_re_power(grids) > alt))
                if leak.size:
                    grids[leak], offgrid[leak] = _ssb_rate_grids(ys[leak], starts[leak])
                    self.n_ssb_rate_grids += int(leak.size)
            else:
                grids, offgrid = _ssb_rate_grids(ys, starts)
            self.n_offgrid_grids += int(np.count_nonzero(offgrid.any(axis=1)))
            peak_e[idx] = (np.einsum("nij,nij->ni", grids.real, grids.real)
                           + np.einsum("nij,nij->ni", grids.imag, grids.imag)).max(axis=1)
            # an SSB seen with its PSS names its ī_SSB by the PBCH-DMRS, but keeps its slot's
            # SSB index unless the DMRS clearly says another (dsp.DMRS_OVERRIDE_RATIO)
            ibs, sss_m, dmrs_m = dsp.track_identities(
                grids, [pending[i].pci for i in idx], [-1 if pending[i].locked else pending[i].ibar for i in idx],
                priors=[pending[i].ibar for i in idx], l_max=[pending[i].l_max for i in idx])
            for j, i in enumerate(idx):
                p = pending[i]
                i0 = int(round(p.start))
                ib = int(ibs[j])
                out[i] = SSBObservation(
                    sample=p.sample,
                    t_s=p.sample / self.fs,
                    pci=p.pci,
                    ibar=ib,
                    ssb_index=ib & (p.l_max - 1),
                    scs_khz=p.scs_khz,
                    locked=p.locked,
                    pss_peak=p.pss_peak,
                    nid2_margin_db=p.nid2_margin_db,
                    sss_metric=float(sss_m[j]),
                    dmrs_metric=float(dmrs_m[j]),
                    cfo_hz=p.cfo_hz,
                    grid=grids[j],
                    ssb_iq=ys[j, i0 : i0 + dsp.SSB_LEN].copy(),
                    pss_trace=p.pss_trace,
                    n_nonfinite=p.n_nonfinite,
                    valid=p.valid,
                    reason=p.reason,
                    others=p.others,
                    offtime_cells=p.offtime_cells,
                    clip_fraction=p.clip[0],
                    clip_floor_per_re=float(clip_floor[i]),
                    band_floor_per_re=p.band_floor[0],
                    band_floor_bins=p.band_floor[1],
                    band_floor_near_per_re=p.band_floor[2],
                    band_floor_near_bins=p.band_floor[3],
                    band_y=ys[j],
                    band_start=float(starts[j]),
                    ssb_iq_start=float(p.start - i0),
                    lead=p.lead,
                )
        # in stream order: an SSB whose PSS is missing with no more energy in its band
        # than the cell's own SSBs bring is not jammed -- the timing was lost (samples
        # dropped upstream), the gNB did not send it, a deep fade -- and is not scored
        for o, e, p in zip(out, peak_e.tolist(), pending):
            if not o.valid:
                continue
            ref = self._ssb_energy.get(o.pci)
            if o.locked:  # the cell's own share of it: the PSS correlation ~ S / (S + I + N)
                e *= min(max(o.pss_peak, 0.0), 1.0)
                self._ssb_energy[o.pci] = e if ref is None else 0.8 * ref + 0.2 * e
            elif ref is not None and e < QUIET_LOSS_RATIO * ref:
                if p.hidden:
                    o.cell_hidden = True
                    continue
                o.valid = False
                o.reason = "no PSS and no energy beyond the cell's own: timing lost or SSB not sent"
                self.n_quiet_losses += 1
        return out


def _has_energy(x: np.ndarray) -> bool:
    """mean(|x|^2) > 0 in float32 (what the validity test asks), without the squares
    unless the samples are tiny enough for them to underflow."""
    if x.size == 0:
        return False
    v = x.view(np.float32) if x.flags.c_contiguous else np.ascontiguousarray(x).view(np.float32)
    peak = max(float(v.max()), -float(v.min()))
    if peak >= 1e-15:
        return True
    return peak > 0.0 and float(np.mean(np.abs(x) ** 2)) > 0.0


def obs_frac(obs: SSBObservation, pos: float) -> float:
    """Sub-sample part of an observation's position (kept for the flywheel)."""
    return 0.0 if obs.locked else pos - obs.sample
