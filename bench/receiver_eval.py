"""Receiver and detector accuracy on simulated captures.

    python bench/receiver_eval.py pci   [--n 40] [--seed 1]   # right PCI at SNR >= 0 dB
    python bench/receiver_eval.py detect [--sites 24] [--seed 2] [--model classical|default|PATH]  # calibrated Pd / FAR
    python bench/receiver_eval.py rates  [--n 12] [--model ...] [--rates 19.5,20,25,50]  # odd sample rates (resampled, Msps): PCI, false alarms
    python bench/receiver_eval.py weak --sites 8 --seed 12 [--snr -3,0,3,6] [--model ...]  # weak cells: FAR
    python bench/receiver_eval.py cfo [--n 4] [--seed 7] [--cfo 0,5000,10000,-12000] [--rate 122.88e6]  # SDR frequency errors
    python bench/receiver_eval.py drift [--sites 24] [--seed 4] [--model ...] [--drifts=-3,0,3,6]  # FAR when the noise floor moves
    python bench/receiver_eval.py beams [--sites 8] [--seed 5] [--model ...]  # SSB beam sweeps: FAR, Pd
    python bench/receiver_eval.py fading [--sites 8] [--seed 11] [--doppler 100,300] [--ms 300] [--jammers]
        # a moving receiver: FAR (and Pd) under TDL fading with Doppler; --no-fade-guard for the guard off
    python bench/receiver_eval.py mistimed [--sites 6] [--seed 13] [--offsets=-6,-4,-3,-2,-1,1,2,4,6] [--power=-20,-3]
            [--calibrated]
        # clean sites with a co-channel cell that many CPs early (-) / late (+): uncalibrated
        # SSBs jammed by the band-excess rule alone and by the whole pipeline (shipped model);
        # --calibrated: each site calibrated with its neighbour, FAR and Pd over the jammer library
    python bench/receiver_eval.py novel [--sites 8] [--seed 31] [--sir 5,15,25]
        # jammers outside the simulator's library (narrowband QPSK, unsynchronised OFDM, frequency
        # hopping, a slow chirp, impulses, an AM tone): Pd per signal-to-jammer ratio, both modes
    python bench/receiver_eval.py protocol [--sites 6] [--seed 41] [--sir 5,15,25]
        # protocol-aware jammers that know the SSB's timing (noise on the PSS's subcarriers, on
        # the PSS symbol, on the PBCH symbols; tones on the PBCH-DMRS): the same figures
    python bench/receiver_eval.py periods [--sites 8] [--seed 3] [--periods 20,40,80,160]
        # clean cells whose SSB period is longer than the flywheel's 20 ms: right PCI, false alarms
    python bench/receiver_eval.py transient [--sites 12] [--seed 77]
        # clean recordings that start while the receiver settles (decaying DC, an AGC step, a
        # gain ramp, leading zeros) over their first SSB: SSBs jammed
    python bench/receiver_eval.py nbcfo [--n 40] [--seed 5]
        # the CFO error with a co-timed neighbour 6 dB down (another N_ID2 or the cell's) and without
        # it: the cell search's on 1 ms recordings, the tracked one over 20 ms
    python bench/receiver_eval.py shortdc [--sites 24] [--seed 1]
        # 1 ms recordings at 7.68 Msps of a loaded cell whose SSB is on the capture centre, with a
        # receiver DC offset of none, -35, -30, -25 dBc: SSBs jammed, uncalibrated
    python bench/receiver_eval.py dense [--n 80] [--seed 77]
        # one cell search over 22.4 ms of five co-timed cells within ~6 dB: a cell on the air,
        # one not on the air, or none
    python bench/receiver_eval.py alone [--n 45] [--seed 55]
        # one cell search over a jammer alone (the nine types in turn, 15 dB over the noise, the
        # cell 20 dB under it): the cells it yields (a fake SSB's PCI is one on the air)
    python bench/receiver_eval.py realjam [--n 2] [--sir 5,10,15,20,25]
        # the over-the-air captures of ../shared/real-captures with each jammer of the library
        # added at an SJNR on their SSB (the simulator's definition): SSBs jammed, uncalibrated
        # and calibrated on the clean capture (shipped model unless --model)
    python bench/receiver_eval.py kssb [--sites 12] [--seed 42] [--snr 35,40]
        # clean 30 kHz cells whose traffic lies half a subcarrier off the SSB's grid (k_SSB odd,
        # TS 38.211 7.4.3.1), uncalibrated: SSBs jammed with and without the receiver's fit of its
        # leakage (dsp.OFFGRID_BINS), grids at the input rate and at the SSB rate
    python bench/receiver_eval.py analog [--sites 12] [--seed 7] [--cutoffs 0.85,0.7,0.65]
        # clean 30.72 Msps cells through a receiver whose analog lowpass (5th-order Butterworth,
        # I and Q alike) ends short of Nyquist, its ADC's noise 30 dB under the receiver's after
        # it: SSBs jammed uncalibrated and at a site calibrated through the same receiver
    python bench/receiver_eval.py partial [--sites 4] [--seed 14] [--ms 100]
        # the uncalibrated band-excess rule's partial-symbol gate on streams, the rules alone:
        # clean sites beside an unsynchronised neighbour 20-40 CPs off, and pulsed SSB-band noise:
        # SSBs jammed with the gate, without its steadiness test, without it
    python bench/receiver_eval.py onset [--sites 24] [--seed 1] [--sir=-10,0,10] [--agc]
        # a jammer that comes on and goes off during a stream (200 ms clean, 400 ms jammed, 200 ms
        # clean), no baseline, at one receiver gain or each part level-set as by an AGC: SSBs
        # jammed per type and SJNR, in the clean parts, with 2.5 ms of samples dropped and with
        # the cell off the air
    python bench/receiver_eval.py strong [--sites 12] [--seed 1] [--pin]
        # jammers from the first sample at SJNR -10..-3 dB, no baseline: SSBs without a record
        # (no cell found) and jammed, per type; --pin: the search pinned to the SSB (--ssb-freq)
    python bench/receiver_eval.py cells [--sites 8] [--seed 1] [--extra 1] [--power=-9,-3]
        # a synchronised TDD network: the serving cell, the simulator's co-timed neighbour and
        # --extra more co-timed cells (other PCIs, own channels, --power dB under the serving
        # cell): right PCI, FAR and Pd (a jammer 8 dB under the SNR) uncalibrated and calibrated

    python bench/receiver_eval.py iqimage [--sites 24] [--seed 77] [--images=-20,-25,-30]
        # clean cells through a receiver's IQ imbalance image: SSBs called jammed with the
        # receiver's image removal and without it

    python bench/receiver_eval.py cotimed [--n 300] [--seed 900] [--power=-1,1]
        # 1 ms recordings (one SSB) of a cell and a co-timed neighbour about as loud,
        # uncalibrated: records of a cell on the air and clean, none, another PCI, jammed

    python bench/receiver_eval.py loaded [--sites 16] [--seed 1] [--power=-15,-3] [--cal-ms 200]
        # an unsynchronised neighbour cell (FDD) carrying traffic, which falls on the serving
        # SSB's null REs: FAR per its level and Pd (a jammer 8 dB under the SNR), calibrated on a
        # recording with the neighbour in it, and uncalibrated

    python bench/receiver_eval.py field [--sites 24] [--seed 1] [--cal-ms 400] [--ms 100]
        # the field mix (configs/sim-train-field.yaml) calibrated on --cal-ms of clean recording
        # (another gain, the floor moved +-3 dB): FAR on a clean --ms recording (apart at the
        # sites with an unsynchronised neighbour), Pd at SJNR 15-30 dB (jammer types in turn),
        # calibrated and uncalibrated

    python bench/receiver_eval.py network [--sites 12] [--seed 7] [--count 2,3]
        # sites of the simulator's co-timed neighbour cells (neighbour.count of them, -9..-3 dB,
        # each on its own TDL channel), calibrated on one 40 ms recording: the neighbours the
        # baseline lists, calibrated FAR on another recording, Pd (a jammer 8 dB under the SNR)

Reports figures; asserts nothing (tests/ holds the assertions).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from detector.baseline import NOISE_FLOOR_DRIFT_DB, SiteBaseline
from detector.pipeline import ScoringPipeline, config_baseline, load_detector
from signals.jammers import ssb_symbol_gate
from signals.simulate import JAMMER_TYPES, NeighbourConfig, SimConfig, draw_params, simulate_capture


def run_capture(cap, *, baseline=None, fs=None, iq=None, block=1 << 16, detector=None, receiver_config=None):
    p = cap.params
    kw = {} if receiver_config is None else {"receiver_config": receiver_config}
    pipe = ScoringPipeline(fs or p.sample_rate_hz, p.center_freq_hz, p.datatype, baseline=baseline,
                           detector=detector, **kw)
    x = cap.iq if iq is None else iq
    recs = []
    for i in range(0, x.size, block):
        recs += pipe.push(x[i : i + block])
    recs += pipe.flush()
    return recs, pipe


def match(recs, truth, tol, scale=1.0):
    """(truth SSB, its record or None) for each SSB of ``truth``: the SSB's own
    record, else the no-cell record (a calibrated site's cell search that found no
    cell, ``"no_cell"``) whose search block holds it -- what an operator sees for it."""
    out = []
    for t in truth:
        r = [r for r in recs if not r.get("no_cell") and abs(r["sample"] * scale - t.sample_start) <= tol]
        if not r:
            r = [r for r in recs if r.get("no_cell")
                 and r["sample"] <= t.sample_start / scale < r["sample"] + r["block_samples"]]
        out.append((t, r[0] if r else None))
    return out


def site_baseline(obs, scs_khz, sample_rate_hz, datatype, ssb_freq_hz, center_freq_hz, detector=None):
    """The SiteBaseline ``ssbwatch calibrate`` learns from a site's clean
    observations, with the SSB's frequency (and offset from the recording's centre)
    that its calibration saw: at such a site a cell search that finds no cell is a
    jammed verdict (pipeline.ScoringPipeline._no_cell_records); with the DT-DDNN
    ``detector`` it will be scored with, that model's scores of these clean SSBs
    (pipeline.site_clean_scores), as calibrate keeps them."""
    cb = config_baseline(obs, scs_khz, sample_rate_hz, datatype, ssb_freq_hz=ssb_freq_hz,
                         ssb_offset_hz=None if ssb_freq_hz is None or center_freq_hz is None
                         else ssb_freq_hz - center_freq_hz, detector=detector)
    return SiteBaseline({cb.key: cb})


def eval_pci(n, seed):
    cfg = SimConfig(
        snr_db=(0.0, 30.0),
        multipath=dataclasses.replace(SimConfig().multipath, probability=1.0),
        neighbour=NeighbourConfig(probability=1.0, power_db=(-3.0, -3.0)),
        jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0),
    )
    tot = right = found = 0
    bad = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        p = draw_params(cfg, rng, force_clean=True)
        cap = simulate_capture(p, rng)
        recs, _ = run_capture(cap)
        for t, r in match(recs, cap.ssbs, tol=p.numerology.cp_short):
            tot += 1
            found += r is not None
            ok = r is not None and r["pci"] == t.pci
            right += ok
            if not ok:
                bad.append((i, p.scs_khz, p.sample_rate_hz / 1e6, round(t.snr_db, 1), r and r["pci"], t.pci))
    print(f"PCI: {right}/{tot} SSBs right ({100 * right / max(tot, 1):.2f} %), {found} observed; "
          f"SNR 0-30 dB, CFO +-2 kHz, TDL multipath, neighbour at -3 dB")
    for b in bad[:10]:
        print("  miss: capture %d, %d kHz, %.2f Msps, SNR %.1f dB, got %s want %s" % b)


def eval_rates(n, seed, model="classical", rates_hz=(19.5e6, 20e6, 25e6, 50e6)):
    det = load_detector(model)
    cfg = SimConfig(sample_rates_hz=(30.72e6,), jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0),
                    snr_db=(5.0, 30.0))
    for odd in rates_hz:
        tot = right = tot_in = right_in = 0
        jammed = wrong = 0  # records (clean captures): called jammed; of a PCI not on air
        for i in range(n):
            rng = np.random.default_rng([seed, i])
            p = draw_params(cfg, rng, force_clean=True)
            cap = simulate_capture(p, rng)
            from fractions import Fraction

            fr = Fraction(odd / p.sample_rate_hz).limit_denominator(1000)
            iq = resample_poly(cap.iq, fr.numerator, fr.denominator).astype(np.complex64)
            recs, _ = run_capture(cap, fs=odd, iq=iq, detector=det)
            jammed += sum(r["jammed"] is True for r in recs)
            wrong += sum(r["pci"] is not None and r["pci"] != p.pci for r in recs)
            # a lower rate keeps only +-odd/2 (resample_poly's filter passes ~90 % of it): an
            # SSB placed further off-centre at 30.72 Msps is no longer in the recording
            in_band = abs(p.ssb_offset_hz) + 120 * p.scs_khz * 1e3 <= 0.45 * odd
            for t, r in match(recs, cap.ssbs, tol=p.numerology.cp_short, scale=p.sample_rate_hz / odd):
                ok = r is not None and r["pci"] == t.pci
                tot += 1
                right += ok
                tot_in += in_band
                right_in += ok and in_band
        print(f"{odd / 1e6:g} Msps (resampled from 30.72, {det.name}): right PCI at {right}/{tot} SSBs; "
              f"{right_in}/{tot_in} of those whose SSB band is still inside the resampled band; "
              f"records called jammed {jammed}, of another PCI {wrong}")


def eval_cfo(n, seed, cfos_hz, model="default", rate_hz=None):
    """Clean 40 ms captures (SNR 10-30 dB, every sample rate, SSB on the raster;
    or at ``rate_hz`` with the SSB off-centre) received with a frequency error an
    SDR's crystal makes (ppm x carrier: 2 ppm at 3.5 GHz is 7 kHz): right PCI and
    false alarms per CFO and SCS."""
    det = load_detector(model)
    extra = {} if rate_hz is None else {"sample_rates_hz": (rate_hz,), "centre_ssb_fraction": 0.0}
    for cfo in cfos_hz:
        for scs in (15, 30):
            cfg = SimConfig(snr_db=(10.0, 30.0), scs_khz=(scs,), cfo_hz=(cfo, cfo), duration_ms=40.0,
                            jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0), **extra)
            tot = right = jam = 0
            for i in range(n):
                rng = np.random.default_rng([seed, i])
                p = draw_params(cfg, rng, force_clean=True)
                cap = simulate_capture(p, rng)
                recs, _ = run_capture(cap, detector=det)
                for t, r in match(recs, cap.ssbs, tol=p.numerology.cp_short):
                    tot += 1
                    right += r is not None and r["pci"] == t.pci
                    jam += r is not None and bool(r["jammed"])
            print(f"CFO {cfo:+7.0f} Hz, {scs} kHz SCS: right PCI at {right}/{tot} SSBs, {jam} called jammed")


def eval_weak(n_sites, seed, snrs_db, model="default"):
    """A receiver at the edge of the cell's coverage: clean 60 ms captures at a low
    SNR (default mix otherwise), FAR uncalibrated and at a site calibrated on
    another clean recording at the same SNR, per SNR."""
    det = load_detector(model)
    for snr in snrs_db:
        cfg = SimConfig(snr_db=(snr, snr), duration_ms=60.0,
                        jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
        fa = {"uncalibrated": [0, 0], "calibrated": [0, 0]}
        for i in range(n_sites):
            rng = np.random.default_rng([seed, i])
            p = draw_params(cfg, rng, force_clean=True)
            obs = _observations(simulate_capture(p, np.random.default_rng([seed, i, 1])))
            base = None
            if len(obs) >= 5:
                base = site_baseline(obs, p.scs_khz, p.sample_rate_hz, p.datatype, p.ssb_freq_hz, p.center_freq_hz,
                                     detector=det)
            _count_far(simulate_capture(p, rng), base, det, fa)
        print(f"SNR {snr:+5.1f} dB, {n_sites} sites, clean: " + ", ".join(
            f"{m} FAR {a}/{n} = {100 * a / max(n, 1):.1f} %" for m, (a, n) in fa.items()))


def _score_jammers(site, base, det, seed, s, per_type, above=None):
    """Site ``s`` jammed by each jammer type in turn (SJNR -5..20 dB, under its SNR),
    scored with ``base``: per_type[type] += [detected, jammed SSBs]; ``above``, when
    given, counts the same for the SSBs whose jammer stands at least
    NOISE_FLOOR_DRIFT_DB over the noise (the simulator's JNR of that SSB; the floor
    move a calibrated site takes as clean)."""
    for j, jt in enumerate(JAMMER_TYPES):
        p = dataclasses.replace(site, jammer={"type": jt, "sjnr_db": float(
            np.random.default_rng([seed, s, j]).uniform(-5.0, min(20.0, site.snr_db - 1.0)))})
        cap = simulate_capture(p, np.random.default_rng([seed, s, 300 + j]))
        recs, _ = run_capture(cap, baseline=base, detector=det)
        for t, r in match(recs, cap.ssbs, tol=site.numerology.cp_short):
            if t.jammed:
                counts = [per_type[jt]]
                if above is not None and t.jnr_db >= NOISE_FLOOR_DRIFT_DB:
                    counts.append(above[jt])
                for c in counts:
                    c[1] += 1
                    c[0] += bool(r is not None and r["jammed"])


def eval_detect(n_sites, seed, n_cal=3, model="classical"):
    """Per site: calibrate on clean captures, then score clean and jammed ones
    with the classical detector or a DT-DDNN model ("default": the shipped one)."""
    det = load_detector(model)
    base_cfg = SimConfig(snr_db=(20.0, 35.0), jamming=dataclasses.replace(SimConfig().jamming, sjnr_db=(-5.0, 20.0),
                                                                         low_fraction=0.0, low_sjnr_below_db=-5.0))
    per_type = defaultdict(lambda: [0, 0])
    above = defaultdict(lambda: [0, 0])
    fa = [0, 0]
    for s in range(n_sites):
        rng = np.random.default_rng([seed, s])
        site = draw_params(base_cfg, rng, force_clean=True)
        # calibration captures: same site, other noise/traffic realisations
        obs = []
        for k in range(n_cal):
            cap = simulate_capture(dataclasses.replace(site), np.random.default_rng([seed, s, 100 + k]))
            obs += _observations(cap)
        if len(obs) < 5:
            continue
        base = site_baseline(obs, site.scs_khz, site.sample_rate_hz, site.datatype, site.ssb_freq_hz,
                             site.center_freq_hz, detector=det)  # as ssbwatch calibrate
        # clean test capture
        cap = simulate_capture(dataclasses.replace(site), np.random.default_rng([seed, s, 200]))
        recs, _ = run_capture(cap, baseline=base, detector=det)
        for t, r in match(recs, cap.ssbs, tol=site.numerology.cp_short):
            if r is not None:
                fa[0] += bool(r["jammed"])
                fa[1] += 1
        _score_jammers(site, base, det, seed, s, per_type, above)
    print(f"calibrated {det.name} detector, SNR 20-35 dB, SJNR -5..20 dB, {n_sites} sites:")
    print(f"  FAR {fa[0]}/{fa[1]} = {100 * fa[0] / max(fa[1], 1):.2f} %")
    print(f"  {'':20s} {'all':>18s}   jammer >= {NOISE_FLOOR_DRIFT_DB:g} dB over the noise")
    tot, tot_a = [0, 0], [0, 0]
    for jt, (d, n) in per_type.items():
        da, na = above[jt]
        tot[0] += d
        tot[1] += n
        tot_a[0] += da
        tot_a[1] += na
        print(f"  {jt:20s} Pd {d:4d}/{n:<4d} = {100 * d / max(n, 1):5.1f} %   {da:4d}/{na:<4d} = {100 * da / max(na, 1):5.1f} %")
    print(f"  all jammers: Pd {100 * tot[0] / max(tot[1], 1):.2f} %; at >= {NOISE_FLOOR_DRIFT_DB:g} dB over the noise "
          f"{100 * tot_a[0] / max(tot_a[1], 1):.2f} %")


def _calibrated_sites(n_sites, seed, detector=None, **cfg_changes):
    """(site params, its SiteBaseline) per site of the training mix
    (configs/sim-train.yaml, 20 ms, SNR clipped to 12-39 dB, ``cfg_changes`` on the
    config), calibrated on one clean recording as ``ssbwatch calibrate`` does; sites
    with fewer than five valid SSBs are left out."""
    from signals.config import load_yaml

    cfg = load_yaml(Path(__file__).resolve().parents[1] / "configs" / "sim-train.yaml", SimConfig)
    cfg = dataclasses.replace(cfg, duration_ms=20.0, **cfg_changes)
    for s in range(n_sites):
        site = draw_params(cfg, np.random.default_rng([seed, s]), force_clean=True)
        site = dataclasses.replace(site, snr_db=float(np.clip(site.snr_db, 12.0, 39.0)))
        obs = _observations(simulate_capture(site, np.random.default_rng([seed, s, 100])))
        if len(obs) < 5:
            continue
        yield s, site, site_baseline(obs, site.scs_khz, site.sample_rate_hz, site.datatype, site.ssb_freq_hz,
                                     site.center_freq_hz, detector=detector)


DRIFTS_DB = (-3.0, 0.0, 1.0, 2.0, 2.5, 3.0, 4.0, 6.0)


def eval_drift(n_sites, seed, model="default", drifts_db=DRIFTS_DB):
    """False alarms of a calibrated site whose noise floor moves between the
    calibration recording and a later clean one (another SDR gain stage, AGC, the
    cell's path on another day): per site of the training mix (configs/sim-train.yaml:
    traffic, neighbours, impairments, every datatype; SNR 12-39 dB), calibrate on one
    clean 20 ms recording, then score clean recordings whose SNR is d dB lower
    (noise floor d dB higher relative to the cell) for each d of ``drifts_db``."""
    det = load_detector(model)
    fa = {d: [0, 0] for d in drifts_db}
    for s, site, base in _calibrated_sites(n_sites, seed, detector=det):
        for d in drifts_db:
            cap = simulate_capture(dataclasses.replace(site, snr_db=site.snr_db - d),
                                   np.random.default_rng([seed, s, 200]))
            recs, _ = run_capture(cap, baseline=base, detector=det)
            for t, r in match(recs, cap.ssbs, tol=site.numerology.cp_short):
                if r is not None and r["valid"]:
                    fa[d][0] += bool(r["jammed"])
                    fa[d][1] += 1
    print(f"calibrated {det.name} detector, {n_sites} sites of the training mix (SNR 12-39 dB): FAR of clean "
          f"SSBs when the noise floor is d dB higher (relative to the cell) than at calibration")
    for d, (a, n) in fa.items():
        print(f"  d = {d:+5.1f} dB: FAR {a}/{n} = {100 * a / max(n, 1):.2f} %")


WEAKER_DB = (0.0, 2.0, 4.0, 6.0, 10.0)


def eval_weaker(n_sites, seed, model="default", weaker_db=WEAKER_DB, jnr_db=0.0):
    """A calibrated site whose receiver keeps its gain (an SDR set by hand) while the cell's
    path changes: per site of the training mix (configs/sim-train.yaml; SNR 12-39 dB; stored
    as cf32 at one gain), calibrate on one clean 20 ms recording, then score recordings in
    which the cell is d dB weaker over the same absolute noise floor (simulated d dB under its
    SNR, then scaled down d dB), for each d of ``weaker_db``: clean (FAR) and with a barrage
    that raises the floor by ``jnr_db``'s JNR (Pd)."""
    det = load_detector(model)
    fa = {d: [0, 0] for d in weaker_db}
    pd = {d: [0, 0] for d in weaker_db}
    for s, site, base in _calibrated_sites(n_sites, seed, det, datatypes=("cf32_le",), cf32_gain_db=(0.0, 0.0)):
        for d in weaker_db:
            snr = site.snr_db - d
            sjnr = snr - 10 * np.log10(1 + 10 ** (jnr_db / 10))
            for jam, tally in ((None, fa[d]), ({"type": "barrage", "sjnr_db": float(sjnr)}, pd[d])):
                cap = simulate_capture(dataclasses.replace(site, snr_db=snr, jammer=jam),
                                       np.random.default_rng([seed, s, 200]))
                iq = (cap.iq * np.float32(10 ** (-d / 20))).astype(np.complex64)  # the floor back where it was
                recs, _ = run_capture(cap, baseline=base, detector=det, iq=iq)
                for t, r in match(recs, cap.ssbs, tol=site.numerology.cp_short):
                    if r is not None and r["valid"]:
                        tally[0] += bool(r["jammed"])
                        tally[1] += 1
    print(f"calibrated {det.name} detector, {n_sites} sites of the training mix (SNR 12-39 dB, cf32 at one gain): "
          f"the cell d dB weaker than at calibration over the same absolute noise floor")
    for d in weaker_db:
        (a, n), (j, m) = fa[d], pd[d]
        print(f"  d = {d:4.1f} dB: FAR {a}/{n} = {100 * a / max(n, 1):.2f} %; with a barrage at JNR {jnr_db:g} dB "
              f"Pd {j}/{m} = {100 * j / max(m, 1):.1f} %")


def _count_far(cap, base, det, fa):
    """Score clean capture ``cap`` with the baseline (when there is one) and
    without: fa["calibrated" | "uncalibrated"] += [jammed, valid SSBs]."""
    for mode, b in (("calibrated", base), ("uncalibrated", None)):
        if mode == "calibrated" and b is None:
            continue
        recs, _ = run_capture(cap, baseline=b, detector=det)
        for t, r in match(recs, cap.ssbs, tol=cap.params.numerology.cp_short):
            if r is not None and r["valid"]:
                fa[mode][0] += bool(r["jammed"])
                fa[mode][1] += 1


def eval_beams(n_sites, seed, model="default", spread_db=20.0, n_cal=6):
    """A gNB sweeping its 8 SSBs over beams received 0..-spread_db apart (SNR 20-35 dB
    for the mean): per site calibrate on n_cal clean 100 ms recordings (>= 16 SSBs of
    each index: the baseline keeps per-index levels), then score a clean one
    (calibrated and uncalibrated FAR) and one per jammer type (SJNR -5..20 dB)."""
    det = load_detector(model)
    cfg = SimConfig(snr_db=(20.0, 35.0), duration_ms=100.0, l_max=(8,), all_ssbs_fraction=1.0, period_ms=(20.0,),
                    beam_probability=1.0, beam_spread_db=spread_db, neighbour=NeighbourConfig(probability=0.0))
    fa = {"calibrated": [0, 0], "uncalibrated": [0, 0]}
    pd = defaultdict(lambda: [0, 0])
    for s in range(n_sites):
        site = draw_params(cfg, np.random.default_rng([seed, s]), force_clean=True)
        obs = []
        for k in range(n_cal):
            obs += _observations(simulate_capture(dataclasses.replace(site), np.random.default_rng([seed, s, 100 + k])))
        base = site_baseline(obs, site.scs_khz, site.sample_rate_hz, site.datatype, site.ssb_freq_hz,
                             site.center_freq_hz, detector=det)  # as ssbwatch calibrate
        cap = simulate_capture(dataclasses.replace(site), np.random.default_rng([seed, s, 200]))
        _count_far(cap, base, det, fa)
        _score_jammers(site, base, det, seed, s, pd)
    print(f"{det.name} detector, {n_sites} sites, 8 SSB beams 0..-{spread_db:g} dB, SNR 20-35 dB, "
          f"calibration {n_cal} x 100 ms:")
    for mode, (a, n) in fa.items():
        print(f"  {mode:12s} FAR {a}/{n} = {100 * a / max(n, 1):.2f} %")
    tot = [sum(v[0] for v in pd.values()), sum(v[1] for v in pd.values())]
    print("  calibrated Pd, SJNR -5..20 dB: " + ", ".join(f"{jt} {d}/{n}" for jt, (d, n) in pd.items())
          + f"; all {100 * tot[0] / max(tot[1], 1):.1f} %")


def eval_fading(n_sites, seed, dopplers, duration_ms=300.0, jammers=False, model="default"):
    """A receiver that moves: per site (TDL channel with maximum Doppler fd, SNR
    25-45 dB, no neighbour) calibrate on 2 clean recordings of duration_ms at the
    same Doppler, then score a third (calibrated and uncalibrated FAR) and, with
    ``jammers``, one per jammer type (calibrated Pd)."""
    from signals.simulate import MultipathConfig

    det = load_detector(model)
    for fd in dopplers:
        cfg = SimConfig(snr_db=(25.0, 45.0), duration_ms=duration_ms, neighbour=NeighbourConfig(probability=0.0),
                        multipath=MultipathConfig(probability=1.0, doppler_hz=(fd, fd)))
        fa = {"calibrated": [0, 0], "uncalibrated": [0, 0]}
        pd = defaultdict(lambda: [0, 0])
        for s in range(n_sites):
            site = draw_params(cfg, np.random.default_rng([seed, s]), force_clean=True)
            obs = []
            for k in range(2):
                obs += _observations(simulate_capture(dataclasses.replace(site), np.random.default_rng([seed, s, 100 + k])))
            if len(obs) < 5:
                continue
            base = site_baseline(obs, site.scs_khz, site.sample_rate_hz, site.datatype, site.ssb_freq_hz,
                                 site.center_freq_hz, detector=det)  # as ssbwatch calibrate
            cap = simulate_capture(dataclasses.replace(site), np.random.default_rng([seed, s, 200]))
            _count_far(cap, base, det, fa)
            if jammers:
                _score_jammers(site, base, det, seed, s, pd)
        line = (f"Doppler {fd:g} Hz, {n_sites} sites, SNR 25-45 dB, {duration_ms:g} ms: FAR calibrated "
                + ", uncalibrated ".join(f"{a}/{n} = {100 * a / max(n, 1):.2f} %" for a, n in fa.values()))
        if jammers:
            tot = [sum(v[0] for v in pd.values()), sum(v[1] for v in pd.values())]
            line += f"; calibrated Pd {tot[0]}/{tot[1]} = {100 * tot[0] / max(tot[1], 1):.1f} %"
            line += "".join(f"\n  {jt:20s} Pd {d}/{n} = {100 * d / max(n, 1):.1f} %" for jt, (d, n) in sorted(pd.items()))
        print(line, flush=True)


class _NeverJammed:
    """A detector that calls every SSB clean: the rules beside the model, alone."""

    name = "never-jammed"

    def score(self, feats, base):
        return False, 0.0, "calibrated" if base is not None else "uncalibrated"


def eval_partial(n_sites, seed, offsets_cp=(-40.0, -20.0, 20.0, 40.0), ms=100.0):
    """The uncalibrated band-excess rule's partial-symbol gate (pipeline.BAND_EXCESS_SYM_SPREAD_DB,
    ScoringPipeline._steady_symbols) on streams: clean sites (SNR 25-40 dB) with an unsynchronised
    co-channel neighbour 3-20 dB down ``offsets_cp`` CPs off (false alarms), and sites under
    pulsed SSB-band noise 15 dB under the SNR, its duty cycle and period as the library draws
    them (Pd), each ``ms`` long and scored by the rules alone (_NeverJammed): with the gate,
    with it but without asking for steady symbols, and without it."""
    from types import SimpleNamespace

    from detector import pipeline as P
    from signals import jammers

    steady = P.ScoringPipeline._steady_symbols
    modes = ("gate", "gate, any symbols", "no gate")

    def score(site, x):
        out = []
        for mode in modes:
            old = P.BAND_EXCESS_SYM_SPREAD_DB
            try:
                P.ScoringPipeline._steady_symbols = steady if mode == "gate" else (lambda self, o, f: True)
                if mode == "no gate":
                    P.BAND_EXCESS_SYM_SPREAD_DB = float("inf")
                recs, _ = run_capture(SimpleNamespace(params=site, iq=x), detector=_NeverJammed())
            finally:
                P.ScoringPipeline._steady_symbols, P.BAND_EXCESS_SYM_SPREAD_DB = steady, old
            v = [r for r in recs if r["valid"]]
            out.append((sum(bool(r["jammed"]) for r in v), len(v)))
        return out

    def add(tot, counts):
        for t, (a, b) in zip(tot, counts):
            t[0] += a
            t[1] += b

    def report(label, tot):
        print(f"  {label}: " + ", ".join(f"{m} {a}/{b}" for m, (a, b) in zip(modes, tot)), flush=True)

    print(f"{n_sites} sites per case, {ms:g} ms streams, uncalibrated, the rules alone: SSBs jammed")
    for off in offsets_cp:
        tot = [[0, 0] for _ in modes]
        for s in range(n_sites):
            cfg = SimConfig(snr_db=(25.0, 40.0), duration_ms=ms, sample_rates_hz=(23.04e6, 30.72e6),
                            neighbour=NeighbourConfig(probability=1.0, power_db=(-20.0, -3.0), offset_cp=(off, off)),
                            jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
            site = draw_params(cfg, np.random.default_rng([seed, s]), force_clean=True)
            add(tot, score(site, simulate_capture(site, np.random.default_rng([seed, s, 1])).iq))
        report(f"clean, neighbour {off:+g} CP", tot)
    tot = [[0, 0] for _ in modes]
    for s in range(n_sites):
        cfg = SimConfig(snr_db=(25.0, 35.0), duration_ms=ms, sample_rates_hz=(23.04e6, 30.72e6),
                        neighbour=NeighbourConfig(probability=0.0),
                        jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
        site = draw_params(cfg, np.random.default_rng([seed, 100 + s]), force_clean=True)
        x = simulate_capture(site, np.random.default_rng([seed, 100 + s, 1])).iq
        w, _ = jammers.make_pulsed_noise(x.size, site.sample_rate_hz, np.random.default_rng([seed, 100 + s, 2]),
                                         ssb_center_hz=site.ssb_offset_hz,
                                         ssb_bandwidth_hz=240 * site.scs_khz * 1e3, band="ssb")
        y = (x + w * np.float32(np.sqrt(np.mean(np.abs(x) ** 2) * 10 ** (-(site.snr_db - 15) / 10)))).astype(np.complex64)
        add(tot, score(site, y))
    report("pulsed SSB-band noise", tot)


def eval_mistimed(n_sites, seed, offsets_cp, power_db, model="default", calibrated=False):
    """Clean sites (SNR 25-40 dB, TDL multipath and equipment impairments as the
    simulator draws them) with a co-channel neighbour cell ``power_db`` (range)
    under the serving one, arriving ``offsets_cp`` CPs early (-) or late (+):
    uncalibrated, the valid SSBs jammed by the band-excess rule (the model left
    out) and by the whole pipeline. ``calibrated``: each site calibrated on a clean
    recording of its own (as ``ssbwatch calibrate``, the neighbour in it), then
    its clean SSBs jammed (FAR), the jammer library's SSBs detected (Pd, SJNR
    -5..20 dB under the SNR), and the sites the model cannot be calibrated to
    (scored by the classical detector: model.DTDDNNDetector.site_falls_back)."""
    det = load_detector(model)
    mode = "calibrated" if calibrated else "uncalibrated"
    print(f"clean sites with a co-channel neighbour {power_db[0]:g}...{power_db[1]:g} dB, {mode}")
    for off in offsets_cp:
        n = rule = whole = n_fb = 0
        per_type = defaultdict(lambda: [0, 0])
        for s in range(n_sites):
            cfg = SimConfig(snr_db=(25.0, 40.0), duration_ms=20.0, sample_rates_hz=(23.04e6, 30.72e6, 46.08e6),
                            neighbour=NeighbourConfig(probability=1.0, power_db=tuple(power_db), offset_cp=(off, off)),
                            jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
            site = draw_params(cfg, np.random.default_rng([seed, s]), force_clean=True)
            cap = simulate_capture(site, np.random.default_rng([seed, s, 1]))
            if calibrated:
                obs = _observations(simulate_capture(site, np.random.default_rng([seed, s, 100])))
                if len(obs) < 2:
                    continue
                base = site_baseline(obs, site.scs_khz, site.sample_rate_hz, site.datatype, site.ssb_freq_hz,
                                     site.center_freq_hz, detector=det)
                n_fb += any(getattr(det, "site_falls_back", lambda b: False)(b) for b in base.configs.values())
                recs, _ = run_capture(cap, baseline=base, detector=det)
                v = [r for r in recs if r["valid"] and not r.get("no_cell")]
                n += len(v)
                whole += sum(bool(r["jammed"]) for r in v)
                _score_jammers(site, base, det, seed, s, per_type)
                continue
            r1, _ = run_capture(cap, detector=_NeverJammed())
            r2, _ = run_capture(cap, detector=det)
            v1 = [r for r in r1 if r["valid"]]
            n += len(v1)
            rule += sum("band_excess_db" in r for r in v1)
            whole += sum(bool(r["jammed"]) for r in r2 if r["valid"])
        if calibrated:
            d, m = sum(v[0] for v in per_type.values()), sum(v[1] for v in per_type.values())
            worst = ", ".join(f"{jt} {100 * a / max(b, 1):.0f} %" for jt, (a, b) in
                              sorted(per_type.items(), key=lambda kv: kv[1][0] / max(kv[1][1], 1))[:3])
            print(f"  {off:+5.1f} CP: FAR {whole}/{n}, Pd {d}/{m} = {100 * d / max(m, 1):.1f} % (lowest: {worst}); "
                  f"sites scored by the classical detector {n_fb}/{n_sites}", flush=True)
        else:
            print(f"  {off:+5.1f} CP: band-excess rule {rule}/{n} jammed, whole pipeline {whole}/{n}", flush=True)


def _band_limited(x, fs, centre_hz, width_hz):
    """``x`` (complex, (n,)) with everything outside [centre +- width/2] removed (one FFT)."""
    X = np.fft.fft(x)
    X[np.abs(np.fft.fftfreq(x.size, 1.0 / fs) - centre_hz) > width_hz / 2] = 0
    return np.fft.ifft(X)


def novel_jammer(kind, n, fs, centre_hz, scs_khz, rng):
    """A jammer waveform (complex128, (n,), unnormalised) of a kind the simulator's
    library does not hold, centred on the SSB (``centre_hz`` from the capture centre):
    qpsk_nb -- 1 Msym/s QPSK, band-limited to 1.2 MHz, up to 1 MHz off the SSB centre;
    ofdm -- random QPSK OFDM on the cell's SCS over 10 MHz, not time-aligned (traffic of
    another transmitter); fhss -- a tone hopping every 100 us within +-3 MHz; chirp_slow --
    a 1 ms linear sweep over 20 MHz (0.9 fs when narrower); impulse -- 1 us noise bursts
    every 50 us; am_tone -- a tone within 200 kHz of the centre, 50 % AM at 1 kHz."""
    t = np.arange(n) / fs
    if kind == "qpsk_nb":
        sps = int(fs // 1e6)
        sym = rng.choice([-1.0, 1.0], (2, n // sps + 1))
        x = _band_limited(np.repeat(sym[0] + 1j * sym[1], sps)[:n], fs, 0.0, 1.2e6)
        return x * np.exp(2j * np.pi * (centre_hz + rng.uniform(-1e6, 1e6)) * t)
    if kind == "ofdm":
        nfft = int(round(fs / (scs_khz * 1e3)))
        ncp = nfft // 14
        used = int(5e6 / (scs_khz * 1e3))
        nsym = n // (nfft + ncp) + 1
        X = np.zeros((nsym, nfft), complex)
        q = rng.choice([-1.0, 1.0], (2, nsym, 2 * used))
        X[:, np.r_[1 : used + 1, nfft - used : nfft]] = q[0] + 1j * q[1]
        sym = np.fft.ifft(X, axis=1)
        x = np.concatenate([sym[:, -ncp:], sym], axis=1).ravel()[:n]
        return np.roll(x, int(rng.integers(0, nfft))) * np.exp(2j * np.pi * (centre_hz + rng.uniform(-2e3, 2e3)) * t)
    if kind == "fhss":
        hop = int(100e-6 * fs)
        f = np.repeat(rng.uniform(-3e6, 3e6, n // hop + 1), hop)[:n] + centre_hz
        return np.exp(2j * np.pi * np.cumsum(f) / fs)
    if kind == "chirp_slow":
        period_s, width_hz = 1e-3, min(0.9 * fs, 20e6)
        tau = t % period_s
        return np.exp(2j * np.pi * ((centre_hz - width_hz / 2) * tau + width_hz * tau ** 2 / (2 * period_s)))
    if kind == "impulse":
        per, w = int(50e-6 * fs), max(1, int(1e-6 * fs))
        on = ((np.arange(n) + int(rng.integers(0, per))) % per) < w
        return on * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    if kind == "am_tone":
        return (1 + 0.5 * np.cos(2 * np.pi * 1e3 * t)) * np.exp(2j * np.pi * (centre_hz + rng.uniform(-2e5, 2e5)) * t)
    raise ValueError(kind)


NOVEL_JAMMERS = ("qpsk_nb", "ofdm", "fhss", "chirp_slow", "impulse", "am_tone")
PROTOCOL_JAMMERS = ("pss_band", "pss_gated", "pbch_gated", "dmrs_tones")


def protocol_jammer(kind, cap, rng):
    """A protocol-aware jammer (complex128, the capture's length, unnormalised) that
    knows the cell's SSB timing and frequency (``cap``'s truth): pss_band -- continuous
    noise over the PSS/SSS's 127 subcarriers; pss_gated -- noise over the SSB's 240
    subcarriers during each SSB's PSS symbol only; pbch_gated -- the same during its PBCH
    symbols (1 and 3, which hold no null REs: TS 38.211 7.4.3.1); dmrs_tones -- a tone on
    every PBCH-DMRS subcarrier of the cell's v = PCI mod 4 (continuous)."""
    p = cap.params
    fs, n, scs, off = p.sample_rate_hz, cap.iq.size, p.scs_khz * 1e3, p.ssb_offset_hz
    if kind == "dmrs_tones":
        k = np.arange(p.pci % 4, 240, 4) - 120  # subcarriers from the SSB's centre
        t = np.arange(n) / fs
        return np.exp(1j * (2 * np.pi * np.outer(t, off + k * scs) + rng.uniform(0, 2 * np.pi, k.size))).sum(axis=1)
    w = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    if kind == "pss_band":
        return _band_limited(w, fs, off, 127 * scs)
    gate = ssb_symbol_gate(n, [t.sample_start for t in cap.ssbs], {"pss_gated": (0,), "pbch_gated": (1, 3)}[kind],
                           fs, p.scs_khz)
    return _band_limited(w, fs, off, 240 * scs) * gate


def eval_novel(n_sites, seed, sirs_db, model="default", kinds=NOVEL_JAMMERS):
    """Jammers not in the simulator's library (:func:`novel_jammer`, or with
    ``kinds=PROTOCOL_JAMMERS`` :func:`protocol_jammer`) added to clean
    40 ms captures of calibrated sites (SNR 20-35 dB; the site calibrated on two
    other clean captures). The signal-to-jammer ratio is over the SSB's band (its
    240 subcarriers), the SSB's power during its 4 symbols over the jammer's mean
    power there (a protocol-aware one's: over the SSBs' 4 symbols); a jammer that
    sweeps or hops can miss an SSB, so Pd counts only the SSBs whose own window holds
    the jammer at that ratio or stronger (+3 dB)."""
    det = load_detector(model)
    cfg = SimConfig(snr_db=(20.0, 35.0), duration_ms=40.0,
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    hits = defaultdict(lambda: [0, 0])
    fa = {"calibrated": [0, 0], "uncalibrated": [0, 0]}
    for s in range(n_sites):
        site = dataclasses.replace(draw_params(cfg, np.random.default_rng([seed, s]), force_clean=True),
                                   datatype="cf32_le")
        obs = [o for k in range(2) for o in _observations(simulate_capture(site, np.random.default_rng([seed, s, 100 + k])))]
        if len(obs) < 4:
            continue
        bases = {"calibrated": site_baseline(obs, site.scs_khz, site.sample_rate_hz, site.datatype, site.ssb_freq_hz,
                                             site.center_freq_hz, detector=det), "uncalibrated": None}
        cap = simulate_capture(site, np.random.default_rng([seed, s, 200]))
        fs, off, width = site.sample_rate_hz, site.ssb_offset_hz, 240 * site.scs_khz * 1e3
        n_win = int(round(4 * fs / (site.scs_khz * 1e3) * 1.07))  # the SSB's 4 symbols with their CPs
        xb = _band_limited(cap.iq, fs, off, width)
        p_ssb = float(np.mean([np.mean(np.abs(xb[t.sample_start : t.sample_start + n_win]) ** 2) for t in cap.ssbs]))
        _count_far(cap, bases["calibrated"], det, fa)
        for k, kind in enumerate(kinds):
            rng = np.random.default_rng([seed, s, 300 + k])
            if kind in PROTOCOL_JAMMERS:
                j = protocol_jammer(kind, cap, rng)
                jb = _band_limited(j, fs, off, width)
                p_j = float(np.mean([np.mean(np.abs(jb[t.sample_start : t.sample_start + n_win]) ** 2)
                                     for t in cap.ssbs]))
            else:
                j = novel_jammer(kind, cap.iq.size, fs, off, site.scs_khz, rng)
                jb = _band_limited(j, fs, off, width)
                p_j = float(np.mean(np.abs(jb) ** 2))
            for sir in sirs_db:
                g = np.sqrt(p_ssb / p_j / 10 ** (sir / 10))
                x = (cap.iq + g * j).astype(np.complex64)
                hit = [np.mean(np.abs(g * jb[t.sample_start : t.sample_start + n_win]) ** 2)
                       >= p_ssb / 10 ** ((sir + 3) / 10) for t in cap.ssbs]
                for mode, b in bases.items():
                    recs, _ = run_capture(cap, baseline=b, detector=det, iq=x)
                    for h, (t, r) in zip(hit, match(recs, cap.ssbs, tol=site.numerology.cp_short)):
                        if h:
                            hits[(kind, sir, mode)][1] += 1
                            hits[(kind, sir, mode)][0] += bool(r is not None and r["valid"] and r["jammed"])
    what = "protocol-aware jammers" if kinds == PROTOCOL_JAMMERS else "jammers outside the simulator's library"
    print(f"{det.name} detector, {n_sites} sites, SNR 20-35 dB, {what}; "
          f"clean SSBs jammed: " + ", ".join(f"{m} {a}/{n}" for m, (a, n) in fa.items()))
    for kind in kinds:
        print(f"  {kind:10s} " + "   ".join(
            f"SIR {sir:g} dB: cal {hits[(kind, sir, 'calibrated')][0]}/{hits[(kind, sir, 'calibrated')][1]}, "
            f"uncal {hits[(kind, sir, 'uncalibrated')][0]}/{hits[(kind, sir, 'uncalibrated')][1]}" for sir in sirs_db))


def eval_periods(n_sites, seed, periods_ms, model="default"):
    """Clean cells whose SSB period is longer than the 20 ms the flywheel assumes
    (TS 38.331 ssb-PeriodicityServingCell: 5-160 ms), four periods long (200 ms at
    least), 15 / 30 kHz at 7.68-23.04 Msps, SNR 0-30 dB: SSBs scored with the right
    PCI, records jammed, records of another PCI."""
    det = load_detector(model)
    for per in periods_ms:
        tot = right = jam = other = 0
        for s in range(n_sites):
            cfg = SimConfig(duration_ms=max(4 * per, 200.0), scs_khz=(15, 30), period_ms=(per,), snr_db=(0.0, 30.0),
                            sample_rates_hz=(7.68e6, 15.36e6, 23.04e6),
                            jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
            rng = np.random.default_rng([seed, s])
            p = draw_params(cfg, rng, force_clean=True)
            cap = simulate_capture(p, rng)
            recs, _ = run_capture(cap, detector=det)
            valid = [r for r in recs if r["valid"]]
            tot += len(cap.ssbs)
            right += sum(r is not None and r["pci"] == p.pci
                         for _, r in match(valid, cap.ssbs, tol=p.numerology.cp_short))
            jam += sum(bool(r["jammed"]) for r in valid)
            other += sum(r["pci"] != p.pci for r in valid)
        print(f"period {per:g} ms: right PCI at {right}/{tot} SSBs, {jam} records jammed, {other} of another PCI",
              flush=True)


TRANSIENTS = ("none", "ramp", "dc", "zeros", "agc_step")


def start_transient(x, fs, kind):
    """``x`` (complex64) with a receiver's start-up transient over its first 1.6 ms: ramp --
    the gain rising from 0 (squared ramp); dc -- a DC offset 3x the recording's RMS decaying
    with a 0.48 ms time constant; zeros -- the first 1.2 ms zero; agc_step -- the gain 12 dB
    higher until 1.6 ms (an AGC's first setting); none -- unchanged. A new array."""
    x = x.copy()
    n = int(1.6e-3 * fs)
    rms = np.sqrt(np.mean(np.abs(x) ** 2))
    if kind == "ramp":
        x[:n] *= np.linspace(0, 1, n).astype(np.float32) ** 2
    elif kind == "dc":
        x[:n] += (3 * rms * np.exp(-np.arange(n) / (0.3 * n))).astype(np.complex64)
    elif kind == "zeros":
        x[: int(1.2e-3 * fs)] = 0
    elif kind == "agc_step":
        x[:n] *= np.float32(4.0)
    return x


FIRST_SSB_LEAD_S = 0.3e-3  # first_ssb_cut: the cut starts this long before the capture's first SSB


def first_ssb_cut(cap, ms: float = 1.0) -> np.ndarray:
    """``ms`` milliseconds of a simulated capture's samples from FIRST_SSB_LEAD_S before its
    first SSB (a recording as short as the real captures; the caller checks cap.ssbs)."""
    fs = cap.params.sample_rate_hz
    a = max(0, cap.ssbs[0].sample_start - int(FIRST_SSB_LEAD_S * fs))
    return cap.iq[a : a + int(ms * 1e-3 * fs)]


def eval_nbcfo(n, seed):
    """The cell search's CFO against the truth on 1 ms recordings (from 0.3 ms before the first SSB)
    of 30 kHz cells at 30.72 Msps, SNR 30-40 dB, no multipath or impairments, with a co-timed
    neighbour 6 dB down (another N_ID2, or the cell's) and without it (the same draws), and the
    tracked CFO of the records of the whole 20 ms recordings: |error| in Hz. The half-PSS CFO
    estimate (dsp.pss_cfo_hz) takes in the partial correlation of another N_ID2's PSS over each
    half; the ICI of a 600 Hz error at 30 kHz SCS is ~-29 dB (docs/RECEIVER.md)."""
    from detector.receiver import acquire

    cfg = SimConfig(sample_rates_hz=(30.72e6,), scs_khz=(30,), snr_db=(30.0, 40.0), duration_ms=20.0,
                    neighbour=NeighbourConfig(probability=1.0, power_db=(-6.0, -6.0)),
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    errs: dict = {"another N_ID2": [], "the cell's N_ID2": [], "alone": []}
    tracked: dict = {k: [] for k in errs}
    for i in range(n):
        p = draw_params(cfg, np.random.default_rng([seed, i]), force_clean=True)
        p = dataclasses.replace(p, multipath=None, impairments=None)
        for q in (p, dataclasses.replace(p, neighbour=None)):
            cap = simulate_capture(q, np.random.default_rng([seed, i, 1]))
            if not cap.ssbs:
                continue
            a = acquire(first_ssb_cut(cap), q.sample_rate_hz, q.center_freq_hz)
            if a is None or a.pci != q.pci:
                continue
            kind = ("alone" if q.neighbour is None else
                    "the cell's N_ID2" if q.neighbour["pci"] % 3 == q.pci % 3 else "another N_ID2")
            errs[kind].append(abs(a.cfo_hz - q.cfo_hz))
            recs, _ = run_capture(cap)  # the whole 20 ms: the tracked CFO of each record
            tracked[kind] += [abs(r["cfo_hz"] - q.cfo_hz) for r in recs
                              if r["pci"] == q.pci and r.get("cfo_hz") is not None]
    print(f"CFO |error| (30 kHz SCS, SNR 30-40 dB), {n} sites, seed {seed}: the cell search on 1 ms / the records "
          f"of 20 ms (tracked)")
    for kind, v in errs.items():
        if v:
            v, t = np.asarray(v), np.asarray(tracked[kind] or [np.nan])
            label = "no neighbour" if kind == "alone" else f"a neighbour 6 dB down of {kind}"
            print(f"  {label:42s} {len(v):3d} cells: median {np.median(v):4.0f} Hz, 90th percentile "
                  f"{np.quantile(v, 0.9):4.0f}, max {v.max():4.0f} / {t.size} records: median {np.median(t):4.0f} Hz, "
                  f"90th percentile {np.quantile(t, 0.9):4.0f}")


SHORTDC_DBC = (None, -35.0, -30.0, -25.0)


def eval_shortdc(n_sites, seed, model="default", dcs_dbc=SHORTDC_DBC):
    """1 ms recordings (from 0.3 ms before the first SSB of a 20 ms simulation) at 7.68 Msps of a
    loaded 30 kHz cell whose SSB lies on the capture centre, SNR 20-40 dB, with transmitter
    impairments and a receiver DC offset of each level of ``dcs_dbc`` (dBc: under the recording's
    mean power; None: none): SSBs jammed, uncalibrated. 1 ms is where the DC estimate
    (dsp.DC_MIN_RATIO) meets the carrier's own content near 0 Hz."""
    det = load_detector(model)
    fs = 7.68e6
    for d in dcs_dbc:
        imp = dataclasses.replace(SimConfig().impairments, probability=1.0, iq_image_probability=0.0,
                                  dc_offset_probability=0.0 if d is None else 1.0,
                                  dc_offset_db=(-50.0, -15.0) if d is None else (d, d))
        cfg = SimConfig(sample_rates_hz=(fs,), scs_khz=(30,), snr_db=(20.0, 40.0), duration_ms=20.0,
                        traffic=dataclasses.replace(SimConfig().traffic, probability=1.0, load=(0.5, 0.9)),
                        impairments=imp)
        jam = tot = 0
        for i in range(n_sites):
            rng = np.random.default_rng([seed, i])
            p = dataclasses.replace(draw_params(cfg, rng, force_clean=True), ssb_offset_bins=0)
            cap = simulate_capture(p, rng)
            if not cap.ssbs:
                continue
            recs, _ = run_capture(cap, detector=det, iq=first_ssb_cut(cap))
            for r in recs:
                if r.get("valid"):
                    tot += 1
                    jam += bool(r["jammed"])
        label = "no DC offset" if d is None else f"DC offset {d:g} dBc"
        print(f"{det.name} detector, {n_sites} sites, 1 ms at 7.68 Msps, SSB on the centre, {label}: "
              f"{jam}/{tot} SSBs jammed (uncalibrated)")


def eval_transient(n_sites, seed, model="default"):
    """Clean 25 ms recordings (SNR 15-35 dB, 7.68-30.72 Msps, 20 ms period) whose first SSB
    sits 1 ms in, each with every :func:`start_transient`: SSBs jammed (uncalibrated)."""
    det = load_detector(model)
    cfg = SimConfig(duration_ms=25.0, period_ms=(20.0,), snr_db=(15.0, 35.0),
                    sample_rates_hz=(7.68e6, 15.36e6, 23.04e6, 30.72e6),
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    tot = {k: [0, 0] for k in TRANSIENTS}
    for s in range(n_sites):
        p = draw_params(cfg, np.random.default_rng([seed, s]), force_clean=True)
        first = simulate_capture(p, np.random.default_rng([seed, s, 1])).ssbs[0].sample_start
        p = dataclasses.replace(p, start_sample=p.start_sample + first - int(1e-3 * p.sample_rate_hz))
        cap = simulate_capture(p, np.random.default_rng([seed, s, 1]))
        for kind in TRANSIENTS:
            pipe = ScoringPipeline(p.sample_rate_hz, p.center_freq_hz, "cf32_le", detector=det)
            x = start_transient(cap.iq, p.sample_rate_hz, kind)
            recs = [r for r in pipe.push(x) + pipe.flush() if r["valid"]]
            tot[kind][0] += sum(bool(r["jammed"]) for r in recs)
            tot[kind][1] += len(recs)
    print(f"{det.name} detector, {n_sites} clean 25 ms recordings starting 1 ms before an SSB, uncalibrated:")
    for kind, (j, n) in tot.items():
        print(f"  {kind:9s} SSBs jammed {j}/{n}")


def eval_cells(n_sites, seed, extra=1, power_db=(-9.0, -3.0), model="default"):
    """Sites of a synchronised TDD network (SNR 15-30 dB, TDL channels, cf32 at one gain):
    the serving cell, the simulator's co-timed neighbour (-9..-3 dB) and ``extra`` more
    co-timed cells of other PCIs, each with its own channel (simulated alone at 60 dB SNR
    and added at ``power_db`` under the serving cell). Calibrated on one clean 40 ms
    recording, scored on another (new channel draws: the cells' relative levels move as
    fading moves them) and on one with a jammer whose SJNR is 8 dB under the SNR (barrage,
    CW, partial-band and SSB-band noise in turn): right PCI, FAR and Pd, both modes."""
    from detector.pipeline import calibration_observations
    from detector.receiver import Receiver

    det = load_detector(model)
    cfg = SimConfig(snr_db=(15.0, 30.0), duration_ms=40.0, datatypes=("cf32_le",), cf32_gain_db=(0.0, 0.0),
                    multipath=dataclasses.replace(SimConfig().multipath, probability=1.0),
                    neighbour=NeighbourConfig(probability=1.0, power_db=(-9.0, -3.0)),
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    jammers = ("barrage", "cw", "partial_band_noise", "ssb_band_noise")
    t = defaultdict(int)
    for s in range(n_sites):
        rng = np.random.default_rng([seed, s])
        site = draw_params(cfg, rng, force_clean=True)
        used = {site.pci, site.neighbour["pci"]}
        cells = []
        while len(cells) < extra:
            c = int(rng.integers(0, 1008))
            if c not in used:
                used.add(c)
                cells.append((dataclasses.replace(site, pci=c, snr_db=60.0, neighbour=None, jammer=None),
                              np.float32(10 ** (rng.uniform(*power_db) / 20))))

        def air(p, k):
            cap = simulate_capture(p, np.random.default_rng([seed, s, k]))
            x = cap.iq.copy()
            ref = _sss_power(cap.iq, site) / (1 + 10 ** (-site.snr_db / 10))  # the serving cell's, less its noise
            for i, (pc, g) in enumerate(cells):
                xc = simulate_capture(pc, np.random.default_rng([seed, s, k, 1 + i])).iq
                # at g under the serving cell whatever its own channel draw (the simulator sets the
                # serving cell's and its neighbour's levels after their channels so too)
                x += xc * np.float32(g * np.sqrt(ref / max(_sss_power(xc, pc), 1e-30)))
            return cap, x

        _, xcal = air(site, 100)
        rx = Receiver(site.sample_rate_hz, site.center_freq_hz)
        obs = calibration_observations(rx.push(xcal) + rx.flush())
        base = None
        if len(obs) >= 5:
            base = site_baseline(obs, obs[0].scs_khz, site.sample_rate_hz, site.datatype, site.ssb_freq_hz,
                                 site.center_freq_hz, detector=det)
        t["calibrated_sites"] += base is not None
        jam = dataclasses.replace(site, jammer={"type": jammers[s % len(jammers)], "sjnr_db": site.snr_db - 8.0})
        for p, k, clean in ((site, 200, True), (jam, 300, False)):
            cap, x = air(p, k)
            for b, mode in ((None, "u"), (base, "c")):
                if mode == "c" and b is None:
                    continue
                recs, _ = run_capture(cap, iq=x, baseline=b, detector=det)
                _tally(t, recs, cap, site, clean, mode, right=mode == "u")
    print(f"{n_sites} sites of a synchronised network, {2 + extra} co-timed cells (the extra ones "
          f"{power_db[0]:g}..{power_db[1]:g} dB under the serving cell), SNR 15-30 dB, TDL, {det.name}:")
    print(f"  right PCI {t['right']}/{t['ssbs']}; calibrated sites {t['calibrated_sites']}/{n_sites}")
    _print_far_pd(t, ("u", "c"))


def _tally(t, recs, cap, site, clean, mode, right=False):
    """Count a scored recording's SSBs into ``t``: clean ones (the cell's own or a
    no-cell record) as false alarms of ``mode`` ("c"/"u"), jammed ones as
    detections; with ``right``, the clean SSBs given the right PCI too."""
    for tr, r in match(recs, cap.ssbs, tol=site.numerology.cp_short):
        if clean and right:
            t["ssbs"] += 1
            t["right"] += r is not None and r["pci"] == site.pci
        if clean:
            if r is not None and r["valid"] and (r["pci"] == site.pci or r.get("no_cell")):
                t["fa_" + mode] += bool(r["jammed"])
                t["n_" + mode] += 1
        else:
            t["pd_" + mode] += r is not None and bool(r["jammed"])
            t["nj_" + mode] += 1


def _print_far_pd(t, modes):
    for mode in modes:
        name = {"c": "calibrated", "u": "uncalibrated"}[mode]
        print(f"  {name}: FAR {t['fa_' + mode]}/{t['n_' + mode]}, Pd {t['pd_' + mode]}/{t['nj_' + mode]} "
              f"(SJNR = SNR - 8 dB)")


NETWORK_JAMMERS = ("barrage", "cw", "partial_band_noise", "ssb_band_noise")


def _network_cfg(snr_db, neighbour):
    """The sites of `network` and `loaded`: 40 ms cf32 recordings (unit gain), every site on
    a TDL channel, clean, with ``neighbour`` (a NeighbourConfig)."""
    return SimConfig(snr_db=snr_db, duration_ms=40.0, datatypes=("cf32_le",), cf32_gain_db=(0.0, 0.0),
                     multipath=dataclasses.replace(SimConfig().multipath, probability=1.0), neighbour=neighbour,
                     jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))


def _score_clean_and_jammed(tallies, site, base, det, seed, s):
    """Another clean recording of ``site`` and one with a jammer 8 dB under its SNR
    (NETWORK_JAMMERS in turn by site ``s``), each scored with ``base`` ("c") and without
    ("u"), counted into every dict of ``tallies`` (_tally)."""
    jam = dataclasses.replace(site, jammer={"type": NETWORK_JAMMERS[s % len(NETWORK_JAMMERS)],
                                            "sjnr_db": site.snr_db - 8.0})
    for p, k, clean in ((site, 200, True), (jam, 300, False)):
        cap = simulate_capture(p, np.random.default_rng([seed, s, k]))
        for b, mode in ((base, "c"), (None, "u")):
            recs, _ = run_capture(cap, baseline=b, detector=det)
            for t in tallies:
                _tally(t, recs, cap, site, clean, mode)


def eval_network(n_sites, seed, count=(2, 3), model="default"):
    """Per site: a cell (SNR 15-30 dB, TDL) with ``count`` co-timed neighbour cells
    of the simulator (neighbour.count; -9..-3 dB, each its own PCI, timing, CFO and
    channel), calibrated on one clean 40 ms recording as ``ssbwatch calibrate``
    does; another clean recording (every channel drawn anew) and one with a jammer
    whose SJNR is 8 dB under the SNR (barrage, CW, partial-band and SSB-band noise in
    turn) scored calibrated and uncalibrated: the neighbours the baseline lists,
    FAR and Pd."""
    det = load_detector(model)
    cfg = _network_cfg((15.0, 30.0), NeighbourConfig(probability=1.0, power_db=(-9.0, -3.0), count=count))
    t = defaultdict(int)
    for s in range(n_sites):
        site = draw_params(cfg, np.random.default_rng([seed, s]), force_clean=True)
        obs = _observations(simulate_capture(site, np.random.default_rng([seed, s, 100])))
        if len(obs) < 5:
            continue
        base = site_baseline(obs, site.scs_khz, site.sample_rate_hz, site.datatype, site.ssb_freq_hz,
                             site.center_freq_hz, detector=det)
        on_air = {site.neighbour["pci"]} | {m["pci"] for m in site.more_neighbours}
        listed = set(next(iter(base.configs.values())).neighbours)
        t["sites"] += 1
        t["cells"] += len(on_air)
        t["listed"] += len(on_air & listed)
        t["listed_off_air"] += len(listed - on_air)
        _score_clean_and_jammed([t], site, base, det, seed, s)
    print(f"{t['sites']} sites, {count[0]}-{count[1]} co-timed neighbours each (-9..-3 dB, own channels), "
          f"SNR 15-30 dB, {det.name}:")
    print(f"  neighbours listed by the baseline: {t['listed']} of {t['cells']} on the air, {t['listed_off_air']} "
          f"not on the air")
    _print_far_pd(t, ("c", "u"))


def eval_loaded(n_sites, seed, power_db=(-15.0, -3.0), offset_cp=(-100.0, 100.0), model="default", cal_ms=200.0):
    """Per site: a cell (SNR 15-35 dB, TDL) and an unsynchronised neighbour cell
    (an FDD network's: ``offset_cp`` CPs away, so its traffic falls on the serving
    SSB's null REs) with its SSBs ``power_db`` under the serving cell's and traffic
    of its own (load 0.3-0.9, -6..0 dB per RE under its SSB's), calibrated on
    ``cal_ms`` of clean 40 ms recordings (other realisations of the traffic, noise
    and channels: the neighbour's interference differs from SSB to SSB); another clean
    recording and one with a jammer 8 dB under the SNR (barrage, CW, partial-band
    and SSB-band noise in turn), calibrated and uncalibrated. FAR and Pd per band of
    the neighbour's traffic over the noise (its mean power per RE, the load
    included, over the noise's; dB)."""
    det = load_detector(model)
    cfg = _network_cfg((15.0, 35.0), NeighbourConfig(probability=1.0, power_db=tuple(power_db),
                                                     offset_cp=tuple(offset_cp), traffic_probability=1.0,
                                                     traffic_load=(0.3, 0.9)))
    bands = ((-99.0, -5.0), (-5.0, 0.0), (0.0, 5.0), (5.0, 10.0), (10.0, 99.0))
    per_band = {b: defaultdict(int) for b in bands}
    t = defaultdict(int)
    for s in range(n_sites):
        site = draw_params(cfg, np.random.default_rng([seed, s]), force_clean=True)
        nb = site.neighbour
        level = nb["power_db"] + nb["traffic"]["power_db"] + 10 * np.log10(nb["traffic"]["load"]) + site.snr_db
        band = next(b for b in bands if b[0] <= level < b[1])
        obs = []
        for k in range(max(1, int(round(cal_ms / 40.0)))):
            obs += _observations(simulate_capture(site, np.random.default_rng([seed, s, 100 + k])))
        if len(obs) < 5:
            continue
        base = site_baseline(obs, site.scs_khz, site.sample_rate_hz, site.datatype, site.ssb_freq_hz,
                             site.center_freq_hz, detector=det)
        t["sites"] += 1
        per_band[band]["sites"] += 1
        fb = any(getattr(det, "site_falls_back", lambda b: False)(b) for b in base.configs.values())
        t["fallback"] += fb
        per_band[band]["fallback"] += fb
        _score_clean_and_jammed([t, per_band[band]], site, base, det, seed, s)
    print(f"{t['sites']} sites, an unsynchronised neighbour ({offset_cp[0]:g}..{offset_cp[1]:g} CP, SSBs "
          f"{power_db[0]:g}..{power_db[1]:g} dB) carrying traffic, SNR 15-35 dB, {det.name}, calibrated on "
          f"{cal_ms:g} ms; sites scored by the classical detector (the model out of reach): {t['fallback']}")
    _print_far_pd(t, ("c", "u"))
    for b, tb in per_band.items():
        if tb["sites"]:
            print(f"  neighbour traffic {b[0]:g}..{b[1]:g} dB over the noise ({tb['sites']} sites): "
                  f"FAR calibrated {tb['fa_c']}/{tb['n_c']}, uncalibrated {tb['fa_u']}/{tb['n_u']}; "
                  f"Pd calibrated {tb['pd_c']}/{tb['nj_c']}, uncalibrated {tb['pd_u']}/{tb['nj_u']}; "
                  f"classical {tb['fallback']}")


def eval_field(n_sites, seed, model="default", cal_ms=400.0, test_ms=100.0):
    """The field mix (configs/sim-train-field.yaml: an unsynchronised neighbour, one or
    two, on 60 % of the sites, 70 % of them with traffic; odd-k_SSB traffic; the gNB's
    and the receiver's impairments; every datatype and sample rate) as an operator
    calibrates it: per site, ``cal_ms`` of clean recording (another receiver gain and a
    noise floor moved by the mix's calibration_snr_drift_db, as the simulator's
    companions; bench/eval_split.py scores those 10 ms companions, one burst, so that no
    SSB index gets levels of its own there), then a clean ``test_ms`` recording (FAR)
    and a 40 ms one jammed by the library's jammers in turn at SJNR 15-30 dB (Pd over
    its SSBs whose own SJNR lies there, and where the jammer stands NOISE_FLOOR_DRIFT_DB
    or more over the noise), scored calibrated and uncalibrated; FAR apart for the sites
    with an unsynchronised neighbour."""
    from signals.config import load_yaml

    det = load_detector(model)
    cfg = load_yaml(Path(__file__).resolve().parents[1] / "configs" / "sim-train-field.yaml", SimConfig)
    t = defaultdict(int)
    for s in range(n_sites):
        rng = np.random.default_rng([seed, s])
        site = draw_params(cfg, rng, force_clean=True)
        unsync = bool(site.neighbour and abs(site.neighbour["offset_samples"]) > site.numerology.cp_short)
        gain = cfg.int_backoff_db if site.datatype != "cf32_le" else cfg.cf32_gain_db
        cal = dataclasses.replace(site, level_db=float(rng.uniform(*gain)),
                                  snr_db=site.snr_db + float(rng.uniform(*cfg.calibration_snr_drift_db)),
                                  n_samples=int(round(cal_ms * 1e-3 * site.sample_rate_hz)))
        obs = _observations(simulate_capture(cal, np.random.default_rng([seed, s, 100])))
        if len(obs) < 5:
            continue
        base = site_baseline(obs, site.scs_khz, site.sample_rate_hz, site.datatype, site.ssb_freq_hz,
                             site.center_freq_hz, detector=det)
        t["sites"] += 1
        t["unsync_sites"] += unsync
        t["fallback"] += any(getattr(det, "site_falls_back", lambda b: False)(b) for b in base.configs.values())
        clean = dataclasses.replace(site, n_samples=int(round(test_ms * 1e-3 * site.sample_rate_hz)))
        jt = JAMMER_TYPES[s % len(JAMMER_TYPES)]
        jam = dataclasses.replace(site, n_samples=int(round(40e-3 * site.sample_rate_hz)),
                                  jammer={"type": jt, "sjnr_db": float(rng.uniform(15.0, 30.0))})
        cap_clean = simulate_capture(clean, np.random.default_rng([seed, s, 200]))
        cap_jam = simulate_capture(jam, np.random.default_rng([seed, s, 300]))
        for mode, b in (("c", base), ("u", None)):
            recs, _ = run_capture(cap_clean, baseline=b, detector=det)
            for _, r in match(recs, cap_clean.ssbs, tol=site.numerology.cp_short):
                if r is not None and r["valid"]:
                    for k in ("", "unsync_") if unsync else ("",):
                        t[f"{k}n_{mode}"] += 1
                        t[f"{k}fa_{mode}"] += bool(r["jammed"])
            recs, _ = run_capture(cap_jam, baseline=b, detector=det)
            for tr, r in match(recs, cap_jam.ssbs, tol=site.numerology.cp_short):
                # (an SSB's own SJNR, as eval_split counts it: a multi-tone's tones may all miss it)
                if tr.jammed and tr.sjnr_db is not None and 15.0 <= tr.sjnr_db < 30.0 and r is not None \
                        and r["valid"]:
                    hit = bool(r["jammed"])
                    for k in ("", f"{jt}_") + (("above_",) if tr.jnr_db >= NOISE_FLOOR_DRIFT_DB else ()):
                        t[f"{k}nj_{mode}"] += 1
                        t[f"{k}pd_{mode}"] += hit
    pct = lambda a, n: f"{a}/{n} = {100 * a / max(n, 1):.2f} %"  # noqa: E731
    print(f"{t['sites']} sites of the field mix ({t['unsync_sites']} with an unsynchronised neighbour), {det.name}, "
          f"calibrated on {cal_ms:g} ms; sites scored by the classical detector (the model out of reach): "
          f"{t['fallback']}")
    for mode, name in (("c", "calibrated"), ("u", "uncalibrated")):
        print(f"  {name}: FAR ({test_ms:g} ms clean) {pct(t['fa_' + mode], t['n_' + mode])}, at the sites with an "
              f"unsynchronised neighbour {pct(t['unsync_fa_' + mode], t['unsync_n_' + mode])}; Pd at SJNR 15-30 dB "
              f"{pct(t['pd_' + mode], t['nj_' + mode])}, with the jammer >= {NOISE_FLOOR_DRIFT_DB:g} dB over the "
              f"noise {pct(t['above_pd_' + mode], t['above_nj_' + mode])}")
        print("    by jammer: " + ", ".join(f"{jt} {t[f'{jt}_pd_{mode}']}/{t[f'{jt}_nj_{mode}']}" for jt in JAMMER_TYPES
                                         if t[f"{jt}_nj_{mode}"]))


def dense_network(seed, s):
    """A synchronised network: a cell (SNR 15-30 dB, TDL), the simulator's co-timed
    neighbour 3-6 dB down and three more co-timed cells of random PCIs 1-4 dB down,
    each on its own channel (simulated alone at 60 dB SNR, added at the serving cell's
    scale); (params, the PCIs on the air, the first 22.4 ms)."""
    cfg = SimConfig(snr_db=(15.0, 30.0), duration_ms=25.0, datatypes=("cf32_le",), cf32_gain_db=(0.0, 0.0),
                    multipath=dataclasses.replace(SimConfig().multipath, probability=1.0),
                    neighbour=NeighbourConfig(probability=1.0, power_db=(-6.0, -3.0)),
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    rng = np.random.default_rng([seed, s])
    site = draw_params(cfg, rng, force_clean=True)
    pcis = [site.pci, site.neighbour["pci"]]
    x = simulate_capture(site, np.random.default_rng([seed, s, 1])).iq.copy()
    for i in range(3):
        pcis.append(int(rng.integers(0, 1008)))
        other = dataclasses.replace(site, pci=pcis[-1], snr_db=60.0, neighbour=None)
        x += simulate_capture(other, np.random.default_rng([seed, s, 2 + i])).iq * np.float32(10 ** (rng.uniform(-4, -1) / 20))
    return site, pcis, x[: int(22.4e-3 * site.sample_rate_hz)]


def eval_dense(n, seed):
    """One cell search per dense_network: how often it gives a cell on the air, one
    not on the air, none."""
    from detector.receiver import acquire

    t = defaultdict(int)
    for s in range(n):
        site, pcis, x = dense_network(seed, s)
        acq = acquire(x, site.sample_rate_hz, site.center_freq_hz)
        t["none" if acq is None else ("on air" if acq.pci in pcis else "not on air")] += 1
        if acq is not None and acq.pci not in pcis:
            print(f"  network {s}: cells {pcis}, the search gave PCI {acq.pci} ({len(acq.detections)} SSBs)")
    print(f"{n} synchronised networks of five co-timed cells within ~6 dB, one 22.4 ms search each: a cell on "
          f"the air {t['on air']}, not on the air {t['not on air']}, none {t['none']}")


def _clean_sites(cfg, n_sites, seed):
    """[(params, IQ)] of ``n_sites`` clean captures drawn from ``cfg``, site s from the
    generator [seed, s]."""
    sites = []
    for s in range(n_sites):
        rng = np.random.default_rng([seed, s])
        p = draw_params(cfg, rng, force_clean=True)
        sites.append((p, simulate_capture(p, rng).iq))
    return sites


def _jammed_of(p, x, det, **pipe_kw):
    """Samples ``x`` of capture ``p`` scored whole, uncalibrated: (SSBs called jammed,
    valid SSBs, the pipeline)."""
    pipe = ScoringPipeline(p.sample_rate_hz, p.center_freq_hz, p.datatype, detector=det, **pipe_kw)
    recs = [r for r in pipe.push(x) + pipe.flush() if r["valid"]]
    return sum(bool(r["jammed"]) for r in recs), len(recs), pipe


def eval_iqimage(n_sites, seed, images_db, model="default"):
    """Clean cells (SNR 30-35 dB, no neighbour, the default mix otherwise: traffic, TDL)
    recorded through a receiver whose IQ imbalance leaves a mirror image ``images_db``
    under the signal (signals.channel.iq_imbalance), uncalibrated: SSBs called jammed with
    the receiver's image removal (ReceiverConfig.iq_balance) and without it."""
    from detector.receiver import ReceiverConfig
    from signals import channel

    det = load_detector(model)
    cfg = SimConfig(snr_db=(30.0, 35.0), duration_ms=25.0, neighbour=NeighbourConfig(probability=0.0),
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    sites = _clean_sites(cfg, n_sites, seed)
    for image_db in images_db:
        out = {}
        for on in (True, False):
            n = jam = 0
            for p, x in sites:
                y = np.asarray(channel.iq_imbalance(x, image_db, np.random.default_rng(1)), np.complex64)
                j, k, _ = _jammed_of(p, y, det, receiver_config=ReceiverConfig(iq_balance=on))
                jam, n = jam + j, n + k
            out[on] = (jam, n)
        print(f"image {image_db:+5.1f} dB, {n_sites} clean sites ({det.name}, uncalibrated): jammed "
              f"{out[True][0]}/{out[True][1]} with the image removed, {out[False][0]}/{out[False][1]} without")


def eval_kssb(n_sites, seed, snr_db=(35.0, 40.0), model="default"):
    """Clean 30 kHz cells whose traffic (90 % of their RBs, 0..3 dB over the SSB's REs) lies
    half a subcarrier off the SSB's grid -- k_SSB odd, drawn 1..23, the common RBs over the
    SSB empty in its symbols (traffic.kssb_odd_probability) -- at ``snr_db``, no neighbour,
    the default rates, channels and impairments otherwise, uncalibrated: SSBs called jammed
    with the receiver's fit of that traffic's leakage (dsp.OFFGRID_BINS) and without it, with
    the grids at the input rate and from the SSB-rate signal."""
    from signals.simulate import TrafficConfig

    from detector import dsp, receiver

    det = load_detector(model)
    cfg = SimConfig(scs_khz=(30,), snr_db=snr_db, duration_ms=25.0, neighbour=NeighbourConfig(probability=0.0),
                    traffic=TrafficConfig(probability=1.0, load=(0.9, 0.9), power_db=(0.0, 3.0),
                                          kssb_odd_probability=1.0),
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    sites = _clean_sites(cfg, n_sites, seed)
    accept, at_input = dsp.OFFGRID_ACCEPT, receiver.GRID_AT_INPUT_RATE
    try:
        for grid_at_input in (True, False):
            receiver.GRID_AT_INPUT_RATE = grid_at_input
            out = {}
            for fit in (True, False):
                dsp.OFFGRID_ACCEPT = accept if fit else -1.0
                n = jam = fitted = 0
                for p, x in sites:
                    j, k, pipe = _jammed_of(p, x, det)
                    jam, n, fitted = jam + j, n + k, fitted + pipe.receiver.n_offgrid_grids
                out[fit] = (jam, n, fitted)
            where = "input-rate grids" if grid_at_input else "SSB-rate grids"
            print(f"{n_sites} clean k_SSB-odd cells, SNR {snr_db[0]:g}-{snr_db[1]:g} dB, {where} ({det.name}, "
                  f"uncalibrated): jammed {out[True][0]}/{out[True][1]} with the fit ({out[True][2]} SSBs "
                  f"fitted), {out[False][0]}/{out[False][1]} without")
    finally:
        dsp.OFFGRID_ACCEPT, receiver.GRID_AT_INPUT_RATE = accept, at_input


def eval_cotimed(n, seed, power_db=(-1.0, 1.0), model="default"):
    """1 ms recordings of one SSB (from 0.3 ms before it) of a clean cell and a co-timed
    neighbour ``power_db`` from it (the default mix otherwise: SNR 15-35 dB, TDL,
    traffic, the simulator's neighbour timing and CFO), uncalibrated: how often the
    records name a cell on the air and none is jammed, give no record, name another
    PCI, or call a cell on the air jammed."""
    det = load_detector(model)
    cfg = SimConfig(snr_db=(15.0, 35.0), duration_ms=25.0,
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0),
                    neighbour=NeighbourConfig(probability=1.0, power_db=power_db))
    t = defaultdict(int)
    same = defaultdict(int)
    for s in range(n):
        rng = np.random.default_rng([seed, s])
        p = draw_params(cfg, rng, force_clean=True)
        cap = simulate_capture(p, rng)
        if not cap.ssbs:
            continue
        fs = p.sample_rate_hz
        pipe = ScoringPipeline(fs, p.center_freq_hz, p.datatype, detector=det)
        x = first_ssb_cut(cap)
        recs = [r for r in pipe.push(x) + pipe.flush() if r["valid"]]
        on_air = {p.pci, p.neighbour["pci"]}
        k = ("none" if not recs else "another PCI" if any(r["pci"] not in on_air for r in recs)
             else "jammed" if any(r["jammed"] for r in recs) else "right")
        t[k] += 1
        same[k] += p.pci % 3 == p.neighbour["pci"] % 3
        if k != "right":
            print(f"  recording {s}: cells {p.pci} and {p.neighbour['pci']} "
                  f"({p.neighbour['power_db']:+.1f} dB), {fs / 1e6:g} Msps: {k} {[r['pci'] for r in recs]}")
    print(f"{sum(t.values())} recordings of 1 ms, a cell and a co-timed neighbour {power_db[0]:g}..{power_db[1]:g} dB "
          f"from it ({det.name}, uncalibrated): " + ", ".join(f"{k} {t[k]} ({same[k]} of one N_ID2)"
                                                             for k in ("right", "none", "another PCI", "jammed")))


def eval_strong(n_sites, seed, sjnr_db=(-10.0, -3.0), model="default", pin=False):
    """Strong jammers on from the first sample, no baseline: per site of the default
    mix (20 ms, SNR 15-35 dB) each jammer type in turn at an SJNR drawn in ``sjnr_db``;
    per type the jammed SSBs, those that got no record at all (no cell found: silence)
    and those jammed. ``pin``: the cell search pinned to the SSB's frequency (as
    ``--ssb-freq`` pins it)."""
    from detector.receiver import ReceiverConfig

    det = load_detector(model)
    cfg = SimConfig(snr_db=(15.0, 35.0), duration_ms=20.0,
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    tot = defaultdict(lambda: [0, 0, 0])  # SSBs, without a record, jammed
    for s in range(n_sites):
        site = draw_params(cfg, np.random.default_rng([seed, s]), force_clean=True)
        for j, jt in enumerate(JAMMER_TYPES):
            sj = float(np.random.default_rng([seed, s, j]).uniform(*sjnr_db))
            cap = simulate_capture(dataclasses.replace(site, jammer={"type": jt, "sjnr_db": sj}),
                                   np.random.default_rng([seed, s, 300 + j]))
            rcfg = ReceiverConfig(ssb_offset_hz=site.ssb_offset_hz) if pin else None
            recs, _ = run_capture(cap, detector=det, receiver_config=rcfg)
            for t, r in match(recs, cap.ssbs, tol=site.numerology.cp_short):
                if t.jammed:
                    tot[jt][0] += 1
                    tot[jt][1] += r is None
                    tot[jt][2] += bool(r is not None and r["jammed"])
    print(f"{det.name} detector, uncalibrated, {n_sites} sites, SNR 15-35 dB, jammers from the first sample at "
          f"SJNR {sjnr_db[0]:g}..{sjnr_db[1]:g} dB" + (", the search pinned to the SSB's frequency" if pin else "")
          + ":")
    for jt, (n, none, jam) in tot.items():
        print(f"  {jt:20s} SSBs {n:4d}   without a record {none:4d}   jammed {jam:4d}")
    n, none, jam = (sum(v[i] for v in tot.values()) for i in range(3))
    print(f"  all: SSBs {n}, without a record {none} ({100 * none / max(n, 1):.1f} %), jammed {jam} "
          f"({100 * jam / max(n, 1):.1f} %)")


def _segment(p, jammer, seed, n_samples, agc):
    """One segment of an onset stream: site ``p`` (with ``jammer`` or clean) over
    ``n_samples``, at one fixed receiver gain (cf32, the simulator's absolute level) or,
    with ``agc``, level-set on its own as an AGC that holds the loudest OFDM symbol 12 dB
    under full scale would (ci16; the simulator's integer captures)."""
    q = dataclasses.replace(p, jammer=jammer, n_samples=n_samples, datatype="ci16_le" if agc else "cf32_le",
                            level_db=ONSET_AGC_DB if agc else 0.0)
    return simulate_capture(q, np.random.default_rng(seed))


ONSET_AGC_DB = 12.0  # eval_onset's AGC: the loudest OFDM symbol this far under full scale


def eval_onset(n_sites, seed, sjnrs_db, agc=False, model="default"):
    """A jammer that comes on and goes off during a stream, no baseline: per site
    (SNR 15-30 dB, 20 ms SSB period, the default mix's rates, channels and traffic) and
    jammer type and SJNR, 200 ms clean, 400 ms jammed, 200 ms clean, at one receiver gain
    or (``agc``) each part level-set on its own (:func:`_segment`). Per type and SJNR:
    the jammed part's SSBs jammed of those with a record (and those not scored); the clean
    parts' SSBs jammed. Controls, per site: 2.5 ms of samples dropped in a clean stream,
    and the cell off the air for 400 ms (the receiver's noise alone at its level, or under
    the AGC at the clean stream's level): their SSBs jammed."""
    from signals import iq as iqio

    det = load_detector(model)
    cfg = SimConfig(snr_db=(15.0, 30.0), period_ms=(20.0,), duration_ms=200.0,
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    tab = defaultdict(lambda: [0, 0, 0])  # (type, sjnr) -> jammed, scored, not scored
    clean = [0, 0]
    ctrl = defaultdict(lambda: [0, 0])  # control -> jammed, records
    for s in range(n_sites):
        p = draw_params(cfg, np.random.default_rng([seed, s]), force_clean=True)
        fs = p.sample_rate_hz
        n0, n1 = int(0.2 * fs), int(0.4 * fs)
        cap_a = _segment(p, None, [seed, s, 1], n0, agc)
        a = cap_a.iq
        c = _segment(p, None, [seed, s, 3], n0, agc).iq

        def score(x):
            pipe = ScoringPipeline(fs, p.center_freq_hz, "ci16_le" if agc else "cf32_le", detector=det)
            return [r for k in range(0, x.size, 1 << 18) for r in pipe.push(x[k : k + (1 << 18)])] + pipe.flush()

        for j, jt in enumerate(JAMMER_TYPES):
            for sj in sjnrs_db:
                b = _segment(p, {"type": jt, "sjnr_db": float(sj)}, [seed, s, 2, j], n1, agc).iq
                for r in score(np.concatenate([a, b, c])):
                    if n0 + 2000 <= r["sample"] < n0 + n1 - 2000:
                        t = tab[(jt, sj)]
                        t[0] += bool(r["jammed"])
                        t[1] += bool(r["valid"])
                        t[2] += not r["valid"]
                    elif r["sample"] < n0 - 2000 or r["sample"] >= n0 + n1 + 2000:
                        clean[0] += bool(r["jammed"])
                        clean[1] += 1
        b = _segment(p, None, [seed, s, 2], n1, agc).iq
        x = np.concatenate([a, b, c])
        cut = n0 + int(0.1 * fs)
        recs = score(np.concatenate([x[:cut], x[cut + int(2.5e-3 * fs):]]))
        ctrl["2.5 ms dropped"][0] += sum(bool(r["jammed"]) for r in recs)
        ctrl["2.5 ms dropped"][1] += len(recs)
        # the cell off the air: the receiver's noise alone, at its level (one gain) or where the
        # AGC puts the loudest stretch of it
        level = 10 ** (-ONSET_AGC_DB / 10) if agc else cap_a.noise_power
        rng = np.random.default_rng([seed, s, 4])
        off = ((rng.standard_normal(n1) + 1j * rng.standard_normal(n1)) * np.sqrt(level / 2)).astype(np.complex64)
        if agc:  # (the ci16 the AGC's segments are stored in)
            off = iqio.to_complex64(iqio.from_complex64(off, "ci16_le"), "ci16_le")
        recs = score(np.concatenate([a, off, c]))
        mid = [r for r in recs if n0 + 2000 <= r["sample"] < n0 + n1 - 2000]
        ctrl["cell off the air"][0] += sum(bool(r["jammed"]) for r in mid)
        ctrl["cell off the air"][1] += len(mid)
    gain = "each part level-set as by an AGC (ci16)" if agc else "one receiver gain (cf32)"
    print(f"{det.name} detector, uncalibrated, {n_sites} sites, 200 ms clean / 400 ms jammed / 200 ms clean, {gain}:")
    print("  jammed part: SSBs jammed / scored (not scored), per SJNR (dB)")
    for jt in JAMMER_TYPES:
        cells = [f"{sj:g}: {tab[(jt, sj)][0]}/{tab[(jt, sj)][1]} ({tab[(jt, sj)][2]})" for sj in sjnrs_db]
        print(f"  {jt:20s} " + "  ".join(cells))
    print(f"  clean parts: {clean[0]} of {clean[1]} SSBs jammed")
    for k, (j, n) in ctrl.items():
        print(f"  {k}: {j} of {n} records jammed")


def eval_alone(n, seed):
    """One cell search per recording of a jammer alone (15 dB over the noise, the cell
    20 dB under the noise), the jammer types in turn: the cells found."""
    from detector.receiver import acquire
    from signals.simulate import JAMMER_TYPES

    found = defaultdict(list)
    for s in range(n):
        p = draw_params(SimConfig(snr_db=(-20.0, -20.0), duration_ms=25.0), np.random.default_rng([seed, s]),
                        force_clean=True)
        jt = JAMMER_TYPES[s % len(JAMMER_TYPES)]
        p = dataclasses.replace(p, jammer={"type": jt, "sjnr_db": -35.0})
        cap = simulate_capture(p, np.random.default_rng([seed, s, 1]))
        acq = acquire(cap.iq[: int(22.4e-3 * p.sample_rate_hz)], p.sample_rate_hz, p.center_freq_hz)
        if acq is not None:
            found[jt].append(acq.pci)
    made = sum(len(v) for k, v in found.items() if k != "spoofer")
    print(f"{n} recordings of a jammer alone (the cell 20 dB under the noise, the jammer 15 dB over it): "
          f"cells found {dict(found)}; made of a jammer other than a fake SSB: {made}")


REAL_CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "real-captures"


def eval_realjam(n_draws, sjnrs_db, model="default", folder=REAL_CAPTURES):
    """Real cells under simulated jammers: each capture of ``folder`` (clean, one SSB
    each) with each jammer of the library added, scaled so that the SSB's SJNR is
    each of ``sjnrs_db`` as the simulator defines it (S: mean power of the 830
    occupied REs over the noise, N: of the 130 null REs, J: of the jammer over all
    960 REs; unitary FFTs at the capture rate on the SSB the receiver found, its
    CFO removed first), ``n_draws`` jammer draws each; scored uncalibrated and
    calibrated on the clean capture. A jammer that cannot reach an SJNR (the cell's
    SNR under it) or has no power on the SSB (a pulse off) is not drawn."""
    from signals import iq as iqio
    from signals import jammers, nr
    from signals.simulate import _re_power

    metas = sorted(Path(folder).glob("*.sigmf-meta"))
    if not metas:
        print(f"realjam: no captures in {folder}")
        return
    det = load_detector(model)
    tally = defaultdict(lambda: [0, 0, 0])  # (mode, type, sjnr) -> [jammed, scored, no record]

    def score(x, m, base=None):
        pipe = ScoringPipeline(m.sample_rate_hz, m.center_freq_hz, m.datatype, baseline=base, detector=det)
        return pipe.push(x) + pipe.flush()

    for path in metas:
        with iqio.open_iq(path) as r:
            m, x = r.meta, r.read_all()
        recs = score(x, m)
        if not recs:
            print(f"{path.stem}: no SSB found")
            continue
        r0 = recs[0]
        fs, scs = m.sample_rate_hz, int(r0["scs_khz"])
        base = site_baseline(_observations_of(x, fs, m.center_freq_hz), scs, fs, m.datatype, r0["ssb_freq_hz"],
                             m.center_freq_hz, detector=det)  # as ssbwatch calibrate
        fft = int(round(fs / (scs * 1e3)))
        cp = fft * 144 // 2048  # normal CP (TS 38.211 §5.3.1): the SSB's symbols have no long CP
        off = round(r0["ssb_offset_hz"] / (scs * 1e3)) * scs * 1e3
        bins = nr.subcarrier_bins(nr.Numerology.create(scs, fs), off)
        x = x * np.exp(-2j * np.pi * r0["cfo_hz"] * np.arange(x.size) / fs).astype(np.complex64)
        starts = (int(r0["sample"]) + np.arange(4) * (fft + cp))[None, :]  # each symbol's CP start
        cps = np.full((1, 4), cp)
        pw = _re_power(x, starts, cps, fft, bins)[0]
        n_re = float(pw[nr.NULL_RE_MASK].mean())  # the 130 null REs (TS 38.211 Table 7.4.3.1-1)
        s_re = float(pw[~nr.NULL_RE_MASK].mean()) - n_re
        print(f"{path.stem}: PCI {r0['pci']}, SNR {10 * np.log10(s_re / n_re):.1f} dB, clean: "
              f"{sum(bool(q['jammed']) for q in recs)}/{len(recs)} jammed")
        for it, jt in enumerate(JAMMER_TYPES):
            for sj in sjnrs_db:
                for d in range(n_draws):
                    rng = np.random.default_rng([d, int(round(sj * 10)) + 1000, it])
                    kw = {"ssb_center_hz": off, "ssb_bandwidth_hz": 240 * scs * 1e3}
                    if jt == "reactive":
                        kw["ssb_mask"] = np.zeros(x.size, bool)
                        kw["ssb_mask"][starts[0, 0] : starts[0, -1] + cp + fft] = True
                    if jt == "spoofer":
                        mode = ("pss", "ssb")[d % 2]
                        fake = (int(r0["pci"]) + 1 + int(rng.integers(1007))) % 1008
                        g = nr.ssb_grid(fake, 0, 8, rng=rng, components=("pss",) if mode == "pss" else
                                        ("pss", "sss", "dmrs", "pbch"))
                        sym = np.zeros((4, fft), np.complex64)
                        sym[:, bins] = g
                        tpl = np.zeros(x.size, np.complex64)
                        w = nr.ofdm_modulate(sym, np.full(4, cp))
                        tpl[starts[0, 0] : starts[0, 0] + w.size] = w  # in time with the cell's SSB
                        kw.update(template=tpl, mode=mode)
                    jw, _ = jammers.make_jammer(jt, x.size, fs, rng, **kw)
                    j_re = float(_re_power(jw, starts, cps, fft, bins)[0].mean())
                    target = s_re / 10 ** (sj / 10) - n_re
                    if target <= 0 or j_re <= 0:
                        continue
                    y = (x + jw * np.float32(np.sqrt(target / j_re))).astype(np.complex64)
                    for mode_name, b in (("uncalibrated", None), ("calibrated", base)):
                        got = score(y, m, b)
                        t = tally[(mode_name, jt, sj)]
                        t[1] += 1
                        t[0] += any(bool(q["jammed"]) for q in got)
                        t[2] += not got
    for mode_name in ("uncalibrated", "calibrated"):
        print(f"{mode_name} ({det.name}): recordings with a jammed SSB / jammed recordings scored "
              "(and how many gave no record), per SJNR (dB)")
        for jt in JAMMER_TYPES:
            cells = []
            for sj in sjnrs_db:
                t = tally[(mode_name, jt, sj)]
                cells.append(f"{sj:g}: {t[0]}/{t[1]}" + (f" ({t[2]} none)" if t[2] else ""))
            print(f"  {jt:20s} " + "  ".join(cells))




def _sss_power(x, p):
    """Mean power of the SSS REs of the SSBs a receiver finds in ``x`` (the capture of
    params ``p``), in x's units."""
    from detector.receiver import Receiver

    rx = Receiver(p.sample_rate_hz, p.center_freq_hz)
    obs = [o for o in rx.push(x) + rx.flush() if o.valid and o.pci == p.pci]
    return float(np.mean([np.mean(np.abs(o.grid[2, 56:183]) ** 2) for o in obs])) if obs else 0.0


ANALOG_ORDER = 5  # analog: the lowpass's order
ANALOG_ADC_DB = -30.0  # analog: the ADC's noise after the filter, against the receiver's own


def _analog(cap, sos, rng):
    """``cap``'s samples (its signal and noise) through the lowpass ``sos`` (I and Q
    alike), then the ADC's white noise ANALOG_ADC_DB under the recording's own noise."""
    from scipy.signal import sosfilt

    p = cap.params
    y = sosfilt(sos, cap.iq.real) + 1j * sosfilt(sos, cap.iq.imag)
    noise = np.sqrt(np.mean(np.abs(cap.iq) ** 2) / (1 + 10 ** (p.snr_db / 10))) * 10 ** (ANALOG_ADC_DB / 20)
    return (y + noise * (rng.standard_normal(y.size) + 1j * rng.standard_normal(y.size)) / np.sqrt(2)
            ).astype(np.complex64)


def eval_analog(n_sites, seed, cutoffs, model="default"):
    """Clean 60 ms cells at 30.72 Msps (SNR 5-30 dB, the default mix otherwise) seen
    through a receiver whose analog lowpass ends at ``cutoff`` x Nyquist: SSBs
    called jammed uncalibrated, and at the site calibrated on another recording
    through the same receiver. Sites whose SSB does not lie inside 90 % of the
    filter's band are left out (the SSB itself filtered)."""
    from scipy.signal import butter

    det = load_detector(model)
    fs = 30.72e6
    cfg = SimConfig(sample_rates_hz=(fs,), duration_ms=60.0, snr_db=(5.0, 30.0),
                    jamming=dataclasses.replace(SimConfig().jamming, clean_fraction=1.0))
    for cut in cutoffs:
        sos = butter(ANALOG_ORDER, cut, output="sos")
        fa = {"uncalibrated": [0, 0], "calibrated": [0, 0]}
        sites = 0
        for i in range(n_sites):
            rng = np.random.default_rng([seed, i])
            p = draw_params(cfg, rng, force_clean=True)
            if abs(p.ssb_offset_hz) + 130 * p.scs_khz * 1e3 > 0.9 * cut * fs / 2:
                continue
            sites += 1
            cal = simulate_capture(p, np.random.default_rng([seed, i, 1]))
            obs = _observations_of(_analog(cal, sos, np.random.default_rng([seed, i, 2])), fs, p.center_freq_hz)
            base = (site_baseline(obs, p.scs_khz, fs, p.datatype, p.ssb_freq_hz, p.center_freq_hz, detector=det)
                    if len(obs) >= 5 else None)
            cap = simulate_capture(p, rng)
            y = _analog(cap, sos, np.random.default_rng([seed, i, 3]))
            for mode, b in (("uncalibrated", None), ("calibrated", base)):
                if mode == "calibrated" and b is None:
                    continue
                recs, _ = run_capture(cap, iq=y, baseline=b, detector=det)
                for t, r in match(recs, cap.ssbs, tol=p.numerology.cp_short):
                    if r is not None and r["valid"]:
                        fa[mode][0] += bool(r["jammed"])
                        fa[mode][1] += 1
        print(f"analog lowpass to {cut:g} x Nyquist ({sites} sites, {det.name}): " + ", ".join(
            f"{m} {a}/{n} SSBs jammed" for m, (a, n) in fa.items()))


def _observations(cap):
    return _observations_of(cap.iq, cap.params.sample_rate_hz, cap.params.center_freq_hz)


def _observations_of(x, fs, fc):
    """The valid observations of a receiver (rate ``fs``, centre ``fc``) over samples ``x``."""
    from detector.receiver import Receiver

    rx = Receiver(fs, fc)
    return [o for o in rx.push(x) + rx.flush() if o.valid]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["pci", "detect", "rates", "drift", "beams", "fading", "cfo", "weak", "dense", "alone",
                                         "mistimed", "novel", "protocol", "periods", "transient", "weaker",
                                         "cells", "realjam", "strong", "network", "cotimed", "iqimage", "loaded",
                                         "kssb", "analog", "partial", "field", "onset", "shortdc", "nbcfo"])
    ap.add_argument("--n", type=int, default=None, help="captures (default 40; dense 80, alone 45)")
    ap.add_argument("--sites", type=int, default=24)
    ap.add_argument("--seed", type=int, default=None, help="default 1; dense 77, alone 55")
    ap.add_argument("--model", default="classical", help="detect, drift, rates: 'classical', 'default' or a model path")
    ap.add_argument("--doppler", default="100,300", help="fading: maximum Doppler shifts (Hz), comma-separated")
    ap.add_argument("--ms", type=float, default=None, help="fading: duration of the scored recordings "
                                                           "(default 300); partial: of the streams (100); "
                                                           "field: of the clean recording (100)")
    ap.add_argument("--jammers", action="store_true", help="fading: also Pd, one recording per jammer type")
    ap.add_argument("--cfo", default="0,5000,10000,-12000", help="cfo: receiver frequency errors (Hz)")
    ap.add_argument("--snr", default="-3,0,3,6", help="weak: SNRs (dB); kssb: the SNR range (default 35,40)")
    ap.add_argument("--rate", type=float, help="cfo: one sample rate (Hz), SSB off-centre (default: the mix)")
    ap.add_argument("--offsets", default="-6,-4,-3,-2,-1,1,2,4,6", help="mistimed: the neighbour's offsets (CPs)")
    ap.add_argument("--power", default=None, help="mistimed: the neighbour's power range (dB; default -20,-3); "
                                                  "cells: the extra cells' (default -9,-3); cotimed: the "
                                                  "neighbour's (default -1,1)")
    ap.add_argument("--sir", default=None, help="novel, protocol: signal-to-jammer ratios over the SSB's band "
                                                "(dB; default 5,15,25); realjam: SJNRs (default 5,10,15,20,25)")
    ap.add_argument("--rates", default="19.5,20,25,50", help="rates: sample rates (Msps) to resample to")
    ap.add_argument("--periods", default="20,40,80,160", help="periods: SSB periods (ms)")
    ap.add_argument("--drifts", help="drift: the noise floor's rises to score (dB; default "
                                     + ",".join(f"{d:g}" for d in DRIFTS_DB) + ")")
    ap.add_argument("--calibrated", action="store_true", help="mistimed: each site calibrated on a clean recording "
                                                              "of its own (FAR and Pd)")
    ap.add_argument("--no-fade-guard", action="store_true", help="fading: the pipeline's fading guard off")
    ap.add_argument("--agc", action="store_true", help="onset: each part of the stream level-set as by an AGC")
    ap.add_argument("--pin", action="store_true", help="strong: the cell search pinned to the SSB's frequency")
    ap.add_argument("--jnr", type=float, default=0.0, help="weaker: the barrage's JNR (dB)")
    ap.add_argument("--images", default=None, help="iqimage: the IQ image levels (dB; default -20,-25,-30)")
    ap.add_argument("--count", default=None, help="network: co-timed neighbour cells per site, min,max (default 2,3)")
    ap.add_argument("--extra", type=int, default=1, help="cells: co-timed cells besides the serving one and its "
                                                         "simulated neighbour")
    ap.add_argument("--cal-ms", type=float, default=None, help="loaded: the clean recording a site is calibrated "
                                                               "on (ms, in 40 ms recordings; default 200); field: "
                                                               "(ms, one recording; default 400)")
    ap.add_argument("--cutoffs", default="0.85,0.7,0.65", help="analog: the lowpass's band edges (x Nyquist)")
    a = ap.parse_args(argv)
    if a.n is None:
        a.n = {"dense": 80, "alone": 45, "realjam": 2}.get(a.what, 40)
    if a.seed is None:
        a.seed = {"dense": 77, "alone": 55, "network": 7, "cotimed": 900, "iqimage": 77, "kssb": 42,
                  "analog": 7, "nbcfo": 5}.get(a.what, 1)
    if a.sir is None:
        a.sir = {"realjam": "5,10,15,20,25", "onset": "-10,0,10"}.get(a.what, "5,15,25")
    if a.ms is None:
        a.ms = 100.0 if a.what in ("partial", "field") else 300.0
    if a.cal_ms is None:
        a.cal_ms = 400.0 if a.what == "field" else 200.0
    if a.no_fade_guard:
        import detector.pipeline

        detector.pipeline.FADE_MIN_DB = float("inf")
    if a.what == "pci":
        eval_pci(a.n, a.seed)
    elif a.what == "rates":
        eval_rates(a.n, a.seed, a.model, [float(v) * 1e6 for v in a.rates.split(",")])
    elif a.what == "mistimed":
        eval_mistimed(a.sites, a.seed, [float(v) for v in a.offsets.split(",")],
                      [float(v) for v in (a.power or "-20,-3").split(",")],
                      model="default" if a.model == "classical" else a.model, calibrated=a.calibrated)
    elif a.what in ("weak", "cfo"):  # the shipped model unless another is named (no classical run)
        model = "default" if a.model == "classical" else a.model
        if a.what == "weak":
            eval_weak(a.sites, a.seed, [float(v) for v in a.snr.split(",")], model=model)
        else:
            eval_cfo(a.n, a.seed, [float(v) for v in a.cfo.split(",")], model=model, rate_hz=a.rate)
    elif a.what == "drift":
        eval_drift(a.sites, a.seed, model=a.model,
                   drifts_db=DRIFTS_DB if a.drifts is None else [float(v) for v in a.drifts.split(",")])
    elif a.what in ("novel", "protocol", "periods"):
        model = "default" if a.model == "classical" else a.model
        if a.what in ("novel", "protocol"):
            eval_novel(a.sites, a.seed, [float(v) for v in a.sir.split(",")], model=model,
                       kinds=NOVEL_JAMMERS if a.what == "novel" else PROTOCOL_JAMMERS)
        else:
            eval_periods(a.sites, a.seed, [float(v) for v in a.periods.split(",")], model=model)
    elif a.what == "beams":
        eval_beams(a.sites, a.seed, model=a.model)
    elif a.what == "weaker":
        eval_weaker(a.sites, a.seed, model="default" if a.model == "classical" else a.model,
                    jnr_db=a.jnr)
    elif a.what == "network":
        lo, hi = (int(v) for v in (a.count or "2,3").split(","))
        eval_network(a.sites, a.seed, count=(lo, hi),
                     model="default" if a.model == "classical" else a.model)
    elif a.what == "loaded":
        lo, hi = (float(v) for v in (a.power or "-15,-3").split(","))
        eval_loaded(a.sites, a.seed, power_db=(lo, hi), model="default" if a.model == "classical" else a.model,
                    cal_ms=a.cal_ms)
    elif a.what == "field":
        eval_field(a.sites, a.seed, model="default" if a.model == "classical" else a.model, cal_ms=a.cal_ms,
                   test_ms=a.ms)
    elif a.what == "iqimage":
        eval_iqimage(a.sites, a.seed, [float(v) for v in (a.images or "-20,-25,-30").split(",")],
                     model="default" if a.model == "classical" else a.model)
    elif a.what == "analog":
        eval_analog(a.sites, a.seed, [float(v) for v in a.cutoffs.split(",")],
                    model="default" if a.model == "classical" else a.model)
    elif a.what == "kssb":
        lo, hi = (float(v) for v in (a.snr if a.snr != "-3,0,3,6" else "35,40").split(","))
        eval_kssb(a.sites, a.seed, snr_db=(lo, hi), model="default" if a.model == "classical" else a.model)
    elif a.what == "cotimed":
        lo, hi = (float(v) for v in (a.power or "-1,1").split(","))
        eval_cotimed(a.n, a.seed, power_db=(lo, hi), model="default" if a.model == "classical" else a.model)
    elif a.what == "cells":
        lo, hi = (float(v) for v in (a.power or "-9,-3").split(","))
        eval_cells(a.sites, a.seed, extra=a.extra, power_db=(lo, hi),
                   model="default" if a.model == "classical" else a.model)
    elif a.what == "partial":
        eval_partial(a.sites, a.seed, ms=a.ms)
    elif a.what == "dense":
        eval_dense(a.n, a.seed)
    elif a.what == "realjam":
        eval_realjam(a.n, [float(v) for v in a.sir.split(",")],
                     model="default" if a.model == "classical" else a.model)
    elif a.what == "alone":
        eval_alone(a.n, a.seed)
    elif a.what == "strong":
        eval_strong(a.sites, a.seed, model="default" if a.model == "classical" else a.model, pin=a.pin)
    elif a.what == "onset":
        eval_onset(a.sites, a.seed, [float(v) for v in a.sir.split(",")], agc=a.agc,
                   model="default" if a.model == "classical" else a.model)
    elif a.what == "nbcfo":
        eval_nbcfo(a.n or 40, a.seed)
    elif a.what == "shortdc":
        eval_shortdc(a.sites, a.seed, model="default" if a.model == "classical" else a.model)
    elif a.what == "transient":
        eval_transient(a.sites, a.seed, model="default" if a.model == "classical" else a.model)
    elif a.what == "fading":
        eval_fading(a.sites, a.seed, [float(v) for v in a.doppler.split(",")], a.ms, a.jammers, model=a.model)
    else:
        eval_detect(a.sites, a.seed, model=a.model)


if __name__ == "__main__":
    sys.exit(main())
