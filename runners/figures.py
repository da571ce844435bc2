"""Regenerate every figure under docs/ from the shipped checkpoints and seeded runs, in one command.

    python runners/figures.py                 # every figure (about 10 minutes on 2 busy cores)
    python runners/figures.py --only road_student.png --only robustness.png
    python runners/figures.py --list          # what each figure shows and the command behind it
    python runners/figures.py --check         # exit 1 when a figure is stale (see below)

Each figure is one runner command with small but honest drop counts (stated in the figure and in
``docs/figures.json``); the runs go to ``runs/figures/<run>/`` and the figures are copied to
``docs/``. ``docs/figures.json`` records, per figure, the command, the commit (and whether the
tree was dirty), the SHA-256 of every shipped checkpoint it depends on (the files of the
checkpoint families its learned policies may load: ``pos1-*.pt`` for pos1, ``pos2-*.pt`` for
pos2, ``pos2-*.pt`` and ``road-*.pt`` for the road scenarios), the wall time and what it shows.
A figure is *stale* when a checkpoint it depends on changed (or appeared, or went) since it was
drawn; ``--check`` and ``tests/runners/test_figures.py`` report those. Heavy solvers use the
default decision cache, so a second regeneration re-solves nothing (and reports the original
solve times).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfisac_env.runs import provenance, write_json
from runners import _cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RECORD = DOCS / "figures.json"
SHIPPED = ROOT / "policies" / "learned" / "shipped"


@dataclass(frozen=True)
class Run:
    """One runner command and the figures it draws.

    ``figures`` maps a docs file name to (the file in the run folder, what it shows);
    ``checkpoints``: glob patterns, in the shipped folder, of the checkpoints it loads."""

    name: str
    runner: str
    argv: tuple[str, ...]
    figures: dict[str, tuple[str, str]]
    checkpoints: tuple[str, ...] = ()
    out_file: str | None = None      # the script's --out names a file (in the run folder)

    def script(self) -> str:
        """The script's path from the repository root."""
        return self.runner.removeprefix("../") + ".py" if self.runner.startswith("../") \
            else f"runners/{self.runner}.py"

    def out(self, root: Path | str = "runs/figures") -> str:
        """The ``--out`` value: the run folder (or the file in it)."""
        folder = Path(root) / self.name
        return str(folder / self.out_file) if self.out_file else str(folder)

    def command(self) -> str:
        """The command line as a user would type it, from the repository root."""
        return " ".join(["python", self.script(), *self.argv, "--out", self.out()])


RUNS: tuple[Run, ...] = (
    Run("fig16", "sweep",
        ("sweeps/paper-fig16.toml", "--drops", "200", "--heavy-drops", "100", "--quiet"),
        {"fig16a-pos1.png": ("fig16a-pos1.png", "seed Fig. 16a: mean SSNR and min-SINR vs N "
                             "(pos1), 95 % intervals, the any-N student beside cvx and ns-rzf"),
         "fig16b-pos1.png": ("fig16b-pos1.png", "seed Fig. 16b: compute time per decision vs "
                             "N, slowest AP (distributed) vs whole solve (central)")},
        ("pos1-*.pt",)),
    Run("tradeoff", "sweep",
        ("sweeps/tradeoff.toml", "--users", "8", "--drops", "200", "--heavy-drops", "100",
         "--frontier-drops", "20", "--frontier-points", "10", "--quiet"),
        {"tradeoff-pos2-N8.png": ("tradeoff-pos2-N8.png", "pos2 N = 8: every policy's mean "
                                  "point with 95 % intervals on the SSNR vs min-SINR plane and "
                                  "the CVX frontier (joint SDP over SINR targets)")},
        ("pos2-span-attn.pt", "pos2-N*.pt")),
    Run("road", "render_road",
        ("--scenario", "road", "--users", "8", "--policy", "student", "--steps", "40",
         "--frames", "3", "--quiet"),
        {"road_student.png": ("filmstrip.png", "film strip: the student's beam patterns over "
                              "the moving road (three of 40 decisions)")},
        ("pos2-span-attn.pt", "pos2-N*.pt", "road-*.pt")),
    Run("stress", "stress",
        ("--scenario", "track-highway", "--policy", "student", "--policy", "cvx", "--policy",
         "ns-rzf", "--policy", "mrt-target", "--speeds", "0", "15", "30", "60", "--quiet"),
        {"retention_vs_speed.png": ("retention_vs_speed.png", "tracking retention vs target "
                                    "speed in closed loop with measured compute latency"),
         "ssnr_t.png": ("ssnr_t.png", "SSNR(t) and min-SINR(t) in closed loop vs zero "
                        "latency, under the target's trajectory (track-highway)")},
        ("pos2-span-attn.pt", "pos2-N*.pt", "road-*.pt")),
    Run("robustness", "robustness",
        ("--drops", "200", "--heavy-drops", "12", "--quiet"),
        {"robustness.png": ("robustness.png", "mean SSNR and min-SINR vs CSI NMSE, Rician K "
                            "and target-angle error (pos2 N = 8), 95 % bands"),
         "ageing.png": ("ageing.png", "closed-loop SSNR and min-SINR vs CSI delay, LoS vs "
                        "Rician ageing (track-highway)")},
        ("pos2-span-attn.pt", "pos2-N*.pt", "road-*.pt")),
    Run("scaling", "bench_sweep",
        ("--drops", "300", "--quiet"),
        {"sweep_scaling.png": ("scaling.png", "sweep engines side by side: drops per second "
                               "and overhead per task, serial vs process pool vs local Ray")}),
    Run("echo", "stress",
        ("--scenario", "track-highway", "--sensing", "echo", "--latency", "fixed", "--policy",
         "student", "--policy", "cvx", "--policy", "ns-rzf", "--policy", "mrt-target",
         "--quiet"),
        {"echo_position_error_t.png": ("position_error_t.png", "echo sensing in closed loop "
                                       "(track-highway): the tracker's position error over "
                                       "time, each policy beside its held estimate"),
         "echo_tracking_vs_speed.png": ("tracking_vs_speed.png", "echo sensing: track-loss "
                                        "rate and position error vs target speed")},
        ("pos2-span-attn.pt", "pos2-N*.pt", "road-*.pt")),
    Run("echo_street", "stress",
        ("--scenario", "track-street", "--sensing", "echo", "--latency", "fixed", "--policy",
         "ns-rzf", "--policy", "mrt-target", "--quiet"),
        {"echo_street_position_error_t.png": ("position_error_t.png", "echo sensing on the "
                                              "cell-free street (8 APs along 400 m): the "
                                              "track handed from AP to AP")}),
    Run("street_cvx_latency", "stress",
        ("--scenario", "track-street", "--latency", "measured", "--policy", "cvx", "--policy",
         "student", "--policy", "ns-rzf", "--policy", "lp-mmse", "--speeds", "30", "--quiet"),
        {"street_cvx_latency_t.png": ("ssnr_t.png", "cvx at its own measured latency on the "
                                      "cell-free street (track-street, N = 16): SSNR and "
                                      "min-SINR between its decisions, beside the student "
                                      "(street-road checkpoint), ns-rzf and lp-mmse")},
        ("street-road-*.pt",)),
    Run("scale", "bench_scale", ("--drops", "3", "--budget", "60", "--quiet"),
        {"scale.png": ("scale.png", "time per decision against L, N and M (street geometry), "
                       "with fitted growth exponents, CPU time of the benchmark's process")},
        ("pos2-span-attn.pt", "pos2-N*.pt")),
    Run("echo_ppo", "../examples/echo_sensing_ppo",
        ("--comm", "ns-rzf", "--snapshots", "4", "--steps", "12288", "--every", "2048"),
        {"echo_ppo_nsrzf.png": ("curves.png", "PPO choosing the sensing share from the "
                                "tracker's belief (ns-rzf communication beams, 4 snapshots), "
                                "three seeds, beside fixed shares")}),
    Run("echo_crb", "../examples/echo_crb", ("--trials", "2000"),
        {"echo_crb.png": ("echo_crb.png", "echo mode: angle RMSE of the maximum-likelihood "
                          "estimate from the APs' echoes against the Cramér-Rao bound")},
        out_file="echo_crb.png"),
    Run("rl", "../examples/ppo_power_split",
        ("--steps", "4096", "--drops", "200"),
        {"rl_power_split.png": ("curves.png", "PPO on the power split (pos2 N = 8): held-out "
                                "reward (min-SINR under an SSNR floor) over the training "
                                "steps, three seeds, beside random beams, MRT, NS+RZF, the "
                                "uniform split and an equalizing heuristic")}),
)


def sha256(path: Path) -> str:
    """SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checkpoint_hashes(patterns: tuple[str, ...], shipped: Path = SHIPPED) -> dict[str, str]:
    """``{file name: sha256}`` of the shipped checkpoints matching ``patterns``."""
    return {p.name: sha256(p) for pat in patterns for p in sorted(shipped.glob(pat))}


def stale(record: dict[str, Any] | None = None, shipped: Path = SHIPPED,
          docs: Path = DOCS) -> list[str]:
    """Why figures are out of date, one line each (empty: all current): a docs PNG with no
    record, a recorded figure missing, a run no longer declared here, or a checkpoint it
    depends on that changed, appeared or went."""
    if record is None:
        record = json.loads(RECORD.read_text()) if RECORD.is_file() else {}
    figs = record.get("figures", {})
    runs = {f: r for r in RUNS for f in r.figures}
    out = [f"{p.name}: under docs/ but not drawn by runners/figures.py"
           for p in sorted(docs.glob("*.png")) if p.name not in runs]
    for name, run in runs.items():
        rec = figs.get(name)
        if rec is None:
            out.append(f"{name}: never regenerated (no entry in docs/figures.json)")
            continue
        if not (docs / name).is_file():
            out.append(f"{name}: recorded but missing from docs/")
        if rec.get("regenerated") is False and run.checkpoints:
            out.append(f"{name}: drawn outside runners/figures.py and depends on checkpoints")
        now = checkpoint_hashes(run.checkpoints, shipped)
        then = rec.get("checkpoints", {})
        for ck in sorted(set(now) | set(then)):
            if now.get(ck) != then.get(ck):
                what = "is new" if ck not in then else (
                    "was removed" if ck not in now else "changed")
                out.append(f"{name}: checkpoint {ck} {what} since the figure was drawn")
    return out


def run_one(run: Run, out_root: Path) -> float:
    """Run ``run`` in this process into ``out_root/<name>``; returns the wall time, s."""
    out = out_root / run.name
    if out.exists():
        shutil.rmtree(out)
    if run.out_file:
        out.mkdir(parents=True)
    mod = run.runner.split("/")[-1]
    if run.runner.startswith("../examples/"):
        if str(ROOT / "examples") not in sys.path:
            sys.path.insert(0, str(ROOT / "examples"))
        module = importlib.import_module(mod)
    else:
        module = importlib.import_module(f"runners.{mod}")
    t0 = time.perf_counter()
    rc = module.main([*run.argv, "--out", run.out(out_root)])
    if rc not in (0, None):
        raise RuntimeError(f"{run.command()} exited with status {rc}")
    return time.perf_counter() - t0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__, "figures")
    names = [f for r in RUNS for f in r.figures]
    p.add_argument("--only", action="append", choices=names, default=None, metavar="FIGURE",
                   help="regenerate the run that draws FIGURE only (repeatable)")
    p.add_argument("--list", action="store_true", help="list the figures and their commands")
    p.add_argument("--check", action="store_true",
                   help="report stale figures and exit 1 if any (no regeneration)")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "figures",
                   help="where the runs go")
    return p.parse_args(argv)


@_cli.entry("figures")
def main(argv: list[str] | None = None) -> int:
    """Regenerate, list or check the docs figures; returns the exit status."""
    args = parse_args(argv)
    if not (DOCS.is_dir() and (ROOT / "examples").is_dir()):
        raise ValueError(f"figures regenerates the docs figures of a cfisac checkout; {DOCS} "
                         "is not there (an installed wheel has no docs): run it from a clone")
    os.chdir(ROOT)                       # the sweep files and examples are named from the root
    if args.list:
        for r in RUNS:
            for f, (_, shows) in r.figures.items():
                print(f"{f}: {shows}\n    {r.command()}")
        return 0
    if args.check:
        problems = stale()
        print("\n".join(problems) if problems else "every docs figure is current")
        return 1 if problems else 0
    record = json.loads(RECORD.read_text()) if RECORD.is_file() else {"figures": {}}
    record.setdefault("figures", {})
    todo = [r for r in RUNS if args.only is None or set(r.figures) & set(args.only)]
    prov = provenance()
    t_all = time.perf_counter()
    for k, r in enumerate(todo):
        print(f"[{k + 1}/{len(todo)}] {r.command()}", flush=True)
        seconds = run_one(r, args.out)
        for f, (src, shows) in r.figures.items():
            shutil.copyfile(args.out / r.name / src, DOCS / f)
            record["figures"][f] = {"command": r.command(), "shows": shows,
                                    "commit": prov["git"]["commit"],
                                    "dirty": prov["git"]["dirty"],
                                    "checkpoints": checkpoint_hashes(r.checkpoints),
                                    "seconds": round(seconds, 1)}
        latest = json.loads(RECORD.read_text()) if RECORD.is_file() else {"figures": {}}
        latest.setdefault("figures", {}).update({f: record["figures"][f] for f in r.figures})
        write_json(RECORD, latest)
        print(f"    {', '.join(r.figures)} in {seconds:.0f} s", flush=True)
    print(f"regenerated {sum(len(r.figures) for r in todo)} figures in "
          f"{time.perf_counter() - t_all:.0f} s; recorded in {RECORD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
