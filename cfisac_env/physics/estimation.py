"""Estimated CSI: what the policies observe (the ``[csi]`` section of a scenario).

Policies act on the ESTIMATED channel; metrics and rewards are always computed on the TRUE one.

- Communication columns (``nmse``, default 0): additive estimation error relative to the
  channel gain, ``h_hat_ln = h_ln + e_ln``, ``e_ln ~ CN(0, nmse * beta_ln I_M)``, where
  ``beta_ln`` is the link's per-entry power (large-scale gain; 1 without path loss), so that
  ``E||h_hat - h||^2 / E||h||^2 = nmse`` on every link.
- Sensing column (``target_angle_error_deg``, default 0): rebuilt from a noisy target angle, as
  a tracker would give it, ``a_hat_l = beta_lt * a(phi_lt + delta_l)``,
  ``delta_l ~ N(0, sigma^2)`` independently per AP (``sigma`` in degrees).

With both at 0 the estimate IS the true CSI (no random numbers are drawn).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cfisac_env.physics.propagation import ChannelModel, cn, geometry
from cfisac_env.physics.system import System

FIELDS = ("nmse", "target_angle_error_deg")
MAX_VALUES = (1e6, 180.0)  # an error a million times the channel; a half turn of angle
#: The ``[csi]`` fields and their defaults (perfect CSI).
CSI_DEFAULTS: dict[str, float] = {"nmse": 0.0, "target_angle_error_deg": 0.0}


@dataclass(frozen=True)
class CsiError:
    """The ``[csi]`` section: ``nmse`` (>= 0, linear) and ``target_angle_error_deg`` (>= 0, the
    standard deviation of the target-angle error in degrees)."""

    nmse: float = 0.0
    target_angle_error_deg: float = 0.0

    def __post_init__(self) -> None:
        for name, hi in zip(FIELDS, MAX_VALUES, strict=True):
            value = getattr(self, name)
            if not (np.isfinite(value) and 0 <= value <= hi):
                raise ValueError(f"csi.{name} must be in [0, {hi:g}], got {value!r}")

    @classmethod
    def of(cls, config: dict[str, Any]) -> CsiError:
        """From a resolved scenario config (its ``csi`` section); unknown fields raise."""
        raw = dict(config.get("csi", {}))
        unknown = sorted(set(raw) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown [csi] fields {unknown}; fields: {', '.join(FIELDS)}")
        for k, v in raw.items():
            if not isinstance(v, (int, float, np.number)) or isinstance(v, bool):
                raise ValueError(f"csi.{k} must be a number, got {v!r}")
        return cls(**{k: float(v) for k, v in raw.items()})

    @property
    def perfect(self) -> bool:
        return self.nmse == 0 and self.target_angle_error_deg == 0

    def estimate(self, true_csi: np.ndarray, system: System, channel: ChannelModel,
                 ue_xy: np.ndarray, target_xy: np.ndarray,
                 rngs: tuple[np.random.Generator, np.random.Generator]) -> np.ndarray:
        """The estimated CSI ``(..., L, 2, M, Q)`` float32 of ``true_csi`` (same shape).

        Args:
            true_csi: the true channel at positions ``ue_xy (..., N, 2)``, ``target_xy (..., 2)``
                (metres) under ``channel``.
            rngs: generators of the communication error and of the angle error; each draws
                ``prod(...)`` blocks in order of the leading axes, so estimating steps one by
                one or all at once gives the same numbers.
        """
        if self.perfect:
            return true_csi
        out = np.array(true_csi, dtype=np.float32, copy=True)
        geo = geometry(system, ue_xy, target_xy)
        power = channel.column_power(geo.dist)                                 # (..., L, Q)
        lead = true_csi.shape[:-4]
        n = system.N
        if self.nmse > 0:
            e = cn(rngs[0], (*lead, system.L, n, system.M))                    # (..., L, N, M)
            e = np.swapaxes(e, -1, -2) * np.sqrt(self.nmse * power[..., None, :n])
            out[..., 0, :, :n] += e.real.astype(np.float32)
            out[..., 1, :, :n] += e.imag.astype(np.float32)
        if self.target_angle_error_deg > 0:
            delta = np.deg2rad(self.target_angle_error_deg) * rngs[1].standard_normal(
                (*lead, system.L))
            phi = geo.phi[..., -1] + delta                                      # (..., L)
            k = np.arange(system.M)
            a = np.exp(2j * np.pi * system.spacing * np.cos(phi)[..., None] * k)
            a = a * np.sqrt(power[..., -1])[..., None]                          # (..., L, M)
            out[..., 0, :, -1] = a.real
            out[..., 1, :, -1] = a.imag
        return out
