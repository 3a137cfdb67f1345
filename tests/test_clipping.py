"""ADC clipping: found in the SSB windows, reported, and its distortion taken as a known floor."""
import dataclasses

import numpy as np
import pytest

from detector import dsp
from detector.pipeline import ScoringPipeline
from signals.simulate import SimConfig, draw_params, simulate_capture


def _gauss(n, sigma, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((1, n)) + 1j * rng.standard_normal((1, n))) * sigma


@pytest.mark.parametrize("backoff_db", [1.0, 3.0, 6.0])
def test_clip_stats_and_distortion_of_a_clipped_gaussian(backoff_db):
    x = _gauss(200_000, 10 ** (-backoff_db / 20) / np.sqrt(2), 1)
    y = (np.clip(x.real, -1, 1) + 1j * np.clip(x.imag, -1, 1)).astype(np.complex64)
    frac, rail = dsp.clip_stats(y)
    true_frac = np.mean(np.abs(np.stack([x.real, x.imag])) >= 1)
    assert frac[0] == pytest.approx(true_frac, rel=1e-3) and rail[0] == 1.0
    # the Bussgang residual: what a linear (channel) fit leaves of the limiter's output
    alpha = np.vdot(x, y) / np.vdot(x, x)
    assert dsp.clip_distortion_power(frac, rail)[0] == pytest.approx(np.mean(np.abs(y - alpha * x) ** 2), rel=0.1)


def test_no_rail_without_clipping():
    x = _gauss(20_000, 0.1, 2)
    assert dsp.clip_stats(x.astype(np.complex64))[0][0] == 0.0
    # integers of a weak signal (sigma 1 LSB of int16) repeat their peak value: not a rail
    q = np.round(_gauss(20_000, 1.0, 3).real) + 1j * np.round(_gauss(20_000, 1.0, 4).real)
    xq = (q / 32768).astype(np.complex64)
    assert dsp.clip_stats(xq)[0][0] > 0  # without the floor on the rail it would be taken for one
    assert dsp.clip_stats(xq, min_rail=64 / 32768)[0][0] == 0.0
    # two's complement rails are asymmetric: ci8 at -128 and +127
    big = _gauss(20_000, 200.0, 5)
    c8 = (np.clip(np.round(big.real), -128, 127) + 1j * np.clip(np.round(big.imag), -128, 127)) / 128
    frac, rail = dsp.clip_stats(c8.astype(np.complex64), min_rail=64 / 128)
    assert frac[0] == pytest.approx(np.mean(np.abs(np.stack([big.real, big.imag])) >= 127.5), rel=0.05)
    assert dsp.clip_distortion_power(np.zeros(1), np.zeros(1))[0] == 0.0


def test_clipped_clean_recording_is_reported_and_not_called_jammed(monkeypatch, guard_detector):
    # an 8-bit recording whose gain puts its loudest symbols 1 dB under full scale: 2-8 %
    # of the SSB windows' I/Q at the rails. Its distortion on the null REs read as jamming
    cfg = SimConfig(snr_db=(20.0, 40.0), duration_ms=20.0, datatypes=("ci16_le", "ci8"), int_backoff_db=(1.0, 1.0),
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    rng = np.random.default_rng([4, 9])
    p = draw_params(cfg, rng, force_clean=True)
    cap = simulate_capture(p, rng)
    assert p.datatype == "ci8" and cap.n_clipped > 0
    det = guard_detector

    def run():
        pipe = ScoringPipeline(p.sample_rate_hz, p.center_freq_hz, p.datatype, detector=det)
        recs = pipe.push(cap.iq) + pipe.flush()
        return recs, pipe

    recs, pipe = run()
    assert recs and all(r["pci"] == p.pci for r in recs)
    assert all(r.get("clipped", 0) > 0.01 for r in recs) and pipe.stats["clipped"] == len(recs)
    assert not any(r["jammed"] for r in recs)
    # the same without the clipping floor: jammed verdicts
    monkeypatch.setattr(dsp, "clip_distortion_power", lambda f, r: np.zeros(np.shape(f)))
    recs0, _ = run()
    assert sum(r["jammed"] for r in recs0) >= 1
