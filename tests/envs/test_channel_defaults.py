"""The defaults are the seed's model (LoS, unit gain, perfect CSI): every number is unchanged.

``tests/data/default_reference.npz`` holds observations, rewards and metrics written by the code
before channel models and estimated CSI existed (``tests/data/make_default_reference.py``): the
single env on pos1/pos2/road, the vector env on the road, compare-style scoring of stored drops
and the closed-loop tracking on track-highway. They must come out the same to float precision.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parents[1] / "data"
REF = dict(np.load(DATA / "default_reference.npz"))
_spec = importlib.util.spec_from_file_location("make_default_reference",
                                               DATA / "make_default_reference.py")
_maker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_maker)
env_run, vec_run = _maker.env_run, _maker.vec_run


@pytest.mark.parametrize("tag,scenario,users,seed", [("pos2", "pos2", 8, 3),
                                                     ("road", "road", 4, 1),
                                                     ("pos1", "pos1", 5, 0)])
def test_env_unchanged(tag, scenario, users, seed):
    got = env_run(scenario, users, seed, 4)
    np.testing.assert_array_equal(got["obs"], REF[f"env_{tag}_obs"])
    for k in ("reward", "ssnr", "min_sinr"):
        np.testing.assert_allclose(got[k], REF[f"env_{tag}_{k}"], rtol=1e-6, err_msg=k)


def test_vector_env_unchanged():
    # The vector env seeds sub-env i with seed + i, as Gymnasium's SyncVectorEnv does; the stored
    # vec_* arrays are the sync vector env's (three single envs), and the batched one matches.
    got = vec_run(2, 3)
    sync = vec_run(2, 3, "sync")
    np.testing.assert_array_equal(got["obs"], sync["obs"])
    np.testing.assert_allclose(got["reward"], sync["reward"], rtol=1e-6)
    np.testing.assert_array_equal(got["obs"], REF["vec_obs"])
    for k in ("reward", "ssnr"):
        np.testing.assert_allclose(got[k], REF[f"vec_{k}"], rtol=1e-6, err_msg=k)


def test_compare_drops_and_tracking_unchanged():
    import policies
    import scenarios
    from cfisac_env.sim.tracking import Latency, closed_loop
    from policies.evaluation.evaluate import Drops, score_policy
    from policies.evaluation.stress import trajectory

    sc = scenarios.load("pos2", users=8)
    drops = Drops.sample(sc, 12, seed=0)
    np.testing.assert_array_equal(drops.csi, REF["drops_csi"])
    for name in ("ns-rzf", "mrt-users", "mrt-target"):
        run = score_policy(name, sc, drops, progress=False)
        np.testing.assert_allclose(run.ssnr, REF[f"compare_{name}_ssnr"], rtol=1e-6)
        np.testing.assert_allclose(run.min_sinr, REF[f"compare_{name}_min_sinr"], rtol=1e-6)
    hw = scenarios.load("track-highway")
    traj = trajectory(hw, 1.0, seed=0)
    np.testing.assert_array_equal(traj.target_xy, REF["track_target_xy"])
    pol = policies.make("ns-rzf", hw.system)
    for tag, lat, delay in (("zero", Latency(), 0.0), ("fixed", Latency("fixed", 0.033), 0.02)):
        loop = closed_loop(pol, traj, hw.system, 0.1, lat, delay)
        np.testing.assert_allclose(loop.ssnr, REF[f"track_{tag}_ssnr"], rtol=1e-6)
        np.testing.assert_allclose(loop.min_sinr, REF[f"track_{tag}_min_sinr"], rtol=1e-6)
