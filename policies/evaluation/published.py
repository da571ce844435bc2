"""Published reference figures the runners fall back to when the convex baseline is not solved.

:data:`PUBLISHED_CVX`: the mean SSNR and min-SINR (linear) of Demirhan & Alkhateeb's joint
SDP (JSC) as published, per ``(scenario, N)``, with the number of drops behind them.
"""

from __future__ import annotations

from typing import Any

PUBLISHED_CVX: dict[tuple[str, int], dict[str, Any]] = {
    ("pos1", 5): {"ssnr": 2.103, "min_sinr": 3.747, "drops": 1000,
                  "source": "published JSC means, 1000 drops"},
}


def published_cvx(scenario: str, users: int) -> dict[str, Any] | None:
    """The published ``{"ssnr", "min_sinr", "drops", "source"}`` of ``scenario`` at ``N = users``
    (a copy), or None."""
    row = PUBLISHED_CVX.get((scenario, users))
    return None if row is None else dict(row)
