"""What an AP can reach with only its own CSI under a Rician channel, and what the LoS fit gives
cvx under estimated CSI (see README.md here).

    python policies/learned/shipped/provenance/local_cvx.py --drops 40
    python policies/learned/shipped/provenance/local_cvx.py --estimated --drops 200
    python policies/learned/shipped/provenance/local_cvx.py --guessed --drops 60

On held-out ``pos2`` drops (seed 20241224) with ``channel.model = rician`` (K = 10 dB), every AP
runs ``cvx`` (rho 0.5) on the best joint CSI it can know: its own measured channels, the other
APs' LoS parts (what the learned students rebuild from their geometry step: the scattered part
of another AP's channel is not in an AP's own CSI), and every AP's exact target column (an
oracle: an AP does not know the others' target directions either), and keeps its own slice.
The joint beams are scored on the true channels against ``cvx`` with the whole true CSI, drop by
drop, beside the shipped students (pos2's, and ``pos2-rician``'s, trained on these channels).
Prints the parity table of
:mod:`policies.learned.quality`.

``--estimated``: LoS channel, ``csi.nmse = 0.05``; cvx on the raw estimate (the reference), cvx
on its LoS fit (:mod:`cfisac_env.physics.los_fit`, the student's own first step) and the student,
all scored on the true channel.

``--guessed``: LoS, perfect CSI. Every AP knows every UE channel (its own measured, the others
rebuilt exactly from the geometry, as the students do) but only its own target column: it runs
``cvx`` with the other APs' target columns taken from a guess of the target's position on its
own ray (at road depth ``y`` = 5, 10 and 15 m) and keeps its own slice. This is cvx with the
information a distributed AP has: the SSNR is a sum of per-AP terms, but every AP's beams bend
towards its own target, and how that changes each UE's SINR depends on the other targets.
"""

from __future__ import annotations

import argparse

import numpy as np

import policies
import scenarios
from cfisac_env.physics import channels, metrics
from cfisac_env.physics.los_fit import los_fit
from cfisac_env.physics.propagation import ChannelModel
from cfisac_env.sim.tracker import cosines
from policies.evaluation.evaluate import Drops
from policies.learned.quality import HEADER, parity, parity_line

SEED = 20_241_224


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=8)
    p.add_argument("--drops", type=int, default=40)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--estimated", action="store_true",
                      help="LoS with csi.nmse = 0.05: cvx with and without the LoS fit")
    mode.add_argument("--guessed", action="store_true",
                      help="LoS: cvx at every AP with the other APs' target columns guessed")
    args = p.parse_args()
    if args.estimated:
        estimated(args.users, args.drops)
        return
    if args.guessed:
        guessed(args.users, args.drops)
        return
    sc = scenarios.load("pos2", users=args.users, overrides={"channel.model": "rician"})
    s, n = sc.system, args.users
    model = ChannelModel.of(sc.config)
    drops = Drops.sample(sc, args.drops, SEED)
    truth = drops.truth.astype(np.float64)
    cvx = policies.make("cvx", s, rho=0.5)
    student = policies.make("student", s, scenario="pos2", channel="rician")
    own = policies.make("student", s, scenario="pos2-rician", channel="rician")
    beams: dict[str, list[np.ndarray]] = {"cvx": [], "local-cvx": [], "student": [],
                                          "student (pos2-rician)": []}
    for i in range(args.drops):
        los = channels.csi(s, drops.ue_xy[i], drops.target_xy[i]).astype(np.float64)
        los[..., :n] *= np.sqrt(model.los_share)               # the LoS part of each UE link
        local = np.empty(truth.shape[1:], np.float32)
        for l in range(s.L):
            view = los.copy()
            view[l] = truth[i, l]                              # its own measured channels
            view[..., n] = truth[i, ..., n]                    # every target column (oracle)
            local[l] = cvx.act(view)[l]
        beams["cvx"].append(cvx.act(truth[i]))
        beams["local-cvx"].append(local)
        beams["student"].append(student.act(truth[i].astype(np.float32)))
        beams["student (pos2-rician)"].append(own.act(truth[i].astype(np.float32)))
    _report(f"pos2 N={n} rician (K = {model.k_factor_db:.0f} dB), {args.drops} held-out drops; "
            f"per drop against cvx with the whole true CSI", truth, beams, s)


def estimated(users: int, count: int) -> None:
    """cvx on the raw and on the LoS-fitted estimate, and the student (module docstring)."""
    sc = scenarios.load("pos2", users=users, overrides={"csi.nmse": 0.05})
    s = sc.system
    drops = Drops.sample(sc, count, SEED)
    truth = drops.truth.astype(np.float64)
    cvx = policies.make("cvx", s, rho=0.5)
    student = policies.make("student", s, scenario="pos2")
    fitted = los_fit(drops.csi, s.spacing)
    beams = {"cvx": [cvx.act(x) for x in drops.csi],
             "cvx on the fit": [cvx.act(x) for x in fitted],
             "student": [student.act(x) for x in drops.csi]}
    _report(f"pos2 N={users} csi.nmse 0.05, {count} held-out drops; per drop against cvx on "
            f"the raw estimate, all scored on the true channel", truth, beams, s)


def guessed(users: int, count: int) -> None:
    """cvx at every AP with the other APs' target columns guessed on its own ray (docstring)."""
    sc = scenarios.load("pos2", users=users)
    s, n = sc.system, users
    drops = Drops.sample(sc, count, SEED)
    truth = drops.truth.astype(np.float64)
    cvx = policies.make("cvx", s, rho=0.5)
    student = policies.make("student", s, scenario="pos2")
    ap = np.asarray(s.ap_xy, dtype=np.float64)
    depths = (5.0, 10.0, 15.0)
    beams: dict[str, list[np.ndarray]] = {"cvx": [cvx.act(x) for x in drops.csi],
                                          **{f"guess y={y:.0f} m": [] for y in depths},
                                          "student": [student.act(x) for x in drops.csi]}
    for i in range(count):
        cos = cosines(ap, drops.target_xy[i])[0]               # each AP's own direction (L,)
        sin = np.sqrt(np.maximum(1.0 - cos ** 2, 1e-6))
        for y in depths:
            local = np.empty(truth.shape[1:], np.float32)
            for l in range(s.L):
                x = ap[l, 0] + (y - ap[l, 1]) * cos[l] / sin[l]   # its guess of the target
                guess = channels.csi(s, drops.ue_xy[i], np.array([x, y]))
                view = truth[i].copy()
                others = np.arange(s.L) != l
                view[others, ..., n] = guess[others, ..., n]     # the others' target columns
                local[l] = cvx.act(view.astype(np.float32))[l]
            beams[f"guess y={y:.0f} m"].append(local)
    _report(f"pos2 N={n} LoS, {count} held-out drops; every AP runs cvx with the other APs' "
            f"target columns guessed on its own ray", truth, beams, s)


def _report(title: str, truth: np.ndarray, beams: dict[str, list[np.ndarray]], system) -> None:
    """The parity table of every row of ``beams`` against its ``"cvx"`` row, on the truth."""
    scores = {name: metrics.g1_g2(truth, np.stack(w), system) for name, w in beams.items()}
    c1, c2 = scores["cvx"]
    print(title)
    print(HEADER)
    for name, (g1, g2) in scores.items():
        print(parity_line(name, parity(g1, g2, c1, c2)))


if __name__ == "__main__":
    main()
