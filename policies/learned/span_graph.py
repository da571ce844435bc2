"""One AP's ``span-attn`` policy as a real-valued graph, for the exporters (ONNX, TorchScript).

:meth:`policies.learned.span.SpanAttn.ap_forward` works in complex128 and calls
``torch.linalg.inv`` / ``torch.linalg.solve``; the ONNX exporter has no complex dtypes and no
linear algebra, and the policy's LoS fit (:mod:`cfisac_env.physics.los_fit`) runs in numba
before the network. :class:`SpanGraph` is the same per-AP map with none of them::

    csi_l (B, 2, M, Q) float32   ->   beams_l (B, 2, M, Q) float32

at a fixed AP ``l``, operating point ``rho``, number of UEs ``N = Q - 1`` (the one of the
example it is traced with) and output (the beams, or ``reference=True``: the reference beams,
``sinr-teacher``'s), with the LoS fit in the graph when ``los_fit=True`` (the policy's setting
under a LoS channel). Every complex quantity is a (real, imaginary) pair of float64 tensors and
the layers run in float32, as in torch; the two Hermitian positive-definite systems (``C =
(sum_k D_k G_k / L + diag(nu))^-1`` and ``(G_l + mu_s I) x = H_lu^H a_l / M``) are solved in
their real ``2N x 2N`` form, symmetric positive definite, by a Cholesky factorisation unrolled
over the fixed ``2N`` (:func:`spd_solve`; no pivoting needed). ONNX Runtime has no float64
``Atan``, so angles are a float32 ``atan2`` refined by one float64 correction step
(:func:`angle`), and every float64 constant is a float64 tensor (:func:`f64`). The network's own
modules (attention blocks, heads) are reused, so the graph follows its weights.

It is an export path only: the policy's inference paths (torch, NumPy, compiled) do not use it
and keep their numbers. Fed the same (fitted) CSI it equals the torch network to float32
rounding (3e-8); the LoS fit in the graph equals the compiled one to float32 rounding (one ulp
in a few per cent of the entries: on exact LoS CSI the Newton step gains less than float64
rounding, so whether it is taken depends on how the sums are rounded), which the networks
amplify: the whole graph equals the torch policy's beams to 1.1e-6 on ``pos2`` and to 2e-5 on
``street``, whose network a 1e-9 change of every UE's direction cosine moves by 5e-5
(``tests/policies/learned/test_export.py``, ``runners/export.py``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import nn

from cfisac_env.physics.los_fit import NEWTON_STEPS
from cfisac_env.physics.system import System
from policies.learned.span import POS_SCALE, SIN_MIN, SpanAttn

#: Step halvings of the LoS fit's Newton step (:func:`cfisac_env.physics.los_fit._fit_row`).
HALVINGS = 5

Pair = tuple[torch.Tensor, torch.Tensor]


# ------------------------------------------------------------------ complex pairs, float64

def angle(im: torch.Tensor, re: torch.Tensor) -> torch.Tensor:
    """``atan2(im, re)`` in float64 without a float64 arctangent: the float32 ``atan2`` of the
    pair scaled to unit size, corrected by ``atan(r) ~ r`` with ``r = (im c - re s) / (re c +
    im s)`` (``c, s`` the cosine and sine of the first guess; ``|r| < 1e-6``, so the error is
    float64 rounding). ``0`` where both are zero, as ``torch.angle``."""
    scale = torch.maximum(re.abs(), im.abs())
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    t0 = torch.atan2((im / safe).float(), (re / safe).float()).double()
    c, s = torch.cos(t0), torch.sin(t0)
    den = re * c + im * s
    r = (im * c - re * s) / torch.where(den > 0, den, torch.ones_like(den))
    return torch.where(den > 0, t0 + r, t0)


def f64(value: float, like: torch.Tensor) -> torch.Tensor:
    """``value`` as a float64 tensor constant. A Python number in a float64 expression would be
    written to ONNX as a float32 constant cast to float64 (``2 pi`` off by 3e-8), so every
    constant of the float64 steps is one of these."""
    return torch.tensor(value, dtype=torch.float64, device=like.device)


def cmm(a: Pair, b: Pair) -> Pair:
    """``a @ b``."""
    return a[0] @ b[0] - a[1] @ b[1], a[0] @ b[1] + a[1] @ b[0]


def chmm(a: Pair, b: Pair) -> Pair:
    """``a^H @ b``."""
    at0, at1 = a[0].transpose(-1, -2), a[1].transpose(-1, -2)
    return at0 @ b[0] + at1 @ b[1], at0 @ b[1] - at1 @ b[0]


def cdot(a: Pair, b: Pair, dim: int) -> Pair:
    """``sum(conj(a) * b, dim)``."""
    return ((a[0] * b[0] + a[1] * b[1]).sum(dim), (a[0] * b[1] - a[1] * b[0]).sum(dim))


def abs2(a: Pair) -> torch.Tensor:
    return a[0] ** 2 + a[1] ** 2


def spd_solve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a^-1 b`` for a symmetric positive-definite ``a (B, n, n)`` and ``b (B, n, r)``, by a
    Cholesky factorisation ``a = L L^T`` unrolled over the static ``n`` (column by column),
    then forward and back substitution row by row. Rows and columns are picked and placed by
    products with constant unit vectors (no slicing: a small exported graph); the entries not
    yet computed are zeros, so every sum is over exactly the terms of the textbook loops."""
    n = a.shape[-1]
    eye = torch.eye(n, dtype=a.dtype, device=a.device)
    tri = eye.cumsum(0)                                      # 1 on and below the diagonal
    e = [eye[:, j:j + 1] for j in range(n)]                  # unit columns (n, 1)
    lo = torch.zeros_like(a)                                 # (B, n, n), filled column by column
    for j in range(n):
        row = e[j].mT @ lo                                   # (B, 1, n): L_j,: so far
        v = a @ e[j] - lo @ row.mT                           # (B, n, 1)
        lo = lo + (v * tri[:, j:j + 1] / torch.sqrt(e[j].mT @ v)) @ e[j].mT
    diag = (lo * eye).sum(-1, keepdim=True)
    y = torch.zeros_like(b)                                  # L y = b, row by row
    for i in range(n):
        y = y + e[i] @ ((e[i].mT @ b - (e[i].mT @ lo) @ y) / (e[i].mT @ diag))
    x = torch.zeros_like(b)                                  # L^T x = y, from the last row
    for i in reversed(range(n)):
        x = x + e[i] @ ((e[i].mT @ y - (lo @ e[i]).mT @ x) / (e[i].mT @ diag))
    return x


def hpd_solve(a: Pair, b: Pair) -> Pair:
    """``a^-1 b`` for a Hermitian positive-definite ``a (B, N, N)`` and ``b (B, N, R)`` through
    the real form ``[[Re a, -Im a], [Im a, Re a]]`` (symmetric positive definite)."""
    n = a[0].shape[-1]
    big = torch.cat([torch.cat([a[0], -a[1]], 2), torch.cat([a[1], a[0]], 2)], 1)
    x = spd_solve(big, torch.cat([b[0], b[1]], 1))
    return x[:, :n], x[:, n:]


# ------------------------------------------------------------------ the LoS fit

def los_fit_graph(x: torch.Tensor, spacing: float) -> torch.Tensor:
    """:func:`cfisac_env.physics.los_fit.los_fit` in torch (float64 inside): ``x (B, 2, M, Q)``
    float32 -> every column replaced by its single-path LoS fit ``g a(u)``, float32. The Newton
    step's halvings are evaluated side by side and the first one that does not lower the score
    is taken, as the compiled loop does."""
    w = f64(2.0 * math.pi * float(spacing), x)
    hr, hi = x[:, 0].double(), x[:, 1].double()           # (B, M, Q)
    m = x.shape[2]
    wk = w * torch.arange(m, dtype=torch.float64, device=x.device)[:, None]   # (M, 1)
    sr = (hr[:, 1:] * hr[:, :-1] + hi[:, 1:] * hi[:, :-1]).sum(1)            # (B, Q)
    si = (hi[:, 1:] * hr[:, :-1] - hr[:, 1:] * hi[:, :-1]).sum(1)
    u = (angle(si, sr) / w).clamp(-1.0, 1.0)

    def score(uu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        th = wk * uu[..., None, :]                          # (..., M, Q)
        c, s = torch.cos(th), torch.sin(th)
        zr, zi = c * hr + s * hi, c * hi - s * hr           # exp(-j w k u) h_k
        return zr.sum(-2), (wk * zi).sum(-2), -(wk * wk * zr).sum(-2)

    f0, f1, f2 = score(u)
    active = torch.ones_like(u, dtype=torch.bool)
    halves = torch.tensor([0.5 ** i for i in range(HALVINGS)], dtype=torch.float64,
                          device=x.device)[:, None, None]                    # (H, 1, 1)
    for _ in range(NEWTON_STEPS):
        active = active & (f2 < 0) & (f1 != 0)
        step = -f1 / torch.where(f2 < 0, f2, -torch.ones_like(f2))
        un = (u + step * halves).clamp(-1.0, 1.0)                          # (H, B, Q)
        t0, t1, t2 = score(un)
        ok = t0 >= f0
        nu, n0, n1, n2, found = u, f0, f1, f2, torch.zeros_like(active)
        for i in reversed(range(HALVINGS)):                 # the first halving that is ok
            nu = torch.where(ok[i], un[i], nu)
            n0, n1, n2 = (torch.where(ok[i], t[i], f) for t, f in ((t0, n0), (t1, n1), (t2, n2)))
            found = found | ok[i]
        active = active & found
        u = torch.where(active, nu, u)
        f0, f1, f2 = (torch.where(active, t, f) for t, f in ((n0, f0), (n1, f1), (n2, f2)))
    g = (f0 / m).clamp_min(0.0)[:, None, :]
    th = wk * u[:, None, :]
    return torch.stack([g * torch.cos(th), g * torch.sin(th)], 1).float()


# ------------------------------------------------------------------ the network

#: The AP-specific tensors of a :class:`SpanGraph`, in :meth:`SpanGraph.core`'s order: the
#: one-hot AP index ``(L,)``, its position ``(2,)`` metres and its budget ``()`` W (float64).
AP_TENSORS = ("ap_onehot", "ap_pos", "ap_power")


class SpanGraph(nn.Module):
    """AP ``l``'s ``span-attn`` policy in real arithmetic (module docstring):
    ``forward(csi_l (B, 2, M, Q) float32) -> (B, 2, M, Q) float32``.

    The AP enters only through three tensors (:data:`AP_TENSORS`, buffers here), so every AP's
    graph is :meth:`core` with other values in them (the ONNX exporter exports it once).

    Args:
        net: the shared network (its modules are used, not copied).
        system: the system exported (``one_ap``: AP ``l`` alone, for the exporters).
        l: the AP; rho: the operating point; reference: output the reference beams at
            ``rho`` (``sinr-teacher``) instead of the beams; los_fit: fit every CSI column to
            a single LoS path first (the policy's ``los_fit``).
    """

    def __init__(self, net: SpanAttn, system: System, l: int, rho: float = 0.5,
                 reference: bool = False, los_fit: bool = False) -> None:
        super().__init__()
        self.net, self.l, self.rho = net, int(l), float(rho)
        self.reference, self.los_fit = bool(reference), bool(los_fit)
        self.one_ap = dataclasses.replace(system, ap_xy=(system.ap_xy[l],),
                                          power=(system.power[l],))
        sysm = net.system
        ap = np.asarray(sysm.ap_xy, dtype=np.float64)
        self.spacing, self.nl = float(sysm.spacing), int(sysm.L)
        self.register_buffer("ap_xy", torch.from_numpy(ap.copy()), persistent=False)
        self.register_buffer("lines", torch.tensor(net.ue_lines, dtype=torch.float64),
                             persistent=False)
        power = torch.tensor(sysm.P, dtype=torch.float32)[l].double()   # torch's budget
        for name, value in zip(AP_TENSORS, (torch.eye(self.nl, dtype=torch.float64)[l].clone(),
                                            torch.from_numpy(ap[l].copy()), power),
                               strict=True):
            self.register_buffer(name, value, persistent=False)

    def ap_tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """This AP's :data:`AP_TENSORS`."""
        return self.ap_onehot, self.ap_pos, self.ap_power

    def forward(self, csi_l: torch.Tensor) -> torch.Tensor:
        return self.core(csi_l, *self.ap_tensors())

    def geometry(self, cos: torch.Tensor, ap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`SpanAttn.geometry` from the AP's ``cos (B, N)`` float64 and position ``ap
        (2,)``: ``x (B, N)`` and ``cos_all (B, L, N)``."""
        cos = cos.clamp(-1.0, 1.0)
        sin = torch.sqrt(1 - cos ** 2).clamp_min(f64(SIN_MIN, cos))
        dy = (self.lines - ap[1]).abs()                                  # (J,)
        xj = ap[0] + dy * (cos / sin)[..., None]                         # (B, N, J)
        ue_x = self.net.ue_x
        if ue_x is None:
            x, y = xj[..., 0], torch.zeros_like(cos) + self.lines[0]
        else:
            lo, hi = ue_x
            out = (lo - xj).clamp_min(0) + (xj - hi).clamp_min(0)
            score = torch.where(out > 0, -out - 1e6, torch.zeros_like(xj) + dy)
            j = score.argmax(-1, keepdim=True)
            x = xj.gather(-1, j)[..., 0].clamp(f64(lo, cos), f64(hi, cos))
            y = self.lines[j[..., 0]]
        dx = x[:, None, :] - self.ap_xy[None, :, 0:1]                    # (B, L, N)
        dyy = y[:, None, :] - self.ap_xy[None, :, 1:2]
        return x, dx / torch.sqrt(dx ** 2 + dyy ** 2).clamp_min(f64(1e-9, dx))

    def core(self, csi_l: torch.Tensor, onehot: torch.Tensor, ap: torch.Tensor,
             power: torch.Tensor) -> torch.Tensor:
        """The graph of the AP that ``onehot (L,)``, ``ap (2,)`` and ``power ()`` (float64)
        describe: ``csi_l (B, 2, M, Q)`` float32 -> ``(B, 2, M, Q)`` float32."""
        net, nl, sp = self.net, self.nl, self.spacing
        if self.los_fit:
            csi_l = los_fit_graph(csi_l, sp)
        _, _, m, q = csi_l.shape
        n, width = q - 1, net.width
        h = (csi_l[:, 0].double(), csi_l[:, 1].double())                # (B, M, Q)
        hu, a = (h[0][..., :n], h[1][..., :n]), (h[0][..., n:], h[1][..., n:])
        one = torch.zeros_like(csi_l[:, 0, 0, :1])                       # (B, 1) float32
        rho = one + self.rho                                             # (B, 1)
        inv_n = one + 1.0 / n
        # geometry and the joint UE channel: own measured block, the others rebuilt (the
        # one-hot mix is exact: x * 1 + y * 0 = x)
        st = cdot((hu[0][:, :-1], hu[1][:, :-1]), (hu[0][:, 1:], hu[1][:, 1:]), 1)   # (B, N)
        w = f64(2 * math.pi * sp, csi_l)                               # phase step per cos
        x, cos_all = self.geometry(angle(st[1], st[0]) / w, ap)
        k = torch.arange(m, dtype=torch.float64, device=csi_l.device)
        ph = w * cos_all[..., None, :] * k[:, None]                      # (B, L, M, N)
        own = onehot[:, None, None]                                      # (L, 1, 1)
        hall = (torch.cos(ph) * (1 - own) + hu[0][:, None] * own,
                torch.sin(ph) * (1 - own) + hu[1][:, None] * own)
        gl = tuple(g / m for g in chmm(hall, hall))                      # (B, L, N, N)
        gj = (gl[0].mean(1), gl[1].mean(1))
        coh = abs2(gj).float()                                           # (B, N, N)
        ue = torch.cat([cos_all.transpose(1, 2).float(), (x[..., None] / POS_SCALE).float(),
                        coh.sum(-1, keepdim=True) / n, rho[:, None].expand(-1, n, 1),
                        inv_n[:, None].expand(-1, n, 1)], 2)             # (B, N, L + 4)
        t = net._blocks(net.embed_ue(ue), coh)                           # (B, N, D)
        # the AP's own stream
        gram = chmm(h, h)
        gram = (gram[0] / m, gram[1] / m)                                # (B, Q, Q)
        diag = gram[0].diagonal(dim1=-2, dim2=-1).clamp_min(f64(1e-12, csi_l))
        cohl = (abs2(gram) / (diag[:, :, None] * diag[:, None, :])).float()
        diag = diag.float().clamp_min(1e-12)
        stt = cdot((a[0][:, :-1, 0], a[1][:, :-1, 0]), (a[0][:, 1:, 0], a[1][:, 1:, 0]), 1)
        mag = torch.sqrt(abs2(stt)).float() + 1e-12
        tg = torch.cat([(stt[0].float() / mag)[:, None], (stt[1].float() / mag)[:, None],
                        torch.log(diag[:, n:]), cohl[:, n, :n].amax(-1, keepdim=True),
                        cohl[:, n, :n].mean(-1, keepdim=True),
                        one + (ap / POS_SCALE).float(), rho, inv_n], 1)
        p = nn.functional.softplus(net.head_p(t))[..., 0]                # (B, N)
        mu_c = nn.functional.softplus(net.head_mu(t.mean(1)))[:, 0] + 1e-3
        nu = mu_c[:, None] * torch.exp(net.head_nu(t)[..., 0])           # (B, N)
        apf = torch.cat([t[:, None].expand(-1, nl, -1, -1), cos_all[..., None].float(),
                         torch.zeros_like(cos_all[..., None]).float()
                         + (self.ap_xy / POS_SCALE).float()[None, :, None]], 3)
        dl = torch.exp(net.head_ap(apf)[..., 0].mean(2)).double()       # (B, L)
        budget = rho[:, 0].double() * power                              # (B,)
        ref = self._reference(hu, gl, dl, p.double(), nu.double(), budget, m)
        if self.reference:
            zero = torch.zeros_like(a[0])
            return torch.stack([torch.cat([ref[0], zero], 2), torch.cat([ref[1], zero], 2)],
                               1).float()
        ar = cdot(a, ref, 1)                                             # (B, N)
        feats = torch.stack([abs2(ar) / (m * budget[:, None]),
                             abs2(ref).sum(1) / budget[:, None]], 2).float()   # (B, N, 2)
        cos_t = angle(stt[1], stt[0]) / w
        cos_own = (cos_all * onehot[:, None]).sum(1)                     # (B, N)
        rel = torch.cat([cohl[:, :n, n:], (cos_own - cos_t[:, None]).float()[..., None],
                         feats], 2)                                      # (B, N, 4)
        e = net.embed_tg(tg)                                             # (B, D)
        kv = net.cross(t + net.embed_rel(rel))                           # (B, N, 2D)
        kk, vv = kv[..., :width], kv[..., width:]
        att = torch.softmax((kk @ e[:, :, None])[..., 0] / math.sqrt(width), -1)
        e = e + net.mlp_tg(torch.cat([e, (att[:, :, None] * vv).sum(1)], 1))
        fc = torch.exp(net.head_comm(torch.cat([t, e[:, None].expand(-1, n, -1)], 2)))
        comm = self._reference(hu, gl, dl, (p * fc[..., 0]).double(),
                               (nu * fc[..., 1]).double(), budget, m)
        beta = nn.functional.softplus(net.head_beta(torch.cat(
            [t, e[:, None].expand(-1, n, -1), cohl[:, :n, n:], feats], 2)))[..., 0]
        out_t = nn.functional.softplus(net.head_tg(torch.cat([e, feats.mean(1)], 1)))
        return self._beams(hu, a, comm, beta.double(), out_t.double(), power, m)

    @staticmethod
    def _reference(hu: Pair, gl: Pair, dl: torch.Tensor, p: torch.Tensor, nu: torch.Tensor,
                   budget: torch.Tensor, m: int) -> Pair:
        """:meth:`SpanAttn._reference`: the AP's slice ``(B, M, N)`` at ``budget (B,)``."""
        w1, w2 = dl[..., None, None], (dl ** 2)[..., None, None]
        gd = ((gl[0] * w1).mean(1) + torch.diag_embed(nu), (gl[1] * w1).mean(1))
        gw = ((gl[0] * w2).sum(1), (gl[1] * w2).sum(1))
        eye = torch.diag_embed(torch.ones_like(nu))
        c = hpd_solve(gd, (eye, torch.zeros_like(eye)))                 # (B, N, N)
        gwc = cmm(gw, c)
        eps = f64(1e-12, nu)
        norm = (c[0] * gwc[0] + c[1] * gwc[1]).sum(1).clamp_min(eps) * m    # (B, N)
        scale = torch.sqrt(p / norm)[:, None, :]
        d = cmm(hu, (c[0] * scale, c[1] * scale))                       # (B, M, N)
        f = torch.sqrt(budget / (abs2(d).sum((1, 2)) + eps))[:, None, None]
        return d[0] * f, d[1] * f

    @staticmethod
    def _beams(hu: Pair, a: Pair, comm: Pair, beta: torch.Tensor, out_t: torch.Tensor,
               power: torch.Tensor, m: int) -> torch.Tensor:
        """:meth:`SpanAttn._beams`: ``(B, 2, M, Q)`` float32 on the full budget ``power``."""
        g = chmm(hu, hu)
        eps = f64(1e-12, power)
        mu_s = (out_t[:, 0] + f64(1e-3, power))[:, None, None]
        eye = torch.diag_embed(torch.ones_like(g[0][:, 0]))
        rhs = chmm(hu, a)
        x = hpd_solve((g[0] / m + mu_s * eye, g[1] / m), (rhs[0] / m, rhs[1] / m))
        proj = cmm(hu, x)
        s = (a[0] - proj[0], a[1] - proj[1])
        sn = torch.sqrt(abs2(s).sum(-2, keepdim=True) + eps)
        s = (s[0] / sn, s[1] / sn)                                       # (B, M, 1)
        ad, as_ = cdot(a, comm, 1), cdot(a, s, 1)                        # (B, N), (B, 1)
        z = (ad[0] * as_[0] + ad[1] * as_[1], ad[1] * as_[0] - ad[0] * as_[1])   # ad conj(as)
        zn = torch.sqrt(abs2(z) + eps)
        tilt = (beta * z[0] / zn)[:, None, :], (beta * z[1] / zn)[:, None, :]   # (B, 1, N)
        gamma, alpha = out_t[:, 2, None, None], out_t[:, 1, None, None]
        wr = torch.cat([comm[0] * gamma + s[0] * tilt[0] - s[1] * tilt[1], s[0] * alpha], 2)
        wi = torch.cat([comm[1] * gamma + s[0] * tilt[1] + s[1] * tilt[0], s[1] * alpha], 2)
        f = torch.sqrt(power / ((wr ** 2 + wi ** 2).sum((1, 2)) + eps))[:, None, None]
        return torch.stack([wr * f, wi * f], 1).float()


class SpanCore(nn.Module):
    """:meth:`SpanGraph.core` as a module of four inputs, ``(csi_l, *AP_TENSORS)``: one graph
    for every AP of a policy (what the ONNX exporter exports, then fixes the AP tensors of
    each file as constants)."""

    def __init__(self, graph: SpanGraph) -> None:
        super().__init__()
        self.span, self.one_ap = graph, graph.one_ap      # (not .graph: fx's own name)

    def forward(self, csi_l: torch.Tensor, ap_onehot: torch.Tensor, ap_pos: torch.Tensor,
                ap_power: torch.Tensor) -> torch.Tensor:
        return self.span.core(csi_l, ap_onehot, ap_pos, ap_power)
