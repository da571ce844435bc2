"""Training of the any-N ``span-attn`` network (:mod:`policies.learned.span`), label-free, per drop.

Every iteration draws ``batch`` fresh drops of the scenario (for a road scenario with the target
anywhere along its road: :func:`road_drops`) at one number of UEs ``N`` (cycled
over ``users``, a curriculum over N) and operating points ``rho`` (half at 0.5, half uniform in
``[0.1, 1]``) through the one drop sampler (:func:`cfisac_env.sim.drops.sample_drops`, so
``[channel]`` and ``[csi]`` are honoured: the network sees the estimated CSI, the loss scores the
true channel). The loss is per drop, each drop normalised by its own reference:

    loss = mean_d [ -softmin_n log SINR_n(ref_d + ns_d)                   (1) max-min SINR at rho
                    - log(SSNR(W_d) / bound)                              (2) sensing
                    + kappa softplus(k (log((1 + margin) g2(ref_d)) - log g2(W_d))) / k ]   (3)

(``ns_d``: the NS sensing beams at ``(1 - rho) P_l``, :func:`ns_sensing`, whose interference
counts in the reference's SINR as in cvx's NS+OPT level: nil below ``N = M`` (null space), the
beam itself zero from ``N = M`` up; ``softmin`` with
temperature ``tau`` in log space; ``g2(ref)`` detached in (3), which keeps the
beams' min-SINR at ``1 + margin`` times the reference's; the default ``margin = -0.04`` lets
the beams sit a little below it, where the SSNR gained per SINR given up is largest: a network
that misjudges the level by a few percent on some drops otherwise keeps a safety margin above
it on all of them, the earlier ``+0.02`` put the beams ~5 % above the level). (1) trains the
reference beams (UE beams at share ``rho`` of the budget beside the NS sensing beams at the
rest: the NS+OPT design that sets cvx's SINR level); (2)+(3) the beams: the best SSNR at full
budget whose min-SINR stays at that level, drop by drop (cvx's own operating point, no cvx
solution used).

Validation: fixed drops at several N (seed ``seed + 1``); the checkpoint is written (atomically)
each time the validation loss improves, so a stopped run always leaves its best state.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cfisac_env.physics import metrics
from cfisac_env.runs import atomic_path
from cfisac_env.sim.drops import sample_drops
from policies.learned.span import SpanAttn


@dataclass
class SpanConfig:
    """Schedule of one ``span-attn`` training run (see module docstring)."""

    users: tuple[int, ...] = tuple(range(1, 17))
    batch: int = 128
    lr: float = 2e-3
    min_lr: float = 5e-5
    seconds: float = 1800.0
    iterations: int = 1_000_000
    eval_every: int = 100
    val_users: tuple[int, ...] = (1, 2, 5, 8, 12, 16)
    val_drops: int = 200
    kappa: float = 5.0
    sharp: float = 80.0
    margin: float = -0.04
    tau: float = 0.05
    width: int = 64
    heads: int = 4
    layers: int = 2


def softmin(x: torch.Tensor, tau: float) -> torch.Tensor:
    """Smooth minimum over the last axis: ``-tau logsumexp(-x / tau)`` (<= min)."""
    return -tau * torch.logsumexp(-x / tau, dim=-1)


def span_loss(net: SpanAttn, observed: torch.Tensor, true: torch.Tensor, rho: torch.Tensor,
              cfg: SpanConfig) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-drop loss of the module docstring on ``(B, L, 2, M, Q)`` drops; returns the batch
    mean and the per-drop parts (``g1``, ``g2``, ``g2_ref``, each ``(B,)``)."""
    system = net.system
    w, ref = net.both(observed, rho)
    sys_n = _with_users(system, observed.shape[-1] - 1)
    ref = ref + ns_sensing(observed, rho, system)
    s_ref = metrics.sinr(true, ref, sys_n).clamp_min(1e-9)
    s_w = metrics.sinr(true, w, sys_n).clamp_min(1e-9)
    g1 = metrics.ssnr(true, w, sys_n).clamp_min(1e-9)
    lref = torch.log(s_ref)
    level = lref.amin(-1).detach() + math.log1p(cfg.margin)
    lw = torch.log(s_w).amin(-1)
    per = (-softmin(lref, cfg.tau) - torch.log(g1 / system.ssnr_bound)
           + cfg.kappa * torch.nn.functional.softplus(cfg.sharp * (level - lw)) / cfg.sharp)
    return per.mean(), {"g1": g1.detach(), "g2": s_w.amin(-1).detach(),
                        "g2_ref": s_ref.amin(-1).detach()}


def ns_sensing(csi: torch.Tensor, rho: torch.Tensor, system: Any, eps: float = 1e-3
               ) -> torch.Tensor:
    """The NS sensing beams of cvx's operating point (NS+OPT at ``rho``), placed in the sensing
    column: per AP the target column projected off its own UE columns, ``s = a - H_u (G +
    eps I)^-1 H_u^H a / M`` (``G = H_u^H H_u / M``), at power ``(1 - rho) P_l``.

    ``csi (B, L, 2, M, Q)`` float32, ``rho (B,)`` -> ``(B, L, 2, M, Q)`` float32, zero on the UE
    columns. With ``N < M`` the beam is (to ``eps``) in the null space of the AP's UE channels
    and interferes with no UE; with ``N >= M`` there is no null space and the beam is zero, as
    cvx's is (:func:`policies.classic.ns_sensing_beam`)."""
    b, nl, _, m, q = csi.shape
    if q - 1 >= m:
        return torch.zeros_like(csi)
    h = torch.complex(csi[:, :, 0], csi[:, :, 1]).to(torch.complex128)   # (B, L, M, Q)
    hu, a = h[..., :-1], h[..., -1:]
    g = hu.mH @ hu / m
    eye = torch.eye(q - 1, dtype=g.dtype, device=g.device)
    s = a - hu @ torch.linalg.solve(g + eps * eye, hu.mH @ a / m)        # (B, L, M, 1)
    s = s / torch.sqrt((s.real ** 2 + s.imag ** 2).sum(-2, keepdim=True) + 1e-24)
    power = torch.as_tensor(system.P, dtype=torch.float64, device=csi.device)
    s = s * torch.sqrt((1 - rho.double())[:, None] * power[None])[..., None, None]
    s = torch.cat([torch.zeros_like(hu), s], -1)
    return torch.stack([s.real, s.imag], 2).to(csi.dtype)


def _with_users(system: Any, n: int) -> Any:
    import dataclasses

    return system if system.N == n else dataclasses.replace(system, users=n)


def draw_rho(rng: np.random.Generator, b: int) -> np.ndarray:
    """Operating points: half exactly 0.5 (cvx's), half uniform in [0.1, 1]."""
    r = rng.uniform(0.1, 1.0, b)
    r[rng.random(b) < 0.5] = 0.5
    return r.astype(np.float32)


@dataclass
class SpanResult:
    """Where the run wrote its checkpoint and history, and how it ended."""

    checkpoint: Path
    history: list[dict[str, float]] = field(default_factory=list)
    stopped: str = ""
    best: float = math.inf


def train_span(scenario_name: str, out: Path, cfg: SpanConfig, seed: int = 0,
               overrides: dict[str, Any] | None = None, progress: bool = True,
               save: Any = None, init: Path | None = None) -> SpanResult:
    """Train one ``span-attn`` network for scenario family ``scenario_name``.

    Args:
        out: run folder (``<role>.csv`` history, checkpoint written by ``save``).
        save: ``save(net, meta) -> Path`` writes the checkpoint (called on each improvement).
        init: checkpoint to warm-start from (another deployment with the same ``M``: its
            weights transferred, :func:`policies.learned.checkpoints.warm_start_span`).
    """
    from tqdm.auto import tqdm

    import scenarios
    from policies.learned import checkpoints as store

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    base = scenarios.load(scenario_name, overrides=overrides)
    overrides = {**road_drops(base), **(overrides or {})}
    scs = {n: scenarios.load(scenario_name, users=n, overrides=overrides) for n in
           sorted(set(cfg.users) | set(cfg.val_users))}
    system = scs[cfg.users[0]].system
    if init is not None:
        net = store.warm_start_span(init, system, ue_geometry(base))
    else:
        net = SpanAttn(system, width=cfg.width, heads=cfg.heads, layers=cfg.layers,
                       **ue_geometry(base))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    vrng = np.random.default_rng(seed + 1)
    val = {}
    for n in cfg.val_users:
        d = sample_drops(scs[n], vrng, cfg.val_drops)
        val[n] = (torch.from_numpy(d.observed), torch.from_numpy(d.true),
                  torch.full((cfg.val_drops,), 0.5))
    res = SpanResult(out / "span.pt")
    t0 = time.perf_counter()
    bar = tqdm(total=cfg.iterations, desc="span-attn", unit="it", disable=not progress)
    sums, count, plateau = np.zeros(4), 0, 0
    csv_path = out / "span.csv"
    try:
        for it in range(cfg.iterations):
            n = cfg.users[it % len(cfg.users)]
            d = sample_drops(scs[n], rng, cfg.batch)
            rho = torch.from_numpy(draw_rho(rng, cfg.batch))
            loss, parts = span_loss(net, torch.from_numpy(d.observed), torch.from_numpy(d.true),
                                    rho, cfg)
            if not torch.isfinite(loss):
                res.stopped = f"diverged at iteration {it} (non-finite loss)"
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
            opt.step()
            sums += (float(loss.detach()), float(parts["g1"].mean()), float(parts["g2"].mean()),
                     float(parts["g2_ref"].mean()))
            count += 1
            bar.update(1)
            if (it + 1) % cfg.eval_every:
                continue
            row = {"iteration": it + 1, "seconds": time.perf_counter() - t0,
                   "lr": opt.param_groups[0]["lr"], "train_loss": sums[0] / count}
            vloss = 0.0
            with torch.no_grad():
                net.eval()
                for vn, (vo, vt, vr) in val.items():
                    lv, pv = span_loss(net, vo, vt, vr, cfg)
                    vloss += float(lv) / len(val)
                    row[f"val_g1_N{vn}"] = float(pv["g1"].mean())
                    row[f"val_g2_N{vn}"] = float(pv["g2"].mean())
                    row[f"val_g2ref_N{vn}"] = float(pv["g2_ref"].mean())
                    row[f"val_ok_N{vn}"] = float((pv["g2"] >= 0.95 * pv["g2_ref"]).float()
                                                 .mean())
                net.train()
            row["val_loss"] = vloss
            res.history.append(row)
            sums, count = np.zeros(4), 0
            if not math.isfinite(vloss):
                res.stopped = f"diverged at iteration {it + 1} (non-finite validation loss)"
                break
            if vloss < res.best - 1e-4:
                res.best, plateau = vloss, 0
                if save is not None:
                    res.checkpoint = save(net, {"iteration": it + 1, "val_loss": vloss,
                                                "seconds": row["seconds"]})
            else:
                plateau += 1
                if plateau >= 8:
                    for g in opt.param_groups:
                        g["lr"] *= 0.5
                    plateau = 0
            _write_csv(csv_path, res.history)
            bar.set_postfix(val=f"{vloss:.3f}", lr=f"{opt.param_groups[0]['lr']:.0e}")
            if opt.param_groups[0]["lr"] < cfg.min_lr:
                res.stopped = f"lr below {cfg.min_lr:g}"
                break
            if row["seconds"] > cfg.seconds:
                res.stopped = f"time limit {cfg.seconds:g} s"
                break
        else:
            res.stopped = "iteration cap"
    except KeyboardInterrupt:
        res.stopped = "interrupted"
    finally:
        bar.close()
    return res


def _write_csv(path: Path, rows: list[dict[str, float]]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def ue_geometry(scenario: Any) -> dict[str, Any]:
    """The static UE geometry a scenario's network is built with (:class:`SpanAttn`'s
    ``ue_line_y`` and ``ue_x``): its UE lines ``placement.ue_y_lines`` (both sidewalks of a
    street) with the UEs' x range ``placement.ue_x``, else one line in the middle of its
    ``placement.ue_y`` box."""
    pl = scenario.config["placement"]
    lines = pl.get("ue_y_lines")
    if lines is not None and len(lines) > 1:
        return {"ue_line_y": [float(y) for y in lines],
                "ue_x": [float(x) for x in pl["ue_x"]]}
    if lines is not None:
        return {"ue_line_y": float(lines[0])}
    lo, hi = pl["ue_y"]
    return {"ue_line_y": 0.5 * (float(lo) + float(hi))}


def road_drops(scenario: Any) -> dict[str, Any]:
    """Placement overrides that make static drops of a road scenario cover its road: the target
    anywhere along ``road.x`` (a vehicle; the static placement box stops at the APs' area), the
    UEs where the walkers start. Empty for static scenarios."""
    if scenario.kind != "road":
        return {}
    return {"placement.target_x": list(scenario.config["road"]["x"])}
