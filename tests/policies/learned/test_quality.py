"""Quality regression: the shipped learned policies against stored ``cvx`` results.

``tests/data/cvx_heldout.npz`` holds, for each shipped scenario, 200 held-out drops (seed
20241224, never used in training: the UE and target positions) and the per-drop SSNR and
min-SINR of ``cvx`` (rho 0.5) on them, solved once with
``python runners/bench_policy.py quality --scenario S --users N``. The shipped student must stay
at or above the floors below (what the shipped checkpoints reach, less about one percentage
point; the quality bar itself, >= 95 % of cvx on both means, holds at pos1 N=5 and pos2 N=8),
the SINR teacher above cvx's min-SINR; a change that ships a worse checkpoint fails here.
"""

from pathlib import Path

import numpy as np
import pytest

import policies
import scenarios
from cfisac_env.physics import channels, metrics

DATA = Path(__file__).parents[2] / "data" / "cvx_heldout.npz"
SHIPPED = [("pos1", 5), ("pos2", 2), ("pos2", 5), ("pos2", 8)]
SEED, DROPS = 20_241_224, 200
# Floors on the student's mean / cvx's mean over the stored drops: (SSNR, min-SINR). Shipped:
# pos1 N=5 0.974 / 1.159, pos2 N=2 0.845 / 1.273, N=5 0.934 / 1.154, N=8 1.077 / 0.952.
STUDENT_FLOOR = {("pos1", 5): (0.964, 1.149), ("pos2", 2): (0.835, 1.263),
                 ("pos2", 5): (0.924, 1.144), ("pos2", 8): (1.067, 0.950)}


@pytest.fixture(scope="module")
def stored():
    return np.load(DATA)


@pytest.mark.parametrize("scenario,users", SHIPPED)
def test_stored_drops_are_the_held_out_draw(stored, scenario, users):
    """The stored positions are the bench's held-out drops (so the numbers are comparable)."""
    sc = scenarios.load(scenario, users=users)
    _, ue, tg = sc.drops(np.random.default_rng(SEED), DROPS)
    key = f"{scenario}-N{users}"
    np.testing.assert_allclose(stored[f"{key}/ue_xy"], ue, rtol=0, atol=1e-9)
    np.testing.assert_allclose(stored[f"{key}/target_xy"], tg, rtol=0, atol=1e-9)


def _scores(role: str, scenario: str, users: int, stored) -> tuple[float, float, float, float]:
    sc = scenarios.load(scenario, users=users)
    key = f"{scenario}-N{users}"
    csi = channels.csi(sc.system, stored[f"{key}/ue_xy"], stored[f"{key}/target_xy"])
    pol = policies.make(role, sc.system, scenario=scenario)
    g1, g2 = metrics.g1_g2(csi, pol.act(csi), sc.system)
    return (float(g1.mean()), float(g2.mean()), float(stored[f"{key}/ssnr"].mean()),
            float(stored[f"{key}/min_sinr"].mean()))


@pytest.mark.parametrize("scenario,users", SHIPPED)
def test_student_close_to_cvx(stored, scenario, users):
    s1, s2, c1, c2 = _scores("student", scenario, users, stored)
    f1, f2 = STUDENT_FLOOR[(scenario, users)]
    assert s1 >= f1 * c1, f"SSNR {s1:.3f} vs cvx {c1:.3f}"
    assert s2 >= f2 * c2, f"min-SINR {s2:.3f} vs cvx {c2:.3f}"


@pytest.mark.parametrize("scenario,users", SHIPPED)
def test_sinr_teacher_above_cvx(stored, scenario, users):
    _, t2, _, c2 = _scores("sinr-teacher", scenario, users, stored)
    assert t2 > c2, f"SINR teacher {t2:.3f} <= cvx {c2:.3f}"


@pytest.mark.parametrize("scenario,users", SHIPPED)
def test_ssnr_teacher_at_bound(stored, scenario, users):
    t1, _, _, _ = _scores("ssnr-teacher", scenario, users, stored)
    assert t1 >= 0.99 * scenarios.load(scenario, users=users).system.ssnr_bound
