"""cfisac_env: physics, traffic and the Gymnasium environment of the cfisac testbed."""

from cfisac_env import metrics
from cfisac_env.channels import csi, steering
from cfisac_env.layout import to_complex, to_layout
from cfisac_env.system import System

__all__ = ["System", "csi", "metrics", "steering", "to_complex", "to_layout"]
