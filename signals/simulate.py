"""Capture simulator: NR carrier with SSB bursts, traffic, neighbour cells,
channel, jammer, receiver gain and quantisation, with per-SSB ground truth.

Power conventions (DESIGN.md §3): per-RE power after a unitary FFT over one
useful symbol. For every SSB the simulator measures, from the separate
components before they are summed,

- ``S``: mean power of the SSB's 830 occupied REs (PSS, SSS, PBCH, PBCH-DMRS)
  of the received serving-cell signal (after multipath),
- ``J``: mean power of the jammer over all 960 REs of the SSB (240
  subcarriers x 4 symbols),
- ``N``: the noise power per RE (thermal noise + quantisation noise),

and records ``snr_db = 10 log10(S / N)``, ``jnr_db = 10 log10(J / N)`` and
``sjnr_db = 10 log10(S / (J + N))``. An SSB counts as jammed when its JNR is at
least ``JAMMED_MIN_JNR_DB``; otherwise its ``sjnr_db`` and ``jammer`` are null.

The pure builder :func:`simulate_capture` returns arrays and truth; I/O lives
in :func:`write_capture` and the dataset loop in :func:`simulate_dataset`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from . import channel, jammers, nr
from .config import ConfigError, check_interval, check_range

JAMMED_MIN_JNR_DB = -10.0  # below this the jammer changes SJNR by < 0.5 dB: label clean
N_OCCUPIED_RE = nr.PSS_LENGTH + nr.SSS_LENGTH + nr.PBCH_N_SYMBOLS + nr.PBCH_DMRS_N_SYMBOLS  # 830

JAMMER_TYPES = (
    "barrage",
    "ssb_band_noise",
    "partial_band_noise",
    "cw",
    "multi_tone",
    "sweep",
    "pulsed_noise",
    "reactive",
    "spoofer",
)
DATATYPES = ("cf32_le", "ci16_le", "ci8", "cu8")
# integer ADC value -> complex64 file value (signals.iq conventions: ci16/32768, ci8/128, cu8 (b-127.5)/127.5)
FILE_SCALE = {"ci16_le": 32768.0, "ci8": 128.0, "cu8": 127.5}
TDL_PROFILES = ("TDL-A", "TDL-B", "TDL-C", "TDL-D", "TDL-E")

# Synchronization raster (TS 38.104 §5.4.3.1, Table 5.4.3.1-1)
GSCN_LOW_STEP_HZ = 1.2e6  # 0-3000 MHz: SS_REF = N*1200 kHz + M*50 kHz, M in {1, 3, 5}
GSCN_LOW_M_HZ = (50e3, 150e3, 250e3)
GSCN_MID_BASE_HZ = 3000e6  # 3000-24250 MHz: SS_REF = 3000 MHz + N*1.44 MHz
GSCN_MID_STEP_HZ = 1.44e6


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MultipathConfig:
    probability: float = 0.5
    profiles: tuple[str, ...] = TDL_PROFILES
    delay_spread_s: tuple[float, float] = (10e-9, 300e-9)
    doppler_hz: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self):
        check_range("multipath.probability", self.probability, 0, 1)
        for p in self.profiles:
            if p not in TDL_PROFILES:
                raise ConfigError(f"multipath.profiles: {p!r} unknown; allowed: {list(TDL_PROFILES)}")
        check_interval("multipath.delay_spread_s", self.delay_spread_s, 0, 5e-6)
        check_interval("multipath.doppler_hz", self.doppler_hz, 0, 2000)


@dataclass(frozen=True)
class TrafficConfig:
    probability: float = 0.7
    load: tuple[float, float] = (0.1, 0.9)  # fraction of (slot, RB) pairs scheduled
    power_db: tuple[float, float] = (-6.0, 0.0)  # per-RE power relative to the SSB's REs
    # 30 kHz SCS: the chance that the cell's traffic lies half a subcarrier off the SSB's grid --
    # an odd k_SSB, which TS 38.211 §7.4.3.1 counts in 15 kHz units for SS/PBCH block type A --
    # with the common RBs that overlap the SSB left empty in its symbols (drawn 1..23, odd)
    kssb_odd_probability: float = 0.0

    def __post_init__(self):
        check_range("traffic.probability", self.probability, 0, 1)
        check_interval("traffic.load", self.load, 0, 1)
        check_interval("traffic.power_db", self.power_db, -40, 20)
        check_range("traffic.kssb_odd_probability", self.kssb_odd_probability, 0, 1)


MAX_NEIGHBOURS = 4  # co-timed neighbour cells a capture may hold (NeighbourConfig.count)


@dataclass(frozen=True)
class NeighbourConfig:
    probability: float = 0.25
    power_db: tuple[float, float] = (-12.0, -3.0)  # relative to the serving cell's SSB
    # timing offset relative to the serving cell, in units of the short CP
    # (|offset| < 0.5 keeps a synchronised TDD network's neighbour inside the CP)
    offset_cp: tuple[float, float] = (-0.4, 0.4)
    cfo_hz: tuple[float, float] = (-300.0, 300.0)  # extra CFO of the neighbour
    # co-timed neighbour cells when there are any: each its own PCI, power, timing, CFO and
    # channel drawn from the ranges above (a synchronised network: the serving cell's SSB
    # under two or three others; (1, 1): one, the draws of the simulator before this option)
    count: tuple[int, int] = (1, 1)
    # a neighbour that carries traffic of its own (PDSCH on its other REs, drawn per cell):
    # an unsynchronised network's neighbour (FDD; offset_cp beyond the CP) lands it on the
    # serving SSB's null REs. 0 (the default): SSBs only, and no draw (the captures of a seed
    # stay those of before this option)
    traffic_probability: float = 0.0
    traffic_load: tuple[float, float] = (0.1, 0.9)  # fraction of (slot, RB) pairs scheduled
    traffic_power_db: tuple[float, float] = (-6.0, 0.0)  # per RE, relative to the neighbour's SSB REs

    def __post_init__(self):
        check_range("neighbour.probability", self.probability, 0, 1)
        check_range("neighbour.traffic_probability", self.traffic_probability, 0, 1)
        check_interval("neighbour.traffic_load", self.traffic_load, 0, 1)
        check_interval("neighbour.traffic_power_db", self.traffic_power_db, -40, 20)
        check_interval("neighbour.count", self.count, 1, MAX_NEIGHBOURS)
        if any(int(c) != c for c in self.count):
            raise ConfigError(f"neighbour.count={list(self.count)!r}: whole numbers of cells")
        check_interval("neighbour.power_db", self.power_db, -40, 10)
        check_interval("neighbour.offset_cp", self.offset_cp, -200, 200)
        check_interval("neighbour.cfo_hz", self.cfo_hz, -20000, 20000)


@dataclass(frozen=True)
class ImpairmentConfig:
    """Imperfections of real equipment (none by default: ``probability`` 0).

    A real gNB is not an ideal modulator and a real SDR not an ideal receiver;
    a detector trained on ideal captures calls their distortion "interference".
    With ``probability`` a capture gets, drawn per capture (the site's calibration
    companions keep the same equipment):

    - ``evm_db``: transmitter EVM, a multiplicative error on every occupied RE
      of the serving cell (SSB and traffic) with this power relative to the RE
      (TS 38.104 §6.5.2.2 allows 17.5 % = -15 dB for QPSK; real gNBs measure
      -30..-45 dB); it raises the residual on the SSB's REs but not its nulls;
    - ``phase_noise_linewidth_hz``: the transmitter oscillator as a Wiener phase
      process of this 3 dB linewidth (common phase error per symbol and
      inter-carrier leakage into the null REs);
    - ``iq_image_db``: receiver IQ imbalance, the mirror image of the captured
      band at this power relative to it (SDRs: -25..-50 dB), with probability
      ``iq_image_probability``; off-centre SSBs see the image of other traffic;
    - ``tx_floor_db``: with ``tx_floor_probability``, the transmitter's own noise
      floor (DAC, PA distortion) as white noise on every subcarrier of the
      carrier in each symbol the gNB transmits in, at this power relative to
      that symbol's mean occupied-RE power; unlike the EVM it fills the SSB's
      null REs too, but not the silent symbols around the SSB (one real gNB
      capture shows its null REs 6 dB over the empty symbols next to them at
      38 dB SNR: transmitter noise or phase-noise leakage, alike here);
    - ``dc_offset_db``: with ``dc_offset_probability``, the receiver's DC offset
      (a zero-IF SDR's LO leakage, an ADC offset): a constant of this power
      relative to the capture's mean power, random phase; on an SSB centred on
      the capture it sits on the SSB's middle subcarrier;
    - ``edge_collision_*``: traffic that overlaps the SSB's first or last 1..8
      subcarriers in its PBCH symbols (a scheduler that misses the SSB's RB
      offset k_SSB, TS 38.211 §7.4.3.1, as one real gNB capture shows), at
      ``edge_collision_power_db`` relative to the SSB's REs;
    - ``analog_filter_*``: with ``analog_filter_probability``, a receiver whose
      analog baseband filter ends short of Nyquist (an SDR's bandwidth set to
      the channel's, a HackRF's filter at 0.75 x its rate): an
      ANALOG_FILTER_ORDER Butterworth lowpass on I and Q at
      ``analog_filter_cutoff`` x Nyquist (raised where needed so that the SSB
      lies inside ANALOG_FILTER_SSB_SHARE of the passband), then the ADC's own
      white noise at ``analog_filter_adc_db`` relative to the receiver's noise:
      the band beyond the filter's skirt holds that alone. The truth's SNR and
      JNR count the filter's gain on the SSB and the ADC's noise.
    """

    probability: float = 0.0
    evm_db: tuple[float, float] = (-45.0, -30.0)
    phase_noise_linewidth_hz: tuple[float, float] = (0.0, 2.0)
    iq_image_probability: float = 0.5
    iq_image_db: tuple[float, float] = (-50.0, -25.0)
    edge_collision_probability: float = 0.0
    edge_collision_power_db: tuple[float, float] = (-15.0, -3.0)
    tx_floor_probability: float = 0.0
    tx_floor_db: tuple[float, float] = (-50.0, -30.0)
    dc_offset_probability: float = 0.0
    dc_offset_db: tuple[float, float] = (-50.0, -15.0)
    analog_filter_probability: float = 0.0
    analog_filter_cutoff: tuple[float, float] = (0.6, 0.9)  # x Nyquist (sample_rate_hz / 2)
    analog_filter_adc_db: tuple[float, float] = (-30.0, -10.0)

    def __post_init__(self):
        check_range("impairments.probability", self.probability, 0, 1)
        check_interval("impairments.evm_db", self.evm_db, -80, -10)
        check_interval("impairments.phase_noise_linewidth_hz", self.phase_noise_linewidth_hz, 0, 1000)
        check_range("impairments.iq_image_probability", self.iq_image_probability, 0, 1)
        check_interval("impairments.iq_image_db", self.iq_image_db, -80, -10)
        check_range("impairments.edge_collision_probability", self.edge_collision_probability, 0, 1)
        check_interval("impairments.edge_collision_power_db", self.edge_collision_power_db, -40, 10)
        check_range("impairments.tx_floor_probability", self.tx_floor_probability, 0, 1)
        check_interval("impairments.tx_floor_db", self.tx_floor_db, -80, -10)
        check_range("impairments.dc_offset_probability", self.dc_offset_probability, 0, 1)
        check_interval("impairments.dc_offset_db", self.dc_offset_db, -80, 0)
        check_range("impairments.analog_filter_probability", self.analog_filter_probability, 0, 1)
        check_interval("impairments.analog_filter_cutoff", self.analog_filter_cutoff, 0.1, 0.99)
        check_interval("impairments.analog_filter_adc_db", self.analog_filter_adc_db, -80, 0)


EDGE_COLLISION_MAX_SC = 8  # subcarriers at one SSB edge a colliding scheduler hits
ANALOG_FILTER_ORDER = 5  # the receiver's analog lowpass (impairments.analog_filter_*)
ANALOG_FILTER_SSB_SHARE = 0.9  # the SSB's outer subcarrier lies within this share of the filter's cutoff


@dataclass(frozen=True)
class JammingConfig:
    clean_fraction: float = 0.25  # fraction of captures with no jammer
    types: tuple[str, ...] = JAMMER_TYPES
    sjnr_db: tuple[float, float] = (-5.0, 30.0)
    # SJNR is drawn uniformly from [low_sjnr_below_db's share of] the range: with
    # probability low_fraction from [sjnr_db[0], low_sjnr_below_db], else from
    # [low_sjnr_below_db, sjnr_db[1]]. The weak-jammer region (15-30 dB, the
    # paper's "extra low jamming power") is where detection is hard; very strong
    # jamming (SJNR < 0 dB) is easy to detect and often destroys the PSS/SSS.
    low_sjnr_below_db: float = 5.0
    low_fraction: float = 0.15
    min_margin_db: float = 1.0  # SJNR is drawn at least this far below the SNR
    # A spoofer off the cell's timing: with this probability its fake PSS / SSBs are sent
    # spoofer_offset_cp (uniform, in normal CPs of the SSB's numerology, either sign) away from
    # the real SSBs instead of in time with them -- where an unsynchronised neighbour's SSBs
    # would be, which a model trained on such neighbours alone learns to let pass (stop 47:
    # README "Retraining"). 0: off, and nothing drawn for it (captures as before).
    spoofer_offtime_probability: float = 0.0
    spoofer_offset_cp: tuple[float, float] = (0.7, 3.0)

    def __post_init__(self):
        check_range("jamming.clean_fraction", self.clean_fraction, 0, 1)
        check_range("jamming.spoofer_offtime_probability", self.spoofer_offtime_probability, 0, 1)
        check_interval("jamming.spoofer_offset_cp", self.spoofer_offset_cp, 0, 20)
        for t in self.types:
            if t not in JAMMER_TYPES:
                raise ConfigError(f"jamming.types: {t!r} unknown; allowed: {list(JAMMER_TYPES)}")
        check_interval("jamming.sjnr_db", self.sjnr_db, -30, 60)
        check_range("jamming.low_sjnr_below_db", self.low_sjnr_below_db, self.sjnr_db[0], self.sjnr_db[1])
        check_range("jamming.low_fraction", self.low_fraction, 0, 1)
        check_range("jamming.min_margin_db", self.min_margin_db, 0.1, 30)


@dataclass(frozen=True)
class SimConfig:
    """Distribution of simulated captures (``configs/sim.yaml``)."""

    n_captures: int = 24
    duration_ms: float = 20.0
    scs_khz: tuple[int, ...] = (15, 30)
    # sample rates tried per SCS: those the SCS cannot hold are skipped
    sample_rates_hz: tuple[float, ...] = (7.68e6, 11.52e6, 15.36e6, 23.04e6, 30.72e6, 46.08e6)
    l_max: tuple[int, ...] = (4, 8)
    period_ms: tuple[float, ...] = (10.0, 20.0)
    all_ssbs_fraction: float = 0.5  # else a random non-empty subset of candidates is sent
    snr_db: tuple[float, float] = (5.0, 35.0)
    cfo_hz: tuple[float, float] = (-2000.0, 2000.0)
    centre_ssb_fraction: float = 0.25  # captures with the SSB at the capture centre
    datatypes: tuple[str, ...] = DATATYPES
    int_backoff_db: tuple[float, float] = (8.0, 20.0)  # loudest-symbol RMS below full scale (int types)
    cf32_gain_db: tuple[float, float] = (-40.0, 20.0)  # absolute level of float captures
    multipath: MultipathConfig = field(default_factory=MultipathConfig)
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    neighbour: NeighbourConfig = field(default_factory=NeighbourConfig)
    jamming: JammingConfig = field(default_factory=JammingConfig)
    impairments: ImpairmentConfig = field(default_factory=ImpairmentConfig)
    # clean companion captures of the same site (same parameters, other noise,
    # traffic and PBCH realisations), written as capNNNNN-calK: what an operator
    # would record to calibrate the site (ssbwatch calibrate)
    calibration_captures: int = 0
    # the companions' SNR less the capture's, drawn per companion: a site's noise
    # floor relative to its cell moves between recordings (another receiver gain
    # and so noise figure, AGC, temperature, the cell's path on another day), and
    # a detector calibrated on one recording must not call that jamming
    calibration_snr_drift_db: tuple[float, float] = (0.0, 0.0)
    # a gNB sweeping its SSBs over beams (FR1 massive MIMO): with beam_probability a site
    # receives each SSB index at its own gain, drawn in [-beam_spread_db, 0] with one index at 0
    beam_probability: float = 0.0
    beam_spread_db: float = 20.0

    def __post_init__(self):
        check_range("n_captures", self.n_captures, 1, 10**7)
        check_range("calibration_captures", self.calibration_captures, 0, 100)
        check_interval("calibration_snr_drift_db", self.calibration_snr_drift_db, -20, 20)
        check_range("duration_ms", self.duration_ms, 1.0, 1000.0)
        for s in self.scs_khz:
            if s not in nr.SSB_SCS_KHZ:
                raise ConfigError(f"scs_khz: {s} not an FR1 SSB SCS; allowed: {list(nr.SSB_SCS_KHZ)}")
        for r in self.sample_rates_hz:
            check_range("sample_rates_hz", r, 3.84e6, 245.76e6)
            if abs(r / nr.BASE_RATE_HZ - round(r / nr.BASE_RATE_HZ)) > 1e-9:
                raise ConfigError(f"sample_rates_hz: {r:g} is not a multiple of 1.92 Msps")
        if not any(_rate_ok(s, r) for s in self.scs_khz for r in self.sample_rates_hz):
            raise ConfigError("sample_rates_hz: no rate holds the SSB for any configured scs_khz")
        for l in self.l_max:
            if l not in (4, 8):
                raise ConfigError(f"l_max: {l} not in [4, 8]")
        for p in self.period_ms:
            if p not in (5.0, 10.0, 20.0, 40.0, 80.0, 160.0):
                raise ConfigError(f"period_ms: {p} not an SSB periodicity (5, 10, 20, 40, 80, 160)")
        check_range("all_ssbs_fraction", self.all_ssbs_fraction, 0, 1)
        check_interval("snr_db", self.snr_db, -20, 60)
        check_interval("cfo_hz", self.cfo_hz, -50e3, 50e3)
        check_range("centre_ssb_fraction", self.centre_ssb_fraction, 0, 1)
        for d in self.datatypes:
            if d not in DATATYPES:
                raise ConfigError(f"datatypes: {d!r} unknown; allowed: {list(DATATYPES)}")
        check_interval("int_backoff_db", self.int_backoff_db, 0, 60)
        check_interval("cf32_gain_db", self.cf32_gain_db, -100, 100)
        check_range("beam_probability", self.beam_probability, 0, 1)
        check_range("beam_spread_db", self.beam_spread_db, 0, 40)


def _rate_ok(scs_khz: int, rate_hz: float) -> bool:
    try:
        nr.Numerology.create(scs_khz, rate_hz)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------
# Capture parameters (drawn) and truth
# ---------------------------------------------------------------------------
@dataclass
class CaptureParams:
    """Everything that defines one capture; drawn by :func:`draw_params`."""

    scs_khz: int
    sample_rate_hz: float
    case: str
    l_max: int
    period_ms: float
    ssbs_sent: tuple[int, ...]
    pci: int
    n_samples: int
    start_sample: int  # capture start, in samples after a frame boundary
    ssb_freq_hz: float  # absolute SSB centre (on the GSCN raster)
    ssb_offset_bins: int  # SSB centre minus capture centre, in subcarriers
    snr_db: float
    cfo_hz: float
    datatype: str
    level_db: float  # int types: loudest-symbol RMS backoff below full scale; cf32: absolute gain
    timing_offset_samples: float = 0.0  # fractional part of the timing
    multipath: Optional[dict] = None  # {"profile", "delay_spread_s", "doppler_hz"}
    traffic: Optional[dict] = None  # {"load", "power_db"}
    neighbour: Optional[dict] = None  # {"pci", "power_db", "offset_samples", "cfo_hz"}
    more_neighbours: tuple[dict, ...] = ()  # further co-timed cells, each as ``neighbour`` (NeighbourConfig.count)
    jammer: Optional[dict] = None  # {"type", "sjnr_db", ...generator params}
    # {"evm_db", "phase_noise_linewidth_hz", "iq_image_db" (or None), "edge_collision" (or None:
    # {"side": "low"|"high", "n_sc", "power_db"})}; None: ideal equipment
    impairments: Optional[dict] = None
    beam_gains_db: Optional[tuple[float, ...]] = None  # (l_max,) gain of each SSB index (beam sweep)

    @property
    def numerology(self) -> nr.Numerology:
        return nr.Numerology.create(self.scs_khz, self.sample_rate_hz)

    @property
    def ssb_offset_hz(self) -> float:
        return self.ssb_offset_bins * self.scs_khz * 1e3

    @property
    def center_freq_hz(self) -> float:
        return self.ssb_freq_hz - self.ssb_offset_hz


@dataclass
class SSBTruth:
    sample_start: int  # CP start of the SSB's first symbol, in capture samples
    sample_count: int
    pci: int
    ssb_index: int
    snr_db: float
    jnr_db: Optional[float]
    sjnr_db: Optional[float]
    jammer: Optional[str]

    @property
    def jammed(self) -> bool:
        return self.jammer is not None


def gscn_raster_hz(l_max: int, rng: np.random.Generator) -> float:
    """A random SSB centre on the synchronization raster (TS 38.104 §5.4.3.1),
    in a band consistent with ``l_max`` (TS 38.213 §4.1: L_max = 4 at or below
    3 GHz, 8 above in FR1).

    L_max 4: band n3 / n41 region (1805-2690 MHz, SS_REF = N*1.2 MHz + M*50 kHz);
    L_max 8: band n78 (3300-3800 MHz, SS_REF = 3000 MHz + N*1.44 MHz).
    """
    if l_max == 4:
        n = int(rng.integers(int(1805e6 // GSCN_LOW_STEP_HZ) + 1, int(2690e6 // GSCN_LOW_STEP_HZ)))
        return n * GSCN_LOW_STEP_HZ + GSCN_LOW_M_HZ[int(rng.integers(0, 3))]
    n = int(rng.integers(int((3300e6 - GSCN_MID_BASE_HZ) // GSCN_MID_STEP_HZ) + 1, int((3800e6 - GSCN_MID_BASE_HZ) // GSCN_MID_STEP_HZ)))
    return GSCN_MID_BASE_HZ + n * GSCN_MID_STEP_HZ


def carrier_n_rb(num: nr.Numerology) -> int:
    """RBs of the simulated carrier: as many as fill ~90 % of the captured band
    (at most 273, TS 38.101-1 Table 5.3.2-1 maximum)."""
    return int(min(273, math.floor(0.9 * num.sample_rate_hz / (nr.N_SC_PER_RB * num.scs_hz))))


def _uniform(rng, pair) -> float:
    return float(rng.uniform(pair[0], pair[1])) if pair[1] > pair[0] else float(pair[0])


def _draw_neighbour_traffic(nb: dict, cfg: NeighbourConfig, rng: np.random.Generator) -> None:
    """A neighbour's own traffic, drawn only when the configuration allows any
    (``nb["traffic"]``: {"load", "power_db"}, in place)."""
    if cfg.traffic_probability > 0 and rng.random() < cfg.traffic_probability:
        nb["traffic"] = {"load": _uniform(rng, cfg.traffic_load), "power_db": _uniform(rng, cfg.traffic_power_db)}


def draw_params(cfg: SimConfig, rng: np.random.Generator, *, force_clean: bool | None = None, jammer_type: str | None = None) -> CaptureParams:
    """Draw one capture's parameters from the configured distribution."""
    combos = [(s, r) for s in cfg.scs_khz for r in cfg.sample_rates_hz if _rate_ok(s, r)]
    scs_khz, rate = combos[int(rng.integers(len(combos)))]
    num = nr.Numerology.create(scs_khz, rate)
    case = nr.default_case(scs_khz) if scs_khz == 15 else ("B", "C")[int(rng.integers(2))]
    l_max = int(rng.choice(cfg.l_max))
    period_ms = float(rng.choice(cfg.period_ms))
    if rng.random() < cfg.all_ssbs_fraction:
        sent = tuple(range(l_max))
    else:
        k = int(rng.integers(1, l_max + 1))
        sent = tuple(sorted(int(i) for i in rng.choice(l_max, size=k, replace=False)))
    n_samples = int(round(cfg.duration_ms * 1e-3 * rate))
    period_samples = int(round(period_ms * 1e-3 * rate))
    start = int(rng.integers(0, period_samples))
    # SSB placement inside the carrier (whole subcarriers; the carrier grid is centred on DC)
    n_rb = carrier_n_rb(num)
    max_off = n_rb * 6 - nr.SSB_N_SUBCARRIERS // 2
    if max_off <= 0 or rng.random() < cfg.centre_ssb_fraction:
        off_bins = 0
    else:
        off_bins = int(rng.integers(-max_off, max_off + 1))
    datatype = str(rng.choice(cfg.datatypes))
    level = _uniform(rng, cfg.int_backoff_db if datatype != "cf32_le" else cfg.cf32_gain_db)
    snr_db = _uniform(rng, cfg.snr_db)
    p = CaptureParams(
        scs_khz=scs_khz,
        sample_rate_hz=rate,
        case=case,
        l_max=l_max,
        period_ms=period_ms,
        ssbs_sent=sent,
        pci=int(rng.integers(nr.N_CELL_ID_COUNT)),
        n_samples=n_samples,
        start_sample=start,
        ssb_freq_hz=gscn_raster_hz(l_max, rng),
        ssb_offset_bins=off_bins,
        snr_db=snr_db,
        cfo_hz=_uniform(rng, cfg.cfo_hz),
        datatype=datatype,
        level_db=level,
        timing_offset_samples=float(rng.uniform(0, 1)),
    )
    if rng.random() < cfg.multipath.probability:
        p.multipath = {
            "profile": str(rng.choice(cfg.multipath.profiles)),
            "delay_spread_s": _uniform(rng, cfg.multipath.delay_spread_s),
            "doppler_hz": _uniform(rng, cfg.multipath.doppler_hz),
        }
    if rng.random() < cfg.traffic.probability:
        p.traffic = {"load": _uniform(rng, cfg.traffic.load), "power_db": _uniform(rng, cfg.traffic.power_db)}
        # (nothing drawn where it cannot be: the captures of a configuration without it stay as they were)
        if cfg.traffic.kssb_odd_probability > 0 and p.scs_khz == 30 and rng.random() < cfg.traffic.kssb_odd_probability:
            p.traffic["k_ssb"] = 2 * int(rng.integers(12)) + 1
    if rng.random() < cfg.neighbour.probability:
        npci = int(rng.integers(nr.N_CELL_ID_COUNT - 1))
        npci += npci >= p.pci  # any PCI but the serving one
        p.neighbour = {
            "pci": npci,
            "power_db": _uniform(rng, cfg.neighbour.power_db),
            "offset_samples": _uniform(rng, cfg.neighbour.offset_cp) * num.cp_short,
            "cfo_hz": _uniform(rng, cfg.neighbour.cfo_hz),
        }
        _draw_neighbour_traffic(p.neighbour, cfg.neighbour, rng)
        lo, hi = (int(c) for c in cfg.neighbour.count)
        if hi > 1:  # (no draw for one neighbour: the captures of a seed stay those of before)
            used = {p.pci, npci}
            more = []
            for _ in range(int(rng.integers(lo, hi + 1)) - 1):
                c = int(rng.integers(nr.N_CELL_ID_COUNT - len(used)))
                c = [x for x in range(nr.N_CELL_ID_COUNT) if x not in used][c]
                used.add(c)
                more.append({"pci": c, "power_db": _uniform(rng, cfg.neighbour.power_db),
                             "offset_samples": _uniform(rng, cfg.neighbour.offset_cp) * num.cp_short,
                             "cfo_hz": _uniform(rng, cfg.neighbour.cfo_hz)})
                _draw_neighbour_traffic(more[-1], cfg.neighbour, rng)
            p.more_neighbours = tuple(more)
    clean = (rng.random() < cfg.jamming.clean_fraction) if force_clean is None else force_clean
    if not clean and cfg.jamming.types:
        jt = jammer_type or str(rng.choice(cfg.jamming.types))
        jc = cfg.jamming
        if rng.random() < jc.low_fraction:
            lo, hi = jc.sjnr_db[0], jc.low_sjnr_below_db
        else:
            lo, hi = jc.low_sjnr_below_db, jc.sjnr_db[1]
        hi = min(hi, snr_db - jc.min_margin_db)
        lo = min(lo, hi)
        p.jammer = {"type": jt, "sjnr_db": _uniform(rng, (lo, hi))}
        if jt == "spoofer" and jc.spoofer_offtime_probability > 0 and rng.random() < jc.spoofer_offtime_probability:
            sign = 1.0 if rng.random() < 0.5 else -1.0
            p.jammer["offset_cp"] = sign * _uniform(rng, jc.spoofer_offset_cp)
    imp = cfg.impairments
    if imp.probability > 0 and rng.random() < imp.probability:  # (no draw at all when disabled)
        p.impairments = {
            "evm_db": _uniform(rng, imp.evm_db),
            "phase_noise_linewidth_hz": _uniform(rng, imp.phase_noise_linewidth_hz),
            "iq_image_db": _uniform(rng, imp.iq_image_db) if rng.random() < imp.iq_image_probability else None,
            "edge_collision": None,
        }
        if rng.random() < imp.edge_collision_probability:
            p.impairments["edge_collision"] = {
                "side": ("low", "high")[int(rng.integers(2))],
                "n_sc": int(rng.integers(1, EDGE_COLLISION_MAX_SC + 1)),
                "power_db": _uniform(rng, imp.edge_collision_power_db),
            }
        # drawn last (and only when enabled): the draws of a config without it are unchanged
        if imp.tx_floor_probability > 0 and rng.random() < imp.tx_floor_probability:
            p.impairments["tx_floor_db"] = _uniform(rng, imp.tx_floor_db)
        if imp.dc_offset_probability > 0 and rng.random() < imp.dc_offset_probability:
            p.impairments["dc_offset_db"] = _uniform(rng, imp.dc_offset_db)
        if imp.analog_filter_probability > 0 and rng.random() < imp.analog_filter_probability:
            cutoff = _uniform(rng, imp.analog_filter_cutoff)
            adc_db = _uniform(rng, imp.analog_filter_adc_db)
            # the SSB inside the passband: its outer subcarrier (+-120 SCS, the CFO's 2 kHz beside)
            need = ((abs(p.ssb_offset_hz) + nr.SSB_N_SUBCARRIERS / 2 * p.scs_khz * 1e3 + 2e3)
                    / (ANALOG_FILTER_SSB_SHARE * p.sample_rate_hz / 2))
            if need <= 0.99:
                p.impairments["analog_filter"] = {"cutoff": max(cutoff, need), "adc_db": adc_db}
    # drawn last (and only when enabled): the draws of a config without it are unchanged
    if cfg.beam_probability > 0 and rng.random() < cfg.beam_probability:
        g = -rng.uniform(0.0, cfg.beam_spread_db, l_max)
        g[int(rng.integers(l_max))] = 0.0
        p.beam_gains_db = tuple(float(v) for v in g)
    return p


# ---------------------------------------------------------------------------
# Waveform construction
# ---------------------------------------------------------------------------
@dataclass
class _Layout:
    """Symbol timing of the frame-aligned waveform that contains the capture."""

    num: nr.Numerology
    n_symbols: int
    starts: np.ndarray  # (n_symbols + 1,) CP start of each symbol from the frame start
    ssb_symbol: np.ndarray  # (n_ssb,) global symbol index of each SSB's first symbol
    ssb_index: np.ndarray  # (n_ssb,)
    ssb_half_frame: np.ndarray  # (n_ssb,) n_hf


def _layout(p: CaptureParams, margin_samples: int) -> _Layout:
    num = p.numerology
    end = p.start_sample + p.n_samples + margin_samples
    n_sf = int(math.ceil(end / num.samples_per_subframe)) + 1
    n_sym = n_sf * num.symbols_per_subframe
    starts = num.symbol_starts(n_sym)
    sym_per_half_frame = 5 * num.symbols_per_subframe  # 5 subframes per half frame
    first = nr.ssb_first_symbols(p.case, p.l_max)[list(p.ssbs_sent)]
    period_hf = int(round(p.period_ms / 5.0))
    n_hf_total = int(math.ceil(n_sym / sym_per_half_frame))
    bursts = np.arange(0, n_hf_total, period_hf)
    sym = (bursts[:, None] * sym_per_half_frame + first[None, :]).ravel()
    idx = np.tile(np.asarray(p.ssbs_sent), bursts.size)
    hf = np.repeat(bursts % 2, len(p.ssbs_sent))
    keep = sym + nr.SSB_N_SYMBOLS <= n_sym
    return _Layout(num, n_sym, starts, sym[keep], idx[keep], hf[keep])


def _cell_grid(
    lay: _Layout, pci: int, l_max: int, bins: np.ndarray, rng: np.random.Generator, components=("pss", "sss", "dmrs", "pbch")
) -> np.ndarray:
    """Full-band frequency grid (n_symbols, fft) holding one cell's SSBs."""
    grid = np.zeros((lay.n_symbols, lay.num.fft_size), dtype=np.complex64)
    for s, i, hf in zip(lay.ssb_symbol, lay.ssb_index, lay.ssb_half_frame):
        g = nr.ssb_grid(pci, int(i), l_max, half_frame=int(hf), rng=rng, components=components)
        grid[s : s + nr.SSB_N_SYMBOLS][:, bins] = g
    return grid


def _carrier_bins(n_rb: int, fft: int) -> np.ndarray:
    """FFT bins (numpy order) of the carrier's n_rb RBs, centred on 0 Hz."""
    return (np.arange(n_rb * nr.N_SC_PER_RB) - n_rb * nr.N_SC_PER_RB // 2) % fft


def _add_traffic(grid: np.ndarray, lay: _Layout, bins: np.ndarray, n_rb: int, load: float, power_db: float, rng) -> None:
    """Random QPSK/16QAM PDSCH-like REs on scheduled (slot, RB) pairs, never on
    the SSB's own REs (the SSB's 20 RBs in its 4 symbols)."""
    fft = lay.num.fft_size
    n_slots = lay.n_symbols // nr.SYMBOLS_PER_SLOT
    sched = rng.random((n_slots, n_rb)) < load  # (slot, RB)
    re_on = np.repeat(np.repeat(sched, nr.SYMBOLS_PER_SLOT, axis=0), nr.N_SC_PER_RB, axis=1)  # (sym, n_rb*12)
    carrier_bins = _carrier_bins(n_rb, fft)
    full = np.zeros((lay.n_symbols, fft), dtype=bool)
    full[: re_on.shape[0]][:, carrier_bins] = re_on
    for s in lay.ssb_symbol:  # keep the SSB's REs for the SSB
        full[s : s + nr.SSB_N_SYMBOLS][:, bins] = False
    n = int(full.sum())
    order = 4 if rng.random() < 0.5 else 2  # bits per symbol: 16QAM or QPSK
    levels = np.arange(-(2 ** (order // 2) - 1), 2 ** (order // 2), 2, dtype=np.float32)
    scale = np.sqrt(2 * np.mean(levels**2))
    sym = (rng.choice(levels, n) + 1j * rng.choice(levels, n)) / scale
    grid[full] = (sym * 10 ** (power_db / 20)).astype(np.complex64)


def _offgrid_traffic(lay: _Layout, bins: np.ndarray, n_rb: int, traffic: dict, rng) -> np.ndarray:
    """The serving cell's traffic for a k_SSB that is odd in 15 kHz units at 30 kHz SCS
    (TS 38.211 §7.4.3.1): a grid (n_symbols, fft) of :func:`_add_traffic`'s REs, to be
    sent half a subcarrier up from the SSB's grid. In the SSB's symbols the common RBs
    that overlap it carry nothing (§7.4.3.1: the UE may assume them zero): with the SSB's
    subcarrier k at k + k_SSB / 2 from the start of its first common RB, those are the
    subcarriers -(k_SSB + 1) / 2 .. 251 - (k_SSB + 1) / 2 of the SSB's grid before the shift."""
    grid = np.zeros((lay.n_symbols, lay.num.fft_size), dtype=np.complex64)
    _add_traffic(grid, lay, bins, n_rb, traffic["load"], traffic["power_db"], rng)
    m = (int(traffic["k_ssb"]) - 1) // 2
    span = (int(bins[0]) + np.arange(-m - 1, 251 - m)) % lay.num.fft_size
    for s in lay.ssb_symbol:
        grid[s : s + nr.SSB_N_SYMBOLS][:, span] = 0
    return grid


def _add_edge_collision(grid: np.ndarray, lay: _Layout, bins: np.ndarray, ec: dict, rng) -> None:
    """Traffic REs (QPSK) on top of the SSB's ``ec["n_sc"]`` lowest or highest
    subcarriers in its three PBCH symbols (1..3), at ``ec["power_db"]``
    relative to the SSB's REs: a scheduler that overlaps the SSB."""
    n = int(ec["n_sc"])
    sc = np.arange(n) if ec["side"] == "low" else np.arange(nr.SSB_N_SUBCARRIERS - n, nr.SSB_N_SUBCARRIERS)
    syms = (lay.ssb_symbol[:, None] + np.arange(1, nr.SSB_N_SYMBOLS)[None, :]).ravel()  # (n_ssb * 3,)
    amp = 10 ** (ec["power_db"] / 20) / np.sqrt(2)
    q = (rng.choice([-1.0, 1.0], (syms.size, n)) + 1j * rng.choice([-1.0, 1.0], (syms.size, n))) * amp
    grid[syms[:, None], bins[sc][None, :]] += q.astype(np.complex64)


def _apply_evm(grid: np.ndarray, evm_db: float, rng) -> None:
    """Transmitter EVM: every non-zero RE x becomes x (1 + e n), n ~ CN(0, 1),
    |e|^2 = 10^(evm_db / 10) (in place; null REs stay zero)."""
    nz = np.flatnonzero(grid.ravel() != 0)
    e = 10 ** (evm_db / 20) / np.sqrt(2)
    n = (rng.standard_normal(nz.size) + 1j * rng.standard_normal(nz.size)) * e
    flat = grid.reshape(-1)
    flat[nz] *= (1 + n).astype(np.complex64)


def _add_tx_floor(grid: np.ndarray, n_rb: int, floor_db: float, rng) -> None:
    """The transmitter's noise floor (in place): CN(0, 10^(floor_db/10) P_l) on
    every carrier subcarrier of each symbol l with a transmitted RE, P_l that
    symbol's mean power over its non-zero REs; silent symbols stay silent."""
    fft = grid.shape[1]
    carrier_bins = _carrier_bins(n_rb, fft)
    e = np.abs(grid) ** 2
    nnz = np.count_nonzero(e, axis=1)
    p_l = np.where(nnz > 0, e.sum(axis=1) / np.maximum(nnz, 1), 0.0)  # (n_symbols,)
    amp = np.sqrt(10 ** (floor_db / 10) * p_l / 2)[:, None]
    shape = (grid.shape[0], carrier_bins.size)
    n = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * amp
    grid[:, carrier_bins] += n.astype(np.complex64)


def _ssb_windows(lay: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """CP starts and CP lengths of every SSB's 4 symbols: shapes (n_ssb, 4)."""
    syms = lay.ssb_symbol[:, None] + np.arange(nr.SSB_N_SYMBOLS)[None, :]
    return lay.starts[syms], lay.num.cp_lengths(syms)


def _re_power(x: np.ndarray, starts: np.ndarray, cps: np.ndarray, fft: int, bins: np.ndarray) -> np.ndarray:
    """Per-RE power of waveform x at the SSB REs: shape (n_ssb, 4, 240), float64."""
    n_ssb = starts.shape[0]
    y = nr.ofdm_demodulate(x, starts.ravel(), cps.ravel(), fft)  # (n_ssb*4, fft)
    return (np.abs(y[:, bins]) ** 2).reshape(n_ssb, nr.SSB_N_SYMBOLS, nr.SSB_N_SUBCARRIERS).astype(np.float64)


def _shifted(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` delayed by ``n`` samples (advanced where negative), zeros shifted in."""
    out = np.zeros_like(x)
    if n >= 0:
        out[n:] = x[: x.size - n]
    else:
        out[:n] = x[-n:]
    return out


def _spoofer_template(p: CaptureParams, lay: _Layout, bins: np.ndarray, rng, mode: str) -> np.ndarray:
    fake_pci = int(rng.integers(nr.N_CELL_ID_COUNT))
    comps = ("pss",) if mode == "pss" else ("pss", "sss", "dmrs", "pbch")
    g = _cell_grid(lay, fake_pci, p.l_max, bins, rng, components=comps)
    return nr.ofdm_modulate(g, lay.num.cp_lengths(np.arange(lay.n_symbols)))


@dataclass
class Capture:
    """One simulated capture: IQ as it would be stored, plus ground truth."""

    params: CaptureParams
    iq: np.ndarray  # (n_samples,) complex64, in file units (full scale 1.0 for integer types)
    ssbs: list[SSBTruth]
    noise_power: float  # per RE, in file units (thermal + quantisation)
    n_clipped: int
    jammer_params: Optional[dict]


def _peak_symbol_rms(iq: np.ndarray, symbol_len: int) -> float:
    """RMS of the loudest ``symbol_len``-sample stretch of ``iq`` (complex64,
    shape (n,)): the level an AGC that must not clip the SSB bursts is set on."""
    n = (iq.size // symbol_len) * symbol_len
    if n == 0:
        p = float(np.mean(np.abs(iq.astype(np.complex128)) ** 2)) if iq.size else 0.0
    else:
        p_blk = (iq[:n].real.astype(np.float64) ** 2 + iq[:n].imag.astype(np.float64) ** 2).reshape(-1, symbol_len)
        p = float(p_blk.mean(axis=1).max())
    return math.sqrt(p) if p > 0 else 1.0


def _analog_filter(x: np.ndarray, cutoff: float, fs_hz: float, ssb_hz: float, scs_hz: float
                   ) -> tuple[np.ndarray, float]:
    """``x`` (complex64, (n,)) through the receiver's analog lowpass: an
    ANALOG_FILTER_ORDER Butterworth at ``cutoff`` x Nyquist on I and Q alike
    (its delay, a few samples, is the receiver's). Returns (y complex64, the
    filter's mean power gain over the SSB's 240 subcarriers around ``ssb_hz``)."""
    from scipy.signal import butter, sosfilt, sosfreqz

    sos = butter(ANALOG_FILTER_ORDER, cutoff, output="sos")
    y = np.empty(x.shape, dtype=np.complex64)
    y.real = sosfilt(sos, x.real)
    y.imag = sosfilt(sos, x.imag)
    f = np.abs(ssb_hz + (np.arange(nr.SSB_N_SUBCARRIERS) - nr.SSB_N_SUBCARRIERS / 2) * scs_hz)
    _, h = sosfreqz(sos, worN=f, fs=fs_hz)
    return y, float(np.mean(np.abs(h) ** 2))


def simulate_capture(p: CaptureParams, rng: np.random.Generator) -> Capture:
    """Build one capture from its parameters (pure: arrays and truth out).

    Returns
    -------
    Capture with ``iq`` shape (p.n_samples,), complex64.
    """
    num = p.numerology
    fs = p.sample_rate_hz
    fft = num.fft_size
    margin = 4 * fft  # room for multipath tails and timing offsets
    lay = _layout(p, margin)
    bins = nr.subcarrier_bins(num, p.ssb_offset_hz)
    cps_all = num.cp_lengths(np.arange(lay.n_symbols))

    # ---- serving cell (SSBs + traffic), frame aligned --------------------
    grid = _cell_grid(lay, p.pci, p.l_max, bins, rng)
    if p.beam_gains_db is not None:  # each SSB index on its own beam
        for s, i in zip(lay.ssb_symbol, lay.ssb_index):
            grid[s : s + nr.SSB_N_SYMBOLS, bins] *= np.float32(10 ** (p.beam_gains_db[int(i)] / 20))
    tgrid = None  # traffic off the SSB's grid (k_SSB odd), modulated on its own
    if p.traffic and p.traffic.get("k_ssb") is not None:
        tgrid = _offgrid_traffic(lay, bins, carrier_n_rb(num), p.traffic, rng)
    elif p.traffic:
        _add_traffic(grid, lay, bins, carrier_n_rb(num), p.traffic["load"], p.traffic["power_db"], rng)
    imp = p.impairments
    if imp:
        if imp.get("edge_collision"):
            _add_edge_collision(grid, lay, bins, imp["edge_collision"], rng)
        _apply_evm(grid, imp["evm_db"], rng)
        if imp.get("tx_floor_db") is not None:
            _add_tx_floor(grid, carrier_n_rb(num), imp["tx_floor_db"], rng)
        if tgrid is not None:  # (the transmitter's floor is drawn on the SSB's grid alone)
            _apply_evm(tgrid, imp["evm_db"], rng)
    tx = nr.ofdm_modulate(grid, cps_all)  # (total,)
    del grid
    if tgrid is not None:  # half a subcarrier up: fs / (2 fft)
        tx += channel.apply_cfo(nr.ofdm_modulate(tgrid, cps_all), fs / (2 * fft), fs)
        del tgrid
    if imp and imp["phase_noise_linewidth_hz"] > 0:
        tx = channel.phase_noise(tx, imp["phase_noise_linewidth_hz"], fs, rng)

    def through_channel(x: np.ndarray) -> np.ndarray:
        if p.multipath:
            x, _ = channel.tdl_channel(
                x, fs, p.multipath["profile"], p.multipath["delay_spread_s"], rng, doppler_hz=p.multipath["doppler_hz"]
            )
        return channel.fractional_delay(x, p.timing_offset_samples)

    rx_sig = through_channel(tx)
    del tx

    # ---- measure S per SSB (before CFO, which only rotates) ---------------
    sym_starts, sym_cps = _ssb_windows(lay)
    occupied = ~nr.NULL_RE_MASK
    p_sig = _re_power(rx_sig, sym_starts, sym_cps, fft, bins)  # (n_ssb, 4, 240)
    s_per_ssb = p_sig[:, occupied].mean(axis=1)  # (n_ssb,)
    s_mean = float(s_per_ssb.mean())
    rx = channel.apply_cfo(rx_sig, p.cfo_hz, fs)
    del rx_sig

    # ---- neighbour cells ---------------------------------------------------
    for nb in ([p.neighbour] if p.neighbour else []) + list(p.more_neighbours):
        ngrid = _cell_grid(lay, nb["pci"], p.l_max, bins, rng)
        if nb.get("traffic"):  # (its own SSBs' REs left to them, wherever they fall on the serving cell's)
            _add_traffic(ngrid, lay, bins, carrier_n_rb(num), nb["traffic"]["load"], nb["traffic"]["power_db"], rng)
        ntx = nr.ofdm_modulate(ngrid, cps_all)
        del ngrid
        if p.multipath:
            ntx, _ = channel.tdl_channel(ntx, fs, p.multipath["profile"], p.multipath["delay_spread_s"], rng)
        shift = nb["offset_samples"] + p.timing_offset_samples
        if shift < 0:  # advance: drop the first samples, keep the length
            k = int(math.ceil(-shift))
            ntx = _shifted(ntx, -k)
            shift += k
        ntx = channel.fractional_delay(ntx, shift)
        # scale the neighbour's SSB power relative to the serving cell's, measured where its own
        # SSBs are (those inside the capture): its traffic fills the serving cell's SSB windows
        # when it is not co-timed, and beyond the CP the serving cell's windows catch no more than
        # part of its SSBs (or the fractional delay's tails alone: before stop 45 a neighbour
        # without traffic a few symbols off was measured there, and sent up to ~10 dB louder than
        # power_db). Co-timed, without traffic, inside the CP: the serving cell's windows, as
        # before (the same power; the captures of a seed unchanged)
        if nb.get("traffic") or abs(nb["offset_samples"]) > 0.5 * num.cp_short:
            own = sym_starts + int(round(nb["offset_samples"]))
            inside = (own.min(axis=1) >= 0) & (own.max(axis=1) + 2 * fft < ntx.size)
            p_nb = _re_power(ntx, own[inside], sym_cps[inside], fft, bins) if inside.any() else np.zeros((1, 4, 240))
        else:
            p_nb = _re_power(ntx, sym_starts, sym_cps, fft, bins)
        nb_mask = p_nb.mean(axis=(1, 2)) > 0
        s_nb = float(p_nb[nb_mask][:, occupied].mean()) if nb_mask.any() else 1.0
        s_nb = max(s_nb, 1e-30)
        gain = math.sqrt(s_mean * 10 ** (nb["power_db"] / 10) / s_nb)
        rx += channel.apply_cfo(ntx * np.float32(gain), p.cfo_hz + nb["cfo_hz"], fs)
        del ntx

    # ---- noise level -----------------------------------------------------
    total = rx.size
    noise_power = s_mean / 10 ** (p.snr_db / 10)

    # ---- jammer ----------------------------------------------------------
    j_per_ssb = np.zeros(len(lay.ssb_symbol))
    jam_params = None
    if p.jammer:
        jt = p.jammer["type"]
        kw: dict = {"ssb_center_hz": p.ssb_offset_hz, "ssb_bandwidth_hz": nr.SSB_N_SUBCARRIERS * num.scs_hz}
        if jt == "reactive":
            mask = np.zeros(total, dtype=bool)
            ends = sym_starts[:, -1] + sym_cps[:, -1] + fft
            # difference array: +1 at each SSB start, -1 at its end (no loop over samples)
            edges = np.zeros(total + 1, dtype=np.int32)
            np.add.at(edges, np.clip(sym_starts[:, 0], 0, total), 1)
            np.add.at(edges, np.clip(ends, 0, total), -1)
            mask = np.cumsum(edges[:-1]) > 0
            kw["ssb_mask"] = mask
        if jt == "spoofer":
            mode = str(p.jammer.get("mode", ("pss", "ssb")[int(rng.integers(2))]))
            kw["template"] = _spoofer_template(p, lay, bins, rng, mode)
            kw["mode"] = mode
            if p.jammer.get("offset_cp"):  # off the cell's timing (JammingConfig.spoofer_offtime_probability)
                kw["template"] = _shifted(kw["template"], int(round(p.jammer["offset_cp"] * num.cp_short)))
        jw, jam_params = jammers.make_jammer(jt, total, fs, rng, **kw)
        p_j = _re_power(jw, sym_starts, sym_cps, fft, bins)  # (n_ssb, 4, 240)
        j_raw = p_j.mean(axis=(1, 2))
        hit = j_raw >= 0.5 * j_raw.max() if j_raw.max() > 0 else np.zeros_like(j_raw, bool)
        j_ref = float(j_raw[hit].mean()) if hit.any() else 0.0
        j_target = s_mean / 10 ** (p.jammer["sjnr_db"] / 10) - noise_power
        if j_ref > 0 and j_target > 0:
            scale = math.sqrt(j_target / j_ref)
            rx += jw * np.float32(scale)
            j_per_ssb = j_raw * scale**2
        jam_params = dict(jam_params or {}, **{k: v for k, v in p.jammer.items() if k not in jam_params})
        del jw

    rx = channel.awgn(rx, noise_power, rng)
    if imp and imp.get("iq_image_db") is not None:
        rx = channel.iq_imbalance(rx, imp["iq_image_db"], rng)
    g_ssb, adc_noise = 1.0, 0.0  # the analog filter's power gain on the SSB; the ADC's noise after it
    if imp and imp.get("analog_filter") is not None:
        af = imp["analog_filter"]
        rx, g_ssb = _analog_filter(rx, af["cutoff"], fs, p.ssb_offset_hz + p.cfo_hz, num.scs_hz)
        adc_noise = noise_power * 10 ** (af["adc_db"] / 10)
        rx = channel.awgn(rx, adc_noise, rng)

    # ---- receiver: cut the capture window, DC offset, gain, quantise --------
    iq = rx[p.start_sample : p.start_sample + p.n_samples]
    del rx
    if imp and imp.get("dc_offset_db") is not None:
        dc_amp = math.sqrt(float(np.mean(np.abs(iq) ** 2)) * 10 ** (imp["dc_offset_db"] / 10))
        iq = iq + np.complex64(dc_amp * np.exp(1j * rng.uniform(0.0, 2.0 * np.pi)))
    if p.datatype == "cf32_le":
        gain = 10 ** (p.level_db / 20)
        iq_file = (iq * np.float32(gain)).astype(np.complex64)
        q_noise = 0.0
        n_clipped = 0
    else:
        # ADC with its *peak-symbol* RMS level_db below full scale (an AGC set for
        # the loudest OFDM symbol, e.g. an SSB burst on an otherwise idle carrier,
        # so that the SSBs are not clipped); the file holds int / FILE_SCALE
        adc_gain = channel.ADC_DATATYPES[p.datatype]["full_scale"] * 10 ** (-p.level_db / 20) / _peak_symbol_rms(iq, fft)
        iq_q, adc_gain, n_clipped = channel.quantize(iq, p.datatype, gain=adc_gain)
        gain = adc_gain / FILE_SCALE[p.datatype]
        iq_file = (iq_q * np.float32(gain)).astype(np.complex64)
        q_noise = channel.quantization_noise_power(p.datatype, adc_gain) * gain**2  # in file units
    n_file = (noise_power * g_ssb + adc_noise) * gain**2 + q_noise

    # ---- truth per SSB inside the window ------------------------------------
    ssbs: list[SSBTruth] = []
    sig_file = s_per_ssb * g_ssb * gain**2
    jam_file = j_per_ssb * g_ssb * gain**2
    for i in range(len(lay.ssb_symbol)):
        s0 = int(sym_starts[i, 0]) - p.start_sample
        length = int(sym_starts[i, -1] + sym_cps[i, -1] + fft - sym_starts[i, 0])
        if s0 < 0 or s0 + length > p.n_samples:
            continue
        jnr = jam_file[i] / n_file if p.jammer else None
        jammed = jnr is not None and 10 * math.log10(max(jnr, 1e-30)) >= JAMMED_MIN_JNR_DB
        ssbs.append(
            SSBTruth(
                sample_start=s0,
                sample_count=length,
                pci=p.pci,
                ssb_index=int(lay.ssb_index[i]),
                snr_db=10 * math.log10(sig_file[i] / n_file),
                jnr_db=None if jnr is None else 10 * math.log10(max(jnr, 1e-30)),
                sjnr_db=10 * math.log10(sig_file[i] / (jam_file[i] + n_file)) if jammed else None,
                jammer=p.jammer["type"] if jammed else None,
            )
        )
    return Capture(p, iq_file, ssbs, n_file, n_clipped, jam_params)


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------
def capture_annotations(cap: Capture) -> list[dict]:
    """SigMF annotations (one per complete SSB) carrying the ground truth."""
    out = []
    for s in cap.ssbs:
        out.append(
            {
                "core:sample_start": s.sample_start,
                "core:sample_count": s.sample_count,
                "core:label": "SSB",
                "ssbwatch:pci": s.pci,
                "ssbwatch:ssb_index": s.ssb_index,
                "ssbwatch:snr_db": round(s.snr_db, 3),
                "ssbwatch:jnr_db": None if s.jnr_db is None else round(s.jnr_db, 3),
                "ssbwatch:sjnr_db": None if s.sjnr_db is None else round(s.sjnr_db, 3),
                "ssbwatch:jammer": s.jammer,
            }
        )
    return out


def _jsonable(v):
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist() if v.size <= 64 else f"<array {v.shape}>"
    return v


def capture_global(cap: Capture) -> dict:
    """``global`` keys of the SigMF metadata describing the capture."""
    p = cap.params
    return {
        "ssbwatch:scs_khz": p.scs_khz,
        "ssbwatch:ssb_offset_hz": p.ssb_offset_hz,
        "ssbwatch:ssb_freq_hz": p.ssb_freq_hz,
        "ssbwatch:pci": p.pci,
        "ssbwatch:case": p.case,
        "ssbwatch:l_max": p.l_max,
        "ssbwatch:period_ms": p.period_ms,
        "ssbwatch:ssbs_sent": list(p.ssbs_sent),
        "ssbwatch:snr_db": round(p.snr_db, 3),
        "ssbwatch:cfo_hz": round(p.cfo_hz, 3),
        "ssbwatch:timing_offset_samples": round(p.timing_offset_samples, 4),
        "ssbwatch:noise_power_per_re": cap.noise_power,
        "ssbwatch:n_clipped": cap.n_clipped,
        "ssbwatch:multipath": _jsonable(p.multipath),
        "ssbwatch:traffic": _jsonable(p.traffic),
        "ssbwatch:neighbour": _jsonable(p.neighbour),
        **({"ssbwatch:more_neighbours": _jsonable(list(p.more_neighbours))} if p.more_neighbours else {}),
        "ssbwatch:jammer": _jsonable(cap.jammer_params),
        "ssbwatch:impairments": _jsonable(p.impairments),
        "ssbwatch:beam_gains_db": _jsonable(p.beam_gains_db),
        "ssbwatch:level_db": round(p.level_db, 3),
    }


def write_capture(cap: Capture, base_path: str | Path) -> tuple[Path, Path]:
    """Write a capture as a SigMF recording with its truth as annotations."""
    from . import iq as iqio

    p = cap.params
    jt = p.jammer["type"] if p.jammer else "clean"
    desc = f"ssbwatch simulation: PCI {p.pci}, {p.scs_khz} kHz SCS, {p.sample_rate_hz / 1e6:g} Msps, {jt}"
    return iqio.write_sigmf(
        base_path,
        cap.iq,
        p.sample_rate_hz,
        datatype=p.datatype,
        center_freq_hz=p.center_freq_hz,
        global_extra=capture_global(cap),
        annotations=capture_annotations(cap),
        description=desc,
    )


def plan_jammers(cfg: SimConfig, n: int, rng: np.random.Generator) -> list[Optional[str]]:
    """Jammer type (or None for clean) per capture: a balanced mix that covers
    every configured type (and clean captures) as soon as ``n`` allows."""
    n_clean = int(round(n * cfg.jamming.clean_fraction)) if cfg.jamming.types else n
    if cfg.jamming.clean_fraction > 0 and n >= 2:
        n_clean = max(n_clean, 1)
    types = list(cfg.jamming.types)
    n_jam = n - n_clean
    plan: list[Optional[str]] = [None] * n_clean + [types[i % len(types)] for i in range(n_jam)] if types else [None] * n
    rng.shuffle(plan)
    return plan


def simulate_dataset(cfg: SimConfig, out_dir: str | Path, seed: int, progress=None, workers: int = 1) -> list[dict]:
    """Simulate ``cfg.n_captures`` captures into ``out_dir``; return a manifest.

    Capture ``i`` is built from ``SeedSequence([seed, i])``, so any single
    capture can be regenerated without the others -- and the captures are the
    same, byte for byte, whatever ``workers`` (processes) built them.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = plan_jammers(cfg, cfg.n_captures, np.random.default_rng(np.random.SeedSequence([seed, 2**31 - 1])))
    jobs = [(cfg, str(out), seed, i, jt) for i, jt in enumerate(plan)]
    manifest = []
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        # spawn, not fork: the caller may hold threads (onnxruntime, torch) a fork would copy mid-state
        with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            for entry in pool.imap(_simulate_one, jobs, chunksize=2):
                manifest.append(entry)
                if progress is not None:
                    progress(len(manifest), cfg.n_captures)
    else:
        for job in jobs:
            manifest.append(_simulate_one(job))
            if progress is not None:
                progress(len(manifest), cfg.n_captures)
    return manifest


def _simulate_one(job: tuple) -> dict:
    """Worker of :func:`simulate_dataset`: capture ``i`` and its calibration
    companions written to ``out``; its manifest entry."""
    cfg, out, seed, i, jt = job
    out = Path(out)
    rng = np.random.default_rng(np.random.SeedSequence([seed, i]))
    p = draw_params(cfg, rng, force_clean=jt is None, jammer_type=jt)
    cap = simulate_capture(p, rng)
    name = f"cap{i:05d}"
    meta, _ = write_capture(cap, out / name)
    cal_names = []
    for k in range(cfg.calibration_captures):
        crng = np.random.default_rng(np.random.SeedSequence([seed, i, 1 + k]))
        # the same site on another day: same cell and channel statistics, new
        # noise / channel / traffic realisation, another receiver gain and a
        # noise floor that moved (calibration_snr_drift_db)
        gain_range = cfg.int_backoff_db if p.datatype != "cf32_le" else cfg.cf32_gain_db
        level_db = _uniform(crng, gain_range)
        cal_p = dataclasses.replace(p, jammer=None, level_db=level_db,
                                    snr_db=p.snr_db + _uniform(crng, cfg.calibration_snr_drift_db))
        cal = simulate_capture(cal_p, crng)
        cm, _ = write_capture(cal, out / f"{name}-cal{k}")
        cal_names.append(cm.name)
    return {
        "name": name,
        "meta": meta.name,
        "jammer": jt,
        "scs_khz": p.scs_khz,
        "sample_rate_hz": p.sample_rate_hz,
        "datatype": p.datatype,
        "pci": p.pci,
        "n_ssb": len(cap.ssbs),
        "n_jammed": sum(s.jammed for s in cap.ssbs),
        "seconds": p.n_samples / p.sample_rate_hz,
        "calibration": cal_names,
    }
