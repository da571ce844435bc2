"""The moving world: the SimPy road (:mod:`~cfisac_env.sim.traffic`), the one stepping mechanism
(:mod:`~cfisac_env.sim.world`) and the closed-loop tracking machinery
(:mod:`~cfisac_env.sim.tracking`). Builds on :mod:`cfisac_env.physics` only.
"""
