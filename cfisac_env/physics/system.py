"""The cell-free ISAC system: APs, antennas, budgets, noise and gains (seed paper, section 2).

All quantities are linear (W, not dB). Positions are metres in the road plane.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


def _same(x, y) -> bool:
    """Equal shapes and values (to ``np.allclose``); a different number of APs is a mismatch,
    not a broadcast error."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    return x.shape == y.shape and bool(np.allclose(x, y))


@dataclass(frozen=True)
class System:
    """Static description of the cell-free ISAC system.

    Args:
        ap_xy: AP positions, ``L`` pairs ``(x, y)`` in metres.
        antennas: antennas per AP, ``M`` (ULA along x).
        users: number of UEs, ``N``; there are ``Q = N + 1`` beams per AP, the last one for sensing.
        power: per-AP transmit budget ``P_l`` in W; a scalar applies to every AP.
        ue_noise: UE receiver noise power ``sigma_n^2`` in W.
        radar_noise: radar receiver noise power ``sigma_r^2`` in W.
        sensing_gain: target reflection gain ``sigma_s^2``.
        spacing: antenna spacing over wavelength (0.5 = half-wavelength).
    """

    ap_xy: tuple[tuple[float, float], ...] = ((25.0, 0.0), (75.0, 0.0))
    antennas: int = 16
    users: int = 5
    power: tuple[float, ...] = field(default=(1.0,))
    ue_noise: float = 1.0
    radar_noise: float = 1.0
    sensing_gain: float = 0.1
    spacing: float = 0.5

    def __post_init__(self) -> None:
        xy = np.asarray(self.ap_xy, dtype=float).reshape(-1, 2)
        ap = tuple((float(x), float(y)) for x, y in xy)
        object.__setattr__(self, "ap_xy", ap)
        power = np.atleast_1d(np.asarray(self.power, dtype=float))
        if power.size == 1:
            power = np.full(len(ap), float(power[0]))
        object.__setattr__(self, "power", tuple(float(p) for p in power))
        if len(ap) < 1:
            raise ValueError("system needs at least one AP: ap_xy must hold L >= 1 (x, y) pairs")
        if int(self.users) != self.users or self.users < 1:
            raise ValueError(f"users must be an integer >= 1, got {self.users!r}")
        if int(self.antennas) != self.antennas or self.antennas < 1:
            raise ValueError(f"antennas must be an integer >= 1, got {self.antennas!r}")
        if len(self.power) != len(ap):
            raise ValueError(
                f"power must be a scalar or one budget per AP (L={len(ap)}), got {len(self.power)}"
            )
        for name in ("ue_noise", "radar_noise"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 W, got {getattr(self, name)!r}")
        if min(self.power) <= 0 or self.sensing_gain < 0 or self.spacing <= 0:
            raise ValueError("power and spacing must be > 0 and sensing_gain >= 0")
        object.__setattr__(self, "users", int(self.users))
        object.__setattr__(self, "antennas", int(self.antennas))

    # Short names used throughout the maths (seed paper notation).
    @property
    def L(self) -> int:
        """Number of APs."""
        return len(self.ap_xy)

    @property
    def M(self) -> int:
        """Antennas per AP."""
        return self.antennas

    @property
    def N(self) -> int:
        """Number of UEs."""
        return self.users

    @property
    def Q(self) -> int:
        """Beams per AP: N communication beams and the sensing beam (index N)."""
        return self.users + 1

    @property
    def P(self) -> np.ndarray:
        """Per-AP power budgets, ``(L,)`` float64, W."""
        return np.asarray(self.power, dtype=float)

    @property
    def ap_positions(self) -> np.ndarray:
        """AP positions, ``(L, 2)`` float64, metres."""
        return np.asarray(self.ap_xy, dtype=float)

    @property
    def csi_shape(self) -> tuple[int, int, int, int]:
        """Shape of one observation or action: ``(L, 2, M, Q)``."""
        return (self.L, 2, self.M, self.Q)

    @property
    def ssnr_bound(self) -> float:
        """Largest achievable SSNR: every AP points its whole budget at the target.

        ``sigma_s^2 * M * sum_l P_l / sigma_r^2`` (3.2 at the defaults).
        """
        return self.sensing_gain * self.M * float(np.sum(self.P)) / self.radar_noise

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (lists, floats), e.g. for checkpoints and run configs."""
        d = asdict(self)
        d["ap_xy"] = [list(p) for p in self.ap_xy]
        d["power"] = list(self.power)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> System:
        return cls(**d)

    def mismatch(self, other: System) -> list[str]:
        """Fields in which ``other`` differs from this system (empty when they match)."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: {a[k]!r} != {b[k]!r}" for k in a if not _same(a[k], b[k])]

    def require_same(self, other: System, what: str = "object") -> None:
        """Raise ``ValueError`` if ``other`` is not this system, naming the differing fields."""
        diff = self.mismatch(other)
        if diff:
            raise ValueError(
                f"{what} was made for another system ({'; '.join(diff)}); "
                "use one made for this system (same L, M, N, P, noise, gains, AP positions)"
            )
