"""Per-AP beamforming networks of the seed paper (section 4): 1D-CNN, CAE and U-net.

Every network maps ONE AP's CSI to that AP's beams and nothing else:

    csi_l  (B, 2, M, Q) float32   ->   beams_l  (B, 2, M, Q) float32,  sum_q ||w_lq||^2 = P_l

(axis 1 = real/imag, column N of the CSI = target steering, beam N = sensing beam). The body of a
network produces unnormalised beams; :class:`APNetwork` scales them to the AP's full budget with
:func:`cfisac_env.physics.metrics.normalize_power` (seed eqs. 17-18).

Architectures (``arch`` strings accepted by :func:`build_body`), the seed's Table 1 layer for
layer (``width`` = 16 channels in the first encoder layer, doubled at each level):

- ``cnn``: input eq. 13, the flat vector ``[Re h_l1 .. Re h_lN, Re a_l, Im h_l1 .. Im a_l]`` of
  length ``2 M Q`` as one channel; three Conv1d layers (2, 4, 8 channels, filter 11, no padding),
  each with batch norm and LeakyReLU; two fully connected layers of 90 with LeakyReLU; a linear
  layer to ``2 M Q`` values read back as eq. 15 (real parts, then imaginary parts).
- ``cae``: input eq. 14, the one-channel ``2Q x M`` image; encoder 16, 32, 64, 128 channels with
  filters (3,5), (2,5), (1,3), (1,3) and no padding, decoder of transposed convolutions on the
  concatenated encoder maps (32, 64, 128, 256 input channels), see :class:`CAE`.
- ``unet``, ``unet-f3``, ``unet-f5``, ``unet-f7``: the same image; the U-net without pooling,
  encoder 16, 32, 64, 128 channels, decoder on the concatenated maps (32, 64, 128, 256 input
  channels), square filters of size 3 (``unet`` = ``unet-f3``), 5 or 7 with size-keeping zero
  padding, see :class:`UNet`.

Our reading where the seed is silent: the eq. 14 image is one channel (``blk`` folds real and
imaginary parts into rows; only that orientation fits the CAE's filters at every N); a bridge
layer joins the encoder's bottom to the decoder (its 256-channel input needs a 128-channel map
beside the encoder's last); batch norm before LeakyReLU as in the 1D-CNN; a linear output layer.

Beyond the seed (``gram-mlp``, :mod:`policies.learned.architectures`): each AP sorts its UE columns
by its own
direction estimate, and an MLP on its Gram matrix outputs span coefficients (``W_l = H_l C_l``).
"""

from __future__ import annotations

import dataclasses
import warnings

import torch
from torch import nn

from cfisac_env.physics.metrics import normalize_power
from cfisac_env.physics.system import System
from policies.learned.architectures import GramMLP

BASE_ARCHS = ("cnn", "cae", "unet", "unet-f3", "unet-f5", "unet-f7")
# Beyond the seed: per-AP networks on the AP's own channel geometry (see
# policies.learned.architectures).
GEOMETRY_ARCHS = ("gram-mlp",)
ARCHS = BASE_ARCHS + GEOMETRY_ARCHS
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


def image_eq14(x: torch.Tensor) -> torch.Tensor:
    """Eq. 14: ``(B, 2, M, Q)`` -> ``(B, 1, 2Q, M)``, the one-channel image
    ``blk[Re H_l, Im H_l]`` whose rows are ``Re h_l1^T .. Re a_l^T, Im h_l1^T .. Im a_l^T`` (the
    vector of eq. 13 folded into rows of length M)."""
    return flatten_eq13(x).reshape(x.shape[0], 1, 2 * x.shape[-1], x.shape[-2])


def unimage_eq16(y: torch.Tensor) -> torch.Tensor:
    """Eq. 16, the inverse of :func:`image_eq14`: ``(B, 1, 2Q, M)`` -> ``(B, 2, M, Q)``."""
    b, _, two_q, m = y.shape
    return unflatten_eq15(y.reshape(b, -1), m, two_q // 2)


class _SkipNet(nn.Module):
    """Encoder ``enc`` (4 layers), ``bridge``, decoder ``dec`` (3 layers) and ``out`` on the
    eq. 14 image, each decoder layer fed the level below concatenated with the matching encoder
    map (set by the subclass); ``(B, 2, M, Q) -> (B, 2, M, Q)``."""

    enc: nn.ModuleList
    bridge: nn.Module
    dec: nn.ModuleList
    out: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips, h = [], image_eq14(x)
        for layer in self.enc:
            h = layer(h)
            skips.append(h)
        h = self.bridge(h)
        for layer, skip in zip(self.dec, skips[:0:-1], strict=True):
            h = layer(torch.cat([h, skip], dim=1))
        return unimage_eq16(self.out(torch.cat([h, skips[0]], dim=1)))


class UNet(_SkipNet):
    """The seed's U-net (Table 1), no pooling: ``(B, 2, M, Q) -> (B, 2, M, Q)`` unnormalised.

    On the eq. 14 image ``(B, 1, 2Q, M)``, size kept everywhere (``filt x filt``, zero padding
    ``filt // 2``), batch norm + LeakyReLU after every conv but the output:

    - encoder ``e1..e4``: 16, 32, 64, 128 channels (``width`` x 1, 2, 4, 8);
    - a bridge conv at the bottom (128 -> 128), the U-net's bottleneck without pooling;
    - decoder ``d4..d1`` on the concatenation of the level below and the matching encoder map:
      inputs 256, 128, 64, 32 channels (Table 1's decoder), outputs 64, 32, 16 and the 1-channel
      eq. 16 image (linear).
    """

    def __init__(self, width: int = 16, filt: int = 3) -> None:
        super().__init__()
        if filt % 2 != 1:
            raise ValueError(f"filter size must be odd to keep the size, got {filt}")
        c = [width, 2 * width, 4 * width, 8 * width]
        self.enc = nn.ModuleList(_conv2d(a, b, filt) for a, b in zip([1, *c[:-1]], c,
                                                                     strict=True))
        self.bridge = _conv2d(c[3], c[3], filt)
        self.dec = nn.ModuleList(_conv2d(2 * c[k], c[k - 1], filt) for k in (3, 2, 1))
        self.out = nn.Conv2d(2 * c[0], 1, filt, padding=filt // 2)



# The CAE's encoder filters (Table 1); the decoder mirrors them with transposed convolutions.
CAE_FILTERS = ((3, 5), (2, 5), (1, 3), (1, 3))


class CAE(_SkipNet):
    """The seed's convolutional auto-encoder (Table 1): ``(B, 2, M, Q) -> (B, 2, M, Q)``.

    On the eq. 14 image ``(B, 1, 2Q, M)``, no padding: the encoder convs (16, 32, 64, 128
    channels; filters (3,5), (2,5), (1,3), (1,3)) shrink the image to ``(2Q - 3) x (M - 10)``;
    a bridge (1 x 1 conv, 128 -> 128); the decoder's transposed convs (same filters in reverse)
    grow it back, each on the concatenation of the level below and the matching encoder map
    (inputs 256, 128, 64, 32 channels, Table 1's decoder); the last one outputs the eq. 16 image
    (linear). Batch norm + LeakyReLU after every layer but the output. Needs ``M >= 11``.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        c = [width, 2 * width, 4 * width, 8 * width]
        self.enc = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, k, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(SLOPE))
            for a, b, k in zip([1, *c[:-1]], c, CAE_FILTERS, strict=True))
        self.bridge = _conv2d(c[3], c[3], 1)
        self.dec = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(2 * c[k], c[k - 1], CAE_FILTERS[k], bias=False),
                          nn.BatchNorm2d(c[k - 1]), nn.LeakyReLU(SLOPE)) for k in (3, 2, 1))
        self.out = nn.ConvTranspose2d(2 * c[0], 1, CAE_FILTERS[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] < 11:
            raise ValueError(f"the CAE's filters need M >= 11 antennas, got {x.shape[-2]}")
        return super().forward(x)


def default_width(arch: str) -> int:
    """The architecture's own width: 16 channels for the seed's nets (Table 1), 256 hidden units
    for ``gram-mlp``."""
    return 256 if arch == "gram-mlp" else 16


def build_body(arch: str, system: System, width: int = 16) -> nn.Module:
    """The unnormalised network ``arch`` for one AP of ``system`` (see module docstring)."""
    if arch == "cnn":
        return CNN1D(system.M, system.Q)
    if arch == "gram-mlp":
        return GramMLP(system.Q, width)
    if arch == "cae":
        return CAE(width)
    if arch in ("unet", "unet-f3", "unet-f5", "unet-f7"):
        return UNet(width, 3 if arch == "unet" else int(arch[-1]))
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
    sends gradients to all L networks. ``width`` None = :func:`default_width` of ``arch``.
    """

    def __init__(self, system: System, arch: str = "unet", width: int | None = None) -> None:
        super().__init__()
        width = default_width(arch) if width is None else width
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
