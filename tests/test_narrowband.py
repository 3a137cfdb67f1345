"""A strong narrowband jammer from the first sample must not hide the cell."""
import dataclasses

import numpy as np
import pytest

from detector import dsp
from detector.model import DTDDNNDetector
from detector.pipeline import ScoringPipeline
from signals.simulate import SimConfig, draw_params, simulate_capture


def _cw_capture(seed, sjnr_db):
    cfg = SimConfig(snr_db=(25.0, 25.0), datatypes=("cf32_le",), duration_ms=20.0,
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    rng = np.random.default_rng(seed)
    p = draw_params(cfg, rng, force_clean=True)
    return simulate_capture(dataclasses.replace(p, jammer={"type": "cw", "sjnr_db": sjnr_db}), rng)


@pytest.mark.parametrize("seed", [101, 103, 104])
def test_strong_cw_from_the_start_is_found_and_called_jammed(seed):
    cap = _cw_capture(seed, -4.0)
    p = cap.params
    pipe = ScoringPipeline(p.sample_rate_hz, p.center_freq_hz, p.datatype, detector=DTDDNNDetector(None))
    recs = pipe.push(cap.iq) + pipe.flush()
    assert recs, "the cell was not found under the tone"
    assert all(r["pci"] == p.pci for r in recs)
    assert all(r["jammed"] for r in recs)


def test_excise_tones_zeroes_a_tone_and_leaves_noise():
    rng = np.random.default_rng(0)
    n = 4096
    y = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    Y = np.fft.fft(y)
    mask = np.ones(n, np.float32)
    assert dsp.excise_tones(Y, mask) is Y  # white noise: nothing stands out
    Y2 = Y.copy()
    Y2[100] += 1e4 * np.sqrt(n)
    out = dsp.excise_tones(Y2, mask)
    assert out[100] == 0 and np.count_nonzero(out == 0) == 1
    mask[100] = 0  # outside the mask: left alone
    assert dsp.excise_tones(Y2, mask) is Y2


def test_suppress_tones_grid_only_touches_outliers():
    rng = np.random.default_rng(1)
    g = ((rng.standard_normal((4, 240)) + 1j * rng.standard_normal((4, 240))) / np.sqrt(2)).astype(np.complex64)
    assert dsp.suppress_tones_grid(g) is g
    g2 = g.copy()
    g2[2, 77] = 100.0
    out = dsp.suppress_tones_grid(g2)
    assert out[2, 77] == 0 and np.array_equal(np.delete(out.ravel(), 2 * 240 + 77), np.delete(g2.ravel(), 2 * 240 + 77))
