"""Checks on arrays crossing the public API (actions, policy outputs, positions)."""

from __future__ import annotations

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
        raise ValueError(f"{what} contain NaN or inf; expected finite floats of shape {expected}")
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
