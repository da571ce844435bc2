"""Regenerate ``tests/data/cvx_heldout.npz``: per-drop ``cvx`` (rho 0.5) results on held-out drops.

    python tests/data/make_cvx_heldout.py                       # every pair below (slow)
    python tests/data/make_cvx_heldout.py --pair pos2:12         # one pair, merged into the file

For each ``(scenario, N)`` the 200 drops (street N=16: 100, cvx takes ~1 s a drop there) of seed
20241224 (never used in training) are drawn by
the one drop sampler (:mod:`cfisac_env.sim.drops`, as ``bench_policy.py quality`` draws them) and
``cvx`` is scored on them through :func:`policies.evaluation.evaluate.evaluate` (decisions kept in
the shared decision cache, so a rerun solves nothing twice). Stored per pair ``S-NN/``:
``ssnr``, ``min_sinr`` ``(200,)`` and ``ue_xy (200, N, 2)``, ``target_xy (200, 2)`` metres.
Pairs already in the file are kept unless named with ``--pair``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import scenarios
from policies.evaluation.cache import DecisionCache
from policies.evaluation.evaluate import Drops, score_policy

OUT = Path(__file__).parent / "cvx_heldout.npz"
SEED, DROPS = 20_241_224, 200
PAIRS = [("pos1", 5), ("pos2", 2), ("pos2", 5), ("pos2", 8), ("pos2", 3), ("pos2", 6),
         ("pos2", 12), ("street", 16)]
DROPS_OF = {("street", 16): 100}


def solve(scenario: str, users: int) -> dict[str, np.ndarray]:
    """cvx's per-drop scores and the drops' positions for one pair."""
    drops = DROPS_OF.get((scenario, users), DROPS)
    sc = scenarios.load(scenario, users=users)
    d = Drops.sample(sc, drops, SEED)
    run = score_policy("cvx", sc, d, cache=DecisionCache.open("default"), rho=0.5)
    if run.interrupted:
        raise KeyboardInterrupt
    key = f"{scenario}-N{users}"
    return {f"{key}/ssnr": run.ssnr, f"{key}/min_sinr": run.min_sinr,
            f"{key}/ue_xy": d.ue_xy, f"{key}/target_xy": d.target_xy}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pair", action="append", default=None, metavar="SCENARIO:N")
    args = p.parse_args()
    pairs = [(s, int(n)) for s, n in (x.split(":") for x in args.pair)] if args.pair else PAIRS
    for scenario, users in pairs:
        new = solve(scenario, users)
        old = dict(np.load(OUT)) if OUT.is_file() else {}
        old.update(new)
        np.savez_compressed(OUT, **old)
        print(f"{scenario} N={users}: cvx mean SSNR {new[f'{scenario}-N{users}/ssnr'].mean():.3f},"
              f" min-SINR {new[f'{scenario}-N{users}/min_sinr'].mean():.3f} -> {OUT}")


if __name__ == "__main__":
    main()
