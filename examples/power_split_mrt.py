"""A custom policy in one file: power-split MRT.

Each AP, from its own CSI only, sends a matched (MRT) beam to every UE with ``split * P_l / N`` W
each and puts the remaining ``(1 - split) * P_l`` on a matched beam at the target.

Score it beside the built-ins:

    python runners/compare.py --scenario pos2 --users 8 \\
        --policy examples/power_split_mrt.py:PowerSplitMRT --policy cvx --policy student
"""

from __future__ import annotations

import numpy as np

from cfisac_env.physics.system import System
from policies import DistributedPolicy


class PowerSplitMRT(DistributedPolicy):
    """Power-split MRT; ``split`` in [0, 1] is the communication share of each AP's budget."""

    name = "power-split-mrt"

    def __init__(self, system: System, split: float = 0.5) -> None:
        super().__init__(system)
        if not 0.0 <= split <= 1.0:
            raise ValueError(f"split must lie in [0, 1], got {split}")
        self.split = split

    def act_ap(self, l: int, csi_l: np.ndarray) -> np.ndarray:
        """``csi_l (B, 2, M, Q)`` -> beams ``(B, 2, M, Q)``: column q gets ``csi_l[..., q]``
        scaled to its power share (``||h||^2 = M`` for LoS steering vectors)."""
        s = self.system
        share = np.full(s.Q, self.split * s.P[l] / s.N)
        share[-1] = (1.0 - self.split) * s.P[l]
        return (csi_l * np.sqrt(share / s.M)).astype(np.float32)
