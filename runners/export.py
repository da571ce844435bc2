"""Export a learned distributed policy: one file per AP, each AP's network alone.

    python runners/export.py --policy student --scenario pos2 --users 8 --format onnx --out DIR
    python runners/export.py --policy student --scenario pos2 --users 8 --format torchscript
    python runners/export.py --policy student --checkpoint my.pt --format onnx --out DIR

Writes one file per AP (:mod:`policies.learned.export`): ``ap_0.onnx .. ap_{L-1}.onnx``
(``--format onnx``: ``torch.onnx.export(dynamo=True)``, input ``"csi"``, output ``"beams"``; run
with onnxruntime), ``ap_<l>.pt`` (``--format torchscript``: TorchScript, ``torch.jit.trace``;
``torch.jit.load(path)``) or ``ap_<l>.pt2`` (``--format pt2``: a ``torch.export`` program;
``torch.export.load(path).module()``). Every file maps AP ``l``'s own raw CSI ``(B, 2, M, Q)``
float32 to its beams ``(B, 2, M, Q)`` float32 on its full budget, ``B`` dynamic, ``N`` that of
``--users``. Each file is checked against the torch policy's beams for its AP on
``--check-drops`` drops of the scenario (onnxruntime for ONNX); ``export.json`` records the
files, their shapes, what the graph contains, the largest absolute difference (tolerance
1e-5) and the run's provenance.

``--policy`` is a learned policy name (``student``, ``sinr-teacher``, ``paper-student``,
``ssnr-teacher``, ...; the shipped checkpoint of ``--scenario``/``--users``/``--arch``, or
``--checkpoint PATH``) or any policy whose ``nets.aps`` are
:class:`policies.learned.nets.APNetwork` s. The any-N ``span-attn`` networks of ``student`` /
``sinr-teacher`` export at the ``N`` of ``--users``, at the policy's ``rho`` (``student@rho=0.3``),
with ``sinr-teacher``'s reference beams as the output and, under a LoS channel, the policy's
single-path LoS fit of the CSI inside the graph (so a file takes the raw CSI, as the policy
does). Exit status 2 with one line on a user error (unknown policy, no checkpoint, a central
policy), before any file is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

import policies
from cfisac_env.runs import provenance, run_dir, write_json
from policies.learned import export
from policies.learned.nets import ARCHS
from policies.learned.policies import LearnedPolicy
from policies.learned.span import ARCH as SPAN
from policies.registry import parse_spec
from runners import _cli

#: Largest absolute difference between an exported file and the torch policy it agrees to.
TOLERANCE = 1e-5


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
        # the torch module is what is exported and what the files are checked against; the
        # scenario's channel sets the span policies' LoS fit (the spec's own options win)
        given = parse_spec(args.policy).options
        options = {k: v for k, v in (("scenario", scenario.name), ("backend", "torch"),
                                     ("channel", scenario.config["channel"]["model"]))
                   if k not in given}
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
    return scenario, pol


def check(files: list[Path], pol: Any, fmt: str, csi: np.ndarray) -> list[float]:
    """Largest absolute difference, per AP, between each exported file and the policy's own
    beams for that AP (``pol.act_ap``; the torch path) on ``csi (B, L, 2, M, Q)``."""
    diffs = []
    for l, path in enumerate(files):
        x = csi[:, l]
        ref = pol.act_ap(l, x)
        got = export.run_file(path, fmt, x)
        diffs.append(float(np.abs(got - ref).max()))
    return diffs


def graph_contents(pol: Any) -> dict[str, Any]:
    """What an exported file computes besides the network (recorded in ``export.json``)."""
    out: dict[str, Any] = {"input_csi": "raw (the AP's own CSI, no pre-processing)"}
    if pol.nets.arch == SPAN:
        out.update(los_fit_in_graph=bool(pol.los_fit), rho=pol.rho,
                   output_beams="reference" if pol.spec.reference else "beams",
                   users_fixed=pol.system.N)
    return out


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
    files = export.export_nets(export.ap_modules(pol), out, args.format)
    csi = scenario.drops(np.random.default_rng(0), args.check_drops)[0]
    diffs = check(files, pol, args.format, csi)
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
        "graph": graph_contents(pol),
        "files": [{"ap": l, "file": f.name, "ap_xy": list(s.ap_xy[l]), "budget_w": s.power[l],
                   "max_abs_diff": d, "within_tolerance": d <= TOLERANCE}
                  for l, (f, d) in enumerate(zip(files, diffs, strict=True))],
        "tolerance": TOLERANCE, "checked_on_drops": args.check_drops,
        "provenance": provenance()})
    for f, d in zip(files, diffs, strict=True):
        print(f"{f}  max |exported - torch| = {d:.2e}")
        if not d <= TOLERANCE:
            print(f"warning: {f.name} differs from the torch policy by {d:.2e} > "
                  f"{TOLERANCE:g}", file=sys.stderr)
    return _cli.OK


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (see :mod:`runners._cli`)."""
    return _cli.run(lambda: run(parse_args(argv)), "export")


if __name__ == "__main__":
    sys.exit(main())
