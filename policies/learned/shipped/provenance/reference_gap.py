"""Why the street student stays far below cvx's min-SINR: its reference against NS+OPT's level.

    python policies/learned/shipped/provenance/reference_gap.py --users 8
    python policies/learned/shipped/provenance/reference_gap.py --users 16

On the first ``--drops`` held-out street drops (seed 20241224, drawn as
``runners/bench_policy.py quality`` draws ``--total`` of them; perfect LoS CSI), rho 0.5, every
figure over NS+OPT's max-min SINR ``gamma_high`` of the same drop
(:class:`policies.convex.socp.FastMaxMinSINR`, NS sensing beams; cvx's own SINR target), per
drop (median, 5th percentile):

- ``reference``: the min-SINR of the network's reference beams (with the NS beams, as
  :func:`policies.learned.span_training.span_loss` scores them: its ``g2_ref``) and of its beams;
- ``exact powers``: the reference's own beam directions with the best per-UE powers under the
  budgets ``rho P_l`` (bisection on the level of :func:`policies.convex.balance.downlink_shares`);
- ``balancing K``: K iterations of the uplink-downlink balancing
  (:func:`policies.convex.balance.balance`, cold start) on the true joint channel: its certified
  level (what an unrolled balancing step in the reference could reach with exact channels);
- ``distributed K``: each AP runs the same K iterations on ITS rebuilt joint channel (the
  network's geometry step: own block measured, the other APs' LoS channels from the UE positions
  it infers) and keeps its own slice; scored on the true channel; ``oracle`` with the true
  channels instead (= the central balancing), and the share of (AP, UE) pairs rebuilt wrongly
  (entry error > 0.05 at some other AP): the UEs the ULA cannot place on the right sidewalk;
- ``local RZF``: every AP's own regularised ZF (its CSI only, no rebuilt channel), with the best
  per-UE powers computed centrally: the level a beam family needing no other AP's channel gets.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import scenarios
from cfisac_env.physics import channels, metrics
from cfisac_env.physics.layout import to_complex, to_layout
from policies.classic import ns_sensing_all
from policies.convex.balance import balance, downlink_shares
from policies.convex.socp import FastMaxMinSINR
from policies.evaluation.evaluate import Drops
from policies.learned import checkpoints as store
from policies.learned.span_training import ns_sensing

SEED, RHO = 20_241_224, 0.5
ITERATIONS = (1, 2, 3, 5, 10, 20)


def _stats(name: str, r: np.ndarray) -> None:
    print(f"  {name:44s} median {np.median(r):.3f}  p5 {np.percentile(r, 5):.3f}  "
          f"mean {r.mean():.3f}")


def best_level(h: np.ndarray, nu2: np.ndarray, G: np.ndarray, budget: np.ndarray, top: float
               ) -> tuple[float, np.ndarray | None]:
    """The largest common SINR (and its powers ``(N,)``) the directions ``G (R, N)`` reach
    within every budget: bisection on :func:`downlink_shares` over ``[0, top]``."""
    lo, hi, p = 0.0, top, None
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        out = downlink_shares(h, nu2, G, mid, budget)
        if out is not None and out[1].max() <= 1.0:
            lo, p = mid, out[0]
        else:
            hi = mid
    return lo, p


def _balanced(h: np.ndarray, nu2: np.ndarray, budget: np.ndarray, k: int):
    calls = [0]

    def done(lower: float, upper: float) -> bool:
        calls[0] += 1
        return calls[0] >= k

    return balance(h, nu2, budget, done)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=16)
    p.add_argument("--drops", type=int, default=20)
    p.add_argument("--total", type=int, default=None,
                   help="drops drawn (the bench's --drops; default 30 at N = 8, else 100)")
    p.add_argument("--checkpoint", default="policies/learned/shipped/street-span-attn.pt")
    args = p.parse_args()
    torch.set_num_threads(1)
    sc = scenarios.load("street", users=args.users)
    s = sc.system
    L, M, N, k = s.L, s.M, s.N, args.drops
    total = args.total or (30 if N == 8 else 100)
    drops = Drops.sample(sc, total, SEED)
    x, truth = drops.csi[:k], drops.truth[:k]
    hc = to_complex(x.astype(float))                                   # (k, L, M, Q)
    sense = ns_sensing_all(hc, s, RHO)
    budget = RHO * np.asarray(s.P, float)
    fast = FastMaxMinSINR(s, RHO)
    gh = np.array([fast.solve(hc[i], sense[i], need_beams=False).gamma_high for i in range(k)])
    net = store.load_span(args.checkpoint, s)[0]
    with torch.no_grad():
        xt, rho = torch.from_numpy(x), torch.full((k,), RHO, dtype=torch.float32)
        w, ref = net.both(xt, rho)
        ref = ref + ns_sensing(xt, rho, s)
        tt = torch.from_numpy(truth)
        g2_ref = metrics.sinr(tt, ref, s).amin(-1).numpy()
        g2_w = metrics.sinr(tt, w, s).amin(-1).numpy()
    print(f"street N = {N}, {k} held-out drops (seed {SEED}), rho {RHO}: mean gamma_high "
          f"{gh.mean():.3f}, network reference {g2_ref.mean():.3f}, beams {g2_w.mean():.3f}; "
          f"ratios to gamma_high per drop:")
    _stats("network reference (g2_ref)", g2_ref / gh)
    _stats("network beams", g2_w / gh)
    rc = to_complex(ref.numpy().astype(float))
    hs = [hc[i, :, :, :N].reshape(L * M, N) for i in range(k)]
    alone = np.zeros(hc.shape, complex)                                # the NS beams alone
    alone[..., N] = sense
    re, im = metrics.gains(x.astype(float), to_layout(alone, dtype=None), s)
    nu2 = re[..., N] ** 2 + im[..., N] ** 2 + s.ue_noise               # (k, N) leak + noise
    exact = [best_level(hs[i], nu2[i], rc[i, :, :, :N].reshape(L * M, N), budget, 4 * gh[i])[0]
             for i in range(k)]
    _stats("reference directions, exact powers", np.array(exact) / gh)
    for it in ITERATIONS:
        lows = [(b.lower if (b := _balanced(hs[i], nu2[i], budget, it)) else 0.0)
                for i in range(k)]
        _stats(f"balancing, {it} iterations (true channels)", np.array(lows) / gh)
    for oracle in (False, True):
        g2, wrong = np.empty(k), []
        for i in range(k):
            beams = np.zeros((L, M, N + 1), complex)
            for l in range(L):
                with torch.no_grad():
                    _, cos_all = net.geometry(torch.from_numpy(hc[i, l, :, :N])[None],
                                              torch.tensor([l]))
                hall = channels.steering_cos(cos_all[0].numpy(), M, s.spacing
                                             ).transpose(0, 2, 1)      # (L, M, N)
                hall[l] = hc[i, l, :, :N]
                err = np.abs(hall - hc[i, :, :, :N]).max(1)              # (L, N)
                wrong.append((err > 0.05).any(0))
                if oracle:
                    hall = hc[i, :, :, :N]
                h = hall.reshape(L * M, N)
                b = _balanced(h, np.full(N, s.ue_noise), budget, 10)
                if b is None or b.G is None:
                    continue
                _, pw = best_level(h, np.full(N, s.ue_noise), b.G, budget, 4 * b.upper)
                if pw is not None:
                    beams[l, :, :N] = b.G.reshape(L, M, N)[l] * np.sqrt(pw)
            beams[:, :, N] = sense[i]
            g2[i] = metrics.min_sinr(truth[i].astype(float),
                                     np.stack([beams.real, beams.imag], 1), s)
        _stats(f"distributed balancing, 10 it., {'true' if oracle else 'rebuilt'} channels",
               g2 / gh)
        if not oracle:
            print(f"  (AP, UE) pairs rebuilt wrongly: {np.mean(wrong):.3f}; APs with at least "
                  f"one: {np.mean(np.any(wrong, 1)):.3f}")
    for reg in (1e-3, 0.1, 1.0):
        lv = []
        for i in range(k):
            cols = [hc[i, l, :, :N] @ np.linalg.inv(
                hc[i, l, :, :N].conj().T @ hc[i, l, :, :N] / M + reg * np.eye(N)) / M
                for l in range(L)]
            lv.append(best_level(hs[i], nu2[i], np.concatenate(cols, 0), budget, 4 * gh[i])[0])
        _stats(f"local RZF (own CSI, reg {reg:g}), best powers", np.array(lv) / gh)


if __name__ == "__main__":
    main()
