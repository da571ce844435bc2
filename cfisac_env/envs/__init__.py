"""The Gymnasium faces of the testbed: the one batched core (:mod:`~cfisac_env.envs.core`), the
single env (:mod:`~cfisac_env.envs.env`), the vector env (:mod:`~cfisac_env.envs.vector_env`), the
PettingZoo view (:mod:`~cfisac_env.envs.multiagent`) and the renderer
(:mod:`~cfisac_env.envs.render`). Builds on :mod:`cfisac_env.sim` and :mod:`cfisac_env.physics`;
reads scenarios through :func:`scenarios.load`.
"""
