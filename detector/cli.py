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
    out = Path(args.out)
    t0 = time.perf_counter()
    with Progress(cfg.n_captures, "simulate", " captures", force=args.progress) as bar:
        manifest = simulate_dataset(cfg, out, args.seed, progress=lambda i, n: bar.set(i))
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
    sp.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a terminal")
    sp.add_argument("-q", "--quiet", action="store_true", help="print only the summary line")
    sp.set_defaults(func=cmd_simulate)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        _err(str(exc))
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
