"""Checks on arrays crossing the public API (actions, policy outputs, positions), and the
memory a run of many drops needs (:func:`check_memory`: refused in one line before any work
when it cannot fit)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from cfisac_env.physics.system import System

#: m: no coordinate (AP, UE, target, road) lies farther from the origin; beyond, the
#: geometry's products leave float range (``scenarios.schema`` bounds scenario files by it)
MAX_COORDINATE = 1e6


def check_beams(beams: object, system: System, batch: int | None = None,
                what: str = "beams") -> np.ndarray:
    """Validate beams in the ``(L, 2, M, Q)`` real/imag layout and return them as a float array.

    Args:
        beams: ``(L, 2, M, Q)`` when ``batch`` is None, else ``(batch, L, 2, M, Q)``.
        system: the system the beams are for.
        batch: expected leading batch size, or None for a single decision.

    Raises:
        ValueError: wrong shape (no broadcasting), a complex dtype, or a NaN/inf entry; the
            message states the expected shape.
    """
    expected = system.csi_shape if batch is None else (batch, *system.csi_shape)
    layout = "(L, 2, M, Q)" if batch is None else "(B, L, 2, M, Q)"
    arr = np.asarray(beams)
    if arr.shape != expected:
        raise ValueError(f"{what} must have shape {layout} = {expected} (axis -3 = real, imag), "
                         f"got {arr.shape}")
    if np.iscomplexobj(arr) or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{what} must be real floats in the {layout} real/imag layout, "
                         f"got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"NaN or inf in {what}; expected finite floats of shape {expected}")
    return arr


def _real_array(value: object, name: str) -> np.ndarray:
    """``value`` as a float array; complex, boolean or non-numeric entries are a ValueError
    (never silently converted: a complex position would lose its imaginary part)."""
    arr = np.asarray(value)
    if arr.dtype == object:
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be real numbers (metres), got {value!r:.80}") from None
    if np.iscomplexobj(arr) or arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be real numbers (metres), got dtype {arr.dtype}")
    return arr.astype(float)


def check_positions(ue_xy: object, target_xy: object, system: System
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Validate explicit positions: UEs ``(N, 2)`` and target ``(2,)``, real metres within
    :data:`MAX_COORDINATE` of the origin. Returns them as float64 arrays."""
    ue = _real_array(ue_xy, "ue_xy")
    tg = _real_array(target_xy, "target_xy")
    if ue.shape != (system.N, 2) or tg.shape != (2,):
        raise ValueError(f"expected ue_xy of shape (N, 2) = ({system.N}, 2) and target_xy of "
                         f"shape (2,), got {ue.shape} and {tg.shape}")
    if not (np.all(np.abs(ue) <= MAX_COORDINATE) and np.all(np.abs(tg) <= MAX_COORDINATE)):
        raise ValueError(f"positions must be finite metres within {MAX_COORDINATE:g} m of the "
                         "origin")
    return ue, tg


# ---- memory a run needs ------------------------------------------------------------------------
#: Bytes a run holds per CSI entry of its drops (one drop has ``L * M * Q`` entries): the
#: observed float32 layout, its complex128 working copies while it is drawn and the room a
#: policy needs to act on a batch (a learned policy's batched forward pass). Measured (growth
#: of the peak resident memory, pos2, M = 16..2048): 24-28 B drawing LoS drops, 45-63 B with a
#: learned policy scoring them (classic ones add nothing that grows with the drops).
BYTES_PER_ENTRY = 80
#: ... plus this per entry when the CSI is estimated (a second, noisy copy; measured 22 B)
BYTES_ESTIMATED = 24
#: ... plus this per entry and scattered path of a non-LoS channel (measured 27-30 B)
BYTES_PER_PATH = 32
#: the interpreter with NumPy, PyTorch, SciPy and cvxpy loaded
RUNTIME_BYTES = 1 << 30


def memory_limit() -> int | None:
    """Bytes this process may use at most: physical memory, or a lower cgroup limit; None when
    the OS does not say."""
    limits = []
    with contextlib.suppress(OSError, ValueError, AttributeError):
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            limits.append(int(Path(path).read_text().split()[0]))   # "max": no limit
    return min(limits) if limits else None


def drop_bytes(system: System, config: dict[str, Any]) -> int:
    """Bytes a run holds per drop of ``system`` under the scenario ``config`` (its resolved
    ``[channel]`` and ``[csi]`` sections; see :data:`BYTES_PER_ENTRY`)."""
    channel, csi = config.get("channel", {}), config.get("csi", {})
    per_entry = BYTES_PER_ENTRY
    if any(float(csi.get(k, 0.0)) > 0 for k in ("nmse", "target_angle_error_deg")):
        per_entry += BYTES_ESTIMATED
    if channel.get("model", "los") != "los":
        per_entry += BYTES_PER_PATH * int(channel.get("paths", 1))
    return per_entry * system.L * system.M * system.Q


def size(n: float) -> str:
    """``n`` bytes for people: ``"2.3 GB"``."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def check_memory(needs: list[tuple[System, dict[str, Any], int]], what: str = "the run",
                 limit: int | None = None, unit: str = "drops") -> int:
    """Estimate the memory of a run that holds the drops ``needs`` (``(system, scenario
    config, drops)`` per group of drops held at once) and refuse one that cannot fit.

    Args:
        needs: what the run holds at the same time.
        what: how the message names the run.
        limit: bytes available (default :func:`memory_limit`).
        unit: what the counts count (``"drops"``; a recorded road step holds what a drop does).

    Returns:
        the estimate, bytes.

    Raises:
        ValueError: (one line) the estimate exceeds ``limit``; it says by how much and how many
            drops would fit.
    """
    limit = memory_limit() if limit is None else limit
    per_drop = [drop_bytes(system, cfg) for system, cfg, _ in needs]
    total = RUNTIME_BYTES + sum(b * int(n) for b, (_, _, n) in zip(per_drop, needs, strict=True))
    if limit is not None and total > limit:
        drops = sum(int(n) for _, _, n in needs)
        fit = max(0, limit - RUNTIME_BYTES) // (max(per_drop) * len(needs))
        s = needs[0][0]
        raise ValueError(
            f"{what} needs about {size(total)} of memory ({drops:,} {unit} of "
            f"L·M·Q = {s.L}·{s.M}·{s.Q} CSI entries, {size(max(per_drop))} each), more than "
            f"the {size(limit)} here; use at most about {fit:,} {unit}"
            + (" per scenario, N and seed" if len(needs) > 1 else "") + " or a smaller system")
    return total
