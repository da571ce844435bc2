"""cfisac_env: physics, traffic and the Gymnasium environment of the cfisac testbed.

Importing it registers ``cfisac/CellFreeISAC-v0`` (also makeable as
``"cfisac_env:CellFreeISAC-v0"``); :func:`parallel_env` gives the PettingZoo view with one agent
per AP (:mod:`cfisac_env.envs.multiagent`).

Layering (``tests/test_layering.py`` enforces it): :mod:`cfisac_env.physics` (``system``,
``layout``, ``channels``, ``propagation``, ``estimation``, ``metrics``, ``scoring``,
``validation``) imports nothing above it; :mod:`cfisac_env.sim` (``traffic``, which owns its
limits, ``world``, ``tracking``) only physics; :mod:`cfisac_env.envs` (``core``, ``env``,
``vector_env``, ``multiagent``, ``render``) only sim and physics, and reads :mod:`scenarios`
through one call, :func:`cfisac_env.envs.core.make_scenario`, so either package can be imported
first; :mod:`scenarios` builds on physics and sim.
"""

from __future__ import annotations

from typing import Any

from gymnasium.envs.registration import register, registry

from cfisac_env._version import __version__
from cfisac_env.physics import metrics
from cfisac_env.physics.channels import csi, steering
from cfisac_env.physics.layout import to_complex, to_layout
from cfisac_env.physics.system import System

ENV_ID = "cfisac/CellFreeISAC-v0"

# The namespaced id, and the bare one that "cfisac_env:CellFreeISAC-v0" resolves to.
for _id in (ENV_ID, "CellFreeISAC-v0"):
    if _id not in registry:
        register(
            id=_id,
            entry_point="cfisac_env.envs.env:CellFreeISACEnv",
            vector_entry_point="cfisac_env.envs.vector_env:CellFreeISACVectorEnv",
        )



def parallel_env(scenario: Any = "pos2", users: int | None = None, **kwargs: Any) -> Any:
    """The PettingZoo ``ParallelEnv`` view, agents ``ap_0 .. ap_{L-1}``
    (:class:`cfisac_env.envs.multiagent.CellFreeISACParallelEnv`; needs ``pettingzoo``)."""
    try:
        from cfisac_env.envs.multiagent import CellFreeISACParallelEnv
    except ImportError as e:  # pragma: no cover - depends on the installed extras
        raise ImportError(f"the multi-agent view needs PettingZoo ({e}); install it with "
                          "pip install 'cfisac[ecosystem]'") from e
    return CellFreeISACParallelEnv(scenario, users, **kwargs)


__all__ = ["ENV_ID", "System", "__version__", "csi", "metrics", "parallel_env", "steering",
           "to_complex", "to_layout"]
