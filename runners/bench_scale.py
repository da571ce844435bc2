"""Cost as the system grows: time per decision against L, N and M, with fitted growth exponents.

    python runners/bench_scale.py [--policy cvx --policy ns-opt ...] [--drops 3]
        [--budget 60] [--out DIR]

The systems are the ``street`` geometry stretched to ``L`` APs (every 50 m along y = 0, UEs on
both sidewalks of x in [0, 50 L] m, the target on the road), swept along one axis at a time
through the base (L, N, M) = (8, 8, 16): ``L`` in 2, 4, 8, 16; ``N`` in 4, 8, 16, 32; ``M`` in 8,
16, 32, 64 (``--sizes`` picks others). At every size each policy decides ``--drops`` drops one at
a time (``policy.decide``: a central policy's whole solve, a distributed one's slowest AP),
and the median is its time per decision (``--clock cpu``, the default: this process's CPU
time, the cost without the waits of a shared machine; ``--clock wall``); ``env step`` is one
step of the single Gymnasium env and ``vector env step`` one sub-env's share of a batched step
of ``--envs`` copies (no policy).

Heavy solvers (``cvx``, ``ns-opt``) get a time budget per point (``--budget`` seconds, also
their ``timeout_s``): a point that runs out of it keeps the drops that finished (or is marked
``over budget``), and the larger sizes on that axis are skipped. ``student`` is measured where
``policies.make("student", system, scenario=...)`` works (``pos2``'s checkpoints at the pos2
system, L = 2 and M = 16, else ``street``'s) and skipped with a one-line note elsewhere.

The slope of log(time) against log(size) along each axis is the growth exponent (``t ~ L^a``).
Writes ``scale.csv`` (one row per size and policy), ``exponents.csv``, ``scale.png`` (log-log,
one panel per axis) and ``scale.json`` (with the git commit of the convex solver measured) to
``--out`` (default ``runs/<date>-bench-scale/``). BLAS on one thread unless
``OPENBLAS_NUM_THREADS`` says otherwise. Exit status 2 (one line) on a bad value, 130 on Ctrl-C
(the rows that finished are written).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads its BLAS

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

import cfisac_env  # noqa: E402
import policies  # noqa: E402
import scenarios  # noqa: E402
from cfisac_env.runs import run_dir, write_json  # noqa: E402
from runners import _cli, _report  # noqa: E402

BASE = (8, 8, 16)
AXES = {"L": (2, 4, 8, 16), "N": (4, 8, 16, 32), "M": (8, 16, 32, 64)}
DEFAULT_POLICIES = ("cvx", "ns-opt", "ns-rzf", "lp-mmse", "student")
HEAVY = ("cvx", "ns-opt", "cb-opt")
ENV_ROWS = ("env step", "vector env step")


def default_sizes() -> list[tuple[int, int, int]]:
    """The sizes of the three one-axis sweeps through :data:`BASE`, each once."""
    out: list[tuple[int, int, int]] = []
    for k, axis in enumerate(AXES):
        for v in AXES[axis]:
            size = list(BASE)
            size[k] = v
            if tuple(size) not in out:
                out.append(tuple(size))
    return out


def overrides(L: int, M: int) -> dict[str, Any]:
    """Street overrides for ``L`` APs every 50 m and ``M`` antennas."""
    return {"system.ap_xy": [[25.0 + 50.0 * l, 0.0] for l in range(L)], "system.antennas": M,
            "placement.ue_x": [0.0, 50.0 * L], "placement.target_x": [0.0, 50.0 * L]}


def load(size: tuple[int, int, int]) -> Any:
    L, N, M = size
    return scenarios.load("street", users=N, overrides=overrides(L, M))


def make_policy(name: str, system: Any, budget: float) -> tuple[Any, str]:
    """The policy (``timeout_s`` for heavy solvers) and a note; raises ValueError if it cannot
    be made for this system."""
    if name == "student":
        pos2 = scenarios.load("pos2", users=system.N).system
        family = "pos2" if not pos2.mismatch(system) else "street"
        return policies.make("student", system, scenario=family), f"scenario={family}"
    opts = {"timeout_s": budget} if name in HEAVY else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the one-line NS warning is the policy's own business
        return policies.make(name, system, **opts), ""


def decision_seconds(pol: Any, csi: np.ndarray, clock: str) -> tuple[float, dict[str, Any]]:
    """Seconds of one decision as a deployment would wait (:meth:`policies.Policy.decide`:
    the slowest AP of a distributed policy, the whole call of a central one) and its info.
    ``clock="cpu"`` counts this process's CPU time instead of wall time (the policies run on one
    thread, so on a loaded machine it is their cost without the waits for a core)."""
    if clock == "wall":
        d = pol.decide(csi)
        return d.seconds, d.info
    x = np.asarray(csi, dtype=np.float32)
    if pol.distributed and getattr(pol, "cluster", None) is None:
        times = []
        for l in range(pol.system.L):
            c0 = time.process_time()
            pol.act_ap(l, x[:, l])
            times.append(time.process_time() - c0)
        return max(times), {}
    c0 = time.process_time()
    d = pol.decide(x)
    return time.process_time() - c0, d.info


def time_policy(pol: Any, csi: np.ndarray, drops: int, budget: float | None,
                clock: str = "cpu") -> tuple[list[float], str]:
    """Seconds per decision of up to ``drops`` single-drop decisions within ``budget`` s of wall
    time (fast policies: after one warm-up call)."""
    if budget is None:
        pol.decide(csi[:1])
    times: list[float] = []
    start = time.perf_counter()
    for i in range(drops):
        seconds, info = decision_seconds(pol, csi[i:i + 1], clock)
        if np.any(info.get("timeout", False)):
            return times, "over budget"
        times.append(seconds)
        if budget is not None and time.perf_counter() - start > budget and i + 1 < drops:
            return times, f"budget: {i + 1} of {drops} drops"
    return times, "ok"


def time_env(size: tuple[int, int, int], envs: int, seconds: float, clock: str = "cpu"
             ) -> tuple[float, float]:
    """Median seconds of one single-env step and of one sub-env's share of a vector-env step
    (steps timed one by one for ``seconds`` each, on ``clock``)."""
    L, N, M = size
    ov = overrides(L, M)
    env = gym.make(cfisac_env.ENV_ID, scenario="street", users=N, **ov)
    env.reset(seed=0)
    a = env.action_space.sample()
    venv = gym.make_vec(cfisac_env.ENV_ID, num_envs=envs, vectorization_mode="vector_entry_point",
                        scenario="street", users=N, **ov)
    venv.reset(seed=0)
    va = venv.action_space.sample()
    tick = time.process_time if clock == "cpu" else time.perf_counter
    out = []
    for step, per in ((lambda: env.step(a), 1), (lambda: venv.step(va), envs)):
        step()
        times: list[float] = []
        t_end = time.perf_counter() + seconds
        while time.perf_counter() < t_end or len(times) < 5:
            t0 = tick()
            step()
            times.append(tick() - t0)
        out.append(float(np.median(times)) / per)
    return out[0], out[1]


def exponents(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Least-squares slope of log(seconds) against log(size) along each axis, per policy
    (points of that axis's sweep through :data:`BASE` that have a time; two at least)."""
    out = []
    for policy in dict.fromkeys(r["policy"] for r in rows):
        for k, axis in enumerate(AXES):
            pts = list({r["size"][k]: r["seconds"] for r in rows if r["policy"] == policy
                        and r["seconds"] is not None
                        and all(r["size"][j] == BASE[j] for j in range(3) if j != k)}.items())
            if len(pts) >= 2:
                x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
                slope = float(np.polyfit(x, y, 1)[0])
                out.append({"policy": policy, "axis": axis, "exponent": slope,
                            "points": len(pts)})
    return out


def plot(rows: list[dict[str, Any]], fits: list[dict[str, Any]], path: Path, title: str) -> None:
    from runners._plot import palette, plt, save

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.6), sharey=True)
    names = list(dict.fromkeys(r["policy"] for r in rows))
    colours = {n: palette(i) for i, n in enumerate(names)}
    slope = {(f["policy"], f["axis"]): f["exponent"] for f in fits}
    for k, (axis, ax) in enumerate(zip(AXES, axes, strict=True)):
        for name in names:
            pts = sorted((r["size"][k], r["seconds"]) for r in rows if r["policy"] == name
                         and r["seconds"] is not None
                         and all(r["size"][j] == BASE[j] for j in range(3) if j != k))
            if not pts:
                continue
            s = slope.get((name, axis))
            label = f"{name} ({axis}^{s:.2f})" if s is not None else name
            ax.plot(*zip(*pts, strict=True), "o-", color=colours[name], label=label)
        others = [f"{a} = {BASE[j]}" for j, a in enumerate(AXES) if j != k]
        ax.set(xscale="log", yscale="log", xlabel=f"{axis} ({', '.join(others)})",
               xticks=AXES[axis], xticklabels=[str(v) for v in AXES[axis]])
        ax.minorticks_off()
        ax.grid(True, which="major", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7.5, loc="upper left")
    axes[0].set_ylabel("seconds per decision (median)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save(fig, path)


def convex_commit() -> str:
    """The git commit that last changed ``policies/convex`` here (which cvx was measured)."""
    try:
        return subprocess.run(["git", "log", "-1", "--format=%h %cs", "--", "policies/convex"],
                              capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).resolve().parents[1]).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def parse_size(text: str) -> tuple[int, int, int]:
    try:
        L, N, M = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size is L,N,M (e.g. 8,16,16), got {text!r}") from None
    if min(L, N, M) < 1 or L > 64 or N > 256 or M > 512:
        raise argparse.ArgumentTypeError(f"size {text!r}: need 1 <= L <= 64, N <= 256, M <= 512")
    return L, N, M


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _cli.parser(__doc__, "bench_scale")
    _cli.add_common(p, skip=("scenario", "users", "set"))
    p.add_argument("--policy", action="append", default=None,
                   help=f"policy to time (repeatable; default {', '.join(DEFAULT_POLICIES)})")
    p.add_argument("--sizes", type=parse_size, nargs="+", default=None, metavar="L,N,M",
                   help="sizes to measure (default: the three sweeps through 8,8,16)")
    p.add_argument("--drops", type=_cli.int_in(1, 10_000), default=3,
                   help="drops per point for heavy solvers (default 3; others 20)")
    p.add_argument("--budget", type=_cli.float_in(0.0, 86_400.0, lo_open=True), default=60.0,
                   help="seconds per point for heavy solvers (default 60)")
    p.add_argument("--envs", type=_cli.int_in(1, 1 << 16), default=256,
                   help="vector-env copies for the vector env step (default 256)")
    p.add_argument("--no-env", action="store_true", help="skip the env-step rows")
    p.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                   help="cpu (default): this process's CPU time per decision, the cost on a "
                        "shared machine; wall: wall time (the budget is always wall time)")
    _cli.add_figure_flags(p, db=False)
    return p.parse_args(argv)


@_cli.entry("bench_scale")
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (see :mod:`runners._cli`)."""
    return run(parse_args(argv))


def run(a: argparse.Namespace) -> int:
    names = list(dict.fromkeys(a.policy or DEFAULT_POLICIES))
    for name in names:
        policies.resolve(name)                      # an unknown name: one line, before work
    sizes = a.sizes or default_sizes()
    for size in sizes:
        load(size)
    out = run_dir("bench-scale", a.out)
    _cli.set_threads(a.threads)
    commit = convex_commit()
    print(f"street geometry, APs every 50 m; heavy solvers {a.drops} drops within {a.budget:g} s "
          f"per point, others 20 drops; {a.clock} time; BLAS threads "
          f"{os.environ.get('OPENBLAS_NUM_THREADS')}; convex solver at: {commit}")
    rows: list[dict[str, Any]] = []
    skipped: set[tuple[str, int]] = set()           # (policy, axis) past its budget
    notes: list[str] = []
    interrupted = False
    try:
        for size in tqdm(sizes, desc="sizes", disable=a.quiet):
            sc = load(size)
            csi, _, _ = sc.drops(np.random.default_rng(a.seed), max(a.drops, 20))
            for name in names:
                axes_here = [k for k in range(3) if all(size[j] == BASE[j]
                                                        for j in range(3) if j != k)]
                if axes_here and all((name, k) in skipped for k in axes_here):
                    rows.append(_row(size, name, None, "skipped: a smaller size ran out of "
                                                       "budget", 0))
                    continue
                try:
                    pol, note = make_policy(name, sc.system, a.budget)
                except ValueError as e:
                    msg = _cli.one_line(e)
                    notes.append(f"{name} at {size}: {msg}")
                    rows.append(_row(size, name, None, f"not available: {msg[:80]}", 0))
                    continue
                heavy = name in HEAVY
                times, status = time_policy(pol, csi, a.drops if heavy else 20,
                                            a.budget if heavy else None, a.clock)
                if note:
                    status = f"{status} ({note})"
                rows.append(_row(size, name, float(np.median(times)) if times else None,
                                 status, len(times)))
                if not status.startswith("ok"):
                    skipped.update((name, k) for k in axes_here)
            if not a.no_env:
                single, vector = time_env(size, a.envs, 0.5, a.clock)
                rows.append(_row(size, "env step", single, "ok", 0))
                rows.append(_row(size, "vector env step", vector, f"ok ({a.envs} copies)", 0))
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: keeping the points that finished", file=sys.stderr)
    fits = exponents(rows)
    body = [(f"({r['size'][0]}, {r['size'][1]}, {r['size'][2]})", r["policy"],
             r["status"][:60], _report.fmt(r["seconds"] * 1e3 if r["seconds"] is not None
                                           else None, 4), r["drops"] or "") for r in rows]
    print(_report.table(("(L, N, M)", "policy", "status", "ms/decision", "drops"), body, 3))
    print(_report.table(("policy", "axis", "exponent", "points"),
                        [(f["policy"], f["axis"], f"{f['exponent']:.2f}", f["points"])
                         for f in fits], 2))
    for n in dict.fromkeys(notes):
        print(f"note: {n}")
    flat = [{"L": r["size"][0], "N": r["size"][1], "M": r["size"][2], **{k: v for k, v in
             r.items() if k != "size"}} for r in rows]
    (out / "scale.csv").write_text(_report.csv_text(
        flat, ("L", "N", "M", "policy", "seconds", "drops", "status")))
    (out / "exponents.csv").write_text(_report.csv_text(
        fits, ("policy", "axis", "exponent", "points")))
    write_json(out / "scale.json", {"args": vars(a), "convex_commit": commit,
                                    "interrupted": interrupted, "rows": flat,
                                    "exponents": fits, "notes": list(dict.fromkeys(notes))})
    if rows:
        plot(rows, fits, out / "scale.png", f"{a.clock} time per decision, street geometry "
             f"(convex solver at {commit})")
    print(f"wrote {out}/scale.csv, exponents.csv, scale.png, scale.json")
    return _cli.outcome(len(rows), 0, interrupted)


def _row(size: tuple[int, int, int], policy: str, seconds: float | None, status: str,
         drops: int) -> dict[str, Any]:
    return {"size": size, "policy": policy, "seconds": seconds, "status": status,
            "drops": drops}


if __name__ == "__main__":
    sys.exit(main())
