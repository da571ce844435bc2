"""Regenerate ``tests/data/cvx_heldout.npz``: per-drop ``cvx`` (rho 0.5) results on held-out drops.

    python tests/data/make_cvx_heldout.py                       # every pair below (slow)
    python tests/data/make_cvx_heldout.py --pair pos2:12         # one pair, merged into the file
    python tests/data/make_cvx_heldout.py --pair pos2:8:csi.nmse=0.05   # under overrides

For each ``(scenario, N)`` the 200 drops (street and street-road N=16: 100, cvx takes ~1 s a
drop there) of seed
20241224 (never used in training) are drawn by
the one drop sampler (:mod:`cfisac_env.sim.drops`, as ``bench_policy.py quality`` draws them) and
``cvx`` is scored on them through :func:`policies.evaluation.evaluate.evaluate` (decisions kept in
the shared decision cache, so a rerun solves nothing twice). Stored per pair ``S-NN/``:
``ssnr``, ``min_sinr`` ``(200,)`` and ``ue_xy (200, N, 2)``, ``target_xy (200, 2)`` metres.
A pair with overrides (``csi.nmse=0.05``: cvx decides on the estimated CSI the sampler draws,
scored on the true channel) is stored under ``S-NN-<key without section><value>/``
(``pos2-N8-nmse0.05/``). Pairs already in the file are kept unless named with ``--pair``.
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
         ("pos2", 12), ("street", 16), ("street-road", 16), ("pos2", 8, {"csi.nmse": 0.05}),
         ("pos2-rician", 8)]
DROPS_OF = {("street", 16): 100, ("street-road", 16): 100}


def key_of(scenario: str, users: int, overrides: dict | None = None) -> str:
    """The pair's prefix in the file: ``pos2-N8``, ``pos2-N8-nmse0.05``."""
    extra = "".join(f"-{k.split('.')[-1]}{v}" for k, v in sorted((overrides or {}).items()))
    return f"{scenario}-N{users}{extra}"


def solve(scenario: str, users: int, overrides: dict | None = None) -> dict[str, np.ndarray]:
    """cvx's per-drop scores and the drops' positions for one pair."""
    drops = DROPS_OF.get((scenario, users), DROPS)
    sc = scenarios.load(scenario, users=users, overrides=overrides or None)
    d = Drops.sample(sc, drops, SEED)
    run = score_policy("cvx", sc, d, cache=DecisionCache.open("default"), rho=0.5)
    if run.interrupted:
        raise KeyboardInterrupt
    key = key_of(scenario, users, overrides)
    return {f"{key}/ssnr": run.ssnr, f"{key}/min_sinr": run.min_sinr,
            f"{key}/ue_xy": d.ue_xy, f"{key}/target_xy": d.target_xy}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pair", action="append", default=None, metavar="SCENARIO:N[:KEY=VALUE]")
    args = p.parse_args()
    pairs = [_pair(x) for x in args.pair] if args.pair else PAIRS
    for scenario, users, *over in pairs:
        overrides = over[0] if over else None
        new = solve(scenario, users, overrides)
        old = dict(np.load(OUT)) if OUT.is_file() else {}
        old.update(new)
        np.savez_compressed(OUT, **old)
        key = key_of(scenario, users, overrides)
        print(f"{key}: cvx mean SSNR {new[f'{key}/ssnr'].mean():.3f}, min-SINR "
              f"{new[f'{key}/min_sinr'].mean():.3f} -> {OUT}")


def _pair(text: str) -> tuple:
    """``SCENARIO:N[:KEY=VALUE...]`` -> ``(scenario, N[, overrides])``."""
    from scenarios.loader import parse_value

    scenario, users, *sets = text.split(":")
    over = {k: parse_value(v) for k, _, v in (x.partition("=") for x in sets)}
    return (scenario, int(users), over) if over else (scenario, int(users))


if __name__ == "__main__":
    main()
