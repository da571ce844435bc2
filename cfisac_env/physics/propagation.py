"""Channel models: the seed's line of sight, Rician fading, geometric clusters, path loss and
Gauss-Markov ageing (the ``[channel]`` section of a scenario).

Per AP ``l`` and UE ``n``, with ``K`` the Rician factor (linear) and ``beta_ln`` the large-scale
power gain, the TRUE communication channel is

    h_ln = sqrt(beta_ln) * ( sqrt(K / (K + 1)) * a(phi_ln) + sqrt(1 / (K + 1)) * s_ln )      (M,)
    s_ln = sqrt(1 / P) * sum_p g_lnp * a(theta_lnp),     g_lnp ~ CN(0, 1) i.i.d.

so every entry has mean power ``E|h_ln,m|^2 = beta_ln`` (``|a_m| = 1``) and the ratio of the LoS
to the scattered power is ``K``. The sensing column is the target's steering vector with the
two-way (radar-equation) loss: ``a_l = beta_lt * a(phi_lt)`` (power ``beta_lt^2``); a point
target's echo comes back along the line of sight, multipath echoes (clutter) are not modelled.

Models (``model``):

- ``"los"`` (default, seed eq. 4): ``K = inf``, ``h_ln = sqrt(beta_ln) a(phi_ln)``.
- ``"rician"``: ``s_ln`` from ``paths`` plane waves with independent angles
  ``theta ~ U[-pi, pi)`` per link. A few discrete paths rather than i.i.d. entries because the
  scattered field of an outdoor ULA is a sum of a few plane waves: the channel stays on the array
  manifold (rank <= paths + 1 per link), the entries are spatially correlated as on a real array,
  and angle-based policies (MRT to the target, nulling) meet the structure they would meet in
  the field; as ``paths -> inf`` it tends to the Clarke/Jakes correlated Rayleigh channel.
- ``"cluster"``: geometric clusters. ``clusters`` scatterer points lie uniformly in the box
  spanned by the APs and the placement boxes (20 m margin); the ``paths`` rays are split evenly
  over them, ray ``p`` of cluster ``c`` leaves AP ``l`` at the cluster's geometric angle
  ``theta_lc`` plus a Gaussian spread ``cluster_spread_deg``. The departure angles are shared
  by every UE of the drop (they are properties of the AP and the scatterers), so the UEs'
  scattered parts span a common subspace: harder for interference nulling than ``"rician"``.

Large-scale gain (``pathloss_exponent`` ``alpha``, ``reference_distance`` ``d0`` m):
``beta = (max(d, d0) / d0) ** (-alpha)``, 1 at ``alpha = 0`` (the seed: unit gain). The seed's
noise powers are read as normalised to the gain at ``d0``: at the defaults (P = 1 W, noise 1 W,
M = 16) a UE at ``d0`` sees up to ``M P / sigma^2 = 16`` (12 dB) from one AP, one at ``2 d0``
``2 ** -alpha`` of that; the sensing return falls twice as fast (``beta^2``), so with
``alpha > 0`` the network moves from the seed's sensing-rich regime to one where the target's
SSNR, not the UEs' SINR, is what path loss takes first.

Time correlation on the road (Gauss-Markov, first-order): every road step ``dt``
``g <- rho_n g + sqrt(1 - rho_n^2) w``, ``w ~ CN(0, 1)``, with ``rho_n = J0(2 pi f_D dt)``, the
Jakes correlation at one step of the Doppler ``f_D = |v_n| f_c / c`` of UE ``n``'s walking speed
(``carrier_ghz`` ``f_c``), clipped at 0 past J0's first zero. The correlation over ``k`` steps
is ``rho_n ** k``. Path angles and clusters stay fixed over an episode (a walker moves a few
metres). The target's column is pure LoS: it ages only through the target's motion.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy.special import j0

from cfisac_env.physics.channels import csi as los_csi
from cfisac_env.physics.channels import entity_xy, steering
from cfisac_env.physics.layout import to_layout
from cfisac_env.physics.system import System

MODELS = ("los", "rician", "cluster")
SPEED_OF_LIGHT = 299_792_458.0  # m/s
CLUSTER_MARGIN = 20.0  # m around the APs and placement boxes where cluster scatterers lie


@dataclass(frozen=True)
class Geometry:
    """Angles and distances from every AP to every entity (UEs, then the target).

    ``phi (..., L, Q)`` radians (``atan2`` from the AP; ``pi / 2``, broadside, for an entity
    exactly at the AP), ``cos_phi (..., L, Q)``, ``dist (..., L, Q)`` metres.
    """

    phi: np.ndarray
    cos_phi: np.ndarray
    dist: np.ndarray


def geometry(system: System, ue_xy: np.ndarray, target_xy: np.ndarray) -> Geometry:
    """:class:`Geometry` of UEs ``(..., N, 2)`` and target ``(..., 2)`` (metres)."""
    d = entity_xy(ue_xy, target_xy)[..., None, :, :] - system.ap_positions[:, None]
    dist = np.hypot(d[..., 0], d[..., 1])
    at_ap = dist == 0
    phi = np.where(at_ap, np.pi / 2, np.arctan2(d[..., 1], d[..., 0]))
    cos_phi = np.divide(d[..., 0], dist, out=np.zeros_like(dist), where=~at_ap)
    return Geometry(phi, cos_phi, dist)


@dataclass
class Scattering:
    """The scattered part of ``B`` worlds' channels.

    ``steer (B, L, N, P, M)`` complex: steering vectors of the paths' departure angles (fixed
    over an episode); ``gains (B, L, N, P)`` complex: the paths' gains ``g ~ CN(0, 1)``.
    """

    steer: np.ndarray
    gains: np.ndarray

    def field(self, gains: np.ndarray | None = None) -> np.ndarray:
        """``s_ln = sum_p g_lnp a(theta_lnp) / sqrt(P)``: ``(B, [K,] L, M, N)`` complex for
        gains ``(B, [K,] L, N, P)`` (the current ones by default)."""
        g = self.gains if gains is None else gains
        steer = self.steer if g.ndim == self.gains.ndim else self.steer[:, None]
        return np.einsum("...lnpm,...lnp->...lmn", steer, g) / np.sqrt(g.shape[-1])


def cn(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Circularly-symmetric complex Gaussian samples ``CN(0, 1)`` of ``shape``."""
    z = rng.standard_normal((*shape, 2))
    return (z[..., 0] + 1j * z[..., 1]) / np.sqrt(2.0)


@dataclass(frozen=True)
class ChannelModel:
    """The ``[channel]`` section (see the module docstring for the formulas).

    Args:
        model: ``"los"`` | ``"rician"`` | ``"cluster"``.
        k_factor_db: Rician factor ``K`` in dB (``rician``, ``cluster``); ``inf`` = LoS.
        paths: scattered paths per link ``P`` (>= 1; a multiple of ``clusters`` for
            ``cluster``).
        clusters: scatterer clusters (``cluster``).
        cluster_spread_deg: angular spread of the rays around a cluster's angle, degrees.
        pathloss_exponent: ``alpha`` (>= 0; 0 = the seed's unit gain).
        reference_distance: ``d0`` metres (> 0): ``beta = (max(d, d0) / d0) ** -alpha``.
        carrier_ghz: carrier frequency, GHz (> 0), for the Doppler of the Gauss-Markov ageing.
        area: ``(x0, x1, y0, y1)`` metres where cluster scatterers lie (from the scenario).
    """

    model: str = "los"
    k_factor_db: float = 10.0
    paths: int = 8
    clusters: int = 2
    cluster_spread_deg: float = 5.0
    pathloss_exponent: float = 0.0
    reference_distance: float = 10.0
    carrier_ghz: float = 3.5
    area: tuple[float, float, float, float] = (-20.0, 120.0, -20.0, 70.0)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"channel.model must be one of {MODELS}, got {self.model!r}")
        if not float(self.k_factor_db) > -np.inf:
            raise ValueError(f"channel.k_factor_db must be a number of dB or inf, got "
                             f"{self.k_factor_db!r}")
        if int(self.paths) != self.paths or self.paths < 1:  # numbers: checked by ``of``
            raise ValueError(f"channel.paths must be an integer >= 1, got {self.paths!r}")
        if int(self.clusters) != self.clusters or self.clusters < 1:
            raise ValueError(f"channel.clusters must be an integer >= 1, got {self.clusters!r}")
        if self.model == "cluster" and self.paths % self.clusters:
            raise ValueError(f"channel.paths ({self.paths}) must be a multiple of "
                             f"channel.clusters ({self.clusters}) for the cluster model")
        for name, ok, rule in (("pathloss_exponent", self.pathloss_exponent >= 0, ">= 0"),
                               ("reference_distance", self.reference_distance > 0, "> 0 m"),
                               ("carrier_ghz", self.carrier_ghz > 0, "> 0 GHz"),
                               ("cluster_spread_deg", self.cluster_spread_deg >= 0, ">= 0 deg")):
            value = getattr(self, name)
            if not (ok and np.isfinite(value)):
                raise ValueError(f"channel.{name} must be finite and {rule}, got {value!r}")

    @classmethod
    def of(cls, config: dict[str, Any]) -> ChannelModel:
        """From a resolved scenario config (its ``channel`` section, defaults for the rest);
        unknown fields raise ``ValueError`` listing the known ones."""
        raw = dict(config.get("channel", {}))
        known = [f.name for f in fields(cls) if f.name != "area"]
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ValueError(f"unknown [channel] fields {unknown}; fields: {', '.join(known)}")
        for name, value in raw.items():
            number = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
            if (name == "model") != (not number):
                raise ValueError(f"channel.{name} must be "
                                 f"{'a string' if name == 'model' else 'a number'}, got {value!r}")
        return cls(**raw, area=scatter_area(config))

    @property
    def is_seed(self) -> bool:
        """True for the seed's model: LoS with unit gain (bit-identical to ``channels.csi``)."""
        return self.model == "los" and self.pathloss_exponent == 0

    @property
    def bounded(self) -> bool:
        """True when every CSI entry has modulus <= 1 (LoS, with or without path loss)."""
        return self.model == "los"

    @property
    def los_share(self) -> float:
        """``K / (K + 1)``: the LoS share of each entry's power (1 for ``los``)."""
        if self.model == "los" or self.k_factor_db == np.inf:
            return 1.0
        k = 10.0 ** (self.k_factor_db / 10.0)
        return k / (k + 1.0)

    def gain(self, dist: np.ndarray) -> np.ndarray:
        """One-way large-scale power gain ``beta = (max(d, d0) / d0) ** -alpha`` of distances
        ``dist`` (metres), any shape."""
        if self.pathloss_exponent == 0:
            return np.ones_like(dist, dtype=float)
        return (np.maximum(dist, self.reference_distance) / self.reference_distance) \
            ** (-self.pathloss_exponent)

    def column_power(self, dist: np.ndarray) -> np.ndarray:
        """Per-entry power of each CSI column ``(..., L, Q)`` for distances ``(..., L, Q)``:
        ``beta`` for the UEs (one-way), ``beta^2`` for the target (two-way)."""
        g = self.gain(dist)
        g[..., -1] = g[..., -1] ** 2
        return g

    # ---- the scattered part -----------------------------------------------------------------
    def draw(self, system: System, rng: np.random.Generator, batch: int) -> Scattering | None:
        """Fresh scattering for ``batch`` worlds (None for ``los``)."""
        if self.model == "los":
            return None
        L, N, P = system.L, system.N, self.paths
        if self.model == "rician":
            theta = rng.uniform(-np.pi, np.pi, (batch, L, N, P))
        else:
            c = self.clusters
            x0, x1, y0, y1 = self.area
            pts = np.stack([rng.uniform(x0, x1, (batch, c)), rng.uniform(y0, y1, (batch, c))], -1)
            d = pts[:, None] - system.ap_positions[None, :, None]          # (B, L, C, 2)
            centre = np.arctan2(d[..., 1], d[..., 0])                       # (B, L, C)
            spread = np.deg2rad(self.cluster_spread_deg) * rng.standard_normal((batch, c, P // c))
            theta = (centre[..., None] + spread[:, None]).reshape(batch, L, 1, P)
            theta = np.broadcast_to(theta, (batch, L, N, P))
        steer = steering(theta, system.M, system.spacing)                   # (B, L, N, P, M)
        return Scattering(steer, cn(rng, (batch, L, N, P)))

    def rho(self, speed: np.ndarray, dt: float) -> np.ndarray:
        """Gauss-Markov correlation per step ``rho = max(0, J0(2 pi |v| f_c dt / c))`` for
        speeds ``v`` (m/s, any shape) and step ``dt`` (s)."""
        f_d = np.abs(np.asarray(speed, dtype=float)) * self.carrier_ghz * 1e9 / SPEED_OF_LIGHT
        return np.maximum(0.0, j0(2.0 * np.pi * f_d * dt))

    @staticmethod
    def evolve(gains: np.ndarray, rho: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One Gauss-Markov step of gains ``(L, N, P)`` with per-UE ``rho (N,)``:
        ``rho g + sqrt(1 - rho^2) w``, ``w ~ CN(0, 1)``."""
        r = np.asarray(rho, dtype=float)[:, None]
        return r * gains + np.sqrt(1.0 - r**2) * cn(rng, gains.shape)

    # ---- the channel ------------------------------------------------------------------------
    def csi(self, system: System, ue_xy: np.ndarray, target_xy: np.ndarray,
            scattered: np.ndarray | None = None) -> np.ndarray:
        """TRUE per-AP CSI ``(..., L, 2, M, Q)`` float32.

        Args:
            ue_xy, target_xy: ``(..., N, 2)`` and ``(..., 2)`` metres.
            scattered: ``s (..., L, M, N)`` complex (:meth:`Scattering.field`); required unless
                the model is ``los``.
        """
        if self.is_seed:
            return los_csi(system, ue_xy, target_xy)
        geo = geometry(system, ue_xy, target_xy)
        amp = np.sqrt(self.column_power(geo.dist))                          # (..., L, Q)
        h = steering(geo.phi, system.M, system.spacing)                     # (..., L, Q, M)
        h = np.swapaxes(h, -1, -2) * amp[..., None, :]                      # (..., L, M, Q)
        if self.model != "los":
            if scattered is None:
                raise ValueError(f"the {self.model} channel needs its scattered part")
            share = self.los_share
            n = system.N
            h[..., :n] = np.sqrt(share) * h[..., :n] \
                + np.sqrt(1.0 - share) * amp[..., None, :n] * scattered
        return to_layout(h)


#: The ``[channel]`` fields and their defaults (the seed's LoS channel with unit gain).
CHANNEL_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(ChannelModel)
                                    if f.name != "area"}


def scatter_area(config: dict[str, Any]) -> tuple[float, float, float, float]:
    """Box ``(x0, x1, y0, y1)`` metres around the APs and placement boxes, with
    :data:`CLUSTER_MARGIN`; the default box when the config has neither."""
    xs, ys = [], []
    for x, y in config.get("system", {}).get("ap_xy", []):
        xs.append(float(x))
        ys.append(float(y))
    pl = config.get("placement", {})
    for kx, ky in (("ue_x", "ue_y"), ("target_x", "target_y")):
        if kx in pl and ky in pl:
            xs.extend(map(float, pl[kx]))
            ys.extend(map(float, pl[ky]))
    if not xs:
        return ChannelModel.area
    m = CLUSTER_MARGIN
    return (min(xs) - m, max(xs) + m, min(ys) - m, max(ys) + m)
