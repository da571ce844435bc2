"""Experiments over policies, the engines behind the runners.

- :mod:`~policies.evaluation.evaluate`: scoring on seeded drops, summaries against the reference
  and :func:`~policies.evaluation.evaluate.compare_policies`, the engine of ``compare``;
- :mod:`~policies.evaluation.sweep`: grids of cells, chunked tasks on the local pool or Ray, into
  the resumable result store (:mod:`~policies.evaluation.store`);
- :mod:`~policies.evaluation.stress`: the closed-loop tracking experiment;
  :mod:`~policies.evaluation.robustness`: imperfect CSI, scattering and ageing;
- :mod:`~policies.evaluation.cache`: the content-addressed decision cache; both it and the store
  open and write SQLite through :mod:`~policies.evaluation.sqlite`;
- :mod:`~policies.evaluation.pool`: the one process pool (per-item outcomes, timeouts, dead
  workers) and thread pinning; :mod:`~policies.evaluation.stats`: intervals and the statistics
  of every table; :mod:`~policies.evaluation.published`: published reference figures.
"""
