"""Distributed baselines of the cell-free literature: local partial MMSE (L-P-MMSE) and MR
precoding, each with a sensing beam, each AP using only its own CSI.

Per AP ``l`` with serving set ``D_l`` (every UE, or its user-centric cluster: each UE served by
its ``cluster`` strongest APs, :func:`policies.classic.serving_sets`), UE powers
``p = rho P_l / |D_l|`` and the sensing beam's ``(1 - rho) P_l``:

- ``precoder="mmse"`` (default; Bjornson & Sanguinetti, "Making cell-free massive MIMO
  competitive with MMSE processing and centralized implementation", IEEE TWC 2020, eq. 23):
  ``w_ln ~ C_l^-1 h_ln`` for ``n`` in ``D_l`` with the local regularised Gram
  ``C_l = sum_(i in D_l) p h_li h_li^H + sigma_n^2 I_M``; the sensing beam
  ``s_l ~ C_l^-1 a_l``, the MMSE form of the null-space beam (it leans away from the served
  UEs' channels and still exists when ``M <= |D_l|``, where the NS beam is zero).
- ``precoder="mr"``: maximum ratio, ``w_ln ~ h_ln``, with the same sensing beam.

Every column is then scaled to its power, so each AP spends exactly its budget ``P_l``. With
``cluster=None`` nothing but AP ``l``'s CSI enters AP ``l``'s beams; with clusters the serving
sets come from the APs' large-scale gains (``L N`` numbers a central unit collects anyway), the
beams from local CSI only, and the compute time counts the cluster formation plus the slowest
AP.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from cfisac_env.physics.layout import to_complex, to_layout
from cfisac_env.physics.system import System
from policies.base import Decision, DistributedPolicy
from policies.classic import _unit, check_cluster, check_rho, serving_sets

PRECODERS = ("mmse", "mr")


def local_beams(h: np.ndarray, serve: np.ndarray, system: System, power: float, rho: float,
                precoder: str = "mmse") -> np.ndarray:
    """One AP's beams from its own CSI.

    Args:
        h: complex ``(B, M, Q)``, the AP's ``[h_1 ... h_N, a]``.
        serve: ``(B, N)`` bool, the UEs this AP serves.
        power: the AP's budget ``P_l``, W.
        rho: communication share of the budget.
        precoder: ``"mmse"`` (L-P-MMSE) or ``"mr"``.

    Returns:
        complex ``(B, M, Q)``: served UEs' beams at ``rho P_l / |D_l|`` each, zero for the
        others, the sensing beam at ``(1 - rho) P_l``.
    """
    n = system.N
    users = h[..., :n] * serve[:, None, :]                               # (B, M, N)
    served = np.maximum(serve.sum(axis=-1), 1)                           # (B,)
    p = rho * power / served                                             # (B,)
    gram = (users * p[:, None, None]) @ users.conj().swapaxes(-1, -2)    # (B, M, M)
    gram = gram + system.ue_noise * np.eye(system.M)
    direction = np.linalg.solve(gram, h)                                 # (B, M, Q)
    if precoder == "mr":
        direction[..., :n] = users
    w = _unit(direction, axis=-2)
    w[..., :n] *= np.sqrt(p)[:, None, None] * serve[:, None, :]
    w[..., n] *= np.sqrt((1.0 - rho) * power)
    return w


class LPMMSE(DistributedPolicy):
    """Local partial MMSE (or MR) precoding with a sensing beam, AP by AP (module docstring).

    Options: ``rho`` (default 0.5), the communication share of each AP's budget; ``cluster``
    (default None: every AP serves every UE), user-centric clusters of the ``cluster``
    strongest APs per UE; ``precoder`` ``"mmse"`` (default) or ``"mr"``.
    """

    def __init__(self, system: System, **options: Any) -> None:
        self.rho = check_rho(options.pop("rho", 0.5))
        self.cluster = check_cluster(options.pop("cluster", None), system)
        self.precoder = options.pop("precoder", "mmse")
        if self.precoder not in PRECODERS:
            raise ValueError(f"precoder must be one of {PRECODERS}, got {self.precoder!r}")
        super().__init__(system, **options)
        self._serving: np.ndarray | None = None

    def _serve(self, l: int, batch: int) -> np.ndarray:
        if self.cluster is None:
            return np.ones((batch, self.system.N), dtype=bool)
        if self._serving is None or len(self._serving) != batch:
            raise ValueError("lp-mmse with cluster=K forms the clusters from every AP's gains: "
                             "call act() / decide() on the whole (B, L, 2, M, Q) CSI, not act_ap")
        return self._serving[:, l]

    def act_ap(self, l: int, csi_l: np.ndarray) -> np.ndarray:
        h = to_complex(csi_l.astype(float))                              # (B, M, Q)
        return to_layout(local_beams(h, self._serve(l, len(h)), self.system,
                                     float(self.system.P[l]), self.rho, self.precoder))

    def _clusters(self, csi: np.ndarray) -> None:
        self._serving = None if self.cluster is None else serving_sets(
            to_complex(csi.astype(float)), self.system, self.cluster)

    def act_batch(self, csi: np.ndarray) -> np.ndarray:
        self._clusters(csi)
        try:
            return super().act_batch(csi)
        finally:
            self._serving = None

    def decide(self, csi: np.ndarray) -> Decision:
        """Timed: the cluster formation (central, when ``cluster`` is set) plus the slowest AP."""
        x = np.asarray(csi, dtype=np.float32)
        t0 = time.perf_counter()
        self._clusters(x)
        central = time.perf_counter() - t0
        try:
            d = super().decide(x)
        finally:
            self._serving = None
        return Decision(d.beams, d.seconds + central, d.info)
