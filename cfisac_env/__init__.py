"""cfisac_env: physics, traffic and the Gymnasium environment of the cfisac testbed.

Importing it registers ``cfisac/CellFreeISAC-v0`` (also makeable as
``"cfisac_env:CellFreeISAC-v0"``).
"""

from gymnasium.envs.registration import register, registry

from cfisac_env import metrics
from cfisac_env.channels import csi, steering
from cfisac_env.layout import to_complex, to_layout
from cfisac_env.system import System

ENV_ID = "cfisac/CellFreeISAC-v0"

# The namespaced id, and the bare one that "cfisac_env:CellFreeISAC-v0" resolves to.
for _id in (ENV_ID, "CellFreeISAC-v0"):
    if _id not in registry:
        register(
            id=_id,
            entry_point="cfisac_env.env:CellFreeISACEnv",
            vector_entry_point="cfisac_env.vector_env:CellFreeISACVectorEnv",
        )

__all__ = ["ENV_ID", "System", "csi", "metrics", "steering", "to_complex", "to_layout"]
