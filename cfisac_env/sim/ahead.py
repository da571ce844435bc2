"""Positions of static drops drawn ahead: one generator call per block of drops, not per drop.

A batch of ``B`` static worlds draws one drop per world per step, ``2 N + 2`` uniforms from each
world's own generator (:meth:`scenarios.Scenario.sample`). Asking ``B`` generators for so few
numbers costs a Python call each (about a microsecond, more than the numbers themselves), so
:class:`DrawAhead` asks each generator for a block of drops at once and hands them out one
drop at a time. The numbers are the generator's stream in the same order, so every drop is the
one :meth:`~scenarios.Scenario.sample` would have drawn; only the generator's own state runs up
to a block ahead, so the generators must be the batch's alone (nobody else may draw from them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scenarios.loader import Scenario

#: float64 uniforms drawn ahead per world (4 KiB, less than one world's beams: 28 drops at
#: N = 8, 7 at N = 32)
AHEAD_DOUBLES = 1 << 9


class DrawAhead:
    """Drop positions of ``batch`` worlds, each from its own generator, drawn a block ahead.

    Args:
        scenario: the static scenario (its ``placement`` boxes).
        batch: number of worlds ``B``.
    """

    def __init__(self, scenario: Scenario, batch: int) -> None:
        self.scenario = scenario
        self.width = 2 * scenario.system.N + 2                  # uniforms per drop
        self.block = max(1, AHEAD_DOUBLES // self.width)         # drops per generator call
        self.uniforms = np.empty((batch, self.block, self.width))
        self.next = np.full(batch, self.block)                   # next drop; block = used up
        self.rngs: list[np.random.Generator | None] = [None] * batch

    def use(self, i: int, rng: np.random.Generator) -> None:
        """World ``i`` draws from ``rng`` from now on (what was drawn ahead of another generator
        is dropped; the same generator keeps its stream running)."""
        if self.rngs[i] is not rng:
            self.rngs[i], self.next[i] = rng, self.block

    def take(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The next drop of each world in ``idx``: ``ue_xy (n, N, 2)``, ``target_xy (n, 2)``
        metres, exactly ``scenario.sample(rng)`` of each world's generator in turn."""
        for i in idx[self.next[idx] >= self.block]:
            self.rngs[i].random(out=self.uniforms[i])            # the stream, drop after drop
            self.next[i] = 0
        u = self.uniforms[idx, self.next[idx]]                   # (n, 2 N + 2)
        self.next[idx] += 1
        n = self.scenario.system.N
        return self.scenario.place(u[:, :2 * n].reshape(-1, n, 2), u[:, 2 * n:])
