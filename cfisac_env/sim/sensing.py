"""Echo sensing in the loop: the target column of the observations from a tracker of the APs'
echoes (``sensing.mode = "echo"``; ``docs/sensing.md``).

:class:`EchoSensing` keeps ``B`` episodes' tracks (:class:`cfisac_env.sim.tracker.BatchEKF`) and
their random streams, and at every decision:

1. reports the errors of the prediction the decision was shown (angle per AP, position, the
   track's covariance, whether it was lost) against the TRUE target;
2. receives each AP's echo of the beams it applied (:func:`cfisac_env.physics.echo.echo`,
   ``snapshots`` per decision, at the decision instant), estimates the angle by ML, detects
   (square-law, ``pfa``) and updates the track with the detected, gated estimates;
3. re-acquires a lost track (or, on a static scenario, the new drop's target) by a search
   dwell: every AP radiates ``search_snapshots`` orthogonal QPSK streams, one per antenna, at
   its full budget (an omnidirectional pattern), and the detected estimates are triangulated;
4. predicts the target to the next decision instant and builds the target column the next
   observation shows: ``sqrt(beta_lt) a(cos phi_hat_l)``, the LoS column of the predicted
   position (path loss included), the same construction as the ``[csi]`` angle-error model.

Every episode draws its echoes from a child generator spawned from its episode generator at
reset (``Generator.spawn``: the positions, traffic and channel streams are not touched).
Time: each episode's clock advances by ``env.decision_interval`` per decision on a road; a
static scenario draws a fresh drop every decision, so each drop is acquired afresh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cfisac_env.physics import echo as E
from cfisac_env.physics import metrics
from cfisac_env.physics.layout import to_complex
from cfisac_env.physics.propagation import ChannelModel, geometry
from cfisac_env.sim.tracker import BatchEKF, triangulate, wrap

if TYPE_CHECKING:
    from cfisac_env.sim.world import Segment, World
    from scenarios.loader import Scenario

#: ``info`` keys of every scored decision in echo mode
SENSING_KEYS = ("angle_error", "position_error", "track_lost", "track_cov", "echo_detected",
                "pd", "reward_tracking")


def target_column(csi: np.ndarray) -> np.ndarray:
    """The target column of CSI ``(..., L, 2, M, Q)`` as complex ``(..., L, M)``."""
    return csi[..., 0, :, -1].astype(np.float64) + 1j * csi[..., 1, :, -1]


def search_box(scenario: Scenario) -> tuple[float, float, float, float]:
    """``(x0, x1, y0, y1)`` m where a search may place the target: the target placement box, on
    a road stretched to the whole road."""
    pl = scenario.config["placement"]
    x0, x1 = pl["target_x"]
    if scenario.kind == "road":
        x0, x1 = scenario.config["road"]["x"]
    return float(x0), float(x1), float(pl["target_y"][0]), float(pl["target_y"][1])


class EchoSensing:
    """Echo-based target tracking of ``B`` episodes of one scenario (module docstring).

    Args:
        scenario: the resolved scenario (its ``[sensing]``, ``[channel]`` and system).
        batch: ``B``.
    """

    def __init__(self, scenario: Scenario, batch: int) -> None:
        self.cfg = E.SensingConfig.of(scenario.config)
        self.system = s = scenario.system
        self.channel = ChannelModel.of(scenario.config)
        self.batch = batch
        self.road = scenario.kind == "road"
        self.interval = float(scenario.config["env"]["decision_interval"]) if self.road else 0.0
        self.box = search_box(scenario)
        c = self.cfg
        self.period = 1.0 / s.spacing          # u and u + 1/spacing: one steering vector
        self.ekf = BatchEKF(batch, s.ap_positions, c.accel_std, c.gate, c.lost_std, c.lost_after,
                            self.period)
        self.thr = E.threshold(c.pfa)
        self.t = np.zeros(batch)
        self.rngs: list[np.random.Generator | None] = [None] * batch
        self.centre = np.array([0.5 * (self.box[0] + self.box[1]),
                                0.5 * (self.box[2] + self.box[3])])
        # shown while there is no track: the last prediction, at first the box's centre
        self.fallback = np.broadcast_to(self.centre, (batch, 2)).copy()
        # what the coming decision is shown (position, covariance, lost) and its column
        self.shown_xy = self.fallback.copy()
        self.shown_cov = np.zeros((batch, 4, 4))
        self.shown_lost = np.ones(batch, dtype=bool)
        self.column = np.zeros((batch, s.L, 2, s.M), np.float32)

    @classmethod
    def of(cls, scenario: Scenario, batch: int) -> EchoSensing | None:
        """The scenario's echo sensing, or None in oracle mode (nothing changes)."""
        if E.SensingConfig.of(scenario.config).mode != "echo":
            return None
        return cls(scenario, batch)

    # ---- dwells ----------------------------------------------------------------------------
    def _dwell(self, idx: np.ndarray, x: np.ndarray, col: np.ndarray, truth: np.ndarray
               ) -> tuple[E.Estimate, np.ndarray, np.ndarray]:
        """Echoes of blocks ``x (n, L, M, T)`` from targets at ``truth (n, 2)`` with true columns
        ``col (n, L, M)``: the estimate, its variance ``(n, L)`` and the detections ``(n, L)``."""
        s = self.system
        u_true = geometry(s, np.zeros((len(idx), 0, 2)), truth).cos_phi[..., -1]
        alpha = np.stack([E.cn(self.rngs[i], (s.L,), s.sensing_gain) for i in idx])
        noise = np.stack([E.cn(self.rngs[i], x.shape[1:], s.radar_noise) for i in idx])
        y = E.echo(x, col, u_true, alpha, noise, s.spacing)
        est = E.ml_u(y, x, s.radar_noise, s.spacing, self.cfg.grid)
        _, cmat = E.statistics(y, x)
        var = E.crb_u(est.u, cmat, est.alpha2, s.radar_noise, s.spacing)
        detected = (est.stat > self.thr) & np.isfinite(var)
        return est, var, detected

    def _search(self, idx: np.ndarray, col: np.ndarray, truth: np.ndarray
                ) -> tuple[E.Estimate, np.ndarray, np.ndarray]:
        """A search dwell of episodes ``idx``: every AP radiates ``search_snapshots`` orthogonal
        QPSK streams, one per antenna, at its full budget (omnidirectional)."""
        s = self.system
        x = np.stack([E.qpsk(self.rngs[i], (s.L, s.M, self.cfg.search_snapshots)) for i in idx])
        return self._dwell(idx, x * np.sqrt(s.P / s.M)[:, None, None], col, truth)

    def _acquire(self, idx: np.ndarray, col: np.ndarray, truth: np.ndarray) -> None:
        """Search dwells of episodes ``idx`` at their clocks; a track starts where at
        least two APs detect and the triangulation is within ``lost_std``."""
        if not len(idx):
            return
        c = self.cfg
        est, var, det = self._search(idx, col, truth)
        p, cov, ok = triangulate(self.system.ap_positions, est.u, var, det, self.box,
                                 period=self.period)
        ok[ok] &= np.sqrt(np.linalg.eigvalsh(cov[ok])[:, -1]) <= c.lost_std
        if ok.any():
            self.ekf.start(idx[ok], p[ok], cov[ok], c.init_speed_std, self.t[idx[ok]])

    def _update(self, idx: np.ndarray, est: E.Estimate, var: np.ndarray, det: np.ndarray
                ) -> None:
        """EKF update of episodes ``idx`` with the detected estimates at their clocks."""
        s = self.system
        z = np.full((self.batch, s.L), np.nan)
        r = np.ones((self.batch, s.L))
        m = np.zeros((self.batch, s.L), dtype=bool)
        z[idx], r[idx], m[idx] = est.u, np.where(det, var, 1.0), det
        among = np.zeros(self.batch, dtype=bool)
        among[idx] = True
        self.ekf.update(self.t, z, r, m, among)

    def _measure(self, idx: np.ndarray, beams: np.ndarray, col: np.ndarray, truth: np.ndarray
                 ) -> np.ndarray:
        """Echo of the applied ``beams (n, L, 2, M, Q)``; the EKF update (``tracker = "ekf"``).
        Returns the detections ``(n, L)``."""
        s = self.system
        w = to_complex(np.asarray(beams, dtype=np.float64))               # (n, L, M, Q)
        sym = np.stack([E.qpsk(self.rngs[i], (s.L, s.Q, self.cfg.snapshots)) for i in idx])
        est, var, det = self._dwell(idx, w @ sym, col, truth)
        if self.cfg.tracker == "ekf":
            self._update(idx, est, var, det)
        return det

    def _prepare(self, idx: np.ndarray) -> None:
        """The prediction shown to the coming decision of episodes ``idx`` and its column."""
        x, p = self.ekf.predicted(self.t)
        x, p = x[idx], p[idx]
        active = self.ekf.active[idx]
        if self.cfg.tracker == "hold":                   # the first estimate, held as it was
            x[:, :2], p = self.ekf.x[idx, :2], self.ekf.P[idx]
        xy = np.where(active[:, None], x[:, :2], self.fallback[idx])
        self.fallback[idx] = xy
        self.shown_xy[idx], self.shown_cov[idx] = xy, np.where(active[:, None, None], p, 0.0)
        lost = ~active | (self.ekf.position_std(p) > self.cfg.lost_std)
        self.shown_lost[idx] = lost
        geo = geometry(self.system, np.zeros((len(idx), 0, 2)), xy)
        amp = np.sqrt(self.channel.column_power(geo.dist)[..., -1])      # (n, L)
        a = E.steering(geo.cos_phi[..., -1], self.system.M, self.system.spacing) * amp[..., None]
        self.column[idx, :, 0], self.column[idx, :, 1] = a.real, a.imag

    # ---- the env's calls -------------------------------------------------------------------
    def reset(self, rngs: list[np.random.Generator], idx: np.ndarray, world: World) -> None:
        """Episodes ``idx`` start: new echo streams, clock 0, acquisition at the world's state."""
        self.begin(rngs, idx, world.true_csi[idx], world.target_xy[idx])

    def begin(self, rngs: list[np.random.Generator], idx: np.ndarray, true_csi: np.ndarray,
              truth: np.ndarray) -> None:
        """Episodes ``idx`` start at clock 0 with echo streams spawned from ``rngs`` (one per
        episode of the batch) and a search dwell on the target at ``truth (n, 2)`` m whose TRUE
        CSI is ``true_csi (n, L, 2, M, Q)``."""
        for i in idx:
            self.rngs[i] = rngs[i].spawn(1)[0]
        self.ekf.drop(idx)
        self.t[idx] = 0.0
        self.fallback[idx] = self.centre
        self._acquire(idx, target_column(true_csi), truth)
        self._prepare(idx)

    # ---- a closed loop on a recorded road (batch of one, explicit times) ---------------------
    def observe(self, obs: np.ndarray, t: float, true_csi: np.ndarray, truth: np.ndarray
                ) -> np.ndarray:
        """The observation ``obs (L, 2, M, Q)`` of a decision at time ``t`` s, its target column
        the track's prediction (a lost track first searched for, the target at ``truth (2,)``
        with TRUE CSI ``true_csi (L, 2, M, Q)``); what was shown is kept in ``shown_*``."""
        i = np.array([0])
        self.t[0] = t
        col = target_column(true_csi[None])
        if not self.ekf.active[0] or (self.cfg.tracker == "ekf" and self.ekf.lost()[0]):
            self.ekf.drop(i)
            self._acquire(i, col, truth[None])
        self._prepare(i)
        out = obs.copy()
        out[..., -1] = self.column[0]
        return out

    def echo_at(self, t: float, beams: np.ndarray, true_csi: np.ndarray, truth: np.ndarray
                ) -> np.ndarray:
        """The echo of ``beams (L, 2, M, Q)`` (as applied, within budget) received at time ``t``
        s from the target at ``truth (2,)``; the track updated. Returns detections ``(L,)``."""
        self.t[0] = t
        return self._measure(np.array([0]), beams[None], target_column(true_csi[None]),
                             truth[None])[0]

    def fill(self, obs: np.ndarray) -> np.ndarray:
        """Write the tracker's target column into observations ``obs (B, L, 2, M, Q)``."""
        obs[..., -1] = self.column
        return obs

    def step(self, world: World, seg: Segment, beams: np.ndarray, active: np.ndarray | None
             ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """After a decision interval: errors of what was shown, the echo of ``beams (B, L, 2,
        M, Q)`` (the scored ones) at the decision instant, re-acquisition and the prediction
        for the next decision at the world's new state.

        Returns:
            ``info`` (:data:`SENSING_KEYS`, each ``(B, ...)``; zeros for inactive episodes) and
            the tracking term of the reward ``(B,)``: ``-tracking_weight * min(e, error_cap)``
            with ``e`` the position error of the prediction the NEXT observation shows
            (``error_cap`` when that track is lost).
        """
        s, b = self.system, self.batch
        idx = np.arange(b) if active is None else np.flatnonzero(active)
        truth = seg.target_xy[:, 0]
        g_hat = geometry(s, np.zeros((b, 0, 2)), self.shown_xy)
        g_true = geometry(s, np.zeros((b, 0, 2)), truth)
        info: dict[str, np.ndarray] = {
            "angle_error": np.angle(np.exp(1j * (g_hat.phi[..., -1] - g_true.phi[..., -1]))),
            "position_error": np.hypot(*(self.shown_xy - truth).T),
            "track_lost": self.shown_lost.copy(),
            "track_cov": self.shown_cov.copy(),
            "echo_detected": np.zeros((b, s.L), dtype=bool),
            "pd": E.network_pd(E.ssnr_per_ap(seg.true_csi[:, 0], beams, s),
                               self.cfg.snapshots, s.M, self.cfg.pfa),
        }
        if len(idx):
            info["echo_detected"][idx] = self._measure(
                idx, beams[idx], target_column(seg.true_csi[idx, 0]), truth[idx])
            self.t[idx] += self.interval
            if not self.road:                                  # a fresh drop: a new target
                self.ekf.drop(idx)
                self.fallback[idx] = self.centre
            elif self.cfg.tracker == "ekf":
                self.ekf.drop(idx[self.ekf.lost()[idx]])
            gone = idx[~self.ekf.active[idx]]        # held too: searched for until first fixed
            if len(gone):
                self._acquire(gone, target_column(world.true_csi[gone]), world.target_xy[gone])
            self._prepare(idx)
        err = np.hypot(*(self.shown_xy - world.target_xy).T)
        err = np.where(self.shown_lost, self.cfg.error_cap, np.minimum(err, self.cfg.error_cap))
        bonus = -self.cfg.tracking_weight * err
        info["reward_tracking"] = bonus
        for k in SENSING_KEYS:
            if active is not None:
                info[k][~active] = 0
        return info, bonus


class EchoLoop:
    """Echo sensing for one closed loop on a recorded road (:func:`cfisac_env.sim.tracking.
    closed_loop`): a batch-of-one :class:`EchoSensing` started on the trajectory's first step,
    with its echo streams from ``rng``, and the record of what every decision was shown.

    Args:
        scenario: the road scenario (its ``[sensing]``; the mode is taken as ``"echo"``).
        trajectory: the recorded road (positions, TRUE CSI at every step; step ``s`` is time
            ``s * dt``).
        rng: the run's generator (its child streams the echoes; not advanced).
    """

    def __init__(self, scenario: Scenario, trajectory: Any, rng: np.random.Generator) -> None:
        self.sensing = EchoSensing(scenario, 1)
        self.dt = trajectory.dt
        self.sensing.begin([rng], np.array([0]), trajectory.true_csi[:1], trajectory.target_xy[:1])
        self.log: list[tuple[Any, ...]] = []

    def observe(self, obs: np.ndarray, step: int, traj: Any) -> np.ndarray:
        """Observation of the decision at ``step`` (target column from the track)."""
        s = self.sensing
        out = s.observe(obs, step * self.dt, traj.true_csi[step], traj.target_xy[step])
        truth = traj.target_xy[step][None]
        g_hat = geometry(s.system, np.zeros((1, 0, 2)), s.shown_xy[:1])
        g_true = geometry(s.system, np.zeros((1, 0, 2)), truth)
        self.log.append((float(np.hypot(*(s.shown_xy[0] - truth[0]))),
                         np.angle(np.exp(1j * (g_hat.phi[0, :, -1] - g_true.phi[0, :, -1]))),
                         bool(s.shown_lost[0]), float(s.ekf.position_std(s.shown_cov[:1])[0])))
        return out

    def echo(self, step: int, beams: np.ndarray, traj: Any) -> None:
        """The echo of ``beams (L, 2, M, Q)`` landed at ``step`` (projected onto the budget)."""
        applied, _ = metrics.project_power(beams, self.sensing.system)
        self.sensing.echo_at(step * self.dt, applied, traj.true_csi[step], traj.target_xy[step])

    def record(self) -> dict[str, np.ndarray]:
        """Per decision: ``position_error (D,)`` m, ``angle_error (D, L)`` rad, ``track_lost
        (D,)`` and ``position_std (D,)`` m of the prediction shown."""
        err, ang, lost, std = zip(*self.log, strict=True)
        return {"position_error": np.asarray(err), "angle_error": np.asarray(ang),
                "track_lost": np.asarray(lost), "position_std": np.asarray(std)}


def echo_scores(scenario: Scenario, true_csi: np.ndarray, beams: np.ndarray,
                target_xy: np.ndarray, rngs: list[np.random.Generator]
                ) -> dict[str, np.ndarray]:
    """What the echo of ``beams`` tells about the target, drop by drop (no track: one dwell).

    Args:
        scenario: its ``[sensing]`` settings (snapshots, pfa, grid) and system.
        true_csi, beams: ``(D, L, 2, M, Q)``, the TRUE channel and the beams as applied.
        target_xy: ``(D, 2)`` m.
        rngs: the echoes' generators, one per drop (the same for every policy: common random
            numbers).

    Returns:
        ``pd (D,)`` the network detection probability (:func:`cfisac_env.physics.echo.
        network_pd`, square-law, Swerling I), ``detected (D, L)`` one draw of each AP's
        detector, ``angle_error (D, L)`` rad of each AP's ML estimate (NaN where it did not
        detect), ``position_error (D,)`` m of the triangulated detections (NaN where fewer than
        two APs detected or the fix is ambiguous).
    """
    sen = EchoSensing(scenario, len(true_csi))
    s, idx = sen.system, np.arange(len(true_csi))
    sen.rngs = list(rngs)
    sym = np.stack([E.qpsk(sen.rngs[i], (s.L, s.Q, sen.cfg.snapshots)) for i in idx])
    w = to_complex(np.asarray(beams, dtype=np.float64))                   # (n, L, M, Q)
    est, var, det = sen._dwell(idx, w @ sym, target_column(true_csi), target_xy)
    geo = geometry(s, np.zeros((len(idx), 0, 2)), target_xy)
    sign = np.sign(np.sin(geo.phi[..., -1]))
    u_hat = np.clip(geo.cos_phi[..., -1] + wrap(est.u - geo.cos_phi[..., -1], sen.period), -1, 1)
    phi_hat = np.arctan2(sign * np.sqrt(1 - u_hat ** 2), u_hat)
    ang = np.angle(np.exp(1j * (phi_hat - geo.phi[..., -1])))
    p, _, ok = triangulate(s.ap_positions, est.u, var, det, sen.box, period=sen.period)
    pos = np.where(ok, np.hypot(*(p - target_xy).T), np.nan)
    return {"pd": E.network_pd(E.ssnr_per_ap(true_csi, beams, s), sen.cfg.snapshots, s.M,
                               sen.cfg.pfa),
            "detected": det, "angle_error": np.where(det, ang, np.nan), "position_error": pos}
