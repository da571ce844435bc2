"""Conversions between the float ``(..., L, 2, M, Q)`` layout and complex ``(..., L, M, Q)``.

Work for NumPy arrays and torch tensors alike.
"""

from __future__ import annotations

from typing import Any


def to_complex(x: Any) -> Any:
    """``(..., L, 2, M, Q)`` real/imag layout -> ``(..., L, M, Q)`` complex."""
    return x[..., 0, :, :] + 1j * x[..., 1, :, :]


def to_layout(z: Any) -> Any:
    """``(..., L, M, Q)`` complex -> ``(..., L, 2, M, Q)`` real/imag layout (float32 for NumPy)."""
    if type(z).__module__.startswith("torch"):
        import torch

        return torch.stack([z.real, z.imag], dim=-3)
    import numpy as np

    return np.stack([z.real, z.imag], axis=-3).astype(np.float32)
