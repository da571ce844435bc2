"""Per-AP network on the AP's own channel geometry, in a canonical UE order (not in the seed).

``gram-mlp`` maps ONE AP's CSI to that AP's unnormalised beams, like every body of
:mod:`policies.learned.nets`:

    csi_l  (B, 2, M, Q) float32   ->   W_l  (B, 2, M, Q) float32

in four steps, all from ``H_l`` alone (local CSI):

1. **Canonical order.** The AP estimates each UE's direction from its own CSI, the mean phase
   step between neighbouring antennas ``psi_n = arg sum_k h[k+1, n] conj(h[k, n])`` (for the ULA
   of the system model ``psi_n = 2 pi d cos(phi_n)``), and sorts its UE columns by it; the target
   column stays last. A network over an arbitrary UE order must learn every permutation of the
   same geometry; in the sorted order neighbouring inputs are neighbouring UEs.
2. **Features.** The Gram matrix ``G = H_s^H H_s / M`` of the sorted CSI (``Q x Q`` complex: the
   UEs' and the target's mutual coherences, which decide interference) and the directions
   ``psi / pi`` (``Q`` reals; with the UEs on a known line they locate the UEs, which the other
   APs' beams depend on).
3. **MLP** ``2 Q^2 + Q -> width -> width -> width -> 2 Q^2`` with LeakyReLU: the complex
   coefficients ``C_s`` (``Q x Q``).
4. **Span head.** Beams ``W_s = H_s C_s`` (the optimal beams of an AP lie in the span of its own
   channel columns), then the beam columns are put back in the original UE order.

Real arithmetic only (no complex tensors), so the network exports to ONNX.
"""

from __future__ import annotations

import math

import torch
from torch import nn

SLOPE = 0.01


def phase_steps(re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    """Mean phase step between neighbouring antennas per column, radians in ``(-pi, pi]``.

    Args:
        re, im: ``(B, M, Q)`` real and imaginary parts of the CSI (M >= 2).

    Returns:
        ``(B, Q)``: ``arg sum_k h[k+1] conj(h[k])``.
    """
    sr = (re[:, 1:] * re[:, :-1] + im[:, 1:] * im[:, :-1]).sum(dim=1)
    si = (im[:, 1:] * re[:, :-1] - re[:, 1:] * im[:, :-1]).sum(dim=1)
    return torch.atan2(si, sr)


def canonical_order(psi: torch.Tensor) -> torch.Tensor:
    """Column order ``(B, Q)`` (int64): the UE columns by ascending ``psi``, then the target."""
    b, q = psi.shape
    ue = torch.argsort(psi[:, : q - 1], dim=1)
    return torch.cat([ue, torch.full((b, 1), q - 1, dtype=ue.dtype, device=ue.device)], dim=1)


class GramMLP(nn.Module):
    """``gram-mlp`` body: ``(B, 2, M, Q) -> (B, 2, M, Q)`` unnormalised beams (module docstring).

    Args:
        beams: ``Q = N + 1``.
        width: hidden units of each of the three hidden layers.
    """

    def __init__(self, beams: int, width: int = 256) -> None:
        super().__init__()
        q = beams
        self.Q = q
        n_in, n_out = 2 * q * q + q, 2 * q * q
        self.mlp = nn.Sequential(nn.Linear(n_in, width), nn.LeakyReLU(SLOPE),
                                 nn.Linear(width, width), nn.LeakyReLU(SLOPE),
                                 nn.Linear(width, width), nn.LeakyReLU(SLOPE),
                                 nn.Linear(width, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, m, q = x.shape
        psi = phase_steps(x[:, 0], x[:, 1])                              # (B, Q)
        order = canonical_order(psi)                                     # (B, Q)
        idx = order[:, None, None, :].expand(b, 2, m, q)
        xs = x.gather(3, idx)                                            # sorted CSI
        hr, hi = xs[:, 0], xs[:, 1]                                      # (B, M, Q)
        gr = (hr.mT @ hr + hi.mT @ hi) / m                               # Re H^H H / M
        gi = (hr.mT @ hi - hi.mT @ hr) / m                               # Im H^H H / M
        feats = torch.cat([gr.flatten(1), gi.flatten(1), psi.gather(1, order) / math.pi], 1)
        c = self.mlp(feats).view(b, 2, q, q)
        cr, ci = c[:, 0], c[:, 1]
        wr = hr @ cr - hi @ ci                                           # W_s = H_s C_s
        wi = hr @ ci + hi @ cr
        ws = torch.stack([wr, wi], dim=1)                                # (B, 2, M, Q) sorted
        inverse = torch.argsort(order, dim=1)[:, None, None, :].expand(b, 2, m, q)
        return ws.gather(3, inverse)
