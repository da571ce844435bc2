"""``span-attn``: ONE per-AP network for any number of UEs (not in the seed).

Each AP runs the same network (shared weights) on its own CSI only (never another AP's), the
static deployment (every AP's position, the family's UE line ``y = ue_line_y``) and an operating
point ``rho`` in ``(0, 1]``:

    csi_l (B, 2, M, Q) float32, rho   ->   beams_l (B, 2, M, Q) float32, sum ||w_lq||^2 = P_l

1. **Geometry from the AP's own directions.** The mean phase step between neighbouring antennas
   of UE column ``n`` gives ``cos(phi_ln)`` (``2 pi d cos(phi)`` for the ULA of the system
   model), hence the UE's position on the UE line (with several lines, the likeliest one,
   :meth:`SpanAttn.geometry`), hence every AP's direction to it and the LoS
   UE channels of every other AP (its own block is its measured CSI). All APs thus see the same
   joint UE Gram matrix ``G = H_all^H H_all / (L M)`` (exactly so in LoS).
2. **Attention over the UEs** (equivariant to their order, any ``N``): one token per UE with its
   direction from every AP, its position, its summed coherence ``sum_m |G_nm|^2``, ``rho`` and
   ``1/N``; ``layers`` blocks of multi-head self-attention (logits biased by a learned multiple
   of ``|G_nm|^2``) and a token MLP. These features are the same at every AP, so every AP
   derives the same UE powers ``p_n``, regularisers ``nu_n = mu_c exp(.)`` and per-AP weights
   ``D_k`` (one per AP ``k``, from the tokens and AP ``k``'s direction to each UE).
3. **Reference beams** (the max-min SINR design at share ``rho``, no sensing beam, that sets the
   level): joint weighted regularised zero-forcing ``C = (sum_k D_k G_k / L + diag(nu))^-1``
   (``G_k = H_k^H H_k / M``; the per-AP-power form of the max-min SINR beams), AP ``k``'s slice
   of UE ``n``'s joint beam ``D_k H_k c_n``, joint beams at power ``p_n``; the AP's own slice
   ``H_l C`` (``W_l = H_l C_l``: in the span of its own channel columns) scaled to ``rho P_l``.
4. **The AP's own stream**: the UE tokens plus what this AP sees of each UE relative to its
   target (coherence with the target column, direction gap, the reference's target gain and power
   share), cross-attended by a target token (the target column's direction and gain, its largest
   and mean coherence with the UEs, the AP's position, ``rho``, ``1/N``); it gives the sensing
   regulariser ``mu_s``, sensing amplitude ``alpha``, communication weight ``gamma``, per UE a
   target tilt ``beta_n`` and the AP's own factors on ``p_n`` and ``nu_n`` for its
   communication part ``d_n`` (the same weighted joint RZF, bent by what this AP sees).
5. **Beams**: ``w_n = gamma d_n + beta_n e^{j phi_n} s`` with ``s`` = unit ``a_l - H_lu (G_l +
   mu_s I)^-1 H_lu^H a_l / M`` (the target steering off the UEs; ``phi_n`` aligns the tilt with
   ``a_l^H d_n``, so it adds to the SSNR), sensing beam ``alpha s``; scaled to ``P_l`` (eqs.
   17-18). With the heads added last at zero (``head_nu``, ``head_ap``, ``head_comm``,
   ``embed_rel``) this is exactly the earlier plain joint RZF network.

Training (:mod:`policies.learned.span_training`) maximises the reference beams' min-SINR and the
beams' SSNR keeping their min-SINR at the reference's, drop by drop: cvx's own definition of its
operating point, with no cvx solution as a target. Under a non-LoS channel or CSI errors the
rebuilt channels of the other APs are approximations (the network is trained on them).

:class:`NumpySpan` is the same network in NumPy and
:class:`policies.learned.fastpath.FastSpan` the same compiled by numba (the default inference
path, fastest at batch 1); both equal torch to 1e-5.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from cfisac_env.physics.system import System

ARCH = "span-attn"
POS_SCALE = 100.0            # metres per unit of the position features
SIN_MIN = 1e-3               # floor of |sin(phi)| in the geometry step (end-fire)
N_TG_FEATS, N_OUT, N_REF_FEATS = 9, 3, 2


def _unit(x: torch.Tensor, dim: int = -2) -> torch.Tensor:
    return x / torch.sqrt((x.real ** 2 + x.imag ** 2).sum(dim, keepdim=True) + 1e-12)


class SpanAttn(nn.Module):
    """The shared per-AP network of every AP of ``system`` (module docstring).

    Args:
        system: fixes ``L``, ``M``, the AP positions, budgets and spacing (not ``N``).
        ue_line_y: the y coordinate (m) of the family's UE line (its sidewalk), or of each of
            its UE lines (both sidewalks of a street), a static property of the deployment the
            geometry step uses.
        width: token width; ``heads`` attention heads; ``layers`` attention blocks.
        ue_x: the x range (m) of the UEs (static deployment): with several lines the AP puts a
            UE on the farthest line whose position lies in it (:meth:`geometry`); positions
            are clipped to it. None: no range (one line).
    """

    def __init__(self, system: System, ue_line_y: float | list[float], width: int = 64,
                 heads: int = 4, layers: int = 2, ue_x: list[float] | None = None) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} must be a multiple of heads {heads}")
        lines = [float(y) for y in np.atleast_1d(ue_line_y)]
        if len(lines) > 1 and ue_x is None:
            raise ValueError("several UE lines need the UEs' x range ue_x")
        self.system, self.ue_lines = system, tuple(lines)
        self.ue_line_y = lines[0] if len(lines) == 1 else lines
        self.ue_x = None if ue_x is None else (float(ue_x[0]), float(ue_x[1]))
        self.width, self.heads, self.layers = width, heads, layers
        self.arch = ARCH
        nl = system.L
        ap = np.asarray(system.ap_xy, dtype=np.float64)
        self.register_buffer("ap_xy", torch.from_numpy(ap), persistent=False)
        self.register_buffer("power", torch.tensor(system.P, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("lines", torch.tensor(lines, dtype=torch.float64),
                             persistent=False)
        self.embed_ue = nn.Sequential(nn.Linear(nl + 4, width), nn.ReLU(),
                                      nn.Linear(width, width))
        self.embed_tg = nn.Sequential(nn.Linear(N_TG_FEATS, width), nn.ReLU(),
                                      nn.Linear(width, width))
        self.qkv = nn.ModuleList(nn.Linear(width, 3 * width) for _ in range(layers))
        self.proj = nn.ModuleList(nn.Linear(width, width) for _ in range(layers))
        self.bias = nn.Parameter(torch.zeros(layers, heads))
        self.mlp = nn.ModuleList(nn.Sequential(nn.Linear(width, 2 * width), nn.ReLU(),
                                               nn.Linear(2 * width, width))
                                 for _ in range(layers))
        self.cross = nn.Linear(width, 2 * width)
        self.embed_rel = nn.Sequential(nn.Linear(2 + N_REF_FEATS, width), nn.ReLU(),
                                       nn.Linear(width, width))
        self.mlp_tg = nn.Sequential(nn.Linear(2 * width, width), nn.ReLU(),
                                    nn.Linear(width, width))
        self.head_p = nn.Linear(width, 1)          # UE power (AP-independent stream)
        self.head_mu = nn.Linear(width, 1)         # joint regulariser (pooled UE stream)
        self.head_nu = nn.Linear(width, 1)         # its per-UE factor
        self.head_ap = nn.Sequential(nn.Linear(width + 3, width), nn.ReLU(),
                                     nn.Linear(width, 1))   # per-AP weight (every AP's)
        self.head_comm = nn.Linear(2 * width, 2)   # the beams' own p_n, nu_n factors (per AP)
        self.head_beta = nn.Sequential(nn.Linear(2 * width + 1 + N_REF_FEATS, width), nn.ReLU(),
                                       nn.Linear(width, 1))
        self.head_tg = nn.Linear(width + N_REF_FEATS, N_OUT)   # mu_s, alpha, gamma (own stream)
        for lin in (self.head_nu, self.head_ap[2], self.head_comm, self.embed_rel[2]):  # start:
            # the plain joint RZF and the AP-independent UE tokens
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    def geometry(self, hu: torch.Tensor, l: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """UE positions on the UE line(s) from AP ``l``'s own directions, and the UE channels of
        every AP rebuilt from them (LoS steering vectors).

        UE ``n``'s ``cos(phi)`` puts it at ``x_j = x_l + |y_j - y_l| cos / sin`` on line ``j``
        (``|sin|`` floored at :data:`SIN_MIN`: a UE far along a line near the AP sits close
        to end-fire). With several lines the AP cannot tell them apart from its own CSI; it
        takes the farthest line whose ``x_j`` lies in ``ue_x`` (the likeliest one: a uniform x
        on line ``j`` gives ``cos`` the density ``|y_j - y_l| / (sin^3 len(ue_x))``), else the
        line whose ``x_j`` is nearest the range, and clips ``x`` to the range.

        Args:
            hu: ``(B, M, N)`` complex, the AP's UE columns; l: ``(B,)`` AP indices.

        Returns:
            ``x (B, N)`` metres and ``cos_all (B, L, N)``: each AP's ``cos(phi)`` to each UE.
        """
        sp = self.system.spacing
        step = (hu[:, 1:] * hu[:, :-1].conj()).sum(1)                    # (B, N)
        cos = (torch.angle(step.to(torch.complex128)) / (2 * math.pi * sp)).clamp(-1.0, 1.0)
        sin = torch.sqrt(1 - cos ** 2).clamp_min(SIN_MIN)
        ap = self.ap_xy[l]                                               # (B, 2)
        dy = (self.lines[None, :] - ap[:, 1:2]).abs()                    # (B, J)
        xj = ap[:, 0:1, None] + dy[:, None, :] * (cos / sin)[..., None]  # (B, N, J)
        if self.ue_x is None:
            x, y = xj[..., 0], self.lines[0].expand_as(cos)
        else:
            lo, hi = self.ue_x
            out = (lo - xj).clamp_min(0) + (xj - hi).clamp_min(0)        # metres outside
            score = torch.where(out > 0, -out - 1e6, dy[:, None, :].expand_as(xj))
            j = score.argmax(-1, keepdim=True)
            x = xj.gather(-1, j)[..., 0].clamp(lo, hi)
            y = self.lines[j[..., 0]]
        dx = x[:, None, :] - self.ap_xy[None, :, 0:1]                    # (B, L, N)
        dyy = y[:, None, :] - self.ap_xy[None, :, 1:2]
        cos_all = dx / torch.sqrt(dx ** 2 + dyy ** 2).clamp_min(1e-9)
        return x, cos_all

    # ------------------------------------------------------------------ per AP
    def ap_forward(self, csi_l: torch.Tensor, l: torch.Tensor | int, rho: torch.Tensor | float
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Beams and reference beams of AP(s) ``l``.

        Args:
            csi_l: ``(B, 2, M, Q)`` float32, the AP's own CSI.
            l: AP index, int or ``(B,)`` int64 (several APs folded into the batch).
            rho: operating point, float or ``(B,)``.

        Returns:
            ``(beams, ref)``, each ``(B, 2, M, Q)`` float32; ``beams`` spend ``P_l``, ``ref`` the
            share ``rho P_l`` on the UE beams (sensing column zero).
        """
        b, _, m, q = csi_l.shape
        n = q - 1
        dev = csi_l.device
        l = torch.as_tensor(l, device=dev).expand(b) if not torch.is_tensor(l) or l.dim() == 0 \
            else l
        rho = torch.as_tensor(rho, dtype=csi_l.dtype, device=dev).expand(b) \
            if not torch.is_tensor(rho) or rho.dim() == 0 else rho.to(csi_l.dtype)
        h = torch.complex(csi_l[:, 0], csi_l[:, 1])                     # (B, M, Q)
        hu, a = h[..., :n], h[..., n:]                                   # (B, M, N), (B, M, 1)
        hu64 = hu.to(torch.complex128)
        x, cos_all = self.geometry(hu64, l)
        # the joint UE channel of all APs: own measured block, the others rebuilt
        k = torch.arange(m, device=dev, dtype=torch.float64)
        ph = 2 * math.pi * self.system.spacing * cos_all[..., None, :] * k[:, None]
        hall = torch.polar(torch.ones_like(ph), ph)                      # (B, L, M, N) c128
        own = torch.nn.functional.one_hot(l, self.system.L).to(torch.float64)[..., None, None]
        hall = hall * (1 - own) + hu64[:, None] * own
        nl = self.system.L
        gl = torch.einsum("blmn,blmk->blnk", hall.conj(), hall) / m      # (B, L, N, N)
        gj = gl.mean(1)                                                  # (B, N, N)
        coh = (gj.real ** 2 + gj.imag ** 2).float()                      # (B, N, N)
        inv_n = torch.full_like(rho[:, None], 1.0 / n)
        ue = torch.cat([cos_all.transpose(1, 2).float(), (x[..., None] / POS_SCALE).float(),
                        coh.sum(-1, keepdim=True) / n, rho[:, None, None].expand(b, n, 1),
                        inv_n[:, None].expand(b, n, 1)], 2)                 # (B, N, L + 4)
        t = self._blocks(self.embed_ue(ue), coh)                         # (B, N, D)
        # the AP's own stream: its target column, cross-attending to the UE tokens
        gram = h.mH @ h / m
        diag = gram.diagonal(dim1=-2, dim2=-1).real.clamp_min(1e-12)
        cohl = (gram.real ** 2 + gram.imag ** 2) / (diag[:, :, None] * diag[:, None, :])
        step = (h[:, 1:, n] * h[:, :-1, n].conj()).sum(1)
        pt = step / (step.abs() + 1e-12)
        tg = torch.cat([pt.real[:, None], pt.imag[:, None], torch.log(diag[:, n:]),
                        cohl[:, n, :n].amax(-1, keepdim=True),
                        cohl[:, n, :n].mean(-1, keepdim=True),
                        (self.ap_xy[l] / POS_SCALE).float(), rho[:, None], inv_n], 1)
        p = nn.functional.softplus(self.head_p(t))[..., 0]               # (B, N)
        mu_c = nn.functional.softplus(self.head_mu(t.mean(1)))[:, 0] + 1e-3
        nu = mu_c[:, None] * torch.exp(self.head_nu(t)[..., 0])          # (B, N)
        apf = torch.cat([t[:, None].expand(b, nl, n, self.width), cos_all[..., None].float(),
                         (self.ap_xy / POS_SCALE).float()[None, :, None].expand(b, nl, n, 2)], 3)
        dl = torch.exp(self.head_ap(apf)[..., 0].mean(2)).double()      # (B, L)
        ref = self._reference(hu64, gl, dl, p.double(), nu.double(), rho.double(),
                              self.power[l].double(), m)
        feats = self._ref_feats(a.to(torch.complex128), ref, rho.double() * self.power[l])
        # UE tokens as this AP sees them relative to its target (coherence, direction gap,
        # the reference's target gain and power share), then the target cross-attends to them
        cos_t = (torch.angle(step.to(torch.complex128)) / (2 * math.pi * self.system.spacing))
        cos_own = (cos_all * own[..., 0]).sum(1)                         # (B, N)
        rel = torch.cat([cohl[:, :n, n:], (cos_own - cos_t[:, None]).float()[..., None],
                         feats], 2)                                      # (B, N, 4)
        e = self.embed_tg(tg)                                            # (B, D)
        kv = self.cross(t + self.embed_rel(rel))                         # (B, N, 2D)
        kk, vv = kv[..., :self.width], kv[..., self.width:]
        att = torch.softmax((kk @ e[:, :, None])[..., 0] / math.sqrt(self.width), -1)
        e = e + self.mlp_tg(torch.cat([e, (att[:, :, None] * vv).sum(1)], 1))
        # the beams' communication part: the same joint RZF with the AP's own p_n, nu_n factors
        fc = torch.exp(self.head_comm(torch.cat([t, e[:, None].expand(b, n, self.width)], 2)))
        comm = self._reference(hu64, gl, dl, (p * fc[..., 0]).double(),
                               (nu * fc[..., 1]).double(), rho.double(), self.power[l].double(), m)
        beta = nn.functional.softplus(self.head_beta(torch.cat(
            [t, e[:, None].expand(b, n, self.width), cohl[:, :n, n:], feats], 2)))[..., 0]
        out_t = nn.functional.softplus(self.head_tg(torch.cat([e, feats.mean(1)], 1)))  # (B, 3)
        w = self._beams(hu64, a.to(torch.complex128), comm, beta.double(), out_t.double(),
                        self.power[l].double(), m)
        ref = torch.cat([ref, torch.zeros_like(ref[..., :1])], 2)
        ref = torch.stack([ref.real, ref.imag], 1)
        return w.to(csi_l.dtype), ref.to(csi_l.dtype)

    def _blocks(self, x: torch.Tensor, coh: torch.Tensor) -> torch.Tensor:
        b, q, d = x.shape
        hd = d // self.heads
        for k in range(self.layers):
            qkv = self.qkv[k](x).view(b, q, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
            logits = qkv[0] @ qkv[1].transpose(-1, -2) / math.sqrt(hd) \
                + self.bias[k][None, :, None, None] * coh[:, None]
            att = torch.softmax(logits, -1) @ qkv[2]                     # (B, H, Q, hd)
            x = x + self.proj[k](att.transpose(1, 2).reshape(b, q, d))
            x = x + self.mlp[k](x)
        return x

    @staticmethod
    def _reference(hu: torch.Tensor, gl: torch.Tensor, dl: torch.Tensor, p: torch.Tensor,
                   nu: torch.Tensor, rho: torch.Tensor, power: torch.Tensor, m: int
                   ) -> torch.Tensor:
        """Reference UE beams of the AP, ``(B, M, N)`` complex128, at share ``rho P_l``.

        Joint weighted regularised zero-forcing over every AP's UE channels: with per-AP
        Grams ``G_k = H_k^H H_k / M`` (``gl (B, L, N, N)``), per-AP weights ``D_k`` (``dl
        (B, L)``) and per-UE regularisers ``nu (B, N)``, ``C = (sum_k D_k G_k / L +
        diag(nu))^-1``; AP ``k``'s slice of UE ``n``'s joint beam is ``D_k H_k c_n`` (the
        per-AP-power form of the max-min SINR beams), each joint beam scaled to power ``p_n``;
        the AP's own slice ``H_l C`` (its measured channels ``hu``) is scaled to ``rho P_l``."""
        cplx = hu.dtype
        gd = (gl * dl[..., None, None].to(cplx)).mean(1)                 # (B, N, N)
        c = torch.linalg.inv(gd + torch.diag_embed(nu.to(cplx)))         # (B, N, N)
        gw = (gl * (dl ** 2)[..., None, None].to(cplx)).sum(1)           # (B, N, N)
        norm = (c.conj() * (gw @ c)).sum(1).real.clamp_min(1e-12) * m    # (B, N) joint powers
        d = hu @ (c * torch.sqrt(p / norm)[:, None, :].to(cplx))        # (B, M, N)
        ref_p = (d.real ** 2 + d.imag ** 2).sum((1, 2))
        return d * torch.sqrt(rho * power / (ref_p + 1e-12))[:, None, None].to(cplx)

    @staticmethod
    def _ref_feats(a: torch.Tensor, ref: torch.Tensor, budget: torch.Tensor) -> torch.Tensor:
        """Per-UE features of the reference beams ``(B, N, 2)`` float32: the target gain
        ``|a_l^H r_n|^2 / (M rho P_l)`` and the power share ``||r_n||^2 / (rho P_l)``."""
        m = a.shape[1]
        ar = (a.conj() * ref).sum(1)                                     # (B, N)
        return torch.stack([(ar.real ** 2 + ar.imag ** 2) / (m * budget[:, None]),
                            (ref.real ** 2 + ref.imag ** 2).sum(1) / budget[:, None]],
                           2).float()

    @staticmethod
    def _beams(hu: torch.Tensor, a: torch.Tensor, comm: torch.Tensor, beta: torch.Tensor,
               out_t: torch.Tensor, power: torch.Tensor, m: int) -> torch.Tensor:
        """Beams ``(B, 2, M, Q)`` from the communication part ``comm (B, M, N)`` (complex128,
        at share ``rho P_l``): ``w_n = gamma comm_n + beta_n e^{j phi_n} s``, sensing ``alpha
        s``, scaled to ``P_l`` (module docstring)."""
        n = hu.shape[-1]
        cplx = hu.dtype
        eye = torch.eye(n, dtype=cplx, device=hu.device)
        g = hu.mH @ hu / m
        mu_s = out_t[:, 0] + 1e-3
        proj = hu @ torch.linalg.solve(g + mu_s[:, None, None] * eye, hu.mH @ a / m)
        s = _unit(a - proj)                                              # (B, M, 1)
        ad = (a.conj() * comm).sum(1)                                    # (B, N) a^H d_n
        as_ = (a.conj() * s).sum(1)                                      # (B, 1)
        phase = _unit((ad * as_.conj())[:, None], dim=1)                 # (B, 1, N)
        w = torch.cat([comm * out_t[:, None, None, 2].to(cplx)
                       + s * (beta[:, None, :].to(cplx) * phase),
                       s * out_t[:, None, None, 1].to(cplx)], 2)         # (B, M, Q)
        wp = (w.real ** 2 + w.imag ** 2).sum((1, 2))
        w = w * torch.sqrt(power / (wp + 1e-12))[:, None, None].to(cplx)
        return torch.stack([w.real, w.imag], 1)

    # ------------------------------------------------------------------ whole system
    def both(self, csi: torch.Tensor, rho: torch.Tensor | float
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every AP at once: ``csi (B, L, 2, M, Q)`` -> ``(beams, ref)`` each
        ``(B, L, 2, M, Q)``; AP ``l`` sees ``csi[:, l]`` only (the APs are folded into the
        batch of the one shared network)."""
        b, nl = csi.shape[:2]
        rho = torch.as_tensor(rho, dtype=csi.dtype, device=csi.device).expand(b)
        ls = torch.arange(nl, device=csi.device).repeat(b)
        w, r = self.ap_forward(csi.reshape(b * nl, *csi.shape[2:]), ls,
                               rho.repeat_interleave(nl))
        return w.view(csi.shape), r.view(csi.shape)

    def forward(self, csi: torch.Tensor, rho: torch.Tensor | float = 0.5) -> torch.Tensor:
        """``csi (B, L, 2, M, Q)`` -> beams ``(B, L, 2, M, Q)`` at operating point ``rho``."""
        return self.both(csi, rho)[0]

    def config(self) -> dict[str, Any]:
        """Constructor arguments besides the system (stored in checkpoints)."""
        cfg = {"ue_line_y": self.ue_line_y, "width": self.width, "heads": self.heads,
               "layers": self.layers}
        return cfg if self.ue_x is None else {**cfg, "ue_x": list(self.ue_x)}


# ---------------------------------------------------------------------------- NumPy twin

class NumpySpan:
    """:meth:`SpanAttn.ap_forward`'s beams in NumPy (float64), equal to torch to 1e-5 (the
    ``backend="numpy"`` path; the default is the compiled one). ``NumpySpan(net)(l, csi_l, rho)``:
    ``csi_l (B, 2, M, Q)`` -> beams ``(B, 2, M, Q)`` float32 of AP ``l`` (``reference=True``:
    its reference beams)."""

    def __init__(self, net: SpanAttn) -> None:
        sd = {k: v.detach().cpu().double().numpy() for k, v in net.state_dict().items()}
        self.w = {k[:-7]: v.T.copy() for k, v in sd.items() if k.endswith(".weight")}
        self.b = {k[:-5]: v for k, v in sd.items() if k.endswith(".bias")}
        self.bias = sd["bias"]
        self.system, self.lines, self.ue_x = net.system, np.asarray(net.ue_lines), net.ue_x
        self.ap = np.asarray(net.system.ap_xy, dtype=np.float64)
        self.power = np.asarray(net.system.P, dtype=np.float64)
        self.width, self.heads, self.layers = net.width, net.heads, net.layers
        self._k: dict[int, np.ndarray] = {}

    def _lin(self, name: str, x: np.ndarray) -> np.ndarray:
        return x @ self.w[name] + self.b[name]

    def _mlp(self, name: str, x: np.ndarray) -> np.ndarray:
        return self._lin(name + ".2", np.maximum(self._lin(name + ".0", x), 0.0))

    def __call__(self, l: int, csi_l: np.ndarray, rho: float = 0.5, reference: bool = False
                 ) -> np.ndarray:
        x = np.asarray(csi_l, dtype=np.float64)
        b, _, m, q = x.shape
        n, nl, sp = q - 1, self.system.L, self.system.spacing
        h = x[:, 0] + 1j * x[:, 1]                                       # (B, M, Q)
        hu, a = h[..., :n], h[..., n:]
        step = (h[:, 1:] * h[:, :-1].conj()).sum(1)                      # (B, Q)
        # geometry: UE positions on the line(s), every AP's cos(phi)
        cos = np.clip(np.angle(step[:, :n]) / (2 * np.pi * sp), -1.0, 1.0)
        sin = np.maximum(np.sqrt(1 - cos ** 2), SIN_MIN)
        dy = np.abs(self.lines - self.ap[l, 1])                          # (J,)
        xj = self.ap[l, 0] + dy * (cos / sin)[..., None]                 # (B, N, J)
        if self.ue_x is None:
            ux, uy = xj[..., 0], np.full(cos.shape, self.lines[0])
        else:
            lo, hi = self.ue_x
            out = np.maximum(lo - xj, 0) + np.maximum(xj - hi, 0)
            j = np.argmax(np.where(out > 0, -out - 1e6, dy), -1)[..., None]
            ux = np.clip(np.take_along_axis(xj, j, -1)[..., 0], lo, hi)
            uy = self.lines[j[..., 0]]
        dx = ux[:, None, :] - self.ap[None, :, 0:1]                      # (B, L, N)
        cos_all = dx / np.maximum(np.sqrt(dx ** 2 + (uy[:, None, :] - self.ap[None, :, 1:2])
                                          ** 2), 1e-9)
        k = self._k.get(m)
        if k is None:
            k = self._k[m] = 2 * np.pi * sp * np.arange(m)[:, None]
        hall = np.exp(1j * (cos_all[..., None, :] * k))                  # (B, L, M, N)
        hall[:, l] = hu
        gl = hall.conj().transpose(0, 1, 3, 2) @ hall / m                 # (B, L, N, N)
        gj = gl.mean(1)                                                  # (B, N, N)
        coh = gj.real ** 2 + gj.imag ** 2
        ue = np.concatenate([cos_all.transpose(0, 2, 1), ux[..., None] / POS_SCALE,
                             coh.sum(-1, keepdims=True) / n, np.full((b, n, 1), rho),
                             np.full((b, n, 1), 1.0 / n)], 2)
        t = self._mlp("embed_ue", ue)
        heads, d = self.heads, self.width
        hd = d // heads
        for j in range(self.layers):
            qkv = self._lin(f"qkv.{j}", t).reshape(b, n, 3, heads, hd).transpose(2, 0, 3, 1, 4)
            lg = qkv[0] @ qkv[1].transpose(0, 1, 3, 2) / math.sqrt(hd) \
                + self.bias[j][None, :, None, None] * coh[:, None]
            e = np.exp(lg - lg.max(-1, keepdims=True))
            att = (e / e.sum(-1, keepdims=True)) @ qkv[2]
            t = t + self._lin(f"proj.{j}", att.transpose(0, 2, 1, 3).reshape(b, n, d))
            t = t + self._mlp(f"mlp.{j}", t)
        gram = h.conj().transpose(0, 2, 1) @ h / m
        diag = np.maximum(np.diagonal(gram, axis1=1, axis2=2).real, 1e-12)
        cohl = (gram.real ** 2 + gram.imag ** 2) / (diag[:, :, None] * diag[:, None, :])
        pt = step[:, n] / (np.abs(step[:, n]) + 1e-12)
        tg = np.concatenate([pt.real[:, None], pt.imag[:, None], np.log(diag[:, n:]),
                             cohl[:, n, :n].max(-1, keepdims=True),
                             cohl[:, n, :n].mean(-1, keepdims=True),
                             np.broadcast_to(self.ap[l] / POS_SCALE, (b, 2)),
                             np.full((b, 1), rho), np.full((b, 1), 1.0 / n)], 1)
        p = np.logaddexp(0.0, self._lin("head_p", t))[..., 0]           # (B, N)
        mu_c = np.logaddexp(0.0, self._lin("head_mu", t.mean(1)))[:, 0] + 1e-3
        nu = mu_c[:, None] * np.exp(self._lin("head_nu", t)[..., 0])    # (B, N)
        apf = np.concatenate([np.broadcast_to(t[:, None], (b, nl, n, d)), cos_all[..., None],
                              np.broadcast_to((self.ap / POS_SCALE)[None, :, None],
                                              (b, nl, n, 2))], 3)
        dl = np.exp(self._mlp("head_ap", apf)[..., 0].mean(2))          # (B, L)
        pw = self.power[l]
        gd = (gl * dl[..., None, None]).mean(1)
        gw = (gl * (dl ** 2)[..., None, None]).sum(1)
        ref = _np_reference(hu, gd, gw, p, nu, rho * pw, m)
        if reference:
            r = np.concatenate([ref, np.zeros_like(a)], 2)
            return np.stack([r.real, r.imag], 1).astype(np.float32)
        ar = (a.conj() * ref).sum(1)                                     # (B, N)
        feats = np.stack([np.abs(ar) ** 2 / (m * rho * pw),
                          (np.abs(ref) ** 2).sum(1) / (rho * pw)], 2)    # (B, N, 2)
        cos_t = np.angle(step[:, n]) / (2 * np.pi * sp)
        rel = np.concatenate([cohl[:, :n, n:], (cos_all[:, l] - cos_t[:, None])[..., None],
                              feats], 2)                                 # (B, N, 4)
        e = self._mlp("embed_tg", tg)                                    # (B, D)
        kv = self._lin("cross", t + self._mlp("embed_rel", rel))
        lg = (kv[..., :d] @ e[:, :, None])[..., 0] / math.sqrt(d)
        att = np.exp(lg - lg.max(-1, keepdims=True))
        att = att / att.sum(-1, keepdims=True)
        e = e + self._mlp("mlp_tg", np.concatenate([e, (att[:, :, None] * kv[..., d:]).sum(1)],
                                                   1))
        beta = np.logaddexp(0.0, self._mlp("head_beta", np.concatenate(
            [t, np.broadcast_to(e[:, None], (b, n, d)), cohl[:, :n, n:], feats], 2)))[..., 0]
        out_t = np.logaddexp(0.0, self._lin("head_tg", np.concatenate([e, feats.mean(1)], 1)))
        fc = np.exp(self._lin("head_comm", np.concatenate([t, np.broadcast_to(e[:, None],
                                                                           (b, n, d))], 2)))
        cm = _np_reference(hu, gd, gw, p * fc[..., 0], nu * fc[..., 1], rho * pw, m)
        ar = (a.conj() * cm).sum(1)
        g = hu.conj().transpose(0, 2, 1) @ hu / m
        proj = hu @ np.linalg.solve(g + (out_t[:, 0] + 1e-3)[:, None, None] * np.eye(n),
                                    hu.conj().transpose(0, 2, 1) @ a / m)
        s = a - proj
        s = s / np.sqrt((np.abs(s) ** 2).sum(1, keepdims=True) + 1e-12)
        as_ = (a.conj() * s).sum(1)
        ph = ar * as_.conj()
        ph = ph / np.sqrt(np.abs(ph) ** 2 + 1e-12)
        comm = cm * out_t[:, None, None, 2] + s * (beta * ph)[:, None, :]
        w = np.concatenate([comm, s * out_t[:, None, None, 1]], 2)
        w = w * np.sqrt(pw / ((np.abs(w) ** 2).sum((1, 2)) + 1e-12))[:, None, None]
        return np.stack([w.real, w.imag], 1).astype(np.float32)


def _np_reference(hu: np.ndarray, gd: np.ndarray, gw: np.ndarray, p: np.ndarray,
                  nu: np.ndarray, budget: float, m: int) -> np.ndarray:
    """:meth:`SpanAttn._reference` in NumPy, from the weighted Grams ``gd = sum_k D_k G_k / L``
    and ``gw = sum_k D_k^2 G_k`` ``(B, N, N)``: the AP's slice ``(B, M, N)`` at ``budget``."""
    c = np.linalg.inv(gd + nu[:, :, None] * np.eye(gd.shape[-1]))
    norm = np.maximum((c.conj() * (gw @ c)).sum(1).real, 1e-12) * m
    dd = hu @ (c * np.sqrt(p / norm)[:, None, :])
    return dd * np.sqrt(budget / ((np.abs(dd) ** 2).sum((1, 2)) + 1e-12))[:, None, None]


class SpanAP(nn.Module):
    """AP ``l``'s view of a :class:`SpanAttn` at a fixed ``N`` and ``rho``, for export:
    ``forward(csi_l (B, 2, M, Q)) -> beams (B, 2, M, Q)`` (``one_ap``: the one-AP system)."""

    def __init__(self, net: SpanAttn, system: System, l: int, rho: float = 0.5) -> None:
        super().__init__()
        import dataclasses

        self.net, self.l, self.rho = net, l, rho
        self.one_ap = dataclasses.replace(system, ap_xy=(system.ap_xy[l],),
                                          power=(system.power[l],))

    def forward(self, csi_l: torch.Tensor) -> torch.Tensor:
        return self.net.ap_forward(csi_l, self.l, self.rho)[0]


class SpanUnit(nn.Module):
    """The per-AP views of a :class:`SpanAttn` for ``system`` (``aps``: one :class:`SpanAP`
    per AP), shaped like :class:`policies.learned.nets.DistributedNets` for the exporters."""

    def __init__(self, net: SpanAttn, system: System, rho: float = 0.5) -> None:
        super().__init__()
        self.arch, self.width, self.system = ARCH, net.width, system
        self.aps = nn.ModuleList(SpanAP(net, system, l, rho) for l in range(system.L))
