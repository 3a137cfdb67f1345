"""5G NR physical-layer building blocks for the SS/PBCH block (SSB).

Everything here is a pure function or an immutable dataclass: arrays in,
arrays out. Sequences follow 3GPP TS 38.211 V17 exactly; the clause that
defines each constant is named beside it.

Dtype policy: resource grids and waveforms are ``np.complex64``; bit
sequences are ``np.uint8`` holding 0/1; real-valued ±1 sequences are
``np.float32``.

References
----------
3GPP TS 38.211, "NR; Physical channels and modulation".
3GPP TS 38.213, "NR; Physical layer procedures for control", §4.1.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import numpy as np

# ---------------------------------------------------------------------------
# Constants (TS 38.211)
# ---------------------------------------------------------------------------
N_SC_PER_RB = 12  # §4.4.4.1
SSB_N_SUBCARRIERS = 240  # §7.4.3.1: 20 RB x 12
SSB_N_SYMBOLS = 4  # §7.4.3.1
SSB_CENTER_SUBCARRIER = 120  # TS 38.104 §5.4.3.1: SSB reference RE k = 120
PSS_LENGTH = 127  # §7.4.2.2.1
SSS_LENGTH = 127  # §7.4.2.3.1
PSS_FIRST_SUBCARRIER = 56  # Table 7.4.3.1-1: PSS/SSS on k = 56..182
N_ID1_COUNT = 336  # §7.4.2.1
N_ID2_COUNT = 3  # §7.4.2.1
N_CELL_ID_COUNT = 1008  # §7.4.2.1: N_ID^cell = 3 N_ID1 + N_ID2
N_C = 1600  # §5.2.1 Gold-sequence offset
PBCH_N_BITS = 864  # §7.3.3.1: M_bit, PBCH bits per SSB
PBCH_N_SYMBOLS = 432  # §7.3.3.2: QPSK, 864 / 2
PBCH_DMRS_N_SYMBOLS = 144  # §7.4.1.4.1
KAPPA = 64  # §4.1: kappa = T_s / T_c
DELTA_F_MAX_HZ = 480e3  # §4.1
N_F = 4096  # §4.1
T_C_S = 1.0 / (DELTA_F_MAX_HZ * N_F)  # §4.1 basic time unit
SUBFRAME_S = 1e-3  # §4.3.1
HALF_FRAME_S = 5e-3  # §4.3.1
SYMBOLS_PER_SLOT = 14  # §4.3.2, normal cyclic prefix
BASE_RATE_HZ = 1.92e6  # 15 kHz x 128: every supported rate is a multiple

SUPPORTED_SCS_KHZ = (15, 30, 60, 120, 240)  # §4.2 Table 4.2-1
SSB_SCS_KHZ = (15, 30)  # FR1 SSB numerologies handled here (TS 38.213 §4.1 Cases A-C)

# Null ("zero") REs of the SSB, TS 38.211 Table 7.4.3.1-1 (set to zero by §7.4.3.1.1):
# symbol 0: k = 0..55 and 183..239; symbol 2: k = 48..55 and 183..191.
NULL_REGIONS: dict[str, tuple[int, int, int]] = {
    # name: (symbol, first k, last k inclusive)
    "pss_low": (0, 0, 55),
    "pss_high": (0, 183, 239),
    "sss_low": (2, 48, 55),
    "sss_high": (2, 183, 191),
}


def _build_null_mask() -> np.ndarray:
    mask = np.zeros((SSB_N_SYMBOLS, SSB_N_SUBCARRIERS), dtype=bool)
    for sym, k0, k1 in NULL_REGIONS.values():
        mask[sym, k0 : k1 + 1] = True
    return mask


NULL_RE_MASK = _build_null_mask()  # (4, 240) bool, 130 True
NULL_RE_MASK.setflags(write=False)


# ---------------------------------------------------------------------------
# Numerology (§4.2, §5.3.1)
# ---------------------------------------------------------------------------
def mu_from_scs(scs_khz: int) -> int:
    """Numerology index mu with scs = 15 * 2**mu kHz (TS 38.211 Table 4.2-1)."""
    if scs_khz not in SUPPORTED_SCS_KHZ:
        raise ValueError(f"scs_khz={scs_khz!r} is not an NR subcarrier spacing; allowed: {SUPPORTED_SCS_KHZ}")
    return int(np.log2(scs_khz // 15))


@dataclass(frozen=True)
class Numerology:
    """OFDM numerology of one SCS at one sample rate (normal CP).

    The useful symbol is ``fft_size = sample_rate_hz / scs`` samples. The CP is
    ``144 kappa 2^-mu T_c`` and ``16 kappa T_c`` longer for the first symbol of
    every half subframe (l = 0 and l = 7 * 2^mu of each subframe), TS 38.211
    §5.3.1.

    Attributes
    ----------
    scs_khz, sample_rate_hz, mu, fft_size
    cp_short, cp_long : int
        CP lengths in samples.
    symbols_per_subframe : int
        14 * 2**mu.
    """

    scs_khz: int
    sample_rate_hz: float
    mu: int
    fft_size: int
    cp_short: int
    cp_long: int

    @classmethod
    def create(cls, scs_khz: int, sample_rate_hz: float) -> "Numerology":
        """Derive the numerology; raise ``ValueError`` if the rate is not native.

        A native rate is one at which the FFT size and both CP lengths are
        whole numbers of samples and the FFT holds the SSB's 240 subcarriers.
        """
        mu = mu_from_scs(scs_khz)
        scs_hz = scs_khz * 1e3
        fft = sample_rate_hz / scs_hz
        cp_short = 144 * KAPPA * 2.0**-mu * T_C_S * sample_rate_hz  # §5.3.1
        cp_extra = 16 * KAPPA * T_C_S * sample_rate_hz  # §5.3.1
        vals = np.array([fft, cp_short, cp_extra])
        if np.any(np.abs(vals - np.round(vals)) > 1e-6):
            raise ValueError(
                f"sample_rate_hz={sample_rate_hz:g} is not a native rate for scs_khz={scs_khz}: "
                f"FFT size {fft:g} and CP {cp_short:g} samples must be integers "
                f"(use a multiple of {BASE_RATE_HZ * 2**mu / 1e6:g} Msps, or resample)"
            )
        if round(fft) < SSB_N_SUBCARRIERS:
            raise ValueError(
                f"sample_rate_hz={sample_rate_hz:g} is too low for the SSB at scs_khz={scs_khz}: "
                f"need at least {SSB_N_SUBCARRIERS} FFT bins, i.e. >= {2 * 128 * scs_hz / 1e6:g} Msps"
            )
        return cls(
            scs_khz=scs_khz,
            sample_rate_hz=float(sample_rate_hz),
            mu=mu,
            fft_size=int(round(fft)),
            cp_short=int(round(cp_short)),
            cp_long=int(round(cp_short + cp_extra)),
        )

    @property
    def scs_hz(self) -> float:
        return self.scs_khz * 1e3

    @property
    def symbols_per_subframe(self) -> int:
        return SYMBOLS_PER_SLOT * 2**self.mu

    @property
    def samples_per_subframe(self) -> int:
        return int(round(self.sample_rate_hz * SUBFRAME_S))

    def cp_lengths(self, symbols: np.ndarray) -> np.ndarray:
        """CP length in samples of each symbol index (counted from a subframe start).

        Parameters
        ----------
        symbols : array of int, any shape
            Symbol index l >= 0 counted from the start of a subframe (or of any
            half frame, which is a whole number of subframes).
        """
        l = np.asarray(symbols) % self.symbols_per_subframe
        long = (l == 0) | (l == 7 * 2**self.mu)  # §5.3.1
        return np.where(long, self.cp_long, self.cp_short)

    def symbol_starts(self, n_symbols: int) -> np.ndarray:
        """Start sample (CP start) of symbols 0..n_symbols-1 from a subframe start.

        Returns
        -------
        ndarray, shape (n_symbols + 1,), int64
            The last entry is the end of the last symbol.
        """
        lengths = self.cp_lengths(np.arange(n_symbols)) + self.fft_size
        return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def native_rates_hz(scs_khz: int, max_rate_hz: float = 61.44e6) -> list[float]:
    """Native sample rates (multiples of 1.92 Msps) that hold the SSB at ``scs_khz``."""
    out = []
    for m in range(1, int(max_rate_hz / BASE_RATE_HZ) + 1):
        try:
            Numerology.create(scs_khz, m * BASE_RATE_HZ)
        except ValueError:
            continue
        out.append(m * BASE_RATE_HZ)
    return out


# ---------------------------------------------------------------------------
# Sequences
# ---------------------------------------------------------------------------
def _m_sequence(taps: tuple[int, ...], init: tuple[int, ...], length: int) -> np.ndarray:
    """Binary m-sequence x(i+7) = sum_{t in taps} x(i+t) mod 2, x(0..6) = init.

    Generated once per (taps, init); loops over 127 chips are negligible and
    cached.
    """
    x = np.zeros(length + 7, dtype=np.uint8)
    x[:7] = init
    for i in range(length):
        x[i + 7] = np.bitwise_xor.reduce(x[[i + t for t in taps]])
    return x[:length]


@functools.lru_cache(maxsize=None)
def _pss_m_seq() -> np.ndarray:
    # §7.4.2.2.1: x(i+7) = (x(i+4) + x(i)) mod 2; [x(6)..x(0)] = [1 1 1 0 1 1 0]
    return _m_sequence((4, 0), (0, 1, 1, 0, 1, 1, 1), PSS_LENGTH)


@functools.lru_cache(maxsize=None)
def _sss_m_seqs() -> tuple[np.ndarray, np.ndarray]:
    # §7.4.2.3.1: x0(i+7) = (x0(i+4) + x0(i)) mod 2, x1(i+7) = (x1(i+1) + x1(i)) mod 2,
    # [x(6)..x(0)] = [0 0 0 0 0 0 1] for both.
    init = (1, 0, 0, 0, 0, 0, 0)
    return _m_sequence((4, 0), init, SSS_LENGTH), _m_sequence((1, 0), init, SSS_LENGTH)


def _check_range(name: str, value, lo: int, hi: int) -> None:
    v = np.asarray(value)
    if v.size and (np.any(v < lo) or np.any(v > hi)):
        raise ValueError(f"{name}={value!r} out of range [{lo}, {hi}]")


@functools.lru_cache(maxsize=None)
def _pss_cached(n_id2: int) -> np.ndarray:
    n = np.arange(PSS_LENGTH)
    m = (n + 43 * int(n_id2)) % PSS_LENGTH
    out = (1.0 - 2.0 * _pss_m_seq()[m]).astype(np.float32)
    out.setflags(write=False)
    return out


def pss(n_id2: int) -> np.ndarray:
    """PSS d_PSS(n), n = 0..126 (TS 38.211 §7.4.2.2.1).

    Returns
    -------
    ndarray, shape (127,), float32, values +-1.
    """
    if not 0 <= int(n_id2) < N_ID2_COUNT:
        raise ValueError(f"n_id2={n_id2!r} out of range [0, {N_ID2_COUNT - 1}]")
    return _pss_cached(int(n_id2))


def sss(pci: int) -> np.ndarray:
    """SSS d_SSS(n), n = 0..126, for the cell ID ``pci`` (TS 38.211 §7.4.2.3.1).

    Returns
    -------
    ndarray, shape (127,), float32, values +-1 (read-only, cached).
    """
    if not 0 <= int(pci) < N_CELL_ID_COUNT:
        raise ValueError(f"pci={pci!r} out of range [0, {N_CELL_ID_COUNT - 1}]")
    return _sss_cached(int(pci))


@functools.lru_cache(maxsize=None)
def _sss_cached(pci: int) -> np.ndarray:
    n_id1, n_id2 = divmod(int(pci), 3)
    x0, x1 = _sss_m_seqs()
    m0 = 15 * (n_id1 // 112) + 5 * n_id2
    m1 = n_id1 % 112
    n = np.arange(SSS_LENGTH)
    out = ((1.0 - 2.0 * x0[(n + m0) % 127]) * (1.0 - 2.0 * x1[(n + m1) % 127])).astype(np.float32)
    out.setflags(write=False)
    return out


def expj(phase_rad) -> np.ndarray:
    """exp(1j * phase) of a real array, complex128, from its cosine and sine (the
    values of np.exp(1j * phase), without the complex exponential's work)."""
    out = np.empty(np.shape(phase_rad), np.complex128)
    np.cos(phase_rad, out=out.real)
    np.sin(phase_rad, out=out.imag)
    return out


@functools.lru_cache(maxsize=None)
def sss_table() -> np.ndarray:
    """All 1008 SSS sequences, shape (1008, 127), float32 (row = PCI)."""
    return np.stack([sss(p) for p in range(N_CELL_ID_COUNT)])


def gold_sequence(c_init: int, length: int) -> np.ndarray:
    """Pseudo-random sequence c(n), n = 0..length-1 (TS 38.211 §5.2.1).

    x2's recurrence is linear over GF(2), so x2 from c_init is the XOR of the
    x2 sequences started from each bit of c_init alone: those 31 sequences
    and x1 (whose start is fixed) are run once per length
    (:func:`_gold_basis`), and each c_init costs one small product.

    Returns
    -------
    ndarray, shape (length,), uint8 of 0/1.
    """
    if not 0 <= int(c_init) < 2**31:
        raise ValueError(f"c_init={c_init} out of range [0, 2^31)")
    x1, basis = _gold_basis(int(length))
    bits = ((int(c_init) >> np.arange(31)) & 1).astype(np.uint16)
    x2 = (bits @ basis) & 1
    return (x1 ^ x2).astype(np.uint8)


@functools.lru_cache(maxsize=16)
def _gold_basis(length: int) -> tuple[np.ndarray, np.ndarray]:
    """(x1(n + N_C), (31, length) x2(n + N_C) started from c_init = 2^b, b = 0..30),
    n = 0..length-1 (TS 38.211 §5.2.1): x1 uint8, the basis uint16 (for the product).

    The two LFSRs run vectorised: x(n+31) needs x(n..n+3), so each pass computes
    the next chunk of up to 28 bits of every register at once."""
    total = N_C + length
    x = np.zeros((32, total + 31), dtype=np.uint8)
    x[0, 0] = 1  # x1(0) = 1, x1(1..30) = 0
    x[1:, :31] = np.eye(31, dtype=np.uint8)  # x2(0..30) = the bits of c_init = 2^b
    n = 0
    while n < total:
        step = min(28, total - n)
        a, b = n, n + step
        # x1(n+31) = x1(n+3) + x1(n); x2(n+31) = x2(n+3) + x2(n+2) + x2(n+1) + x2(n)
        x[0, a + 31 : b + 31] = x[0, a + 3 : b + 3] ^ x[0, a:b]
        x[1:, a + 31 : b + 31] = x[1:, a + 3 : b + 3] ^ x[1:, a + 2 : b + 2] ^ x[1:, a + 1 : b + 1] ^ x[1:, a:b]
        n = b
    x1 = x[0, N_C:total].copy()
    basis = x[1:, N_C:total].astype(np.uint16)
    x1.setflags(write=False)
    basis.setflags(write=False)
    return x1, basis


@functools.lru_cache(maxsize=4096)
def _gold_cached(c_init: int, length: int) -> np.ndarray:
    out = gold_sequence(c_init, length)
    out.setflags(write=False)
    return out


def ibar_ssb(ssb_index: int, l_max: int, half_frame: int = 0) -> int:
    """ī_SSB of the PBCH-DMRS (TS 38.211 §7.4.1.4.1)."""
    if l_max == 4:
        return (int(ssb_index) & 0b11) + 4 * int(half_frame)
    if l_max in (8, 64):
        return int(ssb_index) & 0b111
    raise ValueError(f"l_max={l_max} not in (4, 8, 64)")


def pbch_dmrs(pci: int, ibar: int) -> np.ndarray:
    """PBCH DM-RS r(m), m = 0..143 (TS 38.211 §7.4.1.4.1).

    c_init = 2^11 (ī_SSB + 1)(floor(N_ID/4) + 1) + 2^6 (ī_SSB + 1) + (N_ID mod 4).

    Returns
    -------
    ndarray, shape (144,), complex64.
    """
    if not (0 <= int(pci) < N_CELL_ID_COUNT and 0 <= int(ibar) <= 7):
        raise ValueError(f"pci={pci!r} (0..1007) or ibar={ibar!r} (0..7) out of range")
    return _pbch_dmrs_cached(int(pci), int(ibar))


@functools.lru_cache(maxsize=8192)
def _pbch_dmrs_cached(pci: int, ibar: int) -> np.ndarray:
    c_init = 2**11 * (ibar + 1) * (pci // 4 + 1) + 2**6 * (ibar + 1) + (pci % 4)
    c = _gold_cached(c_init, 2 * PBCH_DMRS_N_SYMBOLS).astype(np.float32)
    out = (((1 - 2 * c[0::2]) + 1j * (1 - 2 * c[1::2])) / np.sqrt(2)).astype(np.complex64)
    out.setflags(write=False)
    return out


def qpsk(bits: np.ndarray) -> np.ndarray:
    """QPSK modulation (TS 38.211 §5.1.3): d = ((1-2b0) + j(1-2b1)) / sqrt(2).

    Parameters
    ----------
    bits : array, shape (..., 2n), 0/1
    Returns
    -------
    ndarray, shape (..., n), complex64
    """
    b = np.asarray(bits, dtype=np.float32)
    return (((1 - 2 * b[..., 0::2]) + 1j * (1 - 2 * b[..., 1::2])) / np.sqrt(2)).astype(np.complex64)


def pbch_symbols(coded_bits: np.ndarray, pci: int, ssb_index: int, l_max: int) -> np.ndarray:
    """Scrambled, QPSK-modulated PBCH symbols (TS 38.211 §7.3.3.1-2).

    The scrambling sequence is c(i + v M_bit) with c_init = N_ID^cell, M_bit =
    864, and v the 2 (L_max = 4) or 3 (L_max = 8, 64) LSBs of the SSB index.

    Parameters
    ----------
    coded_bits : array, shape (864,), 0/1
        The rate-matched BCH codeword (TS 38.212 §7.1); any bits are accepted.
    """
    b = np.asarray(coded_bits, dtype=np.uint8)
    if b.shape != (PBCH_N_BITS,):
        raise ValueError(f"coded_bits must have shape ({PBCH_N_BITS},), got {b.shape}")
    if l_max == 4:
        v = int(ssb_index) & 0b11
    elif l_max in (8, 64):
        v = int(ssb_index) & 0b111
    else:
        raise ValueError(f"l_max={l_max} not in (4, 8, 64)")
    c = _gold_cached(int(pci), PBCH_N_BITS * (v + 1))[v * PBCH_N_BITS :]
    return qpsk(b ^ c)


# ---------------------------------------------------------------------------
# SSB resource grid (§7.4.3.1, Table 7.4.3.1-1)
# ---------------------------------------------------------------------------
def dmrs_subcarriers(pci: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PBCH-DMRS subcarriers k per SSB symbol 1, 2, 3 (Table 7.4.3.1-1), v = pci mod 4."""
    v = int(pci) % 4
    full = np.arange(0, 240, 4) + v
    edge = np.concatenate([np.arange(0, 48, 4), np.arange(192, 240, 4)]) + v
    return full, edge, full


@functools.lru_cache(maxsize=4)
def _re_maps(v: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(symbol, subcarrier) index arrays of PSS, SSS, DMRS, PBCH for DMRS shift v."""
    pss_k = np.arange(PSS_FIRST_SUBCARRIER, PSS_FIRST_SUBCARRIER + PSS_LENGTH)
    full = np.arange(0, 240, 4) + v
    edge = np.concatenate([np.arange(0, 48, 4), np.arange(192, 240, 4)]) + v
    # DMRS mapped in increasing k, then l (§7.4.3.1.3)
    dl = np.concatenate([np.full(60, 1), np.full(24, 2), np.full(60, 3)])
    dk = np.concatenate([full, edge, full])
    # PBCH: all remaining REs of symbols 1 and 3, and k in 0..47, 192..239 of symbol 2 (§7.4.3.1.2)
    sym2 = np.concatenate([np.arange(0, 48), np.arange(192, 240)])
    pl, pk = [], []
    for l, ks in ((1, np.arange(240)), (2, sym2), (3, np.arange(240))):
        ks = ks[(ks % 4) != v]
        pl.append(np.full(ks.size, l))
        pk.append(ks)
    maps = {
        "pss": (np.zeros(PSS_LENGTH, dtype=np.int64), pss_k),
        "sss": (np.full(SSS_LENGTH, 2, dtype=np.int64), pss_k),
        "dmrs": (dl.astype(np.int64), dk.astype(np.int64)),
        "pbch": (np.concatenate(pl).astype(np.int64), np.concatenate(pk).astype(np.int64)),
    }
    for a, b in maps.values():
        a.setflags(write=False)
        b.setflags(write=False)
    return maps


def ssb_re_indices(pci: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Resource-element indices (symbol l, subcarrier k) of each SSB component.

    Returns
    -------
    dict with keys "pss" (127), "sss" (127), "dmrs" (144), "pbch" (432), each a
    pair of int64 arrays (l, k) in the mapping order of TS 38.211 §7.4.3.1.
    """
    return _re_maps(int(pci) % 4)


def ssb_grid(
    pci: int,
    ssb_index: int,
    l_max: int,
    *,
    half_frame: int = 0,
    pbch_bits: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    components: tuple[str, ...] = ("pss", "sss", "dmrs", "pbch"),
) -> np.ndarray:
    """The SSB's 4 x 240 resource grid (TS 38.211 §7.4.3.1), beta = 1 for all.

    Parameters
    ----------
    pci : int, 0..1007
    ssb_index : int, candidate SSB index i_SSB (0..l_max-1)
    l_max : 4 or 8
    half_frame : 0 or 1, n_hf (used in the DMRS for L_max = 4)
    pbch_bits : array (864,) of 0/1, optional
        Rate-matched PBCH codeword; random (from ``rng``) when not given.
    components : which of "pss", "sss", "dmrs", "pbch" to map (others zero).

    Returns
    -------
    ndarray, shape (4, 240), complex64; row = SSB symbol, column = subcarrier k.
    """
    _check_range("pci", pci, 0, N_CELL_ID_COUNT - 1)
    _check_range("ssb_index", ssb_index, 0, l_max - 1)
    grid = np.zeros((SSB_N_SYMBOLS, SSB_N_SUBCARRIERS), dtype=np.complex64)
    maps = ssb_re_indices(pci)
    if "pss" in components:
        grid[maps["pss"]] = pss(pci % 3)
    if "sss" in components:
        grid[maps["sss"]] = sss(pci)
    if "dmrs" in components:
        grid[maps["dmrs"]] = pbch_dmrs(pci, ibar_ssb(ssb_index, l_max, half_frame))
    if "pbch" in components:
        if pbch_bits is None:
            if rng is None:
                raise ValueError("ssb_grid needs pbch_bits or an rng to draw them")
            pbch_bits = rng.integers(0, 2, PBCH_N_BITS, dtype=np.uint8)
        grid[maps["pbch"]] = pbch_symbols(pbch_bits, pci, ssb_index, l_max)
    return grid


# ---------------------------------------------------------------------------
# SS burst sets (TS 38.213 §4.1) -- tables live in data/ssb_cases.json
# ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _ssb_cases() -> dict:
    with resources.files("signals").joinpath("data/ssb_cases.json").open("r") as fh:
        return json.load(fh)


SSBCase = Literal["A", "B", "C"]


def ssb_case_scs_khz(case: str) -> int:
    cases = _ssb_cases()["cases"]
    if case not in cases:
        raise ValueError(f"SSB case {case!r} unknown; allowed: {sorted(cases)}")
    return int(cases[case]["scs_khz"])


def ssb_first_symbols(case: str, l_max: int) -> np.ndarray:
    """First OFDM symbol of each candidate SSB in a half frame (TS 38.213 §4.1).

    Symbols are counted from symbol 0 of the half frame in the SSB's numerology.

    Returns
    -------
    ndarray, shape (l_max,), int64, ordered by SSB index.
    """
    cases = _ssb_cases()["cases"]
    if case not in cases:
        raise ValueError(f"SSB case {case!r} unknown; allowed: {sorted(cases)}")
    c = cases[case]
    key = str(l_max)
    if key not in c["n"]:
        raise ValueError(f"l_max={l_max} not defined for case {case}; allowed: {sorted(int(k) for k in c['n'])}")
    base = np.asarray(c["base_symbols"], dtype=np.int64)
    n = np.asarray(c["n"][key], dtype=np.int64)
    return (base[None, :] + c["symbols_per_n"] * n[:, None]).ravel()


def default_case(scs_khz: int) -> str:
    """Case A for 15 kHz, Case C (the common TDD n78 choice) for 30 kHz."""
    return {15: "A", 30: "C"}[scs_khz]


# ---------------------------------------------------------------------------
# OFDM modulation / demodulation (§5.3.1), vectorised
# ---------------------------------------------------------------------------
def subcarrier_bins(numerology: Numerology, ssb_offset_hz: float) -> np.ndarray:
    """FFT bin of each SSB subcarrier k = 0..239 when its centre (k = 120) sits at
    ``ssb_offset_hz`` from the capture centre. The offset must be a whole number
    of subcarriers (the receiver removes any remainder as CFO).

    Returns
    -------
    ndarray, shape (240,), int64, bins in [0, fft_size).
    """
    off = ssb_offset_hz / numerology.scs_hz
    if abs(off - round(off)) > 1e-6:
        raise ValueError(
            f"ssb_offset_hz={ssb_offset_hz:g} is not a multiple of the SCS ({numerology.scs_hz:g} Hz)"
        )
    k = np.arange(SSB_N_SUBCARRIERS) - SSB_CENTER_SUBCARRIER + int(round(off))
    half = numerology.fft_size // 2
    if k.min() < -half or k.max() >= half:
        raise ValueError(
            f"SSB at ssb_offset_hz={ssb_offset_hz:g} does not fit in the captured band "
            f"(+-{numerology.sample_rate_hz / 2 / 1e6:g} MHz)"
        )
    return k % numerology.fft_size


def ofdm_modulate(freq_symbols: np.ndarray, cp_lengths: np.ndarray) -> np.ndarray:
    """OFDM-modulate full-FFT frequency-domain symbols with a unitary IFFT.

    Parameters
    ----------
    freq_symbols : ndarray, shape (n_symbols, fft_size), complex
        Bin ``b`` holds the RE at frequency ``b * scs`` (``b >= fft_size/2`` are
        negative frequencies), i.e. numpy FFT order.
    cp_lengths : ndarray, shape (n_symbols,), int

    Returns
    -------
    ndarray, shape (sum(cp_lengths) + n_symbols * fft_size,), complex64
        With the unitary IFFT, per-RE power equals per-sample power of white
        noise (the convention of DESIGN.md §3).
    """
    x = np.asarray(freq_symbols)
    n_sym, n_fft = x.shape
    cp = np.asarray(cp_lengths, dtype=np.int64)
    if cp.shape != (n_sym,):
        raise ValueError(f"cp_lengths must have shape ({n_sym},), got {cp.shape}")
    t = np.fft.ifft(x, axis=1, norm="ortho").astype(np.complex64)  # (n_sym, n_fft)
    lengths = cp + n_fft
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    total = int(lengths.sum())
    sym_of = np.repeat(np.arange(n_sym), lengths)  # (total,)
    pos = np.arange(total) - starts[sym_of]  # position inside symbol incl. CP
    col = (pos - cp[sym_of]) % n_fft  # CP samples wrap to the tail
    return t[sym_of, col]


def ofdm_demodulate(
    x: np.ndarray, starts: np.ndarray, cp_lengths: np.ndarray, fft_size: int, cp_fraction: float = 0.5
) -> np.ndarray:
    """FFT of the useful part of each symbol (unitary), with a CP back-off.

    The FFT window starts ``cp_fraction * cp`` samples after the CP start of each
    symbol and the resulting linear phase is removed, so a channel shorter than
    the back-off gives the same REs as ``cp_fraction = 1``.

    Parameters
    ----------
    x : ndarray, shape (n_samples,), complex
    starts : ndarray, shape (n_symbols,), int; CP start of each symbol
    cp_lengths : ndarray, shape (n_symbols,), int
    fft_size : int

    Returns
    -------
    ndarray, shape (n_symbols, fft_size), complex64, numpy FFT bin order.
    """
    starts = np.asarray(starts, dtype=np.int64)
    cp = np.asarray(cp_lengths, dtype=np.int64)
    backoff = np.round(cp * (1.0 - cp_fraction)).astype(np.int64)  # samples before the CP end
    first = starts + cp - backoff
    idx = first[:, None] + np.arange(fft_size)[None, :]
    if idx.min() < 0 or idx.max() >= len(x):
        raise ValueError("symbol window outside the waveform")
    y = np.fft.fft(np.asarray(x)[idx], axis=1, norm="ortho")
    # starting `backoff` samples early multiplies bin b by exp(-j 2 pi b backoff / N); undo it
    b = np.fft.fftfreq(fft_size, 1.0 / fft_size)
    y *= np.exp(2j * np.pi * np.outer(backoff, b) / fft_size)
    return y.astype(np.complex64)
