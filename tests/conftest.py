"""Shared fixtures: the Demirhan & Alkhateeb reference drops (see fixtures/README.md)."""

from pathlib import Path

import numpy as np
import pytest

from cfisac_env.physics.channels import csi
from cfisac_env.physics.system import System

FIXTURE = Path(__file__).parent / "fixtures" / "demirhan_drops.npz"


@pytest.fixture(scope="module")
def ref():
    """The fixture drops' reference arrays (keys as in power_sweep.npz)."""
    return dict(np.load(FIXTURE))


@pytest.fixture(scope="module")
def drops(ref):
    """``(system, csi (B, L, 2, M, Q))`` of the fixture drops."""
    system = System(ap_xy=ref["ap_xy"])
    return system, csi(system, ref["ue_xy"], ref["target_xy"])
