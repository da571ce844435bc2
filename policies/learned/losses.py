"""Unsupervised losses of the seed paper (eqs. 10-12), built on :mod:`cfisac_env.physics.metrics`.

No labels: every loss is a function of the system metrics of the predicted beams,
``g1 = SSNR`` and ``g2 = min_n SINR_n`` (each ``(B,)``, linear), averaged over the batch.

- Teacher (eq. 10): ``-mean[(1 - beta) g1 + beta g2]`` = minus :func:`metrics.isac_objective`;
  beta = 0 is the SSNR teacher, beta = 1 the SINR teacher, other values the fixed-beta baseline.
- Student (eq. 11): ``-mean[(1 - lam) g1 / g1max + lam g2 / g2max]`` with ``g1max, g2max`` the
  teachers' mean scores on the training set; ``lam`` weighs the SINR term; fixed for the
  fixed-lambda baseline. The loss lies in ``[-1, 0]`` when the student stays below its teachers.
- Balancing (eq. 12), after every iteration, with the batch-mean normalised gaps to the teachers
  ``G1 = mean(g1max - g1) / g1max`` and ``G2 = mean(g2max - g2) / g2max``:
  ``lam <- lam + eps * G2`` if ``G2 >= G1`` (communication lags: more weight on SINR), else
  ``lam <- lam - eps * G1``; clipped to ``[0, 1]`` (eps = 0.01, lam_0 = 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cfisac_env.physics import metrics

LAMBDA_0 = 0.5
EPSILON = 0.01


def teacher_loss(g1: torch.Tensor, g2: torch.Tensor, beta: float) -> torch.Tensor:
    """Eq. 10: ``-mean[(1 - beta) g1 + beta g2]``; g1, g2 ``(B,)`` -> scalar."""
    return -metrics.isac_objective(g1, g2, beta).mean()


def student_loss(g1: torch.Tensor, g2: torch.Tensor, lam: float, g1max: float,
                 g2max: float) -> torch.Tensor:
    """Eq. 11: ``-mean[(1 - lam) g1/g1max + lam g2/g2max]``; g1, g2 ``(B,)`` -> scalar."""
    if g1max <= 0 or g2max <= 0:
        raise ValueError(f"g1max and g2max must be > 0, got {g1max!r}, {g2max!r}")
    return -((1.0 - lam) * g1 / g1max + lam * g2 / g2max).mean()


def update_lambda(lam: float, g1_mean: float, g2_mean: float, g1max: float, g2max: float,
                  eps: float = EPSILON) -> float:
    """Eq. 12: one step of the balancing factor towards the lagging objective, clipped to [0, 1].

    Args:
        lam: current lambda (weight of the SINR term of eq. 11).
        g1_mean, g2_mean: batch means of g1 and g2.
        g1max, g2max: the teachers' mean scores.
        eps: step size.

    With ``G1 = 1 - g1_mean / g1max`` and ``G2 = 1 - g2_mean / g2max``: ``lam + eps G2`` when
    ``G2 >= G1``, else ``lam - eps G1``.
    """
    gap1 = 1.0 - g1_mean / g1max
    gap2 = 1.0 - g2_mean / g2max
    step = eps * gap2 if gap2 >= gap1 else -eps * gap1
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
                                     float(g2.detach().mean()), self.g1max, self.g2max, self.eps)
