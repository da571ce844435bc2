"""The one drop sampler: independent static drops of a scenario, positions and channels.

Training, evaluation, benchmarks and the environments draw static drops through
:func:`sample_drops`: positions uniformly from the scenario's ``placement`` boxes
(:meth:`scenarios.loader.Scenario.sample`), then the TRUE channel under its ``[channel]`` and the
ESTIMATED channel (what a policy observes) under its ``[csi]``
(:func:`cfisac_env.sim.world.drop_channels`, from streams spawned from the generator, which
positions never share). Under the defaults (LoS, perfect CSI) both channels are the seed's LoS
CSI (one array) and the draw is the seed's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cfisac_env.sim.world import drop_channels

if TYPE_CHECKING:
    from scenarios.loader import Scenario


@dataclass
class DropBatch:
    """``B`` drops: ``observed`` and ``true`` CSI ``(B, L, 2, M, Q)`` float32 (the same array
    under perfect CSI), ``ue_xy (B, N, 2)`` and ``target_xy (B, 2)`` metres."""

    observed: np.ndarray
    true: np.ndarray
    ue_xy: np.ndarray
    target_xy: np.ndarray


def sample_drops(scenario: Scenario, rng: np.random.Generator, n: int) -> DropBatch:
    """``n`` independent drops of ``scenario`` from ``rng`` (module docstring)."""
    if n < 1:
        raise ValueError(f"need at least one drop, got {n}")
    ue, tg = scenario.sample(rng, n)
    true, observed = drop_channels(scenario, ue, tg, rng)
    return DropBatch(observed, true, ue, tg)
