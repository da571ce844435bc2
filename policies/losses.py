"""Unsupervised losses of the seed paper (eqs. 10-12), built on :mod:`cfisac_env.metrics`.

No labels: every loss is a function of the system metrics of the predicted beams,
``g1 = SSNR`` and ``g2 = min_n SINR_n`` (each ``(B,)``, linear), averaged over the batch.

- Teacher (eq. 10): ``-mean[(1 - beta) g1 + beta g2]`` = minus :func:`metrics.isac_objective`;
  beta = 0 is the SSNR teacher, beta = 1 the SINR teacher, other values the fixed-beta baseline.
- Student (eq. 11): ``-mean[lam g1 / g1max + (1 - lam) g2 / g2max]`` with ``g1max, g2max`` the
  teachers' mean scores on the training set; ``lam`` fixed for the fixed-lambda baseline.
- Balancing (eq. 12), after every iteration: ``lam <- clip(lam + eps * sign(ĝ2 - ĝ1), 0, 1)``
  with ``ĝ1 = mean(g1) / g1max`` and ``ĝ2 = mean(g2) / g2max`` of the batch: weight moves to
  the objective that lags its teacher (eps = 0.01, lam_0 = 0.5).
- Opt-in, not in the seed: a proportional step ``lam <- clip(lam + gain * (ĝ2 - ĝ1), 0, 1)``
  (``Objective(gain=...)``, preset field ``lambda_gain``), which shrinks as the two normalised
  objectives balance instead of swinging by eps every iteration.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cfisac_env import metrics

LAMBDA_0 = 0.5
EPSILON = 0.01


def teacher_loss(g1: torch.Tensor, g2: torch.Tensor, beta: float) -> torch.Tensor:
    """Eq. 10: ``-mean[(1 - beta) g1 + beta g2]``; g1, g2 ``(B,)`` -> scalar."""
    return -metrics.isac_objective(g1, g2, beta).mean()


def student_loss(g1: torch.Tensor, g2: torch.Tensor, lam: float, g1max: float,
                 g2max: float) -> torch.Tensor:
    """Eq. 11: ``-mean[lam g1/g1max + (1 - lam) g2/g2max]``; g1, g2 ``(B,)`` -> scalar."""
    if g1max <= 0 or g2max <= 0:
        raise ValueError(f"g1max and g2max must be > 0, got {g1max!r}, {g2max!r}")
    return -(lam * g1 / g1max + (1.0 - lam) * g2 / g2max).mean()


def update_lambda(lam: float, g1_mean: float, g2_mean: float, g1max: float, g2max: float,
                  eps: float = EPSILON, gain: float | None = None) -> float:
    """Eq. 12: one step of the balancing factor towards the lagging objective, clipped to [0, 1].

    ``g1_mean / g1max < g2_mean / g2max`` (sensing lags) raises ``lam`` by ``eps``; the
    opposite lowers it; a tie leaves it. With ``gain`` (opt-in, not the seed's rule) the step is
    ``gain * (g2_mean / g2max - g1_mean / g1max)`` instead.
    """
    gap = g2_mean / g2max - g1_mean / g1max
    if gain is not None:
        step = gain * gap
    else:
        step = eps if gap > 0 else -eps if gap < 0 else 0.0
    return float(min(1.0, max(0.0, lam + step)))


@dataclass
class Objective:
    """What one training run optimises (a role of the seed's scheme).

    ``kind`` is ``"teacher"`` (eq. 10 with ``beta``) or ``"student"`` (eq. 11 with ``lam``,
    adapted by eq. 12 when ``adaptive``). A student needs ``g1max``/``g2max`` before training.
    """

    kind: str
    beta: float = 0.0
    lam: float = LAMBDA_0
    adaptive: bool = False
    g1max: float | None = None
    g2max: float | None = None
    eps: float = EPSILON
    gain: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("teacher", "student"):
            raise ValueError(f"objective kind must be 'teacher' or 'student', got {self.kind!r}")
        for name in ("beta", "lam"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")

    def loss(self, g1: torch.Tensor, g2: torch.Tensor) -> torch.Tensor:
        """The role's loss on a batch, scalar tensor."""
        if self.kind == "teacher":
            return teacher_loss(g1, g2, self.beta)
        if self.g1max is None or self.g2max is None:
            raise ValueError("a student objective needs g1max and g2max (train the teachers first)")
        return student_loss(g1, g2, self.lam, self.g1max, self.g2max)

    def after_step(self, g1: torch.Tensor, g2: torch.Tensor) -> None:
        """Eq. 12 after an iteration (adaptive students only)."""
        if self.kind == "student" and self.adaptive:
            self.lam = update_lambda(self.lam, float(g1.detach().mean()),
                                     float(g2.detach().mean()), self.g1max, self.g2max, self.eps,
                                     self.gain)
