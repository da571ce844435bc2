"""Quality regression: the shipped learned policies against stored ``cvx`` results, drop by drop.

``tests/data/cvx_heldout.npz`` holds, for pos1 N=5 and pos2 N=2, 3, 5, 6, 8, 12, 200 held-out
drops (street and street-road N=16: 100) (seed 20241224, never used in training: the UE and
target positions) and the per-drop SSNR and min-SINR of ``cvx`` (rho 0.5) on them (``python
tests/data/make_cvx_heldout.py``; N = 3, 6, 12 are numbers of UEs the any-N network never
trained on as validation targets). The shipped student's per-drop parity
(:func:`policies.learned.quality.parity`) must stay at or above the floors below: what the
shipped checkpoints reach, less 0.01 (ratios) or 2 points (shares). The bar itself (median
ratios >= 0.95, >= 80 % of drops with both >= 0.9, p5 >= 0.9, means >= 0.95) is not reached:
the median SSNR ratio stops at 0.88-0.92 (see the provenance README).
"""

from pathlib import Path

import numpy as np
import pytest

import policies
import scenarios
from cfisac_env.physics import channels, metrics
from policies.learned.quality import parity

DATA = Path(__file__).parents[2] / "data" / "cvx_heldout.npz"
SEED, DROPS = 20_241_224, 200
DROPS_OF = {("street", 16): 100, ("street-road", 16): 100}
KEYS = ("median_ssnr", "median_min_sinr", "share_both_090", "p5_min_sinr", "mean_ssnr",
        "mean_min_sinr")
# Floors per (scenario, N) in the order of KEYS. Shipped student (span-attn, rho 0.5):
# pos1 N=5 0.916 0.961 49.5 % 0.974 0.901 0.973; pos2 N=2 0.899 0.985 48.5 % 0.934 0.900 0.997;
# N=3 0.895 0.974 45 % 0.974 0.884 0.978; N=5 0.885 0.961 32 % 0.952 0.879 0.970;
# N=6 0.876 0.951 24.5 % 0.962 0.877 0.952; N=8 0.887 0.924 18.5 % 0.884 0.883 0.934;
# N=12 0.920 0.879 11 % 0.839 0.921 0.884.
# street N=16 (L = 8, 100 drops), against cvx with its NS sensing beam zero at N = M (as
# documented; before, a full-power beam in a random direction lowered cvx's level to 0.26):
# 0.720 0.229 0 % 0.279 0.722 0.216 (its target, both means >= 0.9 of cvx's, is not met).
STREET_FLOOR = (0.710, 0.219, 0.0, 0.269, 0.712, 0.206)
# street-road N=16 (the street in motion; its own checkpoint, trained on street-road drops with
# the target anywhere along the road; held-out static drops of its placement, 100):
# 0.674 0.238 0 % 0.282 0.678 0.225.
STREET_ROAD_FLOOR = (0.664, 0.228, 0.0, 0.272, 0.668, 0.215)
STUDENT_FLOOR = {
    ("pos1", 5): (0.906, 0.951, 0.475, 0.964, 0.891, 0.963),
    ("pos2", 2): (0.889, 0.975, 0.465, 0.924, 0.890, 0.987),
    ("pos2", 3): (0.885, 0.964, 0.43, 0.964, 0.874, 0.968),
    ("pos2", 5): (0.875, 0.951, 0.30, 0.942, 0.869, 0.960),
    ("pos2", 6): (0.866, 0.941, 0.225, 0.952, 0.867, 0.942),
    ("pos2", 8): (0.877, 0.914, 0.165, 0.874, 0.873, 0.924),
    ("pos2", 12): (0.910, 0.869, 0.09, 0.829, 0.911, 0.874),
    ("street", 16): STREET_FLOOR,
    ("street-road", 16): STREET_ROAD_FLOOR,
}


@pytest.fixture(scope="module")
def stored():
    return np.load(DATA)


@pytest.mark.parametrize("scenario,users", sorted(STUDENT_FLOOR))
def test_stored_drops_are_the_held_out_draw(stored, scenario, users):
    """The stored positions are the bench's held-out drops (so the numbers are comparable)."""
    sc = scenarios.load(scenario, users=users)
    _, ue, tg = sc.drops(np.random.default_rng(SEED), DROPS_OF.get((scenario, users), DROPS))
    key = f"{scenario}-N{users}"
    np.testing.assert_allclose(stored[f"{key}/ue_xy"], ue, rtol=0, atol=1e-9)
    np.testing.assert_allclose(stored[f"{key}/target_xy"], tg, rtol=0, atol=1e-9)


def _parity(role: str, scenario: str, users: int, stored) -> dict[str, float]:
    sc = scenarios.load(scenario, users=users)
    key = f"{scenario}-N{users}"
    csi = channels.csi(sc.system, stored[f"{key}/ue_xy"], stored[f"{key}/target_xy"])
    pol = policies.make(role, sc.system, scenario=scenario)
    g1, g2 = metrics.g1_g2(csi, pol.act(csi), sc.system)
    return parity(g1, g2, stored[f"{key}/ssnr"], stored[f"{key}/min_sinr"])


@pytest.mark.parametrize("scenario,users", sorted(STUDENT_FLOOR))
def test_student_per_drop_parity_floors(stored, scenario, users):
    p = _parity("student", scenario, users, stored)
    low = {k: (round(p[k], 3), f) for k, f in zip(KEYS, STUDENT_FLOOR[(scenario, users)],
                                                  strict=True) if p[k] < f}
    assert not low, f"below the floor (got, floor): {low}"


# Drops whose channels the sampler draws at random (the seed fixes them), both policies deciding
# on what the sampler lets them observe and scored on the true channel:
# - estimated CSI (csi.nmse = 0.05, pos2 N = 8): the student (its LoS fit of the estimate, then
#   the network) measured 0.904 1.099 39.5 % 1.126 0.916 1.068: at least as good as cvx on
#   min-SINR, 0.90-0.92 of its SSNR (as with perfect CSI);
# - Rician fading (pos2-rician N = 8, K = 10 dB; its own checkpoint, trained on those
#   channels): 0.868 0.708 0 % 0.628 0.863 0.713 (pos2's network there: 0.868 0.554 0 % 0.417
#   0.868 0.560; cvx sees the other APs' scattered parts, an AP does not).
SAMPLED = {
    "pos2-N8-nmse0.05": ("pos2", {"csi.nmse": 0.05}, (0.894, 1.090, 0.385, 1.109, 0.906, 1.060)),
    "pos2-rician-N8": ("pos2-rician", {}, (0.858, 0.698, 0.0, 0.618, 0.853, 0.703)),
}


@pytest.mark.parametrize("key", sorted(SAMPLED))
def test_student_on_sampled_channels(stored, key):
    from policies.evaluation.evaluate import Drops, build

    scenario, overrides, floor = SAMPLED[key]
    sc = scenarios.load(scenario, users=8, overrides=overrides or None)
    d = Drops.sample(sc, DROPS, SEED)
    np.testing.assert_allclose(stored[f"{key}/ue_xy"], d.ue_xy, rtol=0, atol=1e-9)
    pol = build("student", sc)                  # as the runners build it (its channel model)
    g1, g2 = metrics.g1_g2(d.truth, pol.act(d.csi), sc.system)
    p = parity(g1, g2, stored[f"{key}/ssnr"], stored[f"{key}/min_sinr"])
    low = {k: (round(p[k], 3), f) for k, f in zip(KEYS, floor, strict=True) if p[k] < f}
    assert not low, f"below the floor (got, floor): {low}"


@pytest.mark.parametrize("scenario,users", [("pos1", 5), ("pos2", 8)])
def test_sinr_teacher_above_cvx_min_sinr(stored, scenario, users):
    p = _parity("sinr-teacher", scenario, users, stored)
    assert p["median_min_sinr"] > 1.05 and p["mean_min_sinr"] > 1.2


def test_parity_figures_by_hand():
    g1, g2 = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 0.5, 3.0, 4.0])
    p = parity(g1, g2, np.ones(4) * 2, np.ones(4) * 2)
    assert p["median_ssnr"] == pytest.approx(1.25) and p["median_min_sinr"] == pytest.approx(1.0)
    assert p["share_both_090"] == pytest.approx(0.5)         # drops 3 and 4
    assert p["mean_ssnr"] == pytest.approx(1.25) and p["bar_met"] == 0.0
    ok = parity(np.ones(3), np.ones(3), np.ones(3), np.ones(3))
    assert ok["bar_met"] == 1.0
