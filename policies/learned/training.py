"""Teacher-student training of the distributed networks (seed paper, section 4).

One *run* trains a :class:`~policies.learned.nets.DistributedNets` unit (L per-AP networks) with one
:class:`~policies.learned.losses.Objective` on drops of a scenario, with Adam, ReduceLROnPlateau on
the
epoch's mean training loss, early stopping and model selection on validation metrics. A *role*
names the objective and the selection rule:

| role         | objective                | stops                 | selects             |
|--------------|--------------------------|-----------------------|---------------------|
| ssnr-teacher | eq. 10, beta = 0         | fixed epoch count     | best val SSNR       |
| sinr-teacher | eq. 10, beta = 1         | patience on val g2    | best val min-SINR   |
| student      | eq. 11, lambda by eq. 12 | patience on selection | balanced rule       |
| fixed-beta   | eq. 10, fixed beta       | patience on selection | balanced rule       |
| fixed-lambda | eq. 11, fixed lambda     | patience on selection | balanced rule       |

Balanced rule: the highest validation SSNR among epochs whose validation min-SINR is at least
``select_ratio`` (0.94) of the best validation min-SINR of the run (the seed's). A preset may
select students by ``maxmin`` instead: the epoch with the highest ``min(g1/g1max, g2/g2max)``.

Checkpoints (see :func:`save_checkpoint`; read, found and installed by
:mod:`policies.learned.checkpoints`) hold every AP's weights, the architecture, the system, the
scenario, g1max/g2max, the final lambda, the selected epoch and its metrics.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cfisac_env.physics import metrics
from cfisac_env.runs import atomic_path, run_dir
from policies.learned import checkpoints as store
from policies.learned.checkpoints import checkpoint_name
from policies.learned.losses import LAMBDA_0, Objective
from policies.learned.nets import DistributedNets
from policies.learned.roles import PAPER_ROLES as ROLES


@dataclass(frozen=True)
class Preset:
    """Training schedule.

    Args:
        drops: drops generated for training + validation (split by ``val_fraction``).
        val_fraction: share of the drops held out for validation.
        lr: Adam learning rate.
        batch: drops per iteration.
        plateau_factor, plateau_patience: ReduceLROnPlateau on the epoch's mean training loss.
        ssnr_epochs: epochs of the SSNR teacher (no early stopping).
        max_epochs: epoch cap of the other roles.
        patience: epochs without a better validation metric before stopping.
        select_ratio: the balanced selection's min-SINR threshold (share of the run's best).
        select: the students' selection, ``"balanced"`` (the seed's 94 % rule), ``"maxmin"``
            or ``"last"`` (see :class:`Selector`); fixed-beta always uses the seed's rule.
        width: first-layer channels of the CAE/U-net, hidden units of ``gram-mlp``; None =
            :func:`policies.learned.nets.default_width` of the architecture.
        fresh: draw new training drops every epoch (an endless data set) instead of reusing them.
        min_lr: stop once the learning rate has decayed below this.
        time_limit: wall-clock seconds per role (the selection so far is kept); None = no cap.
        ssnr_time_limit: the same for the SSNR teacher.
    """

    drops: int
    val_fraction: float
    lr: float
    batch: int
    plateau_factor: float
    plateau_patience: int
    ssnr_epochs: int
    max_epochs: int
    patience: int
    select_ratio: float = 0.94
    select: str = "balanced"
    width: int | None = None
    fresh: bool = False
    min_lr: float = 0.0
    time_limit: float | None = None
    ssnr_time_limit: float | None = None


PRESETS: dict[str, Preset] = {
    # The seed paper's schedule (section 8): 20,000 drops split 97/3, Adam 0.01, batch 500,
    # ReduceLROnPlateau x0.1 after 10 epochs, SSNR teacher 100 epochs, others <= 1000 epochs
    # with patience 100; "paper-80k": the 80,000 drops of its N = 8 runs (Fig. 15).
    "paper": Preset(drops=20_000, val_fraction=0.03, lr=0.01, batch=500, plateau_factor=0.1,
                    plateau_patience=10, ssnr_epochs=100, max_epochs=1000, patience=100),
    "paper-80k": Preset(drops=80_000, val_fraction=0.03, lr=0.01, batch=500, plateau_factor=0.1,
                        plateau_patience=10, ssnr_epochs=100, max_epochs=1000, patience=100),
    # Teachers + student of one scenario in <= 20 min on 2 shared CPU cores, sized for the
    # default gram-mlp (any arch works): fresh drops every epoch (10,000, never revisited, so
    # no overfitting), 1,000 fixed validation drops, Adam 1e-3 halved after 10 flat epochs,
    # patience 150, and caps of 60 s for the SSNR teacher (it reaches the bound in seconds)
    # and 480 s for each other role, whatever the machine's load.
    "cpu": Preset(drops=11_000, val_fraction=1_000 / 11_000, lr=1e-3, batch=500,
                  plateau_factor=0.5, plateau_patience=10, ssnr_epochs=40, max_epochs=100_000,
                  patience=150, fresh=True, min_lr=1e-6, time_limit=480.0, ssnr_time_limit=60.0,
                  select="maxmin"),
    # Seconds-long smoke run for tests and CI.
    "tiny": Preset(drops=300, val_fraction=0.2, lr=0.01, batch=60, plateau_factor=0.5,
                   plateau_patience=2, ssnr_epochs=2, max_epochs=3, patience=2, width=4),
}


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def objective_for(role: str, g1max: float | None = None, g2max: float | None = None,
                  beta: float = 0.5, lam: float = LAMBDA_0) -> Objective:
    """The :class:`Objective` of ``role`` (``beta``/``lam`` for the fixed baselines)."""
    if role == "ssnr-teacher":
        return Objective("teacher", beta=0.0)
    if role == "sinr-teacher":
        return Objective("teacher", beta=1.0)
    if role == "fixed-beta":
        return Objective("teacher", beta=beta)
    if role == "student":
        return Objective("student", lam=LAMBDA_0, adaptive=True, g1max=g1max, g2max=g2max)
    if role == "fixed-lambda":
        return Objective("student", lam=lam, adaptive=False, g1max=g1max, g2max=g2max)
    raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")


@torch.no_grad()
def score_nets(nets: DistributedNets, csi: torch.Tensor | np.ndarray, batch: int = 2000
             ) -> tuple[np.ndarray, np.ndarray]:
    """Per-drop ``(g1, g2)`` (SSNR, min-SINR; each ``(B,)`` float64) of the unit in eval mode."""
    was_training = nets.training
    nets.eval()
    dev = next(nets.parameters()).device
    x = torch.as_tensor(csi)
    g1s, g2s = [], []
    for i in range(0, x.shape[0], batch):
        xb = x[i:i + batch].to(dev)
        g1, g2 = metrics.g1_g2(xb, nets(xb), nets.system)
        g1s.append(g1.double().cpu().numpy())
        g2s.append(g2.double().cpu().numpy())
    nets.train(was_training)
    return np.concatenate(g1s), np.concatenate(g2s)


class Selector:
    """Model selection over epochs; keeps only the states that can still be selected.

    ``mode``: ``"g1"`` (best val SSNR), ``"g2"`` (best val min-SINR), ``"balanced"`` (the seed's
    rule: highest val SSNR among epochs with val min-SINR >= ``ratio`` x the best seen) or
    ``"maxmin"`` (highest ``min(g1 / norms[0], g2 / norms[1])``: the epoch closest to both
    teachers at once, the balance eq. 12 steers to; needs ``norms = (g1max, g2max)``) or
    ``"last"`` (the latest epoch: with fresh drops every epoch nothing overfits, and the final
    state is where eq. 12's balance has settled).
    """

    def __init__(self, mode: str, ratio: float = 0.94,
                 norms: tuple[float, float] | None = None) -> None:
        if mode not in ("g1", "g2", "balanced", "maxmin", "last"):
            raise ValueError(f"unknown selection mode {mode!r}")
        if mode == "maxmin" and not norms:
            raise ValueError("the maxmin selection needs norms = (g1max, g2max)")
        self.mode, self.ratio, self.norms = mode, ratio, norms
        self.best_g2 = -math.inf
        self.best_g2_epoch = -1
        self.cands: list[tuple[int, float, float, dict[str, torch.Tensor]]] = []

    def offer(self, epoch: int, g1: float, g2: float, state: Callable[[], dict]) -> None:
        """Consider epoch ``epoch`` with val means ``g1, g2``; ``state()`` copies the weights."""
        if g2 > self.best_g2:
            self.best_g2, self.best_g2_epoch = g2, epoch
        if self.mode == "last":
            self.cands = [(epoch, g1, g2, state())]
            return
        if self.mode in ("g1", "g2", "maxmin"):
            if not self.cands or self._key(g1, g2) > self._key(*self.cands[0][1:3]):
                self.cands = [(epoch, g1, g2, state())]
            return
        if g2 < self.ratio * self.best_g2:
            return
        if any(c[1] >= g1 and c[2] >= g2 for c in self.cands):
            return  # dominated: can never be the selection
        keep = [c for c in self.cands if not (g1 >= c[1] and g2 >= c[2])]
        self.cands = [c for c in keep if c[2] >= self.ratio * self.best_g2]
        self.cands.append((epoch, g1, g2, state()))

    def _key(self, g1: float, g2: float) -> float:
        if self.mode == "maxmin":
            return min(g1 / self.norms[0], g2 / self.norms[1])
        return g1 if self.mode == "g1" else g2

    def selected(self) -> tuple[int, float, float, dict[str, torch.Tensor]]:
        """``(epoch, g1, g2, state)`` of the selection so far."""
        if self.mode in ("g1", "g2", "maxmin", "last"):
            return self.cands[0]
        ok = [c for c in self.cands if c[2] >= self.ratio * self.best_g2]
        return max(ok, key=lambda c: c[1])

    def last_gain(self) -> int:
        """Epoch of the latest change that matters for early stopping."""
        return max(self.best_g2_epoch, self.selected()[0]) if self.mode == "balanced" \
            else self.selected()[0]


@dataclass
class RunResult:
    """What one run produced: the trained unit (selected weights), the per-epoch history, the
    selected epoch with its validation means, and the objective's final state."""

    nets: DistributedNets
    history: list[dict[str, float]]
    epoch: int
    val_g1: float
    val_g2: float
    objective: Objective
    seconds: float = 0.0
    stopped: str = ""
    empty: bool = False     #: no epoch finished with finite metrics: nothing to save


def _selection_mode(role: str, objective: Objective, preset: Preset) -> str:
    if role in ("ssnr-teacher", "sinr-teacher"):
        return "g1" if role == "ssnr-teacher" else "g2"
    return preset.select if objective.kind == "student" else "balanced"


def fit(nets: DistributedNets, objective: Objective, role: str, scenario: Any,
        val_csi: torch.Tensor, preset: Preset, rng: np.random.Generator,
        train_csi: torch.Tensor | None = None, progress: bool = True,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
        time_limit: float | None = None) -> RunResult:
    """Train ``nets`` in place with ``objective``; returns the selected model.

    Args:
        nets: the unit, already on its device.
        objective: loss of the role (mutated: the student's lambda is adapted).
        role: one of :data:`ROLES` (sets stopping and selection).
        scenario: a :class:`scenarios.Scenario` (fresh drops when ``preset.fresh``).
        val_csi: ``(V, L, 2, M, Q)`` validation drops on the unit's device.
        train_csi: ``(T, L, 2, M, Q)`` training drops (required unless ``preset.fresh``).
        on_epoch: called with each epoch's history row (e.g. to write the CSV).
        time_limit: seconds after which training stops (the selection so far is kept).
    """
    from tqdm.auto import tqdm

    dev = next(nets.parameters()).device
    system = nets.system
    opt = torch.optim.Adam(nets.parameters(), lr=preset.lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=preset.plateau_factor, patience=preset.plateau_patience)
    fixed = role == "ssnr-teacher"
    epochs = preset.ssnr_epochs if fixed else preset.max_epochs
    n_train = (preset.drops - val_csi.shape[0]) if preset.fresh else train_csi.shape[0]
    selector = Selector(_selection_mode(role, objective, preset), preset.select_ratio,
                        (objective.g1max, objective.g2max) if objective.kind == "student"
                        else None)
    history: list[dict[str, float]] = []
    stopped = "epoch cap"
    t0 = time.perf_counter()
    bar = tqdm(range(epochs), desc=role, unit="epoch", disable=not progress, leave=True)
    try:
        for epoch in bar:
            if preset.fresh:
                data = torch.from_numpy(scenario.drops(rng, n_train)[0]).to(dev)
            else:
                data = train_csi[torch.from_numpy(rng.permutation(n_train)).to(dev)]
            nets.train()
            sums = np.zeros(3)
            for i in range(0, n_train - preset.batch + 1, preset.batch):
                x = data[i:i + preset.batch]
                g1, g2 = metrics.g1_g2(x, nets(x), system)
                loss = objective.loss(g1, g2)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                objective.after_step(g1, g2)
                sums += (float(loss.detach()), float(g1.detach().mean()),
                         float(g2.detach().mean()))
            steps = max(1, n_train // preset.batch)
            train_loss, train_g1, train_g2 = sums / steps
            lr = opt.param_groups[0]["lr"]
            v1, v2 = score_nets(nets, val_csi)
            if not (math.isfinite(train_loss) and np.isfinite(v1).all() and np.isfinite(v2).all()):
                stopped = f"diverged at epoch {epoch} (non-finite loss or metrics at lr {lr:g})"
                break
            sched.step(train_loss)
            row = {"epoch": epoch, "train_loss": train_loss, "train_g1": train_g1,
                   "train_g2": train_g2, "val_g1": float(v1.mean()), "val_g2": float(v2.mean()),
                   "lambda": objective.lam if objective.kind == "student" else float("nan"),
                   "lr": lr, "seconds": time.perf_counter() - t0}
            history.append(row)
            selector.offer(epoch, row["val_g1"], row["val_g2"],
                           lambda: copy.deepcopy(nets.state_dict()))
            if on_epoch:
                on_epoch(row)
            bar.set_postfix(g1=f"{row['val_g1']:.3f}", g2=f"{row['val_g2']:.3f}", lr=f"{lr:.0e}")
            if not fixed and epoch - selector.last_gain() >= preset.patience:
                stopped = f"patience {preset.patience}"
                break
            if opt.param_groups[0]["lr"] < preset.min_lr:
                stopped = f"lr below {preset.min_lr:g}"
                break
            if time_limit is not None and row["seconds"] > time_limit:
                stopped = f"time limit {time_limit:g} s"
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        bar.close()
    if not selector.cands:      # interrupted or diverged before the first finished epoch
        return RunResult(nets, history, -1, math.nan, math.nan, objective,
                         time.perf_counter() - t0, stopped, empty=True)
    epoch, g1, g2, state = selector.selected()
    nets.load_state_dict(state)
    nets.eval()
    return RunResult(nets, history, epoch, g1, g2, objective, time.perf_counter() - t0, stopped)


# ----------------------------------------------------------------------------- checkpoints

def save_checkpoint(path: str | Path, result: RunResult, role: str, scenario: str,
                    preset: str, extra: dict[str, Any] | None = None) -> Path:
    """Write the selected unit of ``result`` with everything needed to rebuild and judge it."""
    nets, obj = result.nets, result.objective
    ckpt = {
        "role": role, "arch": nets.arch, "width": nets.width,
        "system": nets.system.to_dict(), "scenario": scenario, "preset": preset,
        "beta": obj.beta if obj.kind == "teacher" else None,
        "lambda": obj.lam if obj.kind == "student" else None,
        "g1max": obj.g1max, "g2max": obj.g2max,
        "epoch": result.epoch, "val_g1": result.val_g1, "val_g2": result.val_g2,
        "epochs_run": len(result.history), "stopped": result.stopped,
        "seconds": result.seconds, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "state_dicts": [{k: v.detach().cpu() for k, v in ap.state_dict().items()}
                        for ap in nets.aps],
        **(extra or {}),
    }
    return store.save(path, ckpt)


# ----------------------------------------------------------------------------- whole scheme

@dataclass
class TrainOutput:
    """Result of :func:`train`: checkpoint paths and run summaries by role, and the run folder."""

    out: Path
    checkpoints: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, dict[str, Any]] = field(default_factory=dict)
    histories: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    interrupted: bool = False
    diverged: str = ""      #: why training stopped on a non-finite loss ("" = it did not)


def _write_csv(path: Path, rows: list[dict[str, float]]) -> None:
    """Write the history rows to ``path`` atomically (a Ctrl-C never truncates it)."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def train(scenario: str = "pos2", users: int = 8, arch: str = "gram-mlp", preset: str = "cpu",
          device: str = "auto", out: str | Path | None = None,
          roles: tuple[str, ...] = ("ssnr-teacher", "sinr-teacher", "student"),
          seed: int = 0, beta: float = 0.5, lam: float = LAMBDA_0, threads: int | None = None,
          progress: bool = True, overrides: dict[str, Any] | None = None,
          preset_overrides: dict[str, Any] | None = None,
          time_limits: dict[str, float] | None = None, install: bool = False,
          init: str | Path | None = None) -> TrainOutput:
    """Train the requested roles for one scenario and write checkpoints and per-epoch CSVs.

    Teachers first: ``g1max``/``g2max`` of the students are the teachers' mean scores over the
    training drops; when a student role is asked without the teacher roles, the teachers'
    checkpoints are read from ``out`` (or the shipped ones) instead.

    Args:
        scenario, users, overrides: as :func:`scenarios.load`.
        arch: one of :data:`policies.learned.nets.ARCHS`.
        preset: ``"paper"``, ``"cpu"`` or ``"tiny"`` (:data:`PRESETS`); ``preset_overrides``
            replaces fields of it (e.g. ``{"max_epochs": 5}``).
        device: ``"auto"`` (GPU where there is one), ``"cpu"``, ``"cuda"``...
        out: folder for ``<scenario>-N<users>-<arch>-<role>.pt`` and ``<role>.csv``; default
            ``runs/<date>-train-<scenario>-N<users>/``.
        roles: subset of :data:`ROLES`, trained in that order.
        seed: root of every random draw (data and initial weights).
        beta, lam: the fixed-beta / fixed-lambda weights.
        threads: torch CPU threads (default: leave torch's setting).
        time_limits: ``{role: seconds}`` wall-clock cap of a role's training.
        install: once every role has finished, copy the checkpoints into
            ``policies/learned/shipped/`` atomically (where ``policies.make`` finds them); an
            interrupted run installs nothing (its run folder keeps what finished).
        init: folder of checkpoints (same file names) to warm-start from, e.g. to continue a
            run at a lower learning rate; the student then also starts from its saved lambda.
    """
    import scenarios

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ValueError(f"unknown roles {bad}; roles: {', '.join(ROLES)}")
    pre = dataclasses.replace(PRESETS[preset], **(preset_overrides or {}))
    if threads:
        torch.set_num_threads(threads)
    sc = scenarios.load(scenario, users=users, overrides=overrides)
    system = sc.system
    dev = resolve_device(device)
    out = run_dir(f"train-{sc.name}-N{system.N}", out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    csi_all = torch.from_numpy(sc.drops(rng, pre.drops)[0])
    n_val = max(1, round(pre.drops * pre.val_fraction))
    val_csi, train_csi = csi_all[:n_val].to(dev), csi_all[n_val:].to(dev)
    result = TrainOutput(out)
    gmax: dict[str, float] = {}

    if init is not None and not any((Path(init) / checkpoint_name(
            sc.name, system.N, arch, r)).is_file() for r in roles + ("ssnr-teacher",
                                                                      "sinr-teacher")):
        raise ValueError(f"--init {init}: no {checkpoint_name(sc.name, system.N, arch, 'ROLE')} "
                         "checkpoint there to start from; pass the folder of a finished run")

    def teacher_mean(role: str) -> float:
        """Mean score of a trained teacher over the training drops (g1 or g2)."""
        name = checkpoint_name(sc.name, system.N, arch, role)
        found = [p for p in (out / name, Path(init or out) / name) if p.is_file()]
        path = found[0] if found else store.find(sc.name, system.N, role, arch)
        if path is None:
            raise ValueError(f"the student needs the {role} checkpoint {name}: "
                             f"train it first (add --role {role})")
        nets, _ = store.load(path, system, dev)
        g1, g2 = score_nets(nets, train_csi)
        return float(g1.mean() if role == "ssnr-teacher" else g2.mean())

    for role in roles:
        if role in ("student", "fixed-lambda"):
            gmax.setdefault("g1max", teacher_mean("ssnr-teacher"))
            gmax.setdefault("g2max", teacher_mean("sinr-teacher"))
        obj = objective_for(role, gmax.get("g1max"), gmax.get("g2max"), beta=beta, lam=lam)
        name = checkpoint_name(sc.name, system.N, arch, role)
        warm = init is not None and (Path(init) / name).is_file()
        if warm:
            nets, meta = store.load(Path(init) / name, system, dev)
            if obj.kind == "student" and obj.adaptive:
                obj.lam = meta["lambda"]
        else:
            nets = DistributedNets(system, arch, pre.width).to(dev)
        csv_path = out / f"{role}.csv"
        rows: list[dict[str, float]] = []

        def on_epoch(row: dict[str, float], rows: list = rows, csv_path: Path = csv_path) -> None:
            rows.append(row)
            _write_csv(csv_path, rows)

        res = fit(nets, obj, role, sc, val_csi, pre, rng, train_csi=train_csi,
                  progress=progress, on_epoch=on_epoch,
                  time_limit=(time_limits or {}).get(
                      role, pre.ssnr_time_limit if role == "ssnr-teacher" else pre.time_limit))
        if not res.empty and res.stopped != "interrupted" and role in ("ssnr-teacher",
                                                                         "sinr-teacher"):
            g = score_nets(res.nets, train_csi)
            gmax["g1max" if role == "ssnr-teacher" else "g2max"] = \
                float(g[0 if role == "ssnr-teacher" else 1].mean())
        if not res.empty:
            result.checkpoints[role] = save_checkpoint(
                out / name, res, role, sc.name, preset, {"init": str(init) if warm else None})
        result.histories[role] = res.history
        result.summary[role] = {"epoch": res.epoch, "val_g1": res.val_g1, "val_g2": res.val_g2,
                                "epochs_run": len(res.history), "stopped": res.stopped,
                                "seconds": res.seconds, "lambda": obj.lam,
                                "checkpoint": None if res.empty else name}
        if res.stopped == "interrupted":
            result.interrupted = True
            break
        if res.stopped.startswith("diverged"):
            result.diverged = res.stopped
            break
    if install and not result.interrupted and not result.diverged:
        for path in result.checkpoints.values():
            store.install(path)
    return result


def resolve(role: str, system: Any, scenario: str, arch: str | None = None,
            train_missing: bool = False, progress: bool = True,
            log: list[str] | None = None, overrides: dict[str, Any] | None = None,
            device: str = "auto") -> Path:
    """The checkpoint of policy ``role`` (a name of :data:`policies.learned.roles.ROLES`) for
    ``system`` on ``scenario``: found (:func:`find`), else, for a
    seed-scheme role with ``train_missing``, trained with the ``cpu`` preset into the
    checkpoint root (teachers too when the role needs them), else a :class:`CheckpointError`
    naming the command (always for the span scheme: its training takes an hour).

    Args:
        overrides: scenario overrides that make ``system`` (e.g. ``{"system.antennas": 32}``),
            passed to the training.
        log: collects a line per checkpoint trained here.
    """
    from policies.learned.roles import role as role_of

    spec = role_of(role)
    if spec.scheme == "span":
        return store.require_span(scenario)   # an hour-long training: never on the fly
    role = spec.trained
    path = store.find(scenario, system.N, role, arch)
    if path is not None or not train_missing:
        return path if path is not None else store.require(scenario, system.N, role, arch)
    a = arch or store.DEFAULT_ARCHS[0]
    roles = {"ssnr-teacher": ("ssnr-teacher",), "sinr-teacher": ("sinr-teacher",),
             "fixed-beta": ("fixed-beta",)}.get(role, ("ssnr-teacher", "sinr-teacher", role))
    out = train(scenario, system.N, a, "cpu", device, None, roles, progress=progress,
                overrides=overrides)
    for trained, ckpt in out.checkpoints.items():
        dest = store.install(ckpt, store.root())
        if log is not None:
            log.append(f"trained {trained} with the cpu preset -> {dest}")
    return store.root() / checkpoint_name(scenario, system.N, a, role)
