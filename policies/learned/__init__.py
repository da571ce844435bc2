"""The learned distributed policies of the seed paper: networks (:mod:`~policies.learned.nets`,
:mod:`~policies.learned.architectures`), losses, training, checkpoints, export and the policy
classes (:mod:`~policies.learned.policies`); :mod:`~policies.learned.rl` adapts a
Stable-Baselines3 model.
"""
