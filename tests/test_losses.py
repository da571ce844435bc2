"""Seed losses (eqs. 10-12) against hand-computed values."""

import numpy as np
import pytest
import torch

import scenarios
from cfisac_env import metrics
from policies.losses import Objective, student_loss, teacher_loss, update_lambda

G1 = torch.tensor([1.0, 3.0])
G2 = torch.tensor([2.0, 4.0])


def test_teacher_loss_hand_values():
    # beta = 0.25: 0.75*1 + 0.25*2 = 1.25 and 0.75*3 + 0.25*4 = 3.25 -> mean 2.25.
    assert float(teacher_loss(G1, G2, 0.25)) == pytest.approx(-2.25)
    assert float(teacher_loss(G1, G2, 0.0)) == pytest.approx(-2.0)    # SSNR teacher
    assert float(teacher_loss(G1, G2, 1.0)) == pytest.approx(-3.0)    # SINR teacher


def test_student_loss_hand_values():
    # lam = 0.5, g1max = 2, g2max = 4: 0.5*0.5 + 0.5*0.5 = 0.5 and 0.5*1.5 + 0.5*1 = 1.25.
    assert float(student_loss(G1, G2, 0.5, 2.0, 4.0)) == pytest.approx(-0.875)
    # lam = 0.8: 0.8*0.5 + 0.2*0.5 = 0.5 and 0.8*1.5 + 0.2*1 = 1.4 -> mean 0.95.
    assert float(student_loss(G1, G2, 0.8, 2.0, 4.0)) == pytest.approx(-0.95)
    with pytest.raises(ValueError):
        student_loss(G1, G2, 0.5, 0.0, 4.0)


def test_lambda_rule():
    # Sensing lags (1/2 < 3/4): more weight on g1.
    assert update_lambda(0.5, 1.0, 3.0, 2.0, 4.0) == pytest.approx(0.51)
    # Communication lags (1.8/2 > 2/4): less weight on g1.
    assert update_lambda(0.5, 1.8, 2.0, 2.0, 4.0) == pytest.approx(0.49)
    assert update_lambda(0.5, 1.0, 2.0, 2.0, 4.0) == pytest.approx(0.5)     # tie
    assert update_lambda(0.995, 1.0, 3.0, 2.0, 4.0) == 1.0                   # clipped
    assert update_lambda(0.004, 1.8, 2.0, 2.0, 4.0) == 0.0
    assert update_lambda(0.5, 1.0, 3.0, 2.0, 4.0, eps=0.1) == pytest.approx(0.6)


def test_adaptive_student_objective_steps_every_iteration():
    obj = Objective("student", lam=0.5, adaptive=True, g1max=2.0, g2max=4.0)
    for _ in range(3):
        obj.after_step(G1 * 0.5, G2)                     # sensing lags: +0.01 each time
    assert obj.lam == pytest.approx(0.53)
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


def test_proportional_lambda_step_is_opt_in():
    assert update_lambda(0.5, 1.0, 3.0, 2.0, 4.0, gain=0.2) == pytest.approx(0.55)  # gap 0.25
    assert update_lambda(0.5, 1.8, 2.0, 2.0, 4.0, gain=0.2) == pytest.approx(0.42)  # gap -0.4
    assert update_lambda(0.5, 1.0, 3.0, 2.0, 4.0, gain=10.0) == 1.0                 # clipped
    obj = Objective("student", adaptive=True, g1max=2.0, g2max=4.0, gain=0.2)
    obj.after_step(torch.tensor([1.0]), torch.tensor([3.0]))
    assert obj.lam == pytest.approx(0.55)
    from policies.training import PRESETS
    assert all(p.lambda_gain is None for p in PRESETS.values())                   # seed default
