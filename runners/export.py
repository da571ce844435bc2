"""Export a learned distributed policy: one file per AP, each AP's network alone.

    python runners/export.py --policy student --scenario pos2 --users 8 --format onnx --out DIR
    python runners/export.py --policy student --scenario pos2 --users 8 --format torchscript
    python runners/export.py --policy student --checkpoint my.pt --format onnx --out DIR

Writes ``ap_0.onnx .. ap_{L-1}.onnx`` (``--format onnx``: ``torch.onnx.export(dynamo=True)``,
input ``"csi"``, output ``"beams"``) or ``ap_<l>.pt2`` (``--format torchscript``: TorchScript's
replacement, a ``torch.export`` program; ``torch.export.load(path).module()``). Every file maps
AP ``l``'s own CSI ``(B, 2, M, Q)`` float32 to its beams ``(B, 2, M, Q)`` float32 on its full
budget, ``B`` dynamic. Each file is checked against the torch network on ``--check-drops``
drops of the scenario (onnxruntime for ONNX); ``export.json`` records the files, their shapes,
the largest absolute difference and the run's provenance.

``--policy`` is a learned policy name (``student``, ``ssnr-teacher``, ...; the shipped checkpoint
of ``--scenario``/``--users``/``--arch``, or ``--checkpoint PATH``; the any-N ``span-attn``
networks of ``student`` / ``sinr-teacher`` export as torchscript only) or any policy whose
``nets.aps`` are :class:`policies.learned.nets.APNetwork` s. Exit status 2 with one line on a user
error
(unknown policy, no checkpoint, a central policy), before any file is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

import policies
from cfisac_env.runs import provenance, run_dir, write_json
from policies.learned import export
from policies.learned.nets import ARCHS
from policies.learned.policies import LearnedPolicy
from policies.learned.span import ARCH as SPAN
from runners import _cli


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__.split("\n\n")[0], "export")
    _cli.add_common(p, scenario="pos2", users=8, threads=1, skip=("seed",))
    p.add_argument("--policy", default="student",
                   help="learned policy name, module:Class or file.py:Class (default student)")
    p.add_argument("--format", choices=export.FORMATS, default="onnx")
    p.add_argument("--arch", choices=ARCHS, default=None,
                   help="architecture of the shipped checkpoint (default: the shipped default)")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="checkpoint to export instead of the shipped one")
    p.add_argument("--check-drops", type=_cli.int_in(1, 100_000), default=16,
                   help="drops the exported files are checked on (default 16)")
    return p.parse_args(argv)


def build(args: argparse.Namespace) -> tuple[Any, Any]:
    """The scenario and the policy to export; a ``ValueError`` for anything not exportable."""
    scenario = _cli.load_scenario(args)
    options: dict[str, Any] = {}
    factory = policies.resolve(args.policy)
    if isinstance(factory, type) and issubclass(factory, LearnedPolicy):
        options = {"scenario": scenario.name}
        if args.arch is not None:
            options["arch"] = args.arch
        if args.checkpoint is not None:
            options["checkpoint"] = str(args.checkpoint)
    elif args.arch is not None or args.checkpoint is not None:
        raise ValueError(f"--arch and --checkpoint apply to the learned policies, not "
                         f"{args.policy!r}")
    pol = policies.make(args.policy, scenario.system, **options)
    aps = getattr(getattr(pol, "nets", None), "aps", None)
    if aps is None or len(aps) != scenario.system.L:
        raise ValueError(f"policy {args.policy!r} has no per-AP networks to export (nets.aps); "
                         "export works on the learned distributed policies")
    if pol.nets.arch == SPAN and args.format == "onnx":
        raise ValueError(f"{SPAN} networks export as --format torchscript (a torch.export "
                         "program); the ONNX exporter has no complex linear algebra")
    return scenario, pol


def check(files: list[Path], aps: Any, fmt: str, csi: np.ndarray) -> list[float]:
    """Largest absolute difference, per AP, between each exported file and its torch
    network on ``csi (B, L, 2, M, Q)``."""
    diffs = []
    for l, (path, net) in enumerate(zip(files, aps, strict=True)):
        x = csi[:, l]
        with torch.no_grad():
            ref = net.eval()(torch.from_numpy(x)).numpy()
        if fmt == "onnx":
            got = export.run_onnx(export.onnx_session(path), x)
        else:
            with torch.no_grad():
                got = export.load_program(path)(torch.from_numpy(x)).numpy()
        diffs.append(float(np.abs(got - ref).max()))
    return diffs


def policies_checkpoint(pol: Any) -> dict[str, str] | None:
    """Path and SHA-256 of the checkpoint file the policy loaded (None: no file)."""
    from policies.learned import checkpoints as store

    path = getattr(pol, "checkpoint", None)
    return store.describe(path) if path is not None else None


def run(args: argparse.Namespace) -> int:
    _cli.set_threads(args.threads)
    scenario, pol = build(args)                       # user errors before the folder
    s = scenario.system
    name = f"export-{Path(args.policy).stem.split(':')[0]}-{scenario.name}-N{s.N}-{args.format}"
    out = run_dir(name, args.out)
    aps = pol.nets.aps
    if not args.quiet:
        print(f"exporting {len(aps)} AP networks of {args.policy} ({pol.nets.arch}) as "
              f"{args.format} to {out}")
    files = export.export_nets(aps, out, args.format)
    csi = scenario.drops(np.random.default_rng(0), args.check_drops)[0]
    diffs = check(files, aps, args.format, csi)
    shape = ["B", 2, s.M, s.Q]
    meta = getattr(pol, "meta", {}) or {}
    write_json(out / "export.json", {
        "policy": args.policy, "scenario": scenario.name, "users": s.N, "format": args.format,
        "arch": pol.nets.arch, "width": pol.nets.width,
        "checkpoint": None if args.checkpoint is None else str(args.checkpoint),
        "checkpoint_used": policies_checkpoint(pol),
        "checkpoint_created": meta.get("created"),
        "input": {"name": export.INPUT, "shape": shape, "dtype": "float32"},
        "output": {"name": export.OUTPUT, "shape": shape, "dtype": "float32"},
        "files": [{"ap": l, "file": f.name, "ap_xy": list(s.ap_xy[l]), "budget_w": s.power[l],
                   "max_abs_diff": d} for l, (f, d) in enumerate(zip(files, diffs, strict=True))],
        "checked_on_drops": args.check_drops, "provenance": provenance()})
    for f, d in zip(files, diffs, strict=True):
        print(f"{f}  max |exported - torch| = {d:.2e}")
    return _cli.OK


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (see :mod:`runners._cli`)."""
    return _cli.run(lambda: run(parse_args(argv)), "export")


if __name__ == "__main__":
    sys.exit(main())
