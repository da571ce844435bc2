"""Physics: pure functions of positions and beams.

The system (:mod:`~cfisac_env.physics.system`), the array contract
(:mod:`~cfisac_env.physics.layout`), LoS steering (:mod:`~cfisac_env.physics.channels`), channel
models (:mod:`~cfisac_env.physics.propagation`), CSI estimation errors
(:mod:`~cfisac_env.physics.estimation`), the one metric module (:mod:`~cfisac_env.physics.metrics`),
scoring and input validation. Imports nothing from the rest of cfisac.
"""
