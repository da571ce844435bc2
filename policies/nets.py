"""Per-AP beamforming networks of the seed paper (section 4): 1D-CNN, CAE and U-net.

Every network maps ONE AP's CSI to that AP's beams and nothing else:

    csi_l  (B, 2, M, Q) float32   ->   beams_l  (B, 2, M, Q) float32,  sum_q ||w_lq||^2 = P_l

(axis 1 = real/imag, column N of the CSI = target steering, beam N = sensing beam). The body of a
network produces unnormalised beams; :class:`APNetwork` scales them to the AP's full budget with
:func:`cfisac_env.metrics.normalize_power` (seed eqs. 17-18).

Architectures (``arch`` strings accepted by :func:`build`):

- ``cnn``: input eq. 13, the flat vector ``[Re h_l1 .. Re h_lN, Re a_l, Im h_l1 .. Im a_l]`` of
  length ``2 M Q`` as one channel; three Conv1d layers (2, 4, 8 channels, filter 11, no padding),
  each with batch norm and LeakyReLU; two fully connected layers of 90 with LeakyReLU; a linear
  layer to ``2 M Q`` values read back as eq. 15 (real parts, then imaginary parts).
- ``cae``: input eq. 14, the ``2 x M x Q`` image; a convolutional auto-encoder without pooling
  (zero padding keeps the size) whose decoder adds the matching encoder maps (skip connections).
- ``unet``, ``unet-f3``, ``unet-f5``, ``unet-f7``: the same encoder, with the decoder
  concatenating the encoder maps (U-net without pooling); the suffix sets the square filter size
  (``unet`` = ``unet-f3``). The CAE uses filter 3.

Span head (suffix ``-span``: ``unet-span``, ``unet-f5-span``, ``cae-span``...; opt-in, not in the
seed): the optimal beams of AP ``l`` lie in the span of its own CSI columns (see
:mod:`policies.cvx_basis`), so the network outputs a complex ``Q x Q`` coefficient matrix ``C_l``
and the beams are ``W_l = H_l C_l`` (then eqs. 17-18 as usual). Every metric depends on such beams
only through the Gram matrix ``G_l = H_l^H H_l`` and ``C_l`` (``H^H W = G C``,
``||W||_F^2 = tr(C^H G C)``), so the body's input is ``G_l / M`` as a ``2 x Q x Q`` image (real,
imaginary) instead of the ``2 x M x Q`` CSI: lossless for this head, and ``M / Q`` times smaller.
The body (same CAE/U-net) maps ``(B, 2, Q, Q) -> (B, 2, Q, Q)``. Still local: AP ``l`` uses only
``H_l``.

Conv layers of the CAE/U-net use batch norm and LeakyReLU; the output layer is linear.
``width`` is the channel count of the first encoder layer (doubled at each of the three levels).
"""

from __future__ import annotations

import dataclasses
import warnings

import torch
from torch import nn

from cfisac_env.metrics import normalize_power
from cfisac_env.system import System

BASE_ARCHS = ("cnn", "cae", "unet", "unet-f3", "unet-f5", "unet-f7")
SPAN_SUFFIX = "-span"
ARCHS = BASE_ARCHS + tuple(a + SPAN_SUFFIX for a in BASE_ARCHS if a != "cnn")
SLOPE = 0.01  # LeakyReLU negative slope (PyTorch default)


def _conv2d(c_in: int, c_out: int, k: int) -> nn.Sequential:
    """Size-keeping conv (zero padding ``k // 2``) + batch norm + LeakyReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.LeakyReLU(SLOPE))


def flatten_eq13(x: torch.Tensor) -> torch.Tensor:
    """Eq. 13: ``(B, 2, M, Q)`` -> ``(B, 1, 2QM)``, the real parts of the columns
    ``h_l1 .. h_lN, a_l`` one after another, then their imaginary parts."""
    return x.transpose(-1, -2).reshape(x.shape[0], 1, -1)


def unflatten_eq15(v: torch.Tensor, antennas: int, beams: int) -> torch.Tensor:
    """Eq. 15, the inverse of :func:`flatten_eq13`: ``(B, 2QM)`` -> ``(B, 2, M, Q)``."""
    return v.reshape(v.shape[0], 2, beams, antennas).transpose(-1, -2)


class CNN1D(nn.Module):
    """The seed's 1D-CNN (eqs. 13, 15): ``(B, 2, M, Q) -> (B, 2, M, Q)`` unnormalised beams."""

    def __init__(self, antennas: int, beams: int, hidden: int = 90, filt: int = 11) -> None:
        super().__init__()
        self.M, self.Q = antennas, beams
        n = 2 * antennas * beams
        chans = (1, 2, 4, 8)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=False):
            layers += [nn.Conv1d(c_in, c_out, filt), nn.BatchNorm1d(c_out), nn.LeakyReLU(SLOPE)]
        self.conv = nn.Sequential(*layers)
        flat = chans[-1] * (n - 3 * (filt - 1))
        if flat <= 0:
            raise ValueError(f"cnn needs 2*M*Q > {3 * (filt - 1)}, got {n}")
        self.fc = nn.Sequential(nn.Linear(flat, hidden), nn.LeakyReLU(SLOPE),
                                nn.Linear(hidden, hidden), nn.LeakyReLU(SLOPE),
                                nn.Linear(hidden, n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(self.conv(flatten_eq13(x)).flatten(1))               # (B, 2QM)
        return unflatten_eq15(y, self.M, self.Q)


class ConvAE(nn.Module):
    """CAE with additive skips (``concat=False``) or U-net with concatenated skips (``True``),
    no pooling: ``(B, 2, M, Q) -> (B, 2, M, Q)`` unnormalised beams."""

    def __init__(self, width: int = 16, filt: int = 3, concat: bool = True) -> None:
        super().__init__()
        if filt % 2 != 1:
            raise ValueError(f"filter size must be odd to keep the size, got {filt}")
        c1, c2, c3 = width, 2 * width, 4 * width
        self.concat = concat
        self.enc1, self.enc2, self.enc3 = _conv2d(2, c1, filt), _conv2d(c1, c2, filt), \
            _conv2d(c2, c3, filt)
        k = 2 if concat else 1
        self.dec2 = _conv2d(c3, c2, filt)
        self.dec1 = _conv2d(k * c2, c1, filt)
        self.out = nn.Conv2d(k * c1, 2, filt, padding=filt // 2)

    def _join(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, b], dim=1) if self.concat else a + b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        d2 = self.dec2(self.enc3(e2))
        d1 = self.dec1(self._join(d2, e2))
        return self.out(self._join(d1, e1))


class SpanHead(nn.Module):
    """Span output head: ``csi_l (B, 2, M, Q) -> H_l C_l`` with ``C_l = body(G_l / M)``.

    ``body`` maps the Gram image ``(B, 2, Q, Q)`` (real, imaginary of ``H_l^H H_l / M``) to the
    coefficients ``(B, 2, Q, Q)``; the result is the ``(B, 2, M, Q)`` unnormalised beams.
    """

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.complex(x[:, 0], x[:, 1])                              # (B, M, Q)
        g = (h.mH @ h) / h.shape[-2]                                     # (B, Q, Q)
        c = self.body(torch.stack([g.real, g.imag], dim=1))              # (B, 2, Q, Q)
        w = h @ torch.complex(c[:, 0], c[:, 1])                          # (B, M, Q)
        return torch.stack([w.real, w.imag], dim=1)


def build_body(arch: str, system: System, width: int = 16) -> nn.Module:
    """The unnormalised network ``arch`` for one AP of ``system`` (see module docstring)."""
    if arch.endswith(SPAN_SUFFIX) and arch in ARCHS:
        return SpanHead(build_body(arch[: -len(SPAN_SUFFIX)], system, width))
    if arch == "cnn":
        return CNN1D(system.M, system.Q)
    if arch == "cae":
        return ConvAE(width, 3, concat=False)
    if arch in ("unet", "unet-f3", "unet-f5", "unet-f7"):
        filt = 3 if arch == "unet" else int(arch[-1])
        return ConvAE(width, filt, concat=True)
    raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")


def ap_system(system: System, l: int) -> System:
    """The one-AP system of AP ``l`` (its position and budget), for per-AP normalisation."""
    return dataclasses.replace(system, ap_xy=(system.ap_xy[l],), power=(system.power[l],))


class APNetwork(nn.Module):
    """One AP's network: body + full-budget normalisation (eqs. 17-18).

    ``forward(csi_l (B, 2, M, Q)) -> beams_l (B, 2, M, Q)`` with ``sum ||w_lq||^2 = P_l`` W.
    """

    def __init__(self, body: nn.Module, system: System, l: int) -> None:
        super().__init__()
        self.body = body
        self.one_ap = ap_system(system, l)

    def forward(self, csi_l: torch.Tensor) -> torch.Tensor:
        w = self.body(csi_l)
        return normalize_power(w.unsqueeze(1), self.one_ap).squeeze(1)


class DistributedNets(nn.Module):
    """The training unit: L networks of one architecture with separate weights.

    ``forward(csi (B, L, 2, M, Q)) -> beams (B, L, 2, M, Q)``: AP ``l``'s network sees only
    ``csi[:, l]``; the predictions are concatenated so that a loss on the whole system's g1/g2
    sends gradients to all L networks.
    """

    def __init__(self, system: System, arch: str = "unet", width: int = 16) -> None:
        super().__init__()
        self.system, self.arch, self.width = system, arch, width
        self.aps = nn.ModuleList(APNetwork(build_body(arch, system, width), system, l)
                                 for l in range(system.L))

    def forward(self, csi: torch.Tensor) -> torch.Tensor:
        return torch.stack([net(csi[:, l]) for l, net in enumerate(self.aps)], dim=1)


def export_ap(net: APNetwork, path: str, example: torch.Tensor | None = None) -> None:
    """Save AP network ``net`` alone as TorchScript (traced in eval mode) at ``path``.

    Load with ``torch.jit.load(path)``; it maps ``(B, 2, M, Q)`` float32 to the AP's beams.
    """
    m, q = net.one_ap.M, net.one_ap.Q
    x = example if example is not None else torch.ones(1, 2, m, q)
    was_training = net.training
    net.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")     # the budget becomes a trace constant, as intended
        traced = torch.jit.trace(net, x)
    traced.save(str(path))
    net.train(was_training)
