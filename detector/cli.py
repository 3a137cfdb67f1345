"""``ssbwatch`` command line (DESIGN.md §7).

Each subcommand parses its arguments here and calls library code; heavy
imports happen inside the command so ``ssbwatch --help`` stays fast and the
edge commands never import torch.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from signals.config import ConfigError


def _err(msg: str) -> None:
    print(f"ssbwatch: error: {msg}", file=sys.stderr)


# ---------------------------------------------------------------------------
# simulate
# ---------------------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace) -> int:
    import dataclasses

    from signals.config import load_yaml, to_dict
    from signals.simulate import SimConfig, simulate_dataset

    from .progress import Progress

    cfg = load_yaml(args.config, SimConfig) if args.config else SimConfig()
    if args.n is not None:
        if args.n < 1:
            raise ConfigError(f"--n={args.n} must be >= 1")
        cfg = dataclasses.replace(cfg, n_captures=args.n)
    if args.workers < 1:
        raise ConfigError(f"--workers={args.workers} must be >= 1")
    out = Path(args.out)
    t0 = time.perf_counter()
    with Progress(cfg.n_captures, "simulate", " captures", force=args.progress) as bar:
        manifest = simulate_dataset(cfg, out, args.seed, progress=lambda i, n: bar.set(i), workers=args.workers)
    wall = time.perf_counter() - t0
    iq_s = sum(m["seconds"] for m in manifest)
    (out / "manifest.json").write_text(
        json.dumps({"tool": "ssbwatch simulate", "seed": args.seed, "config": to_dict(cfg), "captures": manifest}, indent=1)
    )
    n_ssb = sum(m["n_ssb"] for m in manifest)
    n_jam = sum(m["n_jammed"] for m in manifest)
    print(f"wrote {len(manifest)} SigMF captures to {out}/ ({iq_s * 1e3:.0f} ms of IQ, {n_ssb} SSBs, {n_jam} jammed) "
          f"in {wall:.1f} s: {iq_s / wall:.3f} s of IQ per second")
    if not args.quiet:
        for m in manifest:
            print(f"  {m['meta']}: {m['scs_khz']} kHz SCS, {m['sample_rate_hz'] / 1e6:g} Msps {m['datatype']}, "
                  f"PCI {m['pci']}, {m['jammer'] or 'clean'}: {m['n_ssb']} SSBs, {m['n_jammed']} jammed")
    return 0


# ---------------------------------------------------------------------------
# replay / calibrate
# ---------------------------------------------------------------------------
def _receiver_config(args: argparse.Namespace):
    from .receiver import ReceiverConfig

    scs = None if args.scs == "auto" else int(args.scs)
    # (--ssb-freq is taken to an offset per recording, from its own centre: replay_file)
    return ReceiverConfig(scs_khz=scs, period_ms=args.period_ms,
                          cfo_search_hz=args.max_cfo_hz, swap_iq=args.swap_iq, iq_swap_check=not args.no_iq_check)


def _load_baseline(path):
    if not path:
        return None
    from .baseline import SiteBaseline

    return SiteBaseline.load(path)


def cmd_replay(args: argparse.Namespace) -> int:
    from .replay import replay

    baseline = _load_baseline(args.baseline)
    detector = _load_detector(args)
    out = None
    close = False
    if args.jsonl == "-":
        out = sys.stdout
    elif args.jsonl:
        out = open(args.jsonl, "w")
        close = True
    try:
        summaries = replay(args.captures, out, annotate=args.annotate, datatype=args.format,
                           sample_rate_hz=args.sample_rate, center_freq_hz=args.center_freq, channel=args.channel,
                           receiver_config=_receiver_config(args), detector=detector, baseline=baseline,
                           progress=args.progress, ssb_freq_hz=args.ssb_freq)
    finally:
        if close:
            out.close()
    return 0 if all(s.ok for s in summaries) else 1


def _load_detector(args):
    """The detector for replay: ``--model`` (default: the DT-DDNN model shipped
    with ssbwatch; see :func:`detector.pipeline.load_detector`)."""
    from .pipeline import load_detector

    return load_detector(getattr(args, "model", None) or "default")


# ---------------------------------------------------------------------------
# train / evaluate / info (torch only inside train and evaluate)
# ---------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from training.train import load_config, train

    cfg = load_config(args.config)
    if args.workers is not None:
        import dataclasses

        cfg = dataclasses.replace(cfg, workers=args.workers)
    train(cfg, args.data, args.out, progress=not args.no_progress, config_path=args.config)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate

    evaluate(args.model, args.data, args.report, workers=args.workers, progress=not args.no_progress,
             sidecar=args.record)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .model import DTDDNNDetector

    det = DTDDNNDetector(args.model)
    info = det.info()
    side = det.path.with_suffix(".json")
    if side.exists():
        try:
            info["evaluation"] = json.loads(side.read_text()).get("evaluation")
        except (OSError, json.JSONDecodeError):
            info["evaluation"] = None
    info["latency_us_per_ssb"] = round(det.timing_us(1000), 1)
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        print(f"{info['path']}: {info['detector']} ({info['model_format']}), features {info['feature_version']} "
              f"({info['n_features']}), opset {info['opset']}")
        print(f"  thresholds: low {info['threshold_low']:.4f}, high {info['threshold_high']:.4f}, "
              f"stage 2 {info['threshold_stage2']:.4f}; SCS {info['scs_khz']} kHz")
        print(f"  DNN-2 reads: {info['stage2_input']}")
        print(f"  training data sha256 {info['training_data_sha256']}, weights sha256 {info['weights_sha256']}")
        if info.get("evaluation"):
            print(f"  evaluation: {json.dumps(info['evaluation'])}")
        print(f"  inference {info['latency_us_per_ssb']} us per SSB")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .replay import calibrate

    base = calibrate(args.captures, datatype=args.format, sample_rate_hz=args.sample_rate,
                     center_freq_hz=args.center_freq, channel=args.channel, receiver_config=_receiver_config(args),
                     progress=args.progress, min_ssbs=args.min_ssbs, ssb_freq_hz=args.ssb_freq,
                     cancel_neighbour=not args.no_neighbour_cancel,
                     detector=None if args.model in ("classical", "none") else _load_detector(args))
    if not base.configs:
        _err("no configuration had enough clean SSBs; baseline not written")
        return 1
    base.save(args.output)
    for c in base.configs.values():
        st = c.stats
        nb = ""
        if c.neighbours:
            nb = f", neighbours {c.neighbours} ({'not ' if not c.cancel_neighbour else ''}cancelled)"
        if c.offtime_cells:
            nb += f", cells off its timing {c.offtime_cells}"
        if c.per_index:
            isr = [o["isr_db"][0] for o in c.per_index.values() if "isr_db" in o]
            nb += f", per-SSB-index levels for indices {sorted(c.per_index)}" + (
                f" (clean ISR {max(isr) - min(isr):.1f} dB apart)" if len(isr) >= 2 else "")
        if c.clean_scores:
            from .model import sigmoid

            z1, z2, _ = next(iter(c.clean_scores.values()))
            nb += f", the model's scores of these clean SSBs up to p1 {sigmoid(z1):.4f}, p2 {sigmoid(z2):.4f}"
        print(f"{c.key}: {c.n_ssb} SSBs, PCI {c.pcis}, noise floor {c.noise_floor_db:.1f} dB/RE, "
              f"SNR {st['snr_est_db'].median:.1f} dB, ISR {st['isr_db'].median:.1f} dB{nb}")
    print(f"wrote {args.output}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import main as bench_main

    if args.seconds <= 0 or args.rate <= 0 or not 1 <= args.ssbs <= 8 or args.repeat < 1:
        raise ConfigError("--seconds and --rate must be > 0, --ssbs in 1..8 and --repeat >= 1")
    return bench_main(args)


# ---------------------------------------------------------------------------
# record (a clean recording of the live source, for calibrate)
# ---------------------------------------------------------------------------
def cmd_record(args: argparse.Namespace) -> int:
    from signals.iq import IQFormatError, sigmf_paths

    from .daemon import apply_overrides, load_edge_config, open_section_source
    from .daemon import EdgeConfig
    from .progress import Progress
    from .record import record

    cfg = load_edge_config(args.config) if args.config else EdgeConfig()
    cfg = apply_overrides(cfg, args)
    if not cfg.source.uri:
        raise ConfigError("source.uri is not set (config file or --source)")
    if args.seconds <= 0 or args.timeout_s <= 0:
        raise ConfigError(f"--seconds ({args.seconds}) and --timeout-s ({args.timeout_s}) must be > 0")
    if not args.force:
        for p in sigmf_paths(args.output):
            if p.exists():
                _err(f"{p} exists; not replaced (another -o, or --force replaces it)")
                return 1
    try:
        src = open_section_source(cfg.source)
    except (OSError, ValueError) as exc:
        _err(str(exc))
        return 1
    try:
        if src.sample_rate_hz is None:
            raise ConfigError(f"{src.uri}: the sample rate is unknown (source.sample_rate_hz / --sample-rate)")
        total = int(round(args.seconds * src.sample_rate_hz))
        with Progress(total, "record", " samples", force=args.progress) as bar:
            res = record(src, args.seconds, args.output, overwrite=args.force, timeout_s=args.timeout_s,
                         progress=lambda i, n: bar.set(i))
    except IQFormatError as exc:
        _err(str(exc))
        return 1
    finally:
        src.close()
    if res.meta_path is None:
        _err(f"{src.uri}: no samples arrived ({res.ended}); nothing written")
        return 1
    disc = (f"; {res.discontinuities} discontinuities (source reconnected or dropped bytes: each starts a new "
            f"capture segment, cut there by calibrate and replay)" if res.discontinuities else "")
    print(f"wrote {res.meta_path}: {res.n_samples} samples ({res.seconds:.3f} s) of {res.datatype} at "
          f"{res.sample_rate_hz / 1e6:g} Msps{disc}")
    if res.ended != "complete":
        _err(f"recording ended early ({res.ended}) after {res.seconds:.3f} of {args.seconds:g} s; what arrived is kept")
    print(f"next, while the cell is known to be clean: ssbwatch calibrate {res.meta_path} -o baseline.json")
    return 0 if res.ended == "complete" else 1


# ---------------------------------------------------------------------------
# run (the edge daemon, detector/daemon.py)
# ---------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from .daemon import run_from_args

    return run_from_args(args)


def datatype_arg(text: str) -> str:
    """argparse type of --format (replay, calibrate, run): the SigMF name
    (signals.iq.normalize_datatype)."""
    from signals import iq as iqio

    try:
        return iqio.normalize_datatype(text)
    except iqio.IQUnsupportedDatatypeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _channel_arg(text: str) -> int:
    try:
        k = int(text)
    except ValueError:
        k = -1
    if k < 0:
        raise argparse.ArgumentTypeError(f"--channel needs a channel number (0, 1, ...), got {text!r}")
    return k


def _add_capture_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("captures", nargs="+", metavar="CAPTURE", help="SigMF (.sigmf-meta/.sigmf-data, or a .sigmf archive) or raw IQ files")
    sp.add_argument("--format", type=datatype_arg, metavar="DATATYPE",
                    help="datatype of raw files (SigMF name: cf32_le, ci16_le, ci8, cu8, cf64_le, ci32_le, cu16_le, ... ; _be for big endian)")
    sp.add_argument("--sample-rate", "--rate", type=float, dest="sample_rate", help="sample rate of raw files (Hz)")
    sp.add_argument("--center-freq", type=float, help="capture centre frequency (Hz), for the raster search")
    sp.add_argument("--channel", type=_channel_arg, default=0,
                    help="channel of a multi-channel SigMF recording (core:num_channels) to score (default 0)")
    sp.add_argument("--ssb-freq", type=float, help="pin the SSB centre frequency (Hz)")
    sp.add_argument("--scs", choices=["auto", "15", "30"], default="auto", help="SSB subcarrier spacing (kHz)")
    sp.add_argument("--period-ms", type=float, default=20.0, help="SSB period assumed until a shorter one is seen")
    sp.add_argument("--max-cfo-hz", type=float, default=12000.0,
                    help="largest receiver frequency error the cell search looks for (Hz; an SDR's "
                         "crystal ppm x carrier: 2 ppm at 3.5 GHz is 7 kHz; default 12000)")
    iq = sp.add_mutually_exclusive_group()
    iq.add_argument("--swap-iq", action="store_true",
                    help="I and Q are swapped in the recordings (Q written first, spectrum inverted): "
                         "conjugate every sample")
    iq.add_argument("--no-iq-check", action="store_true",
                    help="do not look for the cell in the complex conjugate when none is found "
                         "(by default a clear cell there is taken as I and Q swapped, and scored so)")
    sp.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a terminal")


# ---------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ssbwatch", description="Detect RF jamming of 5G NR SS/PBCH blocks from raw IQ.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sp = sub.add_parser("simulate", help="simulate SigMF captures with ground truth (clean and jammed)")
    sp.add_argument("--out", required=True, help="output directory")
    sp.add_argument("--config", help="simulation YAML (default: built-in mix, see configs/sim.yaml)")
    sp.add_argument("--n", type=int, help="number of captures (overrides the config)")
    sp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sp.add_argument("--workers", type=int, default=1,
                    help="processes (default 1); the captures are the same whatever the number")
    sp.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a terminal")
    sp.add_argument("-q", "--quiet", action="store_true", help="print only the summary line")
    sp.set_defaults(func=cmd_simulate)

    sp = sub.add_parser("replay", help="score recordings: one JSON record per SSB")
    _add_capture_args(sp)
    sp.add_argument("--jsonl", help="write records here ('-' for stdout)")
    sp.add_argument("--baseline", help="site baseline from ssbwatch calibrate")
    sp.add_argument("--annotate", action="store_true", help="append the detections to each SigMF recording's annotations")
    sp.add_argument("--model", help="'default' (the DT-DDNN model shipped with ssbwatch; the default), 'classical' "
                                    "(energy detector), or a DT-DDNN model (.onnx or a directory holding dtddnn.onnx)")
    sp.set_defaults(func=cmd_replay)

    sp = sub.add_parser("calibrate", help="learn a site baseline from clean recordings")
    _add_capture_args(sp)
    sp.add_argument("-o", "--output", required=True, help="baseline JSON to write")
    sp.add_argument("--min-ssbs", type=int, default=2,
                    help="fewest clean SSBs per configuration (default 2; 10 or more recommended)")
    sp.add_argument("--no-neighbour-cancel", action="store_true",
                    help="never cancel the site's co-channel neighbour cell (for a node too slow for it: ~1.5 ms "
                         "per SSB; weak jammers then hide under the neighbour)")
    sp.add_argument("--model", default="default",
                    help="the DT-DDNN model the site will be scored with ('default': the shipped one; or a model "
                         "file / directory): its scores of the clean SSBs are kept in the baseline, and where they "
                         "reach its thresholds the site's thresholds are raised over them; 'none': not kept")
    sp.set_defaults(func=cmd_calibrate)

    sp = sub.add_parser("bench", help="speed (real-time factor), per-SSB latency and memory")
    sp.add_argument("--rate", type=float, default=30.72e6, help="sample rate (Hz, native for 30 kHz SCS)")
    sp.add_argument("--seconds", type=float, default=2.0, help="seconds of IQ per measurement")
    sp.add_argument("--ssbs", type=int, default=8, help="SSBs per 20 ms burst (1-8)")
    sp.add_argument("--repeat", type=int, default=3,
                    help="runs of each tracking measurement (fresh processes); the best is reported (default 3)")
    sp.add_argument("--stages", action="store_true",
                    help="one more ci16 tracking run with stage timers: where tracking's CPU goes, per SSB")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_bench)

    sp = sub.add_parser("train", help="train the DT-DDNN and its baselines on simulated data, export ONNX")
    sp.add_argument("--config", help="training YAML (default: the built-in defaults of training/train.py TrainConfig, which are configs/train.yaml, the shipped model's recipe)")
    sp.add_argument("--data", required=True, nargs="+", metavar="DIR", help="ssbwatch simulate output directories")
    sp.add_argument("--out", required=True, help="model directory to write (dtddnn.onnx, rawiq.onnx, dtddnn.json)")
    sp.add_argument("--workers", type=int, help="receiver processes for the dataset (default: the config's)")
    sp.add_argument("--no-progress", action="store_true", help="no progress bars")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("evaluate", help="DT-DDNN vs baselines on held-out data: tables and PNG plots")
    sp.add_argument("--model", required=True, help="model directory (from ssbwatch train) or dtddnn.onnx")
    sp.add_argument("--data", required=True, nargs="+", metavar="DIR", help="ssbwatch simulate output directories")
    sp.add_argument("--report", required=True, help="report directory to write")
    sp.add_argument("--workers", type=int, default=2, help="receiver processes for the dataset (default 2)")
    sp.add_argument("--record", action="store_true", help="store the headline figures in the model's JSON sidecar")
    sp.add_argument("--no-progress", action="store_true", help="no progress bars")
    sp.set_defaults(func=cmd_evaluate)

    sp = sub.add_parser("info", help="describe the DT-DDNN model (default: the shipped one)")
    sp.add_argument("--model", help="model file or directory (default: the shipped model)")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.set_defaults(func=cmd_info)

    from .daemon import add_run_arguments, add_source_arguments

    sp = sub.add_parser("record", help="record the live source of ssbwatch run to SigMF (clean recordings for calibrate)")
    add_source_arguments(sp, "edge YAML (see configs/edge.yaml): its source section; options below override it")
    sp.add_argument("--seconds", type=float, required=True, help="how much of the stream to record (s)")
    sp.add_argument("-o", "--output", required=True, help="recording to write (X, X.sigmf-meta or X.sigmf-data)")
    sp.add_argument("--force", action="store_true", help="replace an existing recording of that name")
    sp.add_argument("--timeout-s", type=float, default=10.0,
                    help="stop when the source sends nothing for this long (s; default 10); what arrived is kept")
    sp.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a terminal")
    sp.set_defaults(func=cmd_record)

    sp = sub.add_parser("run", help="edge daemon: score a live IQ stream, emit records, alerts and metrics")
    add_run_arguments(sp)
    sp.set_defaults(func=cmd_run)
    return ap


# Commands that run the receiver: one BLAS thread (detector.threads). Set before numpy
# is imported (nothing above imports it); an explicit setting in the environment wins.
_ONE_BLAS_THREAD = ("run", "replay", "calibrate", "bench")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in _ONE_BLAS_THREAD:
        from .threads import limit_blas_threads

        limit_blas_threads()
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        _err(str(exc))
        return 2
    except ValueError as exc:  # BaselineError and other input errors: named, not a traceback
        _err(str(exc))
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `ssbwatch replay ... --jsonl - | head`
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
