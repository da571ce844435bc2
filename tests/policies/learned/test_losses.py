"""Seed losses (eqs. 10-12) against hand-computed values."""

import numpy as np
import pytest
import torch

import scenarios
from cfisac_env.physics import metrics
from policies.learned.losses import Objective, student_loss, teacher_loss, update_lambda

G1 = torch.tensor([1.0, 3.0])
G2 = torch.tensor([2.0, 4.0])


def test_teacher_loss_hand_values():
    # beta = 0.25: 0.75*1 + 0.25*2 = 1.25 and 0.75*3 + 0.25*4 = 3.25 -> mean 2.25.
    assert float(teacher_loss(G1, G2, 0.25)) == pytest.approx(-2.25)
    assert float(teacher_loss(G1, G2, 0.0)) == pytest.approx(-2.0)    # SSNR teacher
    assert float(teacher_loss(G1, G2, 1.0)) == pytest.approx(-3.0)    # SINR teacher


def test_student_loss_hand_values():
    # Eq. 11, lambda on the SINR term. g1/g1max = (0.5, 1.5), g2/g2max = (0.5, 1.0).
    # lam = 0.5: 0.5*0.5 + 0.5*0.5 = 0.5 and 0.5*1.5 + 0.5*1 = 1.25 -> mean 0.875.
    assert float(student_loss(G1, G2, 0.5, 2.0, 4.0)) == pytest.approx(-0.875)
    # lam = 0.8: 0.2*0.5 + 0.8*0.5 = 0.5 and 0.2*1.5 + 0.8*1.0 = 1.1 -> mean 0.8.
    assert float(student_loss(G1, G2, 0.8, 2.0, 4.0)) == pytest.approx(-0.8)
    # lam = 0: the SSNR term alone; lam = 1: the SINR term alone.
    assert float(student_loss(G1, G2, 0.0, 2.0, 4.0)) == pytest.approx(-1.0)
    assert float(student_loss(G1, G2, 1.0, 2.0, 4.0)) == pytest.approx(-0.75)
    with pytest.raises(ValueError):
        student_loss(G1, G2, 0.5, 0.0, 4.0)


def test_lambda_rule_eq12():
    # g1max = 2, g2max = 4. Batch means g1 = 1, g2 = 3: G1 = 0.5, G2 = 0.25 -> G2 < G1,
    # sensing lags: lam - eps G1 = 0.5 - 0.01*0.5.
    assert update_lambda(0.5, 1.0, 3.0, 2.0, 4.0) == pytest.approx(0.495)
    # g1 = 1.8, g2 = 2: G1 = 0.1, G2 = 0.5 -> communication lags: lam + eps G2.
    assert update_lambda(0.5, 1.8, 2.0, 2.0, 4.0) == pytest.approx(0.505)
    # Tie G1 = G2 = 0.5: the first case of eq. 12 (G2 >= G1): + eps G2.
    assert update_lambda(0.5, 1.0, 2.0, 2.0, 4.0) == pytest.approx(0.505)
    # Both at their teachers: no gap, no step.
    assert update_lambda(0.5, 2.0, 4.0, 2.0, 4.0) == pytest.approx(0.5)
    assert update_lambda(0.999, 1.8, 2.0, 2.0, 4.0) == 1.0                   # clipped
    assert update_lambda(0.002, 1.0, 3.0, 2.0, 4.0) == 0.0
    assert update_lambda(0.5, 1.8, 2.0, 2.0, 4.0, eps=0.1) == pytest.approx(0.55)


def test_adaptive_student_objective_steps_every_iteration():
    obj = Objective("student", lam=0.5, adaptive=True, g1max=2.0, g2max=4.0)
    for _ in range(3):
        obj.after_step(torch.tensor([1.8]), torch.tensor([2.0]))   # communication lags, G2 = 0.5
    assert obj.lam == pytest.approx(0.515)
    fixed = Objective("student", lam=0.3, adaptive=False, g1max=2.0, g2max=4.0)
    fixed.after_step(G1 * 0.5, G2)
    assert fixed.lam == 0.3
    teacher = Objective("teacher", beta=1.0)
    assert float(teacher.loss(G1, G2)) == pytest.approx(-3.0)
    with pytest.raises(ValueError, match="g1max"):
        Objective("student").loss(G1, G2)
    with pytest.raises(ValueError):
        Objective("teacher", beta=1.5)


def test_loss_uses_system_metrics_and_is_differentiable():
    sc = scenarios.load("pos2", users=2)
    csi = torch.from_numpy(sc.drops(np.random.default_rng(0), 4)[0])
    beams = torch.randn_like(csi, requires_grad=True)
    g1, g2 = metrics.g1_g2(csi, beams, sc.system)
    loss = teacher_loss(g1, g2, 0.3)
    expected = -(0.7 * metrics.ssnr(csi.numpy(), beams.detach().numpy(), sc.system)
                 + 0.3 * metrics.min_sinr(csi.numpy(), beams.detach().numpy(), sc.system)).mean()
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert torch.isfinite(beams.grad).all() and beams.grad.abs().sum() > 0
