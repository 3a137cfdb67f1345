"""Receiver + features + detector -> per-SSB records (DESIGN.md §7 contract).

:class:`ScoringPipeline` is the stateful object the replay command and the
daemon share: push IQ blocks, get JSON-able records, one per observed SSB.
"""
from __future__ import annotations

import bisect
import collections
import dataclasses
import math
from typing import Callable, Optional, Protocol

import numpy as np

from signals import iq as iqio
from signals import nr

from .baseline import (NB_CANCEL_MAX, ConfigBaseline, SiteBaseline, build_config_baseline, cancel_pcis,
                       cancel_row, site_neighbours)
from .classical import SITE_FALLBACK, ClassicalDetector
from . import dsp
from .features import (AUX_NB_PSS, AUX_NULL_POWER, AUX_PSS_SHAPE, FEATURE_NAMES, PSS_TRACE_LEN, dmrs_gain_step_db, fade_compensated, raw_summary,
                       residual_batch, residual_grid, ssb_features_batch)
from .model import context_vector
from .receiver import Receiver, ReceiverConfig, SSBObservation, null_early_readings


class Detector(Protocol):
    name: str

    def score(self, feats: np.ndarray, base: Optional[ConfigBaseline]) -> tuple[bool, float, str]: ...


def load_detector(model: str) -> Detector:
    """``default`` (the DT-DDNN model shipped with ssbwatch), ``classical`` (the
    energy detector) or a DT-DDNN model file / directory. A model that fails its
    checks is a named error (ModelError), never a silent fallback."""
    if model == "classical":
        return ClassicalDetector()
    from .model import DTDDNNDetector

    return DTDDNNDetector(None if model == "default" else model)


def epnre_abs_db_batch(grids: np.ndarray) -> np.ndarray:
    """Absolute energy per null RE (dB, file units): the mean power of the 130
    null REs of SSB grids complex64 (m, 4, 240); float64 (m,)."""
    return _epnre_db(dsp.null_re_power(grids))


def _epnre_db(null_power: np.ndarray) -> np.ndarray:
    """:func:`epnre_abs_db_batch` from the null REs' mean power (float64 (m,))."""
    return 10 * np.log10(np.maximum(null_power, 1e-30))


def epnre_abs_db(grid: np.ndarray) -> float:
    """:func:`epnre_abs_db_batch` of one SSB grid (4, 240)."""
    return float(epnre_abs_db_batch(grid[None])[0])


def quantization_floor_per_re(datatype: str, sample_rate_hz: float, scs_khz: int) -> float:
    """Quantisation noise per RE of the receiver's SSB grid (dsp.ssb_grid_at) for
    an integer recording: a uniform quantiser with a 1-LSB step adds LSB^2/12
    per component, LSB^2/6 per complex sample (white over the recorded band);
    band extraction to the SSB rate keeps the fraction ssb_rate / sample_rate
    of it, and the unitary FFT keeps power per RE = power per sample. 0 for cf32.
    An ideal ADC: real ones (fewer effective bits) sit above this, so removing
    it never removes more than the quantisation noise."""
    step = iqio.lsb(datatype)  # one LSB in the full-scale-1.0 units the receiver reads
    return (step * step / 6.0) * dsp.ssb_rate_hz(scs_khz) / float(sample_rate_hz)


def observation_features(obs: SSBObservation, base: Optional[ConfigBaseline], *, datatype: str = "cf32_le",
                         sample_rate_hz: float = 1.0) -> np.ndarray:
    """The feature vector of one observed SSB; ``datatype`` and ``sample_rate_hz``
    of the recording give the known quantisation floor."""
    return observation_features_batch([obs], [base], datatype=datatype, sample_rate_hz=sample_rate_hz)[0]


def observation_features_batch(obs: list[SSBObservation], bases: list[Optional[ConfigBaseline]], *,
                               datatype: str = "cf32_le", sample_rate_hz: float = 1.0,
                               cancel: Optional[list] = None, aux: Optional[dict] = None) -> np.ndarray:
    """:func:`observation_features` of several observed SSBs (each with its own
    configuration baseline or None) in one vectorised computation:
    float32 (len(obs), N_FEATURES). ``cancel``: the neighbour cell(s) cancelled
    from each SSB (a PCI or a list of them; -1: none); by default its baseline's
    first NB_CANCEL_MAX neighbours (:func:`detector.baseline.cancel_pcis`). ``aux``: see
    :func:`detector.features.ssb_features_batch`."""
    sites: dict[int, object] = {}  # one Baseline per configuration baseline
    for b in bases:
        if b is not None and id(b) not in sites:
            sites[id(b)] = b.site()
    floors = {s: quantization_floor_per_re(datatype, sample_rate_hz, s) for s in {o.scs_khz for o in obs}}
    # known floors: the quantisation noise, and the distortion of ADC clipping in the SSB's window
    return ssb_features_batch(
        np.stack([o.grid for o in obs]) if obs else np.zeros((0, 4, 240), np.complex64),
        [o.pci for o in obs], [o.ibar for o in obs],
        np.stack([o.pss_trace for o in obs]) if obs else np.zeros((0, PSS_TRACE_LEN), np.float32),
        nid2_margin_db=[o.nid2_margin_db for o in obs], sss_metric=[o.sss_metric for o in obs],
        dmrs_metric=[o.dmrs_metric for o in obs], locked=[o.locked for o in obs],
        baselines=None if not sites else [sites[id(b)] if b is not None else None for b in bases],
        floor_per_re=[floors[o.scs_khz] + o.clip_floor_per_re for o in obs],
        neighbour_pcis=_cancel_or_none(cancel) if cancel is not None else _table_or_none(cancel_pcis(bases)),
        band_floor_per_re=[o.band_floor_per_re for o in obs], band_floor_bins=[o.band_floor_bins for o in obs],
        band_floor_near_per_re=[o.band_floor_near_per_re for o in obs],
        band_floor_near_bins=[o.band_floor_near_bins for o in obs], aux=aux,
    )


def _cancel_or_none(cancel: list) -> Optional[np.ndarray]:
    """``cancel`` (per SSB: a PCI, or a row of them, -1: none) as the
    (N, NB_CANCEL_MAX) table features.ssb_features_batch takes, None where it
    cancels nothing."""
    return _table_or_none([cancel_row([c] if np.ndim(c) == 0 else c) for c in cancel])


def _table_or_none(rows: list[list[int]]) -> Optional[np.ndarray]:
    """Padded rows (detector.baseline.cancel_row) as the int64 table, None where all are -1."""
    return np.array(rows, np.int64) if any(p >= 0 for r in rows for p in r) else None


NEIGHBOUR_SSS_MARGIN = 1.3  # best / second-best N_ID1 of the summed SSS match on the residual
NEIGHBOUR_SSS_PEAK = 3.0  # ... and best / median of the 336 N_ID1
HEARD_MIN_RATIO = 20.0  # heard_cells: a cell's coherent SSS energy over the median of its N_ID2's
HEARD_SMOOTH_SC = 9  # heard_cells: subcarriers the channel read off the PSS is smoothed over
HEARD_MAX_BELOW_DB = 6.0  # heard_cells: a cell's energy this far under the tracked one's at most


def site_cells(obs: list[SSBObservation]) -> list[int]:
    """The co-channel cells of clean observations of one configuration, for a
    baseline (``ssbwatch calibrate``), strongest first.

    Those under the serving cell's SSB: what its SSS symbol holds once the
    serving SSB is removed, matched to every other cell's SSS (TS 38.211
    §7.4.2.3) in groups of 8 subcarriers (no channel estimate needed, so a cell
    with the serving cell's N_ID2, whose PSS merges with the serving PSS, is
    found too), the energies summed over the SSBs; a cell is kept when it stands
    out among the 336 N_ID1 of its N_ID2 (NEIGHBOUR_SSS_MARGIN over the second,
    NEIGHBOUR_SSS_PEAK over the median), ordered by that energy; while fewer
    than NB_CANCEL_MAX are found, the search is made again with those cancelled
    (:func:`detector.features.residual_batch`). Then the cells
    the acquisitions saw (their ``others``), by how often they were the
    strongest: the acquisition keeps only cells whose own PSS peaks pass its
    thresholds, and a neighbour 6-12 dB under the serving cell is often not
    among them."""
    if not obs:
        return []
    serving = obs[0].pci
    found: list[tuple[float, int]] = []
    mine = [o for o in obs if o.pci == serving]
    if len(mine) >= 2:
        args = (np.stack([o.grid for o in mine]), np.full(len(mine), serving, np.int64),
                np.array([o.ibar for o in mine], np.int64))
        found = _residual_sss_cells(residual_batch(*args)[0], serving)
    cells = [p for _, p in sorted(found, reverse=True)]
    # successively: with the cells found so far cancelled, what is left may show another (two
    # co-timed cells of similar power: each one's residual hides the other's SSS match)
    while cells and len(cells) < NB_CANCEL_MAX:
        more = [c for c in _residual_sss_cells(residual_batch(*args, [cancel_row(cells)] * len(mine))[0], serving)
                if c[1] not in cells]
        if not more:
            break
        cells.append(max(more)[1])
    cells += [p for p in site_neighbours(o.others for o in obs) if p not in cells]
    tracked = sorted({int(o.pci) for o in obs if o.pci is not None})
    cells += [p for p in heard_cells(np.stack([o.grid for o in obs]), tracked) if p not in cells]
    return [p for p in cells if p != serving]


def _residual_sss_cells(resid: np.ndarray, serving: int) -> list[tuple[float, int]]:
    """(energy, PCI) of the cells whose SSS stands out in residuals complex
    (m, 960) of the serving cell's SSBs (:func:`site_cells`): the SSS REs of
    what is left (symbol 2, subcarriers 56..182) matched to all 1008 SSS
    sequences (TS 38.211 §7.4.2.3) in groups of 8 subcarriers (about a cell's
    coherence bandwidth), the groups' energies summed over the SSBs; per
    N_ID2 its best N_ID1 when NEIGHBOUR_SSS_PEAK over the median and
    NEIGHBOUR_SSS_MARGIN over the second -- or the second is itself that far
    over the median: two cells of that N_ID2, of similar power (the next search,
    with this one cancelled, finds the other)."""
    rg = dsp.sss_rx_groups(resid.reshape(-1, 4, 240)[:, 2, nr.ssb_re_indices(serving)["sss"][1]])  # (m, 16, 8)
    seqs = dsp.sss_groups()  # (1008, 16, 8)
    acc = np.zeros(nr.N_CELL_ID_COUNT)
    for x in rg:  # one SSB at a time (16, 8): (1008, 16) complex per SSB, not per recording
        acc += dsp.sss_group_energy(x[None], seqs)[0]
    acc[serving] = 0.0
    found = []
    for nid2 in range(3):
        a = acc[nid2::3]  # the 336 N_ID1 of this N_ID2
        order = np.argsort(a)
        best, second, med = a[order[-1]], a[order[-2]], np.median(a)
        if best > NEIGHBOUR_SSS_PEAK * med and (best > NEIGHBOUR_SSS_MARGIN * max(second, 1e-30)
                                                or second > NEIGHBOUR_SSS_PEAK * med):
            found.append((float(best), 3 * int(order[-1]) + nid2))
    return found


def heard_cells(grids: np.ndarray, tracked: list[int]) -> list[int]:
    """The co-timed cells heard in the SSB grids complex64 (m, 4, 240) of the
    ``tracked`` cell(s), strongest first, the tracked ones left out. Per N_ID2,
    the channel is read off its PSS (TS 38.211 §7.4.2.2; all co-timed cells of
    that N_ID2 summed, smoothed over HEARD_SMOOTH_SC subcarriers) and the SSS
    symbol matched coherently with it to the N_ID2's 336 SSS sequences
    (§7.4.2.3), energies summed over the SSBs. A PCI is heard when its energy is
    HEARD_MIN_RATIO times its N_ID2's median or more and within
    HEARD_MAX_BELOW_DB of the tracked cell's (it grows faster than a cell's
    power, as its square for a cell alone on its N_ID2: its SSS times the channel
    read off its own PSS). These are cells a few dB under the tracked one, whose
    SSS spoil the channel estimate and so the residual that :func:`site_cells`
    searches first."""
    if len(grids) == 0 or not tracked:
        return []
    k = dsp.PSS_K  # the PSS's subcarriers, and the SSS's (TS 38.211 Table 7.4.3.1-1)
    table = nr.sss_table()
    e = np.zeros(nr.N_CELL_ID_COUNT)
    ratio = np.zeros(nr.N_CELL_ID_COUNT)
    for nid2 in range(3):
        h = grids[:, 0, k] * np.conj(nr.pss(nid2))  # (m, 127): the channel of this N_ID2's cells
        # smoothed as scipy.signal.convolve(mode="same") would, which warned "invalid value
        # encountered in cast" now and then on finite complex64 input
        h = dsp.smooth_freq(h, HEARD_SMOOTH_SC, zero_edges=True)
        c = (grids[:, 2, k] * np.conj(h)) @ table[nid2::3].T  # (m, 336)
        en = np.sum(c.real.astype(np.float64) ** 2 + c.imag.astype(np.float64) ** 2, axis=0)
        e[nid2::3] = en
        ratio[nid2::3] = en / max(float(np.median(en)), 1e-30)
    ref = max(float(e[p]) for p in tracked)
    heard = np.flatnonzero((ratio >= HEARD_MIN_RATIO) & (e >= ref * 10 ** (-HEARD_MAX_BELOW_DB / 10)))
    return [int(p) for p in heard[np.argsort(-e[heard])] if int(p) not in tracked]


CAL_BATCH = 512  # SSBs per feature batch of a calibration (bounded memory on long recordings)
CAL_CELL_SEARCH_SSBS = 2000  # clean SSBs the neighbour-cell search sums over


_NO_IQ = np.zeros(0, np.complex64)  # calibration keeps observations without their raw IQ


def calibration_observations(obs: list[SSBObservation]) -> list[SSBObservation]:
    """The valid ones of ``obs`` as calibration keeps them until :func:`config_baseline`:
    their null REs' earlier readings taken (:func:`null_early_readings`, which the
    band-excess statistics need), their raw IQ and SSB-rate window dropped (copies)."""
    keep = [o for o in obs if o.valid]
    null_early_readings(keep)
    for o in keep:
        mistimed_readings(o)  # (AUX_MISTIMED; they need the raw IQ)
    return [dataclasses.replace(o, ssb_iq=_NO_IQ, band_y=None) for o in keep]


def config_baseline(obs: list[SSBObservation], scs_khz: int, sample_rate_hz: float, datatype: str,
                    cancel_neighbour: bool = True, ssb_freq_hz: Optional[float] = None,
                    ssb_offset_hz: Optional[float] = None, detector=None) -> ConfigBaseline:
    """What ``ssbwatch calibrate`` learns from the clean observations of one
    configuration: the site's co-channel cells (:func:`site_cells`, over the
    first CAL_CELL_SEARCH_SSBS), the first of them cancelled from every SSB's
    features (in batches of CAL_BATCH; not with ``cancel_neighbour`` False,
    which the baseline then keeps so that scoring does not cancel either), and
    those features' statistics (:func:`detector.baseline.build_config_baseline`);
    with a DT-DDNN ``detector``, how it scores these SSBs against that baseline
    (:func:`site_clean_scores`)."""
    cb = _config_baseline(obs, scs_khz, sample_rate_hz, datatype, cancel_neighbour, ssb_freq_hz, ssb_offset_hz)
    cb.offtime_cells = site_offtime_cells(obs, set(cb.pcis) | set(cb.neighbours))
    if detector is not None and hasattr(detector, "weights_sha256"):
        site_clean_scores(cb, obs, detector, datatype, sample_rate_hz)
    return cb


def site_offtime_cells(obs: list[SSBObservation], known: set[int]) -> list[int]:
    """The cells that the cell searches behind clean observations ``obs`` saw off the
    serving cell's timing (``SSBObservation.offtime_cells``), the most often reported
    first, less the ``known`` ones (the baseline's ``offtime_cells``)."""
    counts = collections.Counter(int(p) for o in obs for p in o.offtime_cells)
    return [p for p, _ in sorted(counts.items(), key=lambda pc: (-pc[1], pc[0])) if p not in known]


def site_clean_scores(cb: ConfigBaseline, obs: list[SSBObservation], detector, datatype: str,
                      sample_rate_hz: float) -> None:
    """Score a site's clean observations ``obs`` against their own baseline ``cb``
    with a DT-DDNN ``detector`` (each SSB as scoring sees it: its SSB index's
    levels, the baseline's neighbours cancelled) and keep, under the model's
    weights hash, the model.CLEAN_SCORE_QUANTILE of their p1 and p2 logits and
    their number in ``cb.clean_scores`` (model.DTDDNNDetector.thresholds_at;
    nothing without observations)."""
    from .model import CLEAN_SCORE_QUANTILE, logit

    feats = [np.zeros((0, len(FEATURE_NAMES)), np.float32)]
    for i in range(0, len(obs), CAL_BATCH):
        c = obs[i : i + CAL_BATCH]
        feats.append(observation_features_batch(c, [cb.for_index(o.ssb_index) for o in c], datatype=datatype,
                                                sample_rate_hz=sample_rate_hz))
    # in order, each SSB with the stream context of its cell's SSBs before it (a model with one)
    p = detector.probs_stream(np.concatenate(feats), np.array([o.pci if o.pci is not None else -1 for o in obs]))
    z = np.array([[logit(a), logit(b)] for a, b in p]).reshape(-1, 2)
    if len(z):
        q = np.quantile(z, CLEAN_SCORE_QUANTILE, axis=0, method="higher")
        cb.clean_scores[detector.weights_sha256] = [round(float(q[0]), 4), round(float(q[1]), 4), len(z)]


def _config_baseline(obs, scs_khz, sample_rate_hz, datatype, cancel_neighbour, ssb_freq_hz, ssb_offset_hz):
    nbs = site_cells(obs[:CAL_CELL_SEARCH_SSBS])
    cancel = cancel_row(nbs if cancel_neighbour else ())
    chunks = [obs[i : i + CAL_BATCH] for i in range(0, len(obs), CAL_BATCH)]
    auxes = [{} for _ in chunks]
    feats = np.concatenate([
        observation_features_batch(c, [None] * len(c), datatype=datatype, sample_rate_hz=sample_rate_hz,
                                   cancel=[cancel] * len(c), aux=a) for c, a in zip(chunks, auxes)])
    band_isr = np.maximum(observation_band_excess(obs, feats)[0], BAND_ISR_NONE_DB)
    shape = np.concatenate([a[AUX_PSS_SHAPE] for a in auxes])
    mistimed = [max(mistimed_readings(o, missing=0.0)) for o in obs]
    return build_config_baseline(scs_khz, sample_rate_hz, datatype, feats,
                                 epnre_abs_db_batch(np.stack([o.grid for o in obs])), [o.pci for o in obs], nbs,
                                 cancel_neighbour, ssb_index=[o.ssb_index for o in obs], ssb_freq_hz=ssb_freq_hz,
                                 ssb_offset_hz=ssb_offset_hz,
                                 aux={AUX_PSS_SHAPE: shape, AUX_PSS_SHAPE_REL: shape + feats[:, _EPNRE_REL_IDX],
                                      AUX_BAND_ISR: band_isr, AUX_PBCH_EXCESS: pbch_symbol_excess_db(feats)[0],
                                      AUX_MISTIMED: np.asarray(mistimed, np.float64), **_nb_pss_aux(auxes)})


def _nb_pss_aux(auxes: list[dict]) -> dict:
    """{AUX_NB_PSS: the calibration SSBs' readings} where a neighbour was cancelled
    from every one of them, else {} (the baseline keeps no such statistic)."""
    v = np.concatenate([a[AUX_NB_PSS] for a in auxes]) if auxes else np.zeros(0)
    return {AUX_NB_PSS: v} if v.size and np.isfinite(v).all() else {}


# A cell search that finds no cell at a calibrated site whose cell it saw at this SNR or
# more yields a jammed record: the search finds a cell down to ~0 dB SNR (SJNR ~ -5 dB
# under a jammer), so a cell calibrated with this margin that the search cannot find is
# hidden (or off the air), not merely weak.
NOCELL_MIN_CAL_SNR_DB = 10.0


# Neighbour guard (uncalibrated mode). Without a baseline, a co-timed co-channel cell under the
# serving one -- in a synchronised network, every neighbour -- puts its SSB on the serving SSB's
# occupied REs and none on its null REs: what a fake SSB of another PCI does, and the model sits
# on its threshold there (a simulated site, neighbour 7.6 dB down, TDL-B: 12 of 12 clean SSBs
# jammed). A jammed verdict is asked again with the strongest other cell that the cell search
# saw (SSBObservation.others: its PSS and SSS stood out) cancelled, as a calibrated site cancels
# its neighbour; it stands unless that says clean, and the record carries "neighbour_cancelled"
# (the PCI). A fake SSB with its own PCI on the air from before the lock is cancelled so too:
# calibrate the site to tell it from a neighbour (a baseline cancels only its own neighbours,
# and an SSB of a cell it never had is jammed, "unknown_cell"). Asked only where the occupied REs'
# interference stands NEIGHBOUR_GUARD_GAP_DB or more over the null REs' energy (a cell's SSB
# leaves the null REs empty; a barrage does not -- and the cancellation costs ~2 ms per SSB).
# 3 dB, not 6: at a site 8.7 dB over the noise with a neighbour 6 dB under the cell the gap is
# ~4 dB (the noise on both) and 7 of its 15 clean SSBs stayed jammed (bench/receiver_eval.py
# periods --sites 8 --seed 3, 40 ms, site 2; 1 at 3 dB); uncalibrated Pd the same at 3 and 6 dB for
# novel --seed 531, protocol --seed 541 and detect --seed 201's spoofer, CW, multi-tone and
# reactive jammers, cells --seed 1 --extra 1 84 -> 83 of 266.
NEIGHBOUR_GUARD_GAP_DB = 3.0
# NEIGHBOUR_GUARD_SSS: where the cell search reported no other cell (a co-timed cell with the
# serving N_ID2 merges its PSS with the serving one's, and the search's PSS thresholds keep
# only cells whose own PSS peak stands apart), the cells are those the SSB's own residual SSS
# match shows (_residual_sss_cells, as a calibration's site_cells finds them, over this one
# SSB: the same records however a stream is cut), the strongest cancelled.
# bench/receiver_eval.py cfo --n 4 --seed 507: a 15 kHz site with a neighbour 4 dB down, its
# N_ID2 and 1.7 us early, TDL-C: 6 of 10 clean SSBs jammed at every CFO, none reported; 0
# with the search. Uncalibrated Pd of detect --seed 201's sites (spoofer, CW, multi-tone:
# 6/129, 112/129, 129/129) the same with and without it; cells --sites 8 --seed 401 --extra 2
# (four co-timed cells) 71 -> 69 of 138, FAR 0/108 both.
NEIGHBOUR_GUARD_SSS = True

# Fading guard (calibrated mode). A receiver that moves (vehicular networks) sees
# the serving cell fade by several dB from one SSB to the next (Rayleigh fading:
# 29 % of SSBs >= 3 dB under their median) while its own noise floor stays put.
# Relative to its own power, a faded SSB looks like one whose floor rose: a
# barrage jammer to the model. When the cell's power in an SSB (its fitted
# channel |H|^2, file units: what a fake PSS or SSB does not raise) is FADE_MIN_DB
# or more under the median of the last FADE_WINDOW valid SSBs and its null-RE
# floor (file units) is within FADE_FLOOR_TOL_DB of theirs -- no energy came or
# went -- a jammed verdict is asked again of the detector with the fade undone
# (features.fade_compensated); it stands unless that says clean. A jammer on all
# along still shows against the site baseline; one that leaves structure (a
# tone, a fake PSS) still shows in the features the fade does not touch.
FADE_WINDOW = 16
FADE_MIN_HISTORY = 3
FADE_MIN_DB = 1.0
FADE_FLOOR_TOL_DB = 1.5
_SNR_IDX = FEATURE_NAMES.index("snr_est_db")
_PSS_SSS_Z_IDX = FEATURE_NAMES.index("site_z_pss_sss_gain_dev_db")
# A calibrated SSB is jammed whatever the model says when the channel gain of its PSS over
# its SSS's stands this many robust spreads off the site's clean median: a gNB's PSS-to-SSS
# EPRE ratio is a fixed setting (0 or 3 dB, TS 38.213 §4.1), and a fake PSS on the cell's
# REs (a PSS spoofer of the same or another N_ID2) moves it. On the regenerated evaluation
# split (2693 clean, 5626 jammed calibrated SSBs) the model calls 35 % of spoofed SSBs clean,
# many of them with this z at 10-22: over 8, spoofer Pd at the operating point 65.1 -> 71.0 %,
# FAR 0.11 -> 0.15 % (clean SSBs reach 5.4 and 10.8 in the two mixes' tails).
PSS_SSS_JUMP_Z = 8.0
# At a site whose baseline lists a co-channel neighbour, also a rise of PSS_SSS_JUMP_MIN_DB at
# least: the neighbour, cancelled or not, moves a clean SSB's PSS/SSS gain by up to ~1 dB with
# its phase, and a calibration of a few SSBs may not see that (its spread at the floor,
# features.SITE_MIN_SPREAD_DB, 0.1 dB: a site with a neighbour 8 dB down, 15 kHz, calibrated
# on 9 SSBs, read 3 of 9 clean SSBs of its next recording at z 8.0-8.6, rises 0.81-0.86 dB).
# Elsewhere a PSS spoofer 14 dB under the cell moves it by less than 1 dB on ~30 % of SSBs
# (tests/test_receiver.py::test_a_fake_pss_on_the_cells_is_jammed_at_a_calibrated_site).
PSS_SSS_JUMP_MIN_DB = 1.0
# Not at all where the baseline lists a co-channel cell with the serving cell's N_ID2: there
# the PSS/SSS gain is no site statistic (ConfigBaseline.site: its calibrated columns read 0; a
# simulated synchronised network, two such cells 7 and 8 dB under the serving one, calibrated
# on one 40 ms recording: every clean SSB of the next, 16 of 16, read z 24-29, rises of
# 2.4-2.9 dB). The model's other features and the PSS shape rule (with its wider spread
# there) still see a fake PSS.
_PSS_SSS_DELTA_IDX = FEATURE_NAMES.index("site_pss_sss_gain_dev_db")
# The same for the PSS channel's shape against the SSS's and PBCH's (features.PSS_SHAPE_NOTE,
# features.AUX_PSS_SHAPE): a fake PSS adds a channel of its own to the PSS symbol alone. Clean
# SSBs sit at ~0-5 dB over the noise (a co-channel cell of the same N_ID2 that the baseline
# does not cancel: its PSS, ~25-30 dB, a site's own level); a PSS spoofer 20 dB under a cell
# at 28 dB SNR, at ~16 dB. z over the site's clean median and spread (at least
# PSS_SHAPE_MIN_SPREAD_DB: a neighbour's PSS comes and goes with its phase). On the evaluation
# split's calibrated captures (each calibrated on its companion) clean SSBs reach z 7.6 at the
# 99.9th percentile and 8.8 at most (2482), spoofed ones 10.5 at the median.
PSS_SHAPE_JUMP_Z = 10.0
PSS_SHAPE_MIN_SPREAD_DB = 0.5
# At a site whose baseline lists a neighbour with the serving cell's N_ID2, that cell's PSS is
# the serving PSS: what its cancellation leaves there sets the statistic (~24-30 dB over the
# noise), and it follows the neighbour's channel, which one recording holds still and the next
# may not (a simulated site, neighbour 5.8 dB down, TDL channel: 23.9 +- 0.4 dB over one
# recording, 28.6 +- 0.5 over the next -- z 8-12 on clean SSBs). A fake PSS must then rise
# 10 dB over the site's level (a spoofer that weak hides under such a neighbour anyway).
PSS_SHAPE_NB_MIN_SPREAD_DB = 1.0
# The statistic is over the noise, so a recording less noisy than the calibration's (the
# cell's path on a better day, another receiver gain) raises it where the PSS fit holds
# anything of the cell's own (its impairments, a neighbour's PSS): the rule also needs it
# against the cell's power (AUX_PSS_SHAPE_REL: the statistic plus the null REs' energy
# against the cell, features "epnre_rel_db") PSS_SHAPE_REL_MIN_DB over the largest the
# calibration saw -- a fake PSS adds energy against the cell, a quieter floor does not.
# bench/receiver_eval.py drift --drifts=-12 (SNR 12 dB over the calibration's): 9 of 222
# clean SSBs jammed by this rule, 8 of them at a site with a neighbour and impairments whose
# statistic stood at z 10+; with this test 0 (and 0 at -8 and -20 dB), spoofer Pd of detect
# --seed 2, 3, 201 and beams --seed 5 unchanged.
AUX_PSS_SHAPE_REL = "pss_shape_rel_db"
PSS_SHAPE_REL_MIN_DB = 3.0
_EPNRE_REL_IDX = FEATURE_NAMES.index("epnre_rel_db")
# And for the first cancelled neighbour's PSS (features.AUX_NB_PSS: its PSS channel gain
# over its symbols 1-3's). A fake PSS with that neighbour's N_ID2 on the cell's timing lies on
# the PSS REs as the neighbour's own PSS does, and the neighbour's per-symbol fit takes it for
# its PSS: the serving cell's residual stays clean, and the model called such SSBs clean
# (bench/receiver_eval.py detect --seed 201: a fake PSS 9 dB under the cell over the SSB, ~0 dB
# on the PSS's REs, the neighbour 3.4 dB down; 15 of 15 SSBs). A calibrated SSB is jammed
# ("nb_pss_jump_db": the rise) where that gain stands NB_PSS_JUMP_DB or more over the largest
# its calibration saw; there it read -2.6...+0.5 dB, the spoofed SSBs +4.2...+5.3. Only where
# each PSS fit is one cell's alone: not where two of the serving cell and the cells the site
# lists share an N_ID2 (in a synchronised network their PSS add on the same REs with channels
# of their own, which the next recording redraws: bench/receiver_eval.py cells --extra 2 --seed
# 401, a neighbour with the serving N_ID2 cancelled first, 11 clean SSBs at rises of 3.1-4.9 dB;
# --extra 1 --seed 1, the second neighbour with the serving N_ID2, 6 at 3.1-3.5 dB).
NB_PSS_JUMP_DB = 3.0


def _nb_pss_rise_db(base: Optional[ConfigBaseline], pci: Optional[int], nb_pss_db: float) -> Optional[float]:
    """How far (dB) an SSB of cell ``pci`` has its neighbour PSS gain
    (features.AUX_NB_PSS) over the largest its site's calibration saw; None
    without a baseline, one made before it was kept, where no neighbour was
    cancelled (NaN), and where the PSS fits are not each cell's own alone: two
    of the serving cell and those the site lists with one N_ID2."""
    st = base.stats.get(AUX_NB_PSS) if base is not None else None
    if st is None or pci is None or not nb_pss_db == nb_pss_db or not base.neighbours:
        return None
    nid2 = [pci % 3] + [p % 3 for p in base.neighbours]
    if len(set(nid2)) < len(nid2):
        return None
    return nb_pss_db - st.max


# Band excess (both modes, each SSB alone). The SSB's null REs are empty (TS 38.211 §7.4.3.1);
# their energy is the receiver's noise, the cell's own leakage (its EVM, phase noise, a
# neighbour's ISI) and any interference. The noise is also where the carrier around the SSB
# is idle (dsp.band_floors_per_re, the same units): an interferer confined to the SSB's band
# (SSB-band noise, a reactive jammer, tones inside it) raises the null REs over that floor, a
# barrage raises both alike, and so does a noise floor that moves between recordings -- this
# needs no site baseline and no absolute level. Jammed when the null REs' excess over the
# floor is BAND_EXCESS_Z estimation spreads out (130 REs against the floor's bins) and,
# against the cell's own power, at least BAND_EXCESS_ISR_DB (the cell's leakage stays under
# it: the four real captures' null REs stand -36...-51 dB under their SSB or at the floor; in
# the evaluation split's 2552 clean SSBs -- phase noise, IQ image, traffic, neighbours -- at
# most -28 dB but for a neighbour 7.7 dB under the cell and 1.6 us early, whose next symbol
# spills into the null REs' FFT window, -24.6 dB: hence the readings earlier in the CP
# (receiver.NULL_EARLY_SAMPLES), of which the lowest is used, and BAND_ISI_MAX_DB). On that
# split, uncalibrated: Pd at SJNR 15-30 dB 38.1 -> 53.6 %, FAR 0/2728 before and after.
# -24 -> -30 dB in stop 54: the excess against the cell is about -SJNR, so at -24 dB the rule
# never reached a jammer at SJNR 24-30 dB however far over the floor it stood (SSB-band noise
# 16 dB over it under a 44 dB cell); the z and floor limits, with the early readings and the
# mistimed/off-timing tests, are what keep clean SSBs out: of the evaluation split's clean
# SSBs none passes them at any level, of the field captures' the same 17 at -24 as at -34 dB
# (unsynchronised neighbours the search did not see, all over -24 dB). The real captures:
# three with no excess at all, cyberx-n78-pci1 (42.5 dB SNR) -49.6 dB -- its null REs next to
# the PSS 3 dB over the floor, the far ones at it. bench/eval_split.py, uncalibrated, with the
# near-floor test below: Pd at SJNR 15-30 dB 863 -> 970 of 1827 (sweep 153 -> 195, reactive 74
# -> 120; 982 without that test), FAR 0/2724 before and after; field captures 180 -> 190 of
# 722 (194 without it: their traffic beside the SSB raises the near floor), FAR 8/910 before
# and after. Record "band_excess_db" (the excess against the cell, dB).
BAND_EXCESS_ISR_DB = -30.0
# ... and under BAND_EXCESS_WIDE_ISR_DB against the cell (the level before stop 54), without a
# site's own level, the excess stands BAND_EXCESS_Z spreads and BAND_EXCESS_MIN_DB over the
# floor near the SSB too (dsp.BAND_FLOOR_NEAR_SC: three RBs on either side): where the
# recorded band is wider than the carriers on the air, the band floor comes from outside them,
# and what a transmitter spreads over its whole carrier lands on the null REs -- its noise, a
# louder co-channel cell's (cyberx-n78-pci1 with amarisoft-n78-pci500, co-timed at one power:
# the amarisoft recording's noise, 27 dB under its SSB and confined to its 23 MHz, read
# -27.9 dB against the cell over the band floor).
BAND_EXCESS_WIDE_ISR_DB = -24.0
BAND_EXCESS_Z = 6.0
# ... and the null REs at least this far over the floor: an SDR's passband is not flat
# everywhere (ripple, a tilt, the droop towards its band edges), and the floor, a low
# percentile, comes from wherever the band is lowest; the four real captures' null REs stand
# -1.7...+2.1 dB off their floor.
BAND_EXCESS_MIN_DB = 3.0
# ... and the standard reading of the null REs within this far of the lowest earlier one:
# interference on air through the SSB reads the same in every window, a co-channel cell that
# arrives more than a CP early spills its next symbol into all of them, the later ones more
# (simulated neighbours 3-6 dB under the cell, 1.0-1.2 CP early, no other cell reported by the
# acquisition: 41 of 90 clean SSBs over the rule's other limits, all with the standard reading
# >= 1 dB over the earlier ones), one a CP late its previous symbol, the earlier ones more
# (down to -6.5 dB); the SSBs of the evaluation split the rule jammed read -0.6...+0.5 dB but
# for a few sweeps and partial-band noise with an edge in the SSB (up to +2.3 dB, left to the
# model).
BAND_ISI_MAX_DB = 1.0
# ... and no co-channel cell 2/3 of a CP to 6.7 CPs early or 2/3 to 6 CPs late: it spills its
# symbols into every window the CP allows (the earlier readings stop telling it once it is
# ~2 CPs off: simulated neighbours 3-22 dB under the cell, 3-6 CPs early, all of 25 clean
# SSBs per offset over the rule's other limits, 4-6 CPs late 12-18 of 25). Its PSS is looked
# for where the serving cell's own PSS symbol has been cancelled and what it sends around it
# blanked (SSBObservation.early_cell_rho2 / late_cell_rho2, dsp.mistimed_cell_rho2): those
# neighbours, with multipath, read >= 0.24 (the least: 15 dB down, 6 CPs early); of the 827
# SSBs of the evaluation split the rule jammed without this test (reactive, SSB-band noise,
# tones, sweeps, pulsed), 823 read 0.035-0.2 and 4 sweeps 0.24-0.35 (the cost).
MISTIMED_CELL_RHO2 = 0.2
# ... and, uncalibrated, not where the interference stands on part of the SSB's symbols only,
# BAND_EXCESS_SYM_SPREAD_DB or more between its loudest and quietest symbol (sym_spread_db): an
# unsynchronised co-channel cell's SSB a few symbols off the serving one overlaps some of its
# symbols, and one that the cell search did not see (its PSS on the serving SSB's own symbols;
# receiver._offtime_cells) reads like SSB-band noise on the null REs alone.
BAND_EXCESS_SYM_SPREAD_DB = 6.0
# ... as long as the same symbols stand loud at that SSB index (those within half the spread of
# the loudest): a neighbour's timing holds from one burst to the next, a pulsed jammer's gate
# (its period unrelated to the SSB period) falls elsewhere, and from the second time a pattern
# moves the rule stands again. The first SSB of an index is held to the last of the index
# SAME_PLACE_INDEX_STEP before or after it (since stop 50): an SSB's place in its slot (Cases A
# and C, first symbols {2, 8} + 14n, TS 38.213 §4.1) or in its back-to-back pair (Case B,
# {4, 8, 16, 20} + 28n) repeats every two indices, so a neighbour with the serving cell's burst
# pattern, a few symbols off, overlaps SSB k as it does SSB k - 2, while a pulsed gate moves;
# where neither was seen it is left to the model (10 ms recordings, where
# most indices come once: pulsed noise at SJNR 15-30 dB 22 -> 28 of 111 jammed uncalibrated on
# the evaluation split, FAR 0/2724 and the field captures' 8/910 unchanged; `mistimed --seed 13`
# and `partial --seed 14` neighbours unchanged).
SAME_PLACE_INDEX_STEP = 2
# Uncalibrated, the model's own verdict gives way to a mistimed cell (MISTIMED_CELL_RHO2's)
# where its PSS stands this clear: the model was trained with neighbours within +-0.4 CP and
# takes a cell 3-6 dB down, 1.5 CPs late, for jamming (36 of 60 clean SSBs; they read 0.83-0.89;
# 1 CP early, 3-20 dB down: 7 of 60); with this, none (bench/receiver_eval.py mistimed). On the
# evaluation split it withdrew 2 of the model's 1955 jammed verdicts (pulsed noise; uncalibrated
# Pd at SJNR 15-30 dB 53.4 -> 53.3 %). A fake SSB sent more than 2/3 of a CP off the cell's
# timing looks the same without a site's baseline (calibrated, the site's own such cell is the
# classical detector's to judge: SITE_MISTIMED_RHO2). Record "mistimed_cell" (the reading);
# counted (stats, replay summary, daemon).
MISTIMED_MODEL_RHO2 = 0.5
# ... but not where the interference stands on the PSS symbol alone: a cell sends all four SSB
# symbols, so a mistimed neighbour spills into each (symbols 1-3 over symbol 0 by -0.3...+18 dB:
# neighbours 3-6 dB down, 1-4 CPs early or late), a PSS sent alone (a PSS spoofer off the cell's
# timing) into symbol 0 and the edge of the next (-8.5...-16 dB on the four real captures, a fake
# PSS 1 CP early, 5-20 dB under the SSB). The model's verdict stands where the loudest of symbols
# 1-3 is MISTIMED_PSS_ONLY_DB or more under symbol 0 (sym<l>_int_rel_db).
MISTIMED_PSS_ONLY_DB = 4.0
# Calibrated, the site's clean recording holds its neighbours, but the model scores a site
# with such a cell beyond what its thresholds can be raised to, or close enough under them
# that a later clean SSB goes over (bench/receiver_eval.py mistimed --calibrated, a neighbour
# 3-20 dB down 3-6 CPs early or late: 5-13 of 60 clean SSBs jammed, as in stop 38). The
# calibration keeps its SSBs' readings (AUX_MISTIMED); where their median is SITE_MISTIMED_RHO2
# or more the site has such a cell (simulated, 3-20 dB down 1-6 CPs off: 0.41-0.97, none
# between 7 and 20 CPs where it is not looked for; 28 of 30 sites of the training mix 0.04-0.11,
# two 0.26 and 0.37), and the model's jammed verdict on an SSB that reads at least
# SITE_MISTIMED_FRACTION of that median (a jammer as loud as the cell halves it: the model's
# verdict stands; SSB-band noise at the cell's level, seed 62 of the test: 22 of 32 jammed
# either way, 12 with half the median) and whose score stands no more than
# SITE_MISTIMED_LOGIT_MARGIN over the site's clean scores (a site the model holds keeps its
# verdicts: neighbours 1 CP late, CW Pd 78 % with it, 53 % without) is asked again of the
# classical detector against the site's baseline, which learnt what the cell puts in the SSB
# (record "detector": "classical", and "mistimed_cell" where it says clean), unless the
# interference stands on the PSS symbol alone.
AUX_MISTIMED = "mistimed_rho2"
SITE_MISTIMED_RHO2 = 0.3
SITE_MISTIMED_FRACTION = 0.75
SITE_MISTIMED_LOGIT_MARGIN = 3.0


def _pss_only_db(feats: np.ndarray) -> float:
    """How far the interference on an SSB's PSS symbol stands over the loudest of
    symbols 1-3 (dB, sym<l>_int_rel_db; see MISTIMED_PSS_ONLY_DB)."""
    return float(feats[_SYM_IDX[0]]) - max(float(feats[i]) for i in _SYM_IDX[1:])


def site_mistimed_rho2(base: Optional[ConfigBaseline]) -> Optional[float]:
    """The median reading of the mistimed cell a calibrated site's clean SSBs hold
    (SITE_MISTIMED_RHO2 or more), else None."""
    st = base.stats.get(AUX_MISTIMED) if base is not None else None
    return st.median if st is not None and st.median >= SITE_MISTIMED_RHO2 else None

# Receiver gain step (both modes). A receiver whose gain changes inside an SSB -- an AGC
# settling at the start of a recording, or stepping mid-stream -- scales the cell and its own
# noise together on the symbols after the step, and a step inside a symbol spreads that
# symbol's energy over its subcarriers, null REs included: the SSB reads like a jammed one
# (12 simulated clean recordings starting 1 ms before an SSB with the gain 12 dB higher for
# the first 1.6 ms: 7 of 125 SSBs jammed, uncalibrated, bench/receiver_eval.py transient). A
# gNB sends the PBCH-DMRS of one SSB at one EPRE (TS 38.213 §4.1), and a jammer adds energy
# but not the cell's pilots coherently: where the PBCH-DMRS of the SSB's symbols 1-3 proves
# the cell's gain changed by GAIN_STEP_DB or more inside the SSB (features.dmrs_gain_step_db,
# lower bounds at GAIN_STEP_SIGMA standard errors), a jammed verdict is replaced by an invalid
# record (neither clean nor jammed; "gain_step_db", the reason says why). A step before
# symbol 1 is not seen (the PSS's EPRE is the gNB's choice, 0 or 3 dB over the SSS's, and a
# fake PSS moves it too). At most GAIN_STEP_MAX of the last GAIN_STEP_WINDOW SSBs of a stream
# are so excused: a receiver's gain settles, and a transmitter that could fake the step on
# every SSB (the cell's own pilots, phase-aligned at the receiver) is then jammed again. An
# SSB of a cell a calibrated site never had ("unknown_cell") stays jammed: that verdict is
# its identity's, not its energy's.
GAIN_STEP_DB = 2.0
GAIN_STEP_SIGMA = 4.0
GAIN_STEP_MAX = 2
GAIN_STEP_WINDOW = 32
GAIN_STEP_REASON = "the receiver's gain changed inside the SSB (an AGC step): not scored"

# ADC clipping (both modes). Samples at the converter's rails add a distortion that the
# receiver removes as a known floor (dsp.clip_distortion_power: its power over the recorded
# band, white). It is not white: the intermodulation of what drives the ADC to its rails lies
# around that signal, the third order over three times its width, so beside a strong carrier
# that is not the cell's the SSB's REs take several times the mean (the four real captures
# beside a noise-like carrier of 1.4, 5 or 10 MHz 20-30 dB over the cell, 0.2-1.5 MHz from the
# SSB's band, I and Q clipped at 2-3 times their RMS: 33 of 202 SSBs jammed uncalibrated, by the
# model or the band-excess rule, none without the clipping). A jammed verdict whose SSB's
# residual (all 960 REs, null REs included: what the channel fit leaves, a tone on one
# subcarrier too) holds less than CLIP_DOMINANT_RATIO times the white estimate per RE is the
# receiver's own overload, not the air's: it is replaced by an invalid record
# ("clip_overload_db", that ratio; the reason says why), and a clean verdict stays clean. Those
# 33 read -9.0...+3.8 dB, simulated ones up to +4.7 dB; the ratio grows with the recording's
# width over the carrier's, 10 leaves room for a narrow carrier in a wide recording. A jammer
# in the SSB's band that drives the ADC to its rails itself stands far over its distortion and
# stays jammed (tests/test_receiver.py -k drives_the_adc); one 1-10 dB over it, where 7-10 % of
# the components clip, is invalid (the cost: docs/RECEIVER.md, "ADC clipping").
CLIP_DOMINANT_RATIO = 10.0
CLIP_OVERLOAD_REASON = ("ADC clipping: the SSB holds no more interference than the receiver's own "
                        "clipping distortion (lower the receiver gain): not scored")


def mistimed_readings(obs: SSBObservation, missing: Optional[float] = None) -> tuple[float, float]:
    """(early, late) dsp.mistimed_cell_rho2 of an observed SSB, computed once
    (~0.2 ms) when first asked for and kept on the observation. With ``missing``,
    an observation whose raw IQ was dropped before they were computed
    (:func:`calibration_observations` of another run) gives (missing, missing)."""
    if not (obs.early_cell_rho2 == obs.early_cell_rho2):  # NaN: not computed yet
        if missing is not None and not obs.ssb_iq.size:
            return missing, missing
        obs.early_cell_rho2, obs.late_cell_rho2 = dsp.mistimed_cell_rho2(obs.ssb_iq, obs.ssb_iq_start, obs.pci % 3)
    return obs.early_cell_rho2, obs.late_cell_rho2


def band_excess(null_db: np.ndarray, cell_db: np.ndarray, floor: np.ndarray,
                n_bins: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(excess of the null REs over the floor against the cell, dB, -inf where
    there is none; its z; the null REs over the floor, dB) per SSB: ``null_db``
    the null REs' mean energy,
    ``cell_db`` the cell's power per RE (dB, the grid's units), ``floor``
    dsp.band_floors_per_re (NaN: not measured -> excess -inf, z 0), ``n_bins``
    the bins it was taken from. float64 (m,)."""
    null = 10.0 ** (np.asarray(null_db, np.float64) / 10)
    fl = np.asarray(floor, np.float64)
    ok = np.isfinite(fl) & (fl > 0)
    fl = np.where(ok, fl, 1.0)
    sd = np.sqrt(1.0 / dsp.N_NULL_RES + dsp.BAND_FLOOR_REL_VAR / np.maximum(np.asarray(n_bins, np.float64), 1.0))
    z = np.where(ok, (null / fl - 1.0) / sd, 0.0)
    ex = null - fl
    isr = np.where(ok & (ex > 0), 10 * np.log10(np.maximum(ex, 1e-300)) - np.asarray(cell_db, np.float64), -np.inf)
    over_db = np.where(ok, 10 * np.log10(np.maximum(null / fl, 1e-30)), -np.inf)
    return isr, z, over_db


def observation_band_excess(obs: list[SSBObservation], feats: np.ndarray, f_db: Optional[np.ndarray] = None,
                            all_readings: bool = True) -> tuple[np.ndarray, ...]:
    """:func:`band_excess` of observed SSBs with their feature vectors (and
    :func:`epnre_abs_db_batch` of their grids, when at hand); the null REs read
    with the FFT windows earlier in the CP where that is lower (a co-channel cell
    arriving early spills into the later windows: receiver.NULL_EARLY_SAMPLES);
    a fourth array: the standard reading over that lower one, dB (BAND_ISI_MAX_DB);
    a fifth and sixth: the z and dB over the floor of that reading against the
    floor near the SSB (SSBObservation.band_floor_near_per_re; BAND_EXCESS_WIDE_ISR_DB).

    With ``all_readings`` False the earlier readings (two more grids of two
    symbols, ~15 % of an SSB's receiver work) are taken only for the SSBs whose
    standard reading already passes BAND_EXCESS_Z and BAND_EXCESS_MIN_DB -- the lower
    reading can only lower the excess, so the band-excess rule decides the same --
    and the others keep the standard reading, their fourth value +inf."""
    if not obs:
        return tuple(np.zeros(0) for _ in range(6))
    if f_db is None:
        f_db = epnre_abs_db_batch(np.stack([o.grid for o in obs]))
    p_db = feats[:, _SNR_IDX].astype(np.float64) + f_db  # the cell's power |H|^2
    floors, bins = [o.band_floor_per_re for o in obs], [o.band_floor_bins for o in obs]
    if all_readings:
        idx = np.arange(len(obs))
    else:
        _, z0, over0 = band_excess(f_db, p_db, floors, bins)
        idx = np.flatnonzero((z0 >= BAND_EXCESS_Z) & (over0 >= BAND_EXCESS_MIN_DB))
    spill_db = np.full(len(obs), np.inf)
    null_db = np.array(f_db, np.float64)
    if idx.size:
        early = null_early_readings([obs[i] for i in idx])
        spill_db[idx] = f_db[idx] - 10 * np.log10(np.maximum(early, 1e-30))
        null_db[idx] = f_db[idx] - np.maximum(spill_db[idx], 0.0)  # the lower reading
    _, z_near, over_near = band_excess(null_db, p_db, [o.band_floor_near_per_re for o in obs],
                                       [o.band_floor_near_bins for o in obs])
    return (*band_excess(null_db, p_db, floors, bins), spill_db, z_near, over_near)


# At a calibrated site the cell's own leakage into its null REs is known: the clean SSBs'
# band excess (AUX_BAND_ISR, BAND_ISR_NONE_DB where the null REs stand at the floor) is kept
# in the baseline, and there the rule's level is BAND_EXCESS_SITE_MARGIN_DB over its largest,
# at least BAND_EXCESS_SITE_MIN_DB -- above BAND_EXCESS_ISR_DB too where the site's own SSBs
# stand higher: a co-channel cell arriving more than a CP late (or 2 CPs early) spills into the
# null REs at -20...-8 dB, which no reading of them avoids (simulated, 3-6 dB under the cell
# 2-3 CP late or early: 20-23 and 2-12 of 25 clean SSBs over -24 dB, uncalibrated, before the
# search for such a cell, MISTIMED_CELL_RHO2, which holds in both modes). The
# excess is relative to the cell and to the floor both, so a gain or noise floor that moves
# between recordings leaves it; the leakage is a fixed fraction of the cell (EVM). The margin
# 6 -> 4 dB in stop 52: calibrated Pd at SJNR 15-30 dB 1577 -> 1590 of 1809 on the evaluation
# split (reactive 144 -> 154), 331 -> 332 of 718 on the field captures, clean SSBs jammed
# 7/2692 and 16/903 unchanged (bench/eval_split.py); receiver_eval.py loaded --sites 8 and
# cells --sites 16 --extra 1 the same.
AUX_BAND_ISR = "band_isr_db"
BAND_ISR_NONE_DB = -60.0
BAND_EXCESS_SITE_MIN_DB = -34.0
BAND_EXCESS_SITE_MARGIN_DB = 4.0


def band_threshold_db(base: Optional[ConfigBaseline]) -> float:
    """The band-excess rule's level (dB against the cell) with ``base`` (or without)."""
    st = base.stats.get(AUX_BAND_ISR) if base is not None else None
    if st is None:
        return BAND_EXCESS_ISR_DB
    return max(BAND_EXCESS_SITE_MIN_DB, st.max + BAND_EXCESS_SITE_MARGIN_DB)


def _site_band_level(base: Optional[ConfigBaseline]) -> bool:
    """Whether ``base`` holds its site's own band-excess level (AUX_BAND_ISR)."""
    return base is not None and AUX_BAND_ISR in base.stats


def _shape_z(base: Optional[ConfigBaseline], shape_db: float, shape_rel_db: float = float("inf")) -> Optional[float]:
    """The PSS shape statistic's z over the site's clean level (None without a
    baseline, or one calibrated before it was kept, and where the statistic
    against the cell, ``shape_rel_db``, stands less than PSS_SHAPE_REL_MIN_DB
    over the largest the calibration saw); its spread at least
    PSS_SHAPE_MIN_SPREAD_DB, or PSS_SHAPE_NB_MIN_SPREAD_DB where the baseline
    lists a neighbour with the serving cell's N_ID2."""
    st = base.stats.get(AUX_PSS_SHAPE) if base is not None else None
    if st is None:
        return None
    rel = base.stats.get(AUX_PSS_SHAPE_REL)
    if rel is not None and not shape_rel_db - rel.max >= PSS_SHAPE_REL_MIN_DB:
        return None
    return (shape_db - st.median) / max(st.spread, PSS_SHAPE_NB_MIN_SPREAD_DB if base.same_nid2_neighbour
                                        else PSS_SHAPE_MIN_SPREAD_DB)


# Interference step (both modes, within one stream). A receiver's gain and noise floor hold
# still over a recording or a live stream (they differ from one to the next: no absolute level
# is assumed); a jammer that comes on during it raises the SSB's interference -- the energy
# per RE of its null REs, or the residual on its SSS REs (file units; the null REs lie in the
# PSS and SSS symbols, the SSS REs in the SSB's middle: PDSCH that a scheduler lets overlap the
# SSB's edge in its PBCH symbols lands on neither -- measured over all REs, such traffic
# switching on at -3 dB made 27 of 40 clean SSBs "jammed" at 35 dB SNR; overlapping the PSS
# symbol's edge it would land on null REs) -- while the cell's own power (its fitted |H|^2)
# stays. Uncalibrated, the model cannot tell such an SSB from a weaker cell's (a barrage at
# SJNR 0 dB under a 20 dB cell reads as a 0 dB cell: bench/daemon_tcp.py raised no alert),
# nor a fake SSB of another PCI under the cell from a co-channel neighbour's; against the
# same cell's SSB index's last STEP_WINDOW SSBs scored clean (at least STEP_MIN_SSBS of them)
# a rise of STEP_DB in either, the cell within STEP_CELL_TOL_DB of its level, is jammed
# (record "interference_step_db"). A fade lowers the cell and leaves the noise; a gain change
# moves both; a jammer on from the first sample leaves no clean history (calibrate the site).
# Under a jammer as loud as the cell or louder (its PSS lost: tracking scores where the flywheel
# puts the SSB) the cell's fitted power is a difference of two noisy terms and reads anywhere
# from far below its level to a little above it (a barrage 10 dB over a 22 dB cell: -24...+2 dB
# from it, half of the SSBs outside the tolerance, which were then scored clean and entered the
# history); there a null-RE rise of STEP_DB with the cell's SNR over those null REs fallen by
# STEP_SNR_FALL_DB is jammed as well: a gain change moves both and leaves the SNR, a fade leaves
# the null REs.
# The step is large: at high SNR under fast fading the null REs hold the cell's own leakage,
# which moves with the channel (10 clean 600 ms streams, TDL fading 34-189 Hz, traffic,
# neighbours, SNR 15-38 dB: rises up to 7.0 dB, at 38 dB SNR and 105 Hz), and an
# unsynchronised neighbour's traffic there moves with its load.
STEP_DB = 12.0
STEP_CELL_TOL_DB = 3.0
STEP_SNR_FALL_DB = STEP_DB + STEP_CELL_TOL_DB
STEP_WINDOW = 64
STEP_MIN_SSBS = 8
# A tracked cell whose PSS is lost on every slot and whose search does not find it leaves
# SSB windows that bring no more energy than its SSBs did (receiver.QUIET_LOSS_RATIO): at a
# fixed gain the cell went off the air (its null REs at the noise they held), under an AGC a
# jammer hides it (the AGC holds the band where the clean one was: the null REs rise by what
# the jammer brings over the noise, less the AGC's cut) -- or, under an AGC, the cell went off
# the air and the AGC raised the noise, which no window can tell from that. Such an SSB is
# jammed where its null REs stand HIDDEN_NULL_RISE_DB over the same SSB index's in the
# stream's clean history (at least STEP_MIN_SSBS of them; record "cell_hidden_db"), else not
# scored (HIDDEN_QUIET_REASON). (The interference-step rule's STEP_DB allows for the cell's
# own leakage under fast fading; with the cell not found there is none of that to allow for.)
HIDDEN_NULL_RISE_DB = 3.0
HIDDEN_QUIET_REASON = ("no PSS, no energy beyond the cell's own and its null REs at their clean level, and the "
                       "cell not found by a search: the cell off the air")
_RES_SSS_IDX = FEATURE_NAMES.index("res_sss_rel_db")

# PBCH-symbol rule (both modes). Symbols 1 and 3 of the SSB carry only the PBCH and its DMRS
# (TS 38.211 7.4.3.1): no null REs, so a jammer gated to them -- one that denies the MIB and
# leaves the PSS and SSS alone -- never reaches the EPNRE, and the model, which never saw one,
# called 60 % of such SSBs clean uncalibrated at 2 dB SIR on those symbols (scratch probe
# proto_jam.py: 6 sites, SNR 20-35 dB, 69 of 116 jammed at 5 dB SIR over the SSB). The
# interference there less that on symbols 0 and 2 is, for a gated white jammer, its JNR on the
# PBCH symbols; on anything else on air with the cell it is near 0 or negative: noise, the
# cell's own leakage and a co-timed neighbour are alike on all four symbols, a cell a symbol
# early or late puts its PSS, SSS or PBCH on symbol 0 or 2 too. Jammed when the lower of
# symbols 1 and 3 stands PBCH_SYMBOL_EXCESS_DB over the higher of 0 and 2 and at least
# PBCH_SYMBOL_MIN_ISR_DB against the cell's own power (in the evaluation split's 2693 clean
# SSBs the excess is at most 10.4 dB, at -20 dB against the cell -- an edge collision on a
# TDL-E channel at 38 dB SNR -- and at most 7.1 dB above -15 dB; the real captures: -0.7 dB).
# Record "pbch_symbol_excess_db" (the excess, dB).
PBCH_SYMBOL_EXCESS_DB = 12.0
PBCH_SYMBOL_MIN_ISR_DB = -15.0
# At a calibrated site the level is the site's own where its clean SSBs stand near it: the
# calibration's excesses are kept in the baseline (AUX_PBCH_EXCESS), and the rule's level is
# PBCH_EXCESS_SITE_MARGIN_DB over their largest, never under PBCH_SYMBOL_EXCESS_DB. What puts a
# clean site there: a co-channel cell off the serving cell's timing by a few symbols (an
# unsynchronised neighbour, and its traffic around its SSB), whose SSB lands on the serving
# PBCH symbols and not on the PSS and SSS ones -- measured on the real captures, cyberx-n78-pci1
# with amarisoft-n78-pci500's SSB 3 symbols late and 10.5 dB under it: 19.4 dB, every SSB.
AUX_PBCH_EXCESS = "pbch_excess_db"
PBCH_EXCESS_SITE_MARGIN_DB = 6.0
_SYM_IDX = [FEATURE_NAMES.index(f"sym{l}_int_rel_db") for l in range(4)]


# Null-RE rise at a calibrated site. The 130 null REs carry no cell's signal (TS 38.211 §7.4.3.1):
# a co-timed neighbour -- in a synchronised network, every cell on the raster point -- puts its
# SSB on the serving SSB's occupied REs and leaves them empty too, so their energy against the
# cell's own power is what the site's calibration saw, give or take the floor's drift
# (NOISE_FLOOR_DRIFT_DB) and a fade of the cell (the fade guard). The model, trained with one
# neighbour at most, cancelled, reads a second uncancelled one on the occupied REs and misses
# jammers there (receiver_eval.py cells, three cells: a quarter of the missed jammers at JNR
# ~7 dB had their null REs 6-8 dB over the site's level). A calibrated SSB whose null REs
# stand NULL_RISE_DB over the site's clean median (2 dB over the drift the calibrated mode takes
# as clean), NULL_RISE_Z of its spreads, is jammed; the fade guard still withdraws it where the
# cell faded and the floor did not move. Record "null_rise_db" (the rise, dB). 6 -> 5 dB in
# stop 52: calibrated Pd at SJNR 15-30 dB 1567 -> 1577 of 1809 on the evaluation split (barrage
# 189 -> 194, SSB-band noise 88 -> 92), 319 -> 331 of 718 on the field captures (barrage 29 ->
# 41), clean SSBs jammed 7/2692 and 16/903 unchanged (bench/eval_split.py); a floor moved up to
# +3 dB still none of 367 (receiver_eval.py drift --model default), +4 dB 7.4 -> 7.9 %.
NULL_RISE_DB = 5.0
NULL_RISE_Z = 5.0
_NULL_RISE_IDX = FEATURE_NAMES.index("site_epnre_rel_db")
_SYM_SPREAD_IDX = FEATURE_NAMES.index("sym_spread_db")
_NULL_RISE_Z_IDX = FEATURE_NAMES.index("site_z_epnre_rel_db")


def pbch_threshold_db(base: Optional[ConfigBaseline]) -> float:
    """The PBCH-symbol rule's level (dB of excess) with ``base`` (or without)."""
    st = base.stats.get(AUX_PBCH_EXCESS) if base is not None else None
    if st is None:
        return PBCH_SYMBOL_EXCESS_DB
    return max(PBCH_SYMBOL_EXCESS_DB, st.max + PBCH_EXCESS_SITE_MARGIN_DB)


def pbch_symbol_excess_db(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(excess, level), dB, float64 (N,), of N SSBs' features (N, N_FEATURES): the
    lower of the interference on symbols 1 and 3 (PBCH only) over the higher of
    symbols 0 and 2 (PSS, SSS and the null REs), and that lower reading against the
    cell's own power."""
    s = np.asarray(feats, np.float64)[:, _SYM_IDX]
    low = np.minimum(s[:, 1], s[:, 3])
    return low - np.maximum(s[:, 0], s[:, 2]), low


class _History:
    """The last ``capacity`` rows of ``width`` values (float64), kept in a ring,
    and their per-column medians: each column's finite values kept sorted (one
    insertion and one removal per row), so that a median costs no sort."""

    __slots__ = ("_ring", "_next", "_cap", "_sorted", "_nans")

    def __init__(self, capacity: int, width: int):
        self._ring: list[tuple[float, ...]] = []
        self._next = 0  # the oldest row once the ring is full
        self._cap = capacity
        self._sorted: list[list[float]] = [[] for _ in range(width)]
        self._nans = [0] * width

    def __len__(self) -> int:
        return len(self._ring)

    def append(self, row) -> None:
        row = tuple(float(v) for v in row)
        if len(self._ring) < self._cap:
            self._ring.append(row)
        else:
            old = self._ring[self._next]
            self._ring[self._next] = row
            self._next = (self._next + 1) % self._cap
            for k, v in enumerate(old):
                if v != v:
                    self._nans[k] -= 1
                else:
                    col = self._sorted[k]
                    del col[bisect.bisect_left(col, v)]
        for k, v in enumerate(row):
            if v != v:
                self._nans[k] += 1
            else:
                bisect.insort(self._sorted[k], v)

    def medians(self) -> list[float]:
        """np.median(rows, axis=0) (NaN in a column: NaN)."""
        n = len(self._ring)
        return [math.nan if nan else 0.5 * (col[(n - 1) // 2] + col[n // 2])
                for col, nan in zip(self._sorted, self._nans)]


class ScoringPipeline:
    def __init__(self, sample_rate_hz: float, center_freq_hz: Optional[float], datatype: str,
                 *, receiver_config: ReceiverConfig = ReceiverConfig(), detector: Optional[Detector] = None,
                 baseline: Optional[SiteBaseline] = None, label: str = "", converter=None):
        self.receiver = Receiver(sample_rate_hz, center_freq_hz, receiver_config, converter=converter)
        self.receiver.min_clip_rail = 64 * iqio.lsb(datatype)  # a rail of a few LSB is a weak signal's peak
        self.detector = detector or ClassicalDetector()
        self._user_pcis = receiver_config.preferred_pcis
        self.datatype = datatype
        self.label = label
        self.center_freq_hz = center_freq_hz
        self.baseline = baseline  # (after the datatype and centre: it sets the no-cell watch, _watch)
        # SSBs (and failed cell searches' blocks) before this stream sample are scored without the
        # baseline (a baseline learnt over the stream's quiet period applies from the period's end:
        # its own SSBs that the receiver hands over a push later, for the look-ahead of their
        # windows, stay uncalibrated)
        self.baseline_from_sample = 0
        self.stats = {"ssbs": 0, "jammed": 0, "invalid": 0, "flywheel": 0, "faded": 0, "clipped": 0,
                      "no_cell_jammed": 0, "mistimed_cell": 0, "site_neighbour": 0,
                      "neighbour_cancelled": 0, "gain_step": 0, "clip_overload": 0, "site_classical": 0,
                      "band_excess_offtime": 0, "hidden_jammed": 0, "hidden_quiet": 0}
        self._gain_steps: collections.deque = collections.deque(maxlen=GAIN_STEP_WINDOW)  # excused or not, per SSB
        self._loud_symbols: dict[tuple, tuple] = {}  # (pci, scs, ssb index) -> its last loud symbols (band excess)
        self._levels: dict[tuple, list] = {}  # (scs, ssb index) -> recent (power dB, floor dB) (fading guard)
        # (pci, scs, ssb index) -> (power, null-RE energy, SSS residual; dB) of its last SSBs scored
        # clean (STEP_DB)
        self._clean_levels: dict[tuple, _History] = {}
        # (pci, scs, calibrated) -> DNN-1's logits of its last SSBs (a model with DNN-2's stream
        # context reads their mean: model.context_vector)
        self._context: dict[tuple, collections.deque] = {}
        # called with each push's observations before they are scored (the daemon's baseline
        # learning, detector/learn.py); it must not change them
        self.observation_tap: Optional[Callable[[list[SSBObservation]], None]] = None

    @property
    def baseline(self) -> Optional[SiteBaseline]:
        return self._baseline

    @baseline.setter
    def baseline(self, baseline: Optional[SiteBaseline]) -> None:
        """A site baseline also tells the cell search which cells are the site's
        own (locked onto whenever found, ReceiverConfig.preferred_pcis) unless
        the receiver configuration names them."""
        self._baseline = baseline
        if not self._user_pcis:
            pcis = sorted({p for c in baseline.configs.values() for p in c.pcis}) if baseline is not None else []
            self.receiver.cfg = dataclasses.replace(self.receiver.cfg, preferred_pcis=tuple(pcis))
        self._site_band()
        self._watch()

    def retune(self, center_freq_hz: Optional[float]) -> None:
        """The capture centre from here on (a recording's next capture segment,
        retuned): the cell search's raster, the records' SSB frequency and where the
        site's cell is watched for (:meth:`_watch`). The receiver is reset by the
        caller (the samples before and after are not one stream)."""
        self.center_freq_hz = center_freq_hz
        self.receiver.center_freq_hz = center_freq_hz
        self._site_band()
        self._watch()

    def _site_ssb(self, min_snr_db: Optional[float] = None) -> Optional[tuple[ConfigBaseline, float]]:
        """(The baseline's configuration for this sample rate -- this datatype first, then the
        most SSBs, as SiteBaseline.lookup -- that kept where its cell's SSB was, and that SSB's
        offset from this stream's centre: its SSB frequency, or its offset without a centre
        frequency); with ``min_snr_db``, among those that saw their cell at that SNR or more.
        None without one, or where the SSB is not inside this recording's band."""
        if self._baseline is None:
            return None
        cands = [c for c in self._baseline.configs.values()
                 if c.sample_rate_hz == self.receiver.fs
                 and (min_snr_db is None
                      or ("snr_est_db" in c.stats and c.stats["snr_est_db"].median >= min_snr_db))
                 and (c.ssb_freq_hz is not None or c.ssb_offset_hz is not None)]
        if not cands:
            return None
        cb = max(cands, key=lambda c: (c.datatype == self.datatype, c.n_ssb))
        off = (cb.ssb_freq_hz - self.center_freq_hz if cb.ssb_freq_hz is not None and self.center_freq_hz
               else cb.ssb_offset_hz)
        if off is None or abs(off) + 120 * cb.scs_khz * 1e3 > self.receiver.fs / 2:
            return None  # the site's SSB is not in this recording's band
        return cb, float(off)

    def _site_band(self) -> None:
        """The band where the baseline saw its cell's SSB (:meth:`_site_ssb`) for the cell
        search's last look (ReceiverConfig.site_ssb_offset_hz), None without one."""
        site = self._site_ssb()
        off = site[1] if site is not None else None
        if off != self.receiver.cfg.site_ssb_offset_hz:
            self.receiver.cfg = dataclasses.replace(self.receiver.cfg, site_ssb_offset_hz=off)

    def _watch(self) -> None:
        """Whether a cell search that finds no cell is a verdict (:meth:`_no_cell_records`):
        at a calibrated site whose baseline for this sample rate (this datatype first)
        saw its cell at NOCELL_MIN_CAL_SNR_DB or more, with its SSB inside this recording's band
        (its SSB frequency, or offset without a centre frequency)."""
        self._watch_base = None
        self.receiver.report_failed_searches = False
        site = self._site_ssb(NOCELL_MIN_CAL_SNR_DB)
        if site is None:
            return
        self._watch_base, self._watch_offset_hz = site
        self.receiver.report_failed_searches = True

    def _no_cell_records(self) -> list[dict]:
        """Records of the cell searches that found no cell at a calibrated site whose
        cell should be on air here (:meth:`_watch`): a jammer strong enough to hide
        the cell from the search gives "jammed", not silence. Absolute power cannot
        tell that from an outage (an AGC or another gain keeps a jammed band as loud
        as a clean one), so the reason says both; ``pci`` and ``ssb_index`` are
        null (no cell), ``sample`` is the search block's start: one record per
        block (~22 ms)."""
        blocks, self.receiver.unlocked_blocks = self.receiver.unlocked_blocks, []
        # (not the blocks before baseline_from_sample: scored without the baseline, as the SSBs are)
        blocks = [(a, b) for a, b in blocks if a >= self.baseline_from_sample]
        cb = self._watch_base
        if cb is None or not blocks:
            return []
        out = []
        snr = cb.stats["snr_est_db"].median
        for a, b in blocks:
            self.stats["no_cell_jammed"] += 1
            out.append({
                "file": self.label, "t": round(a / self.receiver.fs, 9), "sample": int(a), "pci": None,
                "ssb_index": None, "jammed": True, "score": 1.0, "stage": None, "valid": True,
                "mode": "calibrated", "detector": self.detector.name, "locked": False, "scs_khz": int(cb.scs_khz),
                "ssb_freq_hz": (self.center_freq_hz + self._watch_offset_hz) if self.center_freq_hz else None,
                "ssb_offset_hz": round(self._watch_offset_hz, 1), "no_cell": True, "block_samples": int(b - a),
                "reason": (f"the site's cell (PCI {','.join(map(str, cb.pcis))}, SNR {snr:.0f} dB at calibration) "
                           f"not found in {1e3 * (b - a) / self.receiver.fs:.1f} ms: a jammer hiding it, "
                           f"or the cell is off the air"),
            })
        return out

    def _base(self, scs_khz: int) -> Optional[ConfigBaseline]:
        if self.baseline is None:
            return None
        return self.baseline.lookup(scs_khz, self.receiver.fs, self.datatype)

    def record(self, obs: SSBObservation) -> dict:
        """The record of one observed SSB (:meth:`records` of one)."""
        return self.records([obs])[0]

    def records(self, obs: list[SSBObservation]) -> list[dict]:
        """The records of observed SSBs, in order: their features in one batch,
        then each SSB's verdict and record."""
        if not obs:
            return []
        site = [self._base(o.scs_khz) if o.sample >= self.baseline_from_sample else None for o in obs]
        # an SSB of a co-channel cell the site was calibrated beside, not of its own (the search
        # did not find the site's cell, or the calibration took the neighbour for it; or a cell
        # the calibration saw off the site's timing, of similar power, that this search found
        # first): the site's clean levels are another cell's, and cancelling "the neighbour"
        # would remove the SSB itself -- scored uncalibrated, its record marked
        beside = [b is not None and o.pci is not None and o.pci not in b.pcis and o.pci in b.known_cells
                  for b, o in zip(site, obs)]
        site = [None if nb else b for b, nb in zip(site, beside)]
        bases = [b.for_index(o.ssb_index) if b is not None else None for b, o in zip(site, obs)]  # (beam sweeps)
        aux: dict = {}
        feats = observation_features_batch(obs, bases, datatype=self.datatype, sample_rate_hz=self.receiver.fs,
                                           aux=aux)
        shape_rel = aux[AUX_PSS_SHAPE] + feats[:, _EPNRE_REL_IDX]
        shape_z = [_shape_z(b, float(v), float(r)) for b, v, r in zip(bases, aux[AUX_PSS_SHAPE], shape_rel)]
        nb_pss_rise = [_nb_pss_rise_db(b, o.pci, float(v)) for b, o, v in zip(bases, obs, aux[AUX_NB_PSS])]
        f_db = _epnre_db(aux[AUX_NULL_POWER])  # (the feature batch measured the null REs)
        p_db = feats[:, _SNR_IDX].astype(np.float64) + f_db  # the cell's power |H|^2 (S / EPNRE x EPNRE)
        bx_db, bx_z, bx_over, bx_spill, bx_z_near, bx_over_near = observation_band_excess(obs, feats, f_db,
                                                                                         all_readings=False)
        pbch_x, pbch_level = pbch_symbol_excess_db(feats)
        out = []
        for o, f, b, sb, p, fl, z, bx, bz, bo, spill, bzn, bon, nb, px, plevel, rise in zip(
                obs, feats, bases, site, p_db, f_db, shape_z, bx_db, bx_z, bx_over, bx_spill, bx_z_near,
                bx_over_near, beside, pbch_x, pbch_level, nb_pss_rise):
            ctx, hist = self._context_of(o, b)
            rec = self._record(o, f, b, z, rise, ctx)
            if hist is not None:  # (the SSB joins its history: DNN-1's logit of its features, as scored)
                hist.append(self.detector.last_a1)
            if o.valid and o.cell_hidden and not self._hidden_verdict(rec, (o.pci, o.scs_khz, o.ssb_index), float(fl)):
                out.append(rec)  # (not scored: no rule looks at it, nor does it enter a history)
                continue
            if rec["jammed"] and b is None and not rec.get("unknown_cell"):
                self._neighbour_guard(rec, o, ctx)
            if nb:
                rec["site_neighbour"] = True
                self.stats["site_neighbour"] += 1
            if o.valid and not rec["jammed"] and bz >= BAND_EXCESS_Z and bo >= BAND_EXCESS_MIN_DB \
                    and bx >= band_threshold_db(b) and abs(spill) < BAND_ISI_MAX_DB \
                    and (bx >= BAND_EXCESS_WIDE_ISR_DB or _site_band_level(b)
                         or (bzn >= BAND_EXCESS_Z and bon >= BAND_EXCESS_MIN_DB)) \
                    and max(mistimed_readings(o)) < MISTIMED_CELL_RHO2:
                if b is None and o.offtime_cells:
                    # an off-timing co-channel cell puts its SSB on the null REs (see
                    # receiver.OFFTIME_MIN_SSB_SAMPLES); a site baseline knows its level
                    rec["offtime_cell"] = int(o.offtime_cells[0])
                    self.stats["band_excess_offtime"] += 1
                elif b is None and f[_SYM_SPREAD_IDX] >= BAND_EXCESS_SYM_SPREAD_DB and self._steady_symbols(o, f):
                    # on part of the SSB's symbols: such a cell the search did not see
                    rec["band_excess_partial"] = True
                    self.stats["band_excess_offtime"] += 1
                else:
                    # interference confined to the SSB's band (see BAND_EXCESS_ISR_DB)
                    self._jam(rec, band_excess_db=round(float(bx), 2))
            if o.valid and not rec["jammed"] and px >= pbch_threshold_db(b) and plevel >= PBCH_SYMBOL_MIN_ISR_DB \
                    and max(mistimed_readings(o)) < MISTIMED_CELL_RHO2:
                # interference on the PBCH's symbols alone (see PBCH_SYMBOL_EXCESS_DB)
                self._jam(rec, pbch_symbol_excess_db=round(float(px), 2))
            if o.valid and b is not None and not rec["jammed"] and f[_NULL_RISE_IDX] >= NULL_RISE_DB \
                    and f[_NULL_RISE_Z_IDX] >= NULL_RISE_Z:
                # the null REs over the site's clean level (see NULL_RISE_DB)
                self._jam(rec, null_rise_db=round(float(f[_NULL_RISE_IDX]), 2))
            if o.valid:
                self._gain_step(rec, o)
            if rec["valid"]:
                # one history per SSB index where the site's beams differ in level, else one
                key = (o.scs_khz, o.ssb_index if sb is not None and sb.per_index and not sb.per_index_sparse else None)
                self._fade_guard(rec, key, f, b, float(p), float(fl), ctx)
                self._interference_step(rec, (o.pci, o.scs_khz, o.ssb_index), float(p),
                                        (float(fl), float(p) + float(f[_RES_SSS_IDX])))
                self._clip_overload(rec, o)
            out.append(rec)
        return out

    def _steady_symbols(self, obs: SSBObservation, f: np.ndarray) -> bool:
        """Whether the symbols of SSB ``obs`` whose interference stands within half
        its spread of the loudest (features ``f``: sym<l>_int_rel_db) are those of
        the last such SSB at its index -- for the first, at the index
        SAME_PLACE_INDEX_STEP before or after it -- or there is none (see
        BAND_EXCESS_SYM_SPREAD_DB); remembers them."""
        sym = np.asarray(f[_SYM_IDX], np.float64)
        loud = tuple(np.flatnonzero(sym >= 0.5 * (sym.max() + sym.min())).tolist())
        key = (obs.pci, obs.scs_khz, obs.ssb_index)
        last = self._loud_symbols.get(key)
        if last is None and obs.ssb_index is not None:
            for j in (obs.ssb_index - SAME_PLACE_INDEX_STEP, obs.ssb_index + SAME_PLACE_INDEX_STEP):
                last = self._loud_symbols.get((obs.pci, obs.scs_khz, j))
                if last is not None:
                    break
        self._loud_symbols[key] = loud
        return last is None or last == loud

    def _within_site_clean(self, base: ConfigBaseline) -> bool:
        """Whether the model's last verdict (its stage's logit) stands no more than
        SITE_MISTIMED_LOGIT_MARGIN over what the site's clean SSBs reached at calibration
        (model.CLEAN_SCORE_QUANTILE; true where the baseline kept no scores of this model)."""
        from .model import logit

        clean = base.clean_scores.get(getattr(self.detector, "weights_sha256", None))
        if not clean:
            return True
        stage = getattr(self.detector, "last_stage", 1)
        z = logit(self.detector.last_p2 if stage == 2 else self.detector.last_p1)
        return z <= clean[1 if stage == 2 else 0] + SITE_MISTIMED_LOGIT_MARGIN

    def _context_of(self, obs: SSBObservation, base: Optional[ConfigBaseline]
                    ) -> tuple[Optional[np.ndarray], Optional[collections.deque]]:
        """(DNN-2's stream context of a valid SSB for a model that reads one -- model.context_vector
        of the DNN-1 logits of the SSBs of its cell and mode before it --, that history, which
        the SSB's own logit joins once scored); (None, None) otherwise."""
        k = getattr(self.detector, "context_ssbs", 0)
        if not k or not obs.valid:
            return None, None
        key = (obs.pci, obs.scs_khz, base is not None)
        hist = self._context.get(key)
        if hist is None:
            hist = self._context[key] = collections.deque(maxlen=k)
        return context_vector(np.array(hist, np.float64).reshape(-1, 1), k), hist

    def _score(self, feats: np.ndarray, base: Optional[ConfigBaseline], context: Optional[np.ndarray]):
        """The detector's (jammed, score, mode), with DNN-2's stream context where there is one."""
        if context is None:
            return self.detector.score(feats, base)
        return self.detector.score(feats, base, context)

    def _neighbour_guard(self, rec: dict, obs: SSBObservation, context: Optional[np.ndarray] = None) -> None:
        """Withdraw an uncalibrated jammed verdict that a co-channel cell the cell
        search saw explains (see the "Neighbour guard" note above FADE_WINDOW): the SSB scored again with that
        cell cancelled."""
        if rec.get("isr_db", 0.0) - rec.get("epnre_rel_db", 0.0) < NEIGHBOUR_GUARD_GAP_DB:
            return  # (the null REs as loud as the rest: not a cell's SSB -- and ~2 ms saved)
        cells = [c for c in obs.others if c != obs.pci]
        if not cells and NEIGHBOUR_GUARD_SSS:
            # none that the search's PSS thresholds kept: what this SSB's SSS symbol holds
            # once the cell is removed (a co-timed cell with its N_ID2, whose PSS merged with
            # its own; see NEIGHBOUR_GUARD_SSS)
            found = _residual_sss_cells(residual_batch(obs.grid[None], np.array([obs.pci], np.int64),
                                                       np.array([obs.ibar], np.int64))[0], obs.pci)
            cells = [p for _, p in sorted(found, reverse=True)]
        if not cells:
            return
        f = observation_features_batch([obs], [None], datatype=self.datatype, sample_rate_hz=self.receiver.fs,
                                       cancel=[int(cells[0])])[0]
        if not self._score(f, None, context)[0]:
            rec.update({"jammed": False, "neighbour_cancelled": int(cells[0])})
            self.stats["jammed"] -= 1
            self.stats["neighbour_cancelled"] += 1

    def _gain_step(self, rec: dict, obs: SSBObservation) -> None:
        """Replace a jammed verdict that a step of the receiver's gain inside the SSB
        explains by an invalid record (see GAIN_STEP_DB)."""
        excused = False
        if (rec["jammed"] and obs.pci is not None and not rec.get("unknown_cell")
                and sum(self._gain_steps) < GAIN_STEP_MAX):
            step = dmrs_gain_step_db(obs.grid, obs.pci, obs.ibar, GAIN_STEP_SIGMA)
            if abs(step) >= GAIN_STEP_DB:
                excused = True
                self._unscored(rec, GAIN_STEP_REASON, "gain_step", gain_step_db=round(step, 1))
        self._gain_steps.append(excused)

    def _unscored(self, rec: dict, reason: str, stat: str, **why) -> None:
        """Replace a record (a jammed one, or a clean one) by an invalid one (neither clean
        nor jammed) that says why (``reason``; ``why``: its record keys), counted under
        ``stat``; the rules' keys of a jammed verdict go."""
        for k in ("band_excess_db", "pbch_symbol_excess_db", "pss_sss_jump", "pss_shape_jump", "nb_pss_jump_db",
                  "null_rise_db", "interference_step_db"):
            rec.pop(k, None)
        if rec["jammed"]:
            self.stats["jammed"] -= 1
        rec.update({"jammed": None, "score": None, "stage": None, "valid": False, "reason": reason, **why})
        self.stats["invalid"] += 1
        self.stats[stat] += 1

    def _clip_overload(self, rec: dict, obs: SSBObservation) -> None:
        """Replace a jammed verdict that the ADC's clipping distortion explains (the
        energy per RE that the SSB's residual holds over all 960 REs, null REs
        included, under CLIP_DOMINANT_RATIO times it) by an invalid record (see
        CLIP_DOMINANT_RATIO)."""
        if not rec["jammed"] or obs.clip_floor_per_re <= 0 or rec.get("unknown_cell") or obs.pci is None:
            return
        resid, _, _, norm = residual_grid(obs.grid, obs.pci, obs.ibar)
        per_re = float(np.mean((resid.real ** 2 + resid.imag ** 2) / norm))
        ratio_db = 10 * math.log10(max(per_re, 1e-30) / obs.clip_floor_per_re)
        if ratio_db < 10 * math.log10(CLIP_DOMINANT_RATIO):
            self._unscored(rec, CLIP_OVERLOAD_REASON, "clip_overload", clip_overload_db=round(ratio_db, 1))

    def _jam(self, rec: dict, **why) -> None:
        """Turn a clean record jammed by a rule beside the model (``why``: the
        rule's record key and value), counted in the stats."""
        rec.update({"jammed": True, "score": 1.0, **why})
        self.stats["jammed"] += 1

    def _hidden_verdict(self, rec: dict, key: tuple, null_db: float) -> bool:
        """An SSB of a cell hidden from its search (SSBObservation.cell_hidden): jammed where
        its null REs (file units, dB) stand HIDDEN_NULL_RISE_DB over those of the same SSB
        index in the stream's clean history (record "cell_hidden_db": the rise), else not
        scored (False: an invalid record, HIDDEN_QUIET_REASON)."""
        hist = self._clean_levels.get(key)
        rise = null_db - hist.medians()[1] if hist is not None and len(hist) >= STEP_MIN_SSBS else None
        if rise is not None and rise >= HIDDEN_NULL_RISE_DB:
            if not rec["jammed"]:
                self._jam(rec, cell_hidden_db=round(rise, 2))
            else:
                rec["cell_hidden_db"] = round(rise, 2)
            self.stats["hidden_jammed"] += 1
            return True
        self._unscored(rec, HIDDEN_QUIET_REASON, "hidden_quiet")
        return False

    def _interference_step(self, rec: dict, key: tuple, p_db: float, levels: tuple[float, float]) -> None:
        """Call an SSB jammed whose null-RE energy or SSS residual (file units,
        dB: ``levels``) stands STEP_DB or more over that of the same cell's SSB
        index while the stream scored it clean, its own power within
        STEP_CELL_TOL_DB of theirs -- or its null REs that much over theirs and
        its SNR over them STEP_SNR_FALL_DB under theirs (see STEP_DB); then add
        it to that history if it is clean."""
        hist = self._clean_levels.get(key)
        if not rec["jammed"] and not rec.get("unknown_cell") and hist is not None and len(hist) >= STEP_MIN_SSBS:
            med = hist.medians()
            rise = max(lv - med[1 + k] for k, lv in enumerate(levels))
            cell = p_db - med[0]
            null_rise = levels[0] - med[1]
            if rise >= STEP_DB and (abs(cell) <= STEP_CELL_TOL_DB
                                    or (null_rise >= STEP_DB and null_rise - cell >= STEP_SNR_FALL_DB)):
                self._jam(rec, interference_step_db=round(rise, 2))
        if not rec["jammed"]:
            if hist is None:
                hist = self._clean_levels[key] = _History(STEP_WINDOW, 1 + len(levels))
            hist.append((p_db, *levels))

    def _fade_guard(self, rec: dict, key: tuple, feats: np.ndarray, base: Optional[ConfigBaseline], p_db: float,
                    floor_db: float, context: Optional[np.ndarray] = None) -> None:
        """Withdraw a calibrated jammed verdict that the SSB's own fade explains
        (see FADE_WINDOW), then add the SSB to the history ``key``."""
        hist = self._levels.setdefault(key, [])
        if rec["jammed"] and rec["mode"] == "calibrated" and not rec.get("unknown_cell") \
                and "band_excess_db" not in rec and "cell_hidden_db" not in rec and len(hist) >= FADE_MIN_HISTORY:
            h = np.asarray(hist)
            fade = float(np.median(h[:, 0])) - p_db
            rise = floor_db - float(np.median(h[:, 1]))
            if fade >= FADE_MIN_DB and abs(rise) <= FADE_FLOOR_TOL_DB \
                    and not self._score(fade_compensated(feats, fade, base.site()), base, context)[0]:
                rec["jammed"] = False
                rec["fade_db"] = round(fade, 2)
                self.stats["jammed"] -= 1
                self.stats["faded"] += 1
        hist.append((p_db, floor_db))
        if len(hist) > FADE_WINDOW:
            del hist[0]

    def _record(self, obs: SSBObservation, feats: np.ndarray, base: Optional[ConfigBaseline],
                shape_z: Optional[float] = None, nb_pss_rise: Optional[float] = None,
                context: Optional[np.ndarray] = None) -> dict:
        summary = raw_summary(feats)
        rec: dict = {
            "file": self.label,
            "t": round(obs.t_s, 9),
            "sample": int(obs.sample),
            "pci": int(obs.pci) if obs.pci is not None else None,
            "ssb_index": int(obs.ssb_index) if obs.ssb_index is not None else None,
        }
        name = self.detector.name
        if obs.valid:
            jammed, score, mode = self._score(feats, base, context)
            stage = getattr(self.detector, "last_stage", 1)
            rec.update({"jammed": bool(jammed), "score": round(float(score), 6), "stage": int(stage)})
            name = getattr(self.detector, "last_name", name)
            if name != self.detector.name:
                # a site the model cannot be calibrated to (model.DTDDNNDetector.site_falls_back)
                self.stats["site_classical"] += 1
            site_rho2 = site_mistimed_rho2(base)
            if jammed and base is None and obs.pci is not None:
                mistimed = max(mistimed_readings(obs))
                if mistimed >= MISTIMED_MODEL_RHO2 and _pss_only_db(feats) < MISTIMED_PSS_ONLY_DB:
                    # a co-channel cell well off the serving one's CP (see MISTIMED_MODEL_RHO2)
                    rec.update({"jammed": False, "mistimed_cell": round(mistimed, 3)})
                    self.stats["mistimed_cell"] += 1
            elif jammed and name == self.detector.name != SITE_FALLBACK.name and obs.pci is not None \
                    and site_rho2 is not None:
                mistimed = max(mistimed_readings(obs))
                if mistimed >= SITE_MISTIMED_FRACTION * site_rho2 and _pss_only_db(feats) < MISTIMED_PSS_ONLY_DB \
                        and self._within_site_clean(base):
                    # the site's own mistimed cell (see SITE_MISTIMED_RHO2): the classical detector's verdict
                    jammed, score, _ = SITE_FALLBACK.score(feats, base)
                    name = SITE_FALLBACK.name
                    rec.update({"jammed": bool(jammed), "score": round(float(score), 6), "stage": 1})
                    self.stats["site_classical"] += 1
                    if not jammed:  # (the record of a verdict withdrawn, as uncalibrated)
                        rec["mistimed_cell"] = round(mistimed, 3)
                        self.stats["mistimed_cell"] += 1
            if base is not None and obs.pci is not None and obs.pci not in base.known_cells:
                # a cell the site did not have while clean, loud enough to be the one
                # tracked: a fake SSB (spoofer) -- or a new cell: recalibrate then
                rec.update({"jammed": True, "score": 1.0, "unknown_cell": True})
            elif (base is not None and not rec["jammed"] and float(feats[_PSS_SSS_Z_IDX]) > PSS_SSS_JUMP_Z
                  and (not base.neighbours or float(feats[_PSS_SSS_DELTA_IDX]) >= PSS_SSS_JUMP_MIN_DB)):
                # the PSS's gain over the SSS's far off the site's own: a fake PSS on the cell's
                rec.update({"jammed": True, "score": 1.0, "pss_sss_jump": True})
            elif not rec["jammed"] and shape_z is not None and shape_z > PSS_SHAPE_JUMP_Z:
                # the PSS's channel unlike the SSS's and PBCH's, far beyond the site's own: a fake PSS
                rec.update({"jammed": True, "score": 1.0, "pss_shape_jump": True})
            elif not rec["jammed"] and nb_pss_rise is not None and nb_pss_rise >= NB_PSS_JUMP_DB:
                # the neighbour's PSS far over its SSS and PBCH: a fake PSS with its N_ID2
                rec.update({"jammed": True, "score": 1.0, "nb_pss_jump_db": round(nb_pss_rise, 2)})
        else:
            # NaN / all-zero input: neither clean nor jammed
            mode = "calibrated" if base is not None else "uncalibrated"
            rec.update({"jammed": None, "score": None, "stage": None})
        rec.update(
            {
                "valid": bool(obs.valid),
                "mode": mode,
                "detector": name,
                "locked": bool(obs.locked),
                "scs_khz": int(obs.scs_khz),
                "ssb_freq_hz": (self.center_freq_hz + self.receiver.offset_hz) if self.center_freq_hz else None,
                "ssb_offset_hz": round(self.receiver.offset_hz, 1),
                "cfo_hz": round(float(obs.cfo_hz), 1),
                "pss_peak": round(float(obs.pss_peak), 4),
                **{k: round(v, 3) for k, v in summary.items()},
            }
        )
        if obs.clip_fraction > 0:
            # ADC at its rail in this SSB's window: its distortion is removed as a known floor
            # (dsp.clip_distortion_power); heavy clipping still makes the verdict less sure
            rec["clipped"] = round(float(obs.clip_fraction), 6)
            self.stats["clipped"] += 1
        if not obs.valid:
            rec["reason"] = obs.reason
        self.stats["ssbs"] += 1
        self.stats["jammed"] += bool(rec["jammed"])
        self.stats["invalid"] += not obs.valid
        self.stats["flywheel"] += not obs.locked
        return rec

    def _with_no_cell(self, recs: list[dict]) -> list[dict]:
        extra = self._no_cell_records()
        return sorted(recs + extra, key=lambda r: r["sample"]) if extra else recs

    def _scored(self, obs: list[SSBObservation]) -> list[dict]:
        if self.observation_tap is not None and obs:
            self.observation_tap(obs)
        return self._with_no_cell(self.records(obs))

    def push(self, block: np.ndarray, start_sample: Optional[int] = None) -> list[dict]:
        return self._scored(self.receiver.push(block, start_sample))

    def push_blocks(self, blocks: list[np.ndarray], start_sample: Optional[int] = None) -> list[dict]:
        """:meth:`push` of consecutive blocks at once (Receiver.push_blocks)."""
        return self._scored(self.receiver.push_blocks(blocks, start_sample))

    def flush(self) -> list[dict]:
        return self._scored(self.receiver.flush())
