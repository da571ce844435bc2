"""Regenerate ``cvx_scale_drops.npz``: small cell-free drops (L > 2 APs every 50 m along the
pos2 road) with the cvxpy reference answers of the convex baseline.

For each drop: ``gamma_high`` of the cvxpy NS+OPT bisection over every midpoint (Clarabel,
``policies.convex.socp.MaxMinSINR``) and the SSNR / min-SINR of the joint SDP's beams solved by
Clarabel through cvxpy at tolerances 1e-10 (``policies.convex.sdp.JointSDPSolver``), after
power projection. Minutes to run; only rerun it on purpose (it overwrites the stored data).

    python tests/data/make_cvx_scale_drops.py
"""

import warnings
from pathlib import Path

import numpy as np

import scenarios
from cfisac_env.physics import metrics
from cfisac_env.physics.layout import to_complex, to_layout
from policies.classic import ns_sensing_all
from policies.convex.sdp import JointSDPSolver
from policies.convex.socp import MaxMinSINR

OUT = Path(__file__).with_name("cvx_scale_drops.npz")
#: (L, N, M, drops)
SIZES = ((3, 6, 8, 2), (4, 5, 8, 1))
TIGHT = {"tol_feas": 1e-10, "tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10}
RHO = 0.5


def scale_scenario(L: int, N: int, M: int):
    return scenarios.load("pos2", users=N, overrides={
        "system.ap_xy": [[25.0 + 50.0 * l, 0.0] for l in range(L)], "system.antennas": M,
        "placement.ue_x": [0.0, 50.0 * L], "placement.target_x": [0.0, 50.0 * L]})


def main() -> None:
    out: dict[str, np.ndarray] = {}
    for L, N, M, drops in SIZES:
        sc = scale_scenario(L, N, M)
        s = sc.system
        x, _, _ = sc.drops(np.random.default_rng(L * 100 + N), drops)
        bis, sdp = MaxMinSINR(s, RHO), JointSDPSolver(s, "CLARABEL", TIGHT)
        gam, ssnr, sinr = [], [], []
        for i in range(drops):
            hc = to_complex(x[i].astype(float))
            sense = ns_sensing_all(hc[None], s, RHO)[0]
            g = bis.solve(hc, sense).gamma_high
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                res = sdp.solve(hc, g)
            w = metrics.project_power(to_layout(res.beams), s)[0]
            a, b = metrics.g1_g2(x[i], w, s)
            gam.append(g), ssnr.append(a), sinr.append(b)
            print(f"L={L} N={N} M={M} drop {i}: gamma {g:.6f} ssnr {a:.6f} min-sinr {b:.6f} "
                  f"({res.status})", flush=True)
        key = f"{L}_{N}_{M}"
        out[f"csi_{key}"] = x
        out[f"gamma_{key}"] = np.array(gam)
        out[f"ssnr_{key}"] = np.array(ssnr)
        out[f"min_sinr_{key}"] = np.array(sinr)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
