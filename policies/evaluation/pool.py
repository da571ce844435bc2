"""The one process pool of the evaluation engine, and the one thread-pinning helper.

:func:`run_pool` runs ``fn(item)`` for every item in worker processes and yields
``(index, outcome)`` as each finishes, ``outcome`` being the result or the exception the item
raised. It is what compare's heavy solvers (:func:`decide_many`) and the sweep's local engine use,
and it keeps a run's results independent of ``--jobs``:

- an exception (even ``SystemExit``) in ``fn`` is that item's outcome, never the pool's end;
- a worker that dies on an item (``os._exit``, a segfault, the OOM killer) makes that item a
  :class:`WorkerDied` outcome; a fresh worker takes over and the other items go on;
- ``timeout`` (s): an item running longer is stopped (its worker killed and replaced) and its
  outcome is a ``TimeoutError``: how a policy that hangs is bounded;
- Ctrl-C reaches the driver only (workers ignore SIGINT): it stops the workers at once (no
  wait for items in flight) and re-raises; workers also exit when the driver dies (kill -9).

Each worker runs one item at a time, so the driver knows which item a death or a timeout
belongs to.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from cfisac_env.physics.system import System
from policies.base import Decision
from policies.registry import make

#: Environment of worker processes: one BLAS/OpenMP thread each (torch is pinned in the worker).
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


class WorkerDied(RuntimeError):
    """The worker process running an item ended without an answer."""


def pin_threads(threads: int | None, blas: bool = True) -> None:
    """Limit this process to ``threads`` torch threads and, with ``blas``, BLAS/OpenMP threads
    (None: leave as is). Workers pin both; a runner's own process pins torch only."""
    if not threads:
        return
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if not blas:
        return
    for var in THREAD_ENV:
        os.environ[var] = str(threads)
    try:   # BLAS already loaded by numpy: threadpoolctl when available
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:
        pass


def _exit_with_parent(parent: int) -> None:
    """End this worker when the driver dies (Linux: at once; elsewhere within a second)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _worker(conn: Connection, parent: int, fn: Callable[[Any], Any],
            initializer: Callable[..., None] | None, initargs: tuple, threads: int | None
            ) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # the driver handles Ctrl-C
    _exit_with_parent(parent)
    pin_threads(threads)
    init_error: BaseException | None = None
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException as e:   # every item then reports it
            init_error = e
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        index, item = msg
        try:
            if init_error is not None:
                raise init_error
            out: tuple[bool, Any] = (True, fn(item))
        except BaseException as e:   # SystemExit too: an item's outcome, not the worker's end
            out = (False, e)
        try:
            conn.send((index, out))
        except Exception as e:   # an unpicklable result or exception
            conn.send((index, (False, RuntimeError(f"{type(e).__name__}: {e}"))))


class _Slot:
    """One worker process and the item it is running."""

    def __init__(self, ctx: Any, args: tuple) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, *args), daemon=True)
        self.proc.start()
        child.close()
        self.item: int | None = None
        self.started = 0.0

    def give(self, index: int, item: Any) -> None:
        self.item, self.started = index, time.monotonic()
        self.conn.send((index, item))

    def stop(self, graceful: bool = False) -> None:
        if graceful and self.proc.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.proc.join(timeout=2.0)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=5.0)
        self.conn.close()


def run_pool(fn: Callable[[Any], Any], items: Sequence[Any], jobs: int, *,
             initializer: Callable[..., None] | None = None, initargs: tuple = (),
             threads: int | None = None,
             timeout: float | Callable[[Any], float | None] | None = None
             ) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, result or exception)`` for every item as it finishes (see the module
    docstring).

    Args:
        fn: a picklable function of one item (runs in the workers).
        items: the work; each item is sent to a worker as it becomes free.
        jobs: worker processes (at most ``len(items)`` are started).
        initializer, initargs: run once in each worker before its first item (an exception there
            is every item's outcome).
        threads: torch/BLAS threads per worker (:func:`pin_threads`).
        timeout: seconds one item may run (None: no limit), or a function of the item giving
            them.
    """
    if not len(items):
        return
    limits = [timeout(it) if callable(timeout) else timeout for it in items]
    ctx = mp.get_context()
    args = (os.getpid(), fn, initializer, initargs, threads)
    queue = iter(range(len(items)))
    slots: list[_Slot] = []
    try:
        for _ in range(min(jobs, len(items))):
            i = next(queue, None)
            if i is None:
                break
            slot = _Slot(ctx, args)
            slot.give(i, items[i])
            slots.append(slot)
        while any(s.item is not None for s in slots):
            busy = [s for s in slots if s.item is not None]
            ends = [s.started + limits[s.item] for s in busy if limits[s.item] is not None]
            limit = max(0.0, min(ends) - time.monotonic()) if ends else None
            ready = wait([s.conn for s in busy] + [s.proc.sentinel for s in busy], limit)
            for k, slot in enumerate(slots):
                if slot.item is None:
                    continue
                outcome: Any = None
                if slot.conn in ready or slot.conn.poll():
                    try:
                        _, (_, outcome) = slot.conn.recv()
                    except (EOFError, OSError):
                        outcome = WorkerDied(f"worker process died (exit code "
                                             f"{slot.proc.exitcode}) on this item")
                elif slot.proc.sentinel in ready:
                    slot.proc.join(timeout=1.0)
                    outcome = WorkerDied(f"worker process died (exit code {slot.proc.exitcode})"
                                         " on this item")
                elif limits[slot.item] is not None and \
                        time.monotonic() - slot.started >= limits[slot.item]:
                    outcome = TimeoutError(f"no answer within {limits[slot.item]:g} s "
                                           "(timeout_s); the worker was stopped")
                else:
                    continue
                index = slot.item
                if isinstance(outcome, (WorkerDied, TimeoutError)):
                    slot.stop()
                    slot = slots[k] = _Slot(ctx, args)
                slot.item = None
                nxt = next(queue, None)
                if nxt is not None:
                    slot.give(nxt, items[nxt])
                yield index, outcome
    finally:
        graceful = all(s.item is None for s in slots)
        for s in slots:
            s.stop(graceful)


# ---- heavy policies' decisions ------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_policy(spec: str, system: System, options: dict[str, Any], fresh: bool = False
                 ) -> None:
    """Worker initializer: build the policy (an error here is every drop's outcome)."""
    _WORKER.update(args=(spec, system, options), fresh=fresh, policy=make(spec, system, **options))


def _decide_one(csi_one: np.ndarray) -> Decision:
    """One decision in a worker; with ``fresh``, by an instance that has decided nothing yet."""
    policy = _WORKER["policy"]
    if _WORKER["fresh"]:
        spec, system, options = _WORKER["args"]
        _WORKER["policy"] = None
        policy = policy or make(spec, system, **options)
    return policy.decide(csi_one)


def iter_decisions(spec: str, system: System, csi: np.ndarray,
                   options: dict[str, Any] | None = None, jobs: int = 1,
                   timeout: float | None = None, fresh: bool = False
                   ) -> Iterator[tuple[int, Decision | BaseException]]:
    """Yield ``(drop, decision or the exception it raised)`` for every row of ``csi (B, L, 2, M,
    Q)``, in drop order with ``jobs == 1`` and no ``timeout`` (in this process), else as the
    pool's workers finish (:func:`run_pool`). Ctrl-C propagates (what was yielded is kept).

    ``fresh``: every drop is decided by a new instance of the policy, so that no decision depends
    on the drops the same process decided before (a solver that keeps state between calls, e.g.
    warm starts), whatever ``jobs`` is and however the drops fall on the workers.
    """
    options = dict(options or {})
    if jobs == 1 and timeout is None:
        policy: Any = make(spec, system, **options)
        for i in range(len(csi)):
            try:
                if fresh and i:
                    policy = make(spec, system, **options)
                outcome: Decision | BaseException = policy.decide(csi[i:i + 1])
            except (Exception, SystemExit) as e:   # a policy's failure is a result
                outcome = e
            yield i, outcome
        return
    yield from run_pool(_decide_one, [csi[i:i + 1] for i in range(len(csi))], jobs,
                        initializer=_init_policy, initargs=(spec, system, options, fresh),
                        timeout=timeout)


def decide_many(spec: str, system: System, csi: np.ndarray, options: dict[str, Any] | None = None,
                jobs: int | None = None, progress: bool = True, desc: str | None = None
                ) -> list[Decision]:
    """Timed decisions of policy ``spec`` on every drop (see :func:`iter_decisions`).

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
        only the finished decisions, still sorted by drop. A drop's exception is raised.
    """
    x = np.asarray(csi, dtype=np.float32)
    if x.ndim != 5 or x.shape[1:] != system.csi_shape:
        raise ValueError(f"csi must have shape (B, L, 2, M, Q) = (B, *{system.csi_shape}), "
                         f"got {x.shape}")
    jobs = (os.cpu_count() or 1) if jobs is None else int(jobs)
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    make(spec, system, **dict(options or {}))   # fail fast on a bad spec or option, here
    done: dict[int, Decision] = {}
    bar = tqdm(total=len(x), desc=desc or spec, disable=not progress, unit="drop")
    try:
        for i, outcome in iter_decisions(spec, system, x, options, min(jobs, len(x))):
            if isinstance(outcome, BaseException):
                raise outcome
            outcome.info["drop"] = i
            done[i] = outcome
            bar.update()
    except KeyboardInterrupt:
        bar.write(f"interrupted: keeping {len(done)} of {len(x)} finished drops")
    finally:
        bar.close()
    return [done[i] for i in sorted(done)]
