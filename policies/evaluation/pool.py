"""Solve many drops with one policy, in parallel, one timed decision per drop.

``decide_many("cvx", system, csi)`` builds the policy from its registry spec once in each worker
process (pool initializer), calls ``policy.decide(csi[i:i+1])`` for every drop ``i`` so each drop
is timed on its own, and shows a tqdm progress bar. Workers ignore Ctrl-C; the parent stops
handing out drops and returns what finished.
"""

from __future__ import annotations

import os
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from cfisac_env.physics.system import System
from policies.base import Decision
from policies.registry import make

_WORKER_POLICY: Any = None


def _init_worker(spec: str, system: System, options: dict[str, Any]) -> None:
    """Pool initializer: ignore SIGINT (the parent handles Ctrl-C) and build the policy once."""
    global _WORKER_POLICY
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_POLICY = make(spec, system, **options)


def _decide_one(index: int, csi_one: np.ndarray) -> tuple[int, Decision]:
    return index, _WORKER_POLICY.decide(csi_one)


def _tag(index: int, decision: Decision) -> Decision:
    decision.info["drop"] = index
    return decision


def decide_many(spec: str, system: System, csi: np.ndarray, options: dict[str, Any] | None = None,
                jobs: int | None = None, progress: bool = True, desc: str | None = None
                ) -> list[Decision]:
    """Timed decisions of policy ``spec`` on every drop.

    Args:
        spec: registry name or ``module:Class`` path (see :func:`policies.make`).
        system: the system the policy is built for.
        csi: ``(B, L, 2, M, Q)`` float32, one drop per row.
        options: keyword options of the policy (e.g. ``{"rho": 0.5}``).
        jobs: worker processes; ``None`` = ``os.cpu_count()``; ``1`` runs in this process.
        progress: show a tqdm bar.
        desc: bar label (default: ``spec``).

    Returns:
        One :class:`~policies.base.Decision` per drop, in drop order: ``beams (1, L, 2, M, Q)``,
        ``seconds`` of that drop's own call, the policy's ``info`` plus ``info["drop"] = i``.
        On Ctrl-C (KeyboardInterrupt) the drops not yet finished are dropped: the list then holds
        only the finished decisions, still sorted by drop, and ``info["drop"]`` says which they are.
    """
    x = np.asarray(csi, dtype=np.float32)
    if x.ndim != 5 or x.shape[1:] != system.csi_shape:
        raise ValueError(f"csi must have shape (B, L, 2, M, Q) = (B, *{system.csi_shape}), "
                         f"got {x.shape}")
    options = dict(options or {})
    jobs = (os.cpu_count() or 1) if jobs is None else int(jobs)
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    policy = make(spec, system, **options)   # fail fast on a bad spec or option, here
    done: dict[int, Decision] = {}
    bar = tqdm(total=len(x), desc=desc or spec, disable=not progress, unit="drop")
    try:
        if jobs == 1 or len(x) <= 1:
            for i in range(len(x)):
                done[i] = _tag(i, policy.decide(x[i:i + 1]))
                bar.update()
        else:
            _run_pool(spec, system, options, x, min(jobs, len(x)), done, bar)
    except KeyboardInterrupt:
        bar.write(f"interrupted: keeping {len(done)} of {len(x)} finished drops")
    finally:
        bar.close()
    return [done[i] for i in sorted(done)]


def _run_pool(spec: str, system: System, options: dict[str, Any], x: np.ndarray, jobs: int,
              done: dict[int, Decision], bar: tqdm) -> None:
    """Fill ``done`` from a process pool; on KeyboardInterrupt cancel pending drops and re-raise."""
    pool = ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(spec, system, options))
    pending: set[Future] = set()
    try:
        pending = {pool.submit(_decide_one, i, x[i:i + 1]) for i in range(len(x))}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                i, decision = fut.result()
                done[i] = _tag(i, decision)
                bar.update()
    finally:
        pool.shutdown(wait=not pending, cancel_futures=True)
