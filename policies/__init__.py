"""Beamforming policies: the Policy protocol, the registry and the built-ins.

``policies.make(name, system, **options)`` builds one; ``policies.available()`` lists names.
"""

from cfisac_env._version import __version__
from policies.base import Decision, DistributedPolicy, Policy
from policies.registry import available, make, register, resolve

__all__ = ["Decision", "DistributedPolicy", "Policy", "__version__", "available", "make",
           "register", "resolve"]
