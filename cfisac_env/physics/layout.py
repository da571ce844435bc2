"""Conversions between the float ``(..., L, 2, M, Q)`` layout and complex ``(..., L, M, Q)``.

Work for NumPy arrays and torch tensors alike.
"""

from __future__ import annotations

from typing import Any


def to_complex(x: Any) -> Any:
    """``(..., L, 2, M, Q)`` real/imag layout -> ``(..., L, M, Q)`` complex."""
    return x[..., 0, :, :] + 1j * x[..., 1, :, :]


def to_layout(z: Any, dtype: Any = "float32") -> Any:
    """``(..., L, M, Q)`` complex -> ``(..., L, 2, M, Q)`` real/imag layout.

    NumPy: float32 by default; ``dtype=None`` keeps the input's precision (float64 for
    complex128: the solvers' own arithmetic). torch keeps the tensor's real dtype.
    """
    if type(z).__module__.startswith("torch"):
        import torch

        return torch.stack([z.real, z.imag], dim=-3)
    import numpy as np

    out = np.stack([z.real, z.imag], axis=-3)
    return out if dtype is None else out.astype(dtype, copy=False)
