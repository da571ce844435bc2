"""Experiments over policies: scoring on seeded drops (:mod:`~policies.evaluation.evaluate`, the
engine of ``compare``), sweeps with their result store and decision cache, the closed-loop stress
experiment (:mod:`~policies.evaluation.stress`), robustness, statistics and the process pool.
"""
