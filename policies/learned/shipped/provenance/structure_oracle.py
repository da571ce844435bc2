"""How far the ``span-attn`` beam structure itself can go, drop by drop (the diagnosis behind
the current head; see README.md here).

    python policies/learned/shipped/provenance/structure_oracle.py beams --users 5
    python policies/learned/shipped/provenance/structure_oracle.py local --users 5 --groups 10
    python policies/learned/shipped/provenance/structure_oracle.py reference --users 8

No network: the structure's free parameters are optimised per drop by Adam (the "oracle of the
structure"), with the true channels of every AP, on drops of ``pos2`` (seed 777, never a
training or held-out seed) where ``cvx`` (rho 0.5) is solved first:

- ``beams``: the beams of :meth:`SpanAttn._beams` on the communication part
  :meth:`SpanAttn._reference` (weighted joint RZF), every parameter free per drop (the joint
  ``p_n``, ``nu_n``, ``D_k`` and per AP ``mu_s``, ``alpha``, ``gamma``, ``beta_n``): maximise
  ``log SSNR`` with the training's penalty below ``level x`` cvx's min-SINR.
- ``local``: the same, but each AP's parameters may depend on its own view only: groups of four
  drops share the UEs and put the target at the four crossings of two rays from AP 0 and two
  from AP 1, so each AP sees two views per group; its parameters are tied across the drops it
  cannot tell apart (a local-CSI policy can do no better than this).
- ``reference``: the max-min SINR of the reference beams at share 0.5 (no sensing beam), plain
  joint RZF (one regulariser, equal AP weights) against the weighted form, over cvx's level.

Prints the per-drop ratios to cvx (median, 10th percentile, share with both >= 0.9).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import policies
import scenarios
from cfisac_env.physics import channels, metrics
from policies.learned.span import SpanAttn

SP = torch.nn.functional.softplus


def _cvx(sy, ue: np.ndarray, tg: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    csi = channels.csi(sy, ue, tg)
    pol = policies.make("cvx", sy, rho=0.5)
    w = np.stack([pol.act(c) for c in csi])
    c1, c2 = metrics.g1_g2(csi, w, sy)
    return torch.from_numpy(csi).double(), torch.as_tensor(c1), torch.as_tensor(c2)


def _parts(csi: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    h = torch.complex(csi[:, :, 0], csi[:, :, 1])                        # (B, L, M, Q)
    hu, a = h[..., :n], h[..., n:]
    return hu, a, hu.mH @ hu / csi.shape[-2]                             # gl (B, L, N, N)


def _beams(P: dict, hu, a, gl, sy, view=None) -> torch.Tensor:
    """Beams ``(B, L, 2, M, Q)``; ``view (L, B)`` maps each drop's AP to its parameter row."""
    b, nl, m, n = hu.shape

    def g(k):
        return P[k] if view is None else torch.stack([P[k][view[l], l] for l in range(nl)], 1)

    dl = SP(P["D"]) if view is None else SP(P["D"])[torch.arange(b) // 4]
    w = []
    for l in range(nl):
        comm = SpanAttn._reference(hu[:, l], gl, dl, SP(g("p")[:, l]), SP(g("nu")[:, l]) + 1e-3,
                                   torch.full((b,), 0.5, dtype=torch.float64),
                                   torch.ones(b, dtype=torch.float64), m)
        out = torch.stack([SP(g("mus")[:, l]), SP(g("alpha")[:, l]), SP(g("gam")[:, l])], 1)
        w.append(SpanAttn._beams(hu[:, l], a[:, l], comm, SP(g("beta")[:, l]), out,
                                 torch.as_tensor(sy.P[l], dtype=torch.float64), m))
    return torch.stack(w, 1)


def _fit(rows: int, drops: int, n: int, nl: int, loss_fn, steps: int = 700) -> dict:
    z = lambda *s: torch.zeros(*s, dtype=torch.float64)  # noqa: E731
    P = {"p": z(rows, nl, n), "nu": z(rows, nl, n) - 2, "mus": z(rows, nl) - 2,
         "gam": z(rows, nl) + 1, "beta": z(rows, nl, n) - 2, "alpha": z(rows, nl) - 2,
         "D": z(drops, nl) + 0.5}
    for v in P.values():
        v.requires_grad_(True)
    opt = torch.optim.Adam(P.values(), lr=0.05)
    for it in range(steps):
        loss = loss_fn(P, 20.0 if it < steps // 2 else 80.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it == int(0.8 * steps):
            for q in opt.param_groups:
                q["lr"] = 0.01
    return P


def _report(name: str, g1, g2, c1, c2) -> None:
    r1, r2 = (g1 / c1).numpy(), (g2 / c2).numpy()
    print(f"{name:28s} median r1 {np.median(r1):.3f} r2 {np.median(r2):.3f}  p10 r1 "
          f"{np.percentile(r1, 10):.3f} r2 {np.percentile(r2, 10):.3f}  both >= 0.9 "
          f"{np.mean(np.minimum(r1, r2) >= 0.9):.0%}")


def _crossings(sc, rng, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Groups of 4 drops: the same UEs, the target at the crossings of two rays per AP."""
    ap = np.asarray(sc.system.ap_xy, dtype=np.float64)
    ues, tgs = [], []
    while len(ues) < groups:
        ue = sc.drops(rng, 1)[1][0]
        t = np.stack([rng.uniform(0, 100, 2), rng.uniform(0, 20, 2)], 1)
        th = [np.arctan2(t[:, 1] - ap[k, 1], t[:, 0] - ap[k, 0]) for k in range(2)]
        pts = []
        for i in range(2):
            for j in range(2):
                d0 = np.array([np.cos(th[0][i]), np.sin(th[0][i])])
                d1 = np.array([np.cos(th[1][j]), np.sin(th[1][j])])
                s, u = np.linalg.solve(np.stack([d0, -d1], 1), ap[1] - ap[0])
                pts.append((ap[0] + s * d0, s, u))
        if all(0.5 <= x[1] <= 20 and 0 <= x[0] <= 100 and s > 0 and u > 0 for x, s, u in pts):
            ues.append(np.repeat(ue[None], 4, 0))
            tgs.append(np.stack([x for x, _, _ in pts]))
    return np.concatenate(ues), np.concatenate(tgs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("beams", "local", "reference"))
    p.add_argument("--users", type=int, default=5)
    p.add_argument("--drops", type=int, default=30)
    p.add_argument("--groups", type=int, default=10)
    p.add_argument("--level", type=float, action="append", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    n = args.users
    sc = scenarios.load("pos2", users=n)
    sy, rng = sc.system, np.random.default_rng(777)
    if args.what == "local":
        ue, tg = _crossings(sc, rng, args.groups)
    else:
        _, ue, tg = sc.drops(rng, args.drops)
    csi, c1, c2 = _cvx(sy, ue, tg)
    hu, a, gl = _parts(csi, n)
    b, nl = csi.shape[:2]
    if args.what == "reference":
        def ref(P, plain):
            dl = torch.ones(b, nl, dtype=torch.float64) if plain else SP(P["D"])
            nu = (SP(P["nu"][:, 0, :1]) + 1e-3).expand(b, n) if plain else SP(P["nu"][:, 0]) + 1e-3
            w = torch.stack([SpanAttn._reference(hu[:, l], gl, dl, SP(P["p"][:, 0]), nu,
                                                 torch.full((b,), 0.5, dtype=torch.float64),
                                                 torch.ones(b, dtype=torch.float64), sy.M)
                             for l in range(nl)], 1)
            w = torch.cat([w, torch.zeros_like(w[..., :1])], 3)
            return torch.stack([w.real, w.imag], 2)

        for plain in (True, False):
            def loss(P, sharp, plain=plain):
                s = torch.log(metrics.sinr(csi, ref(P, plain), sy))
                return (torch.logsumexp(-s * sharp, -1) / sharp).mean()

            P = _fit(b, b, n, nl, loss)
            with torch.no_grad():
                g2 = metrics.min_sinr(csi, ref(P, plain), sy)
            r = (g2 / c2).numpy()
            print(f"reference {'plain RZF' if plain else 'weighted RZF':14s} N={n}: min-SINR / "
                  f"cvx's median {np.median(r):.3f}, p10 {np.percentile(r, 10):.3f}")
        return
    view = None
    rows = b
    if args.what == "local":
        k, i, j = np.arange(b) // 4, (np.arange(b) % 4) // 2, np.arange(b) % 2
        view = [torch.from_numpy(2 * k + i), torch.from_numpy(2 * k + j)]
        rows = b // 2
    for level in args.level or [1.0, 0.96]:
        for tied in ([False, True] if view is not None else [False]):
            v = view if tied else None

            def loss(P, sharp, v=v, level=level):
                w = _beams(P, hu, a, gl, sy, v)
                g1, g2 = metrics.ssnr(csi, w, sy), metrics.min_sinr(csi, w, sy)
                return (-torch.log(g1) + 5 * SP(sharp * (torch.log(c2 * level) - torch.log(g2)))
                        / sharp).mean()

            P = _fit(rows if tied else b, b // 4 if tied else b, n, nl, loss)
            with torch.no_grad():
                w = _beams(P, hu, a, gl, sy, v)
                g1, g2 = metrics.g1_g2(csi, w, sy)
            name = f"{args.what}{' tied' if tied else ''} N={n} level {level:g}"
            _report(name, g1, g2, c1, c2)


if __name__ == "__main__":
    main()
