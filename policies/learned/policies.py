"""The learned distributed policies: each AP runs its own network on its own CSI only.

``policies.make(name, system, scenario="pos2", checkpoint=None, ...)`` for every name of
:data:`policies.learned.roles.ROLES`:

- ``student`` / ``sinr-teacher`` (scheme ``span``): the scenario family's ONE any-N
  ``span-attn`` network (``<family>-span-attn.pt``, any N from 1 to 16); options ``rho``
  (operating point, default 0.5), ``backend``, ``channel`` and ``los_fit`` (under a LoS
  channel every CSI column is first replaced by its single-path LoS fit,
  :mod:`cfisac_env.physics.los_fit`: a denoiser of estimated CSI, the identity on exact CSI).
- ``paper-student``, ``paper-sinr-teacher``, ``ssnr-teacher``,
  ``fixed-beta``, ``fixed-lambda`` (scheme ``paper``, the seed's eqs. 10-12): one checkpoint per
  ``(family, N)``; options ``arch`` and ``backend``.

The inference path (``backend``) is the fastest one at batch 1 by default: ``"compiled"``, the
network's whole per-AP forward compiled by numba (:mod:`policies.learned.fastpath`: ``span-attn``
and ``gram-mlp``; the seed's convolutional nets have no compiled twin and run in torch). Also
``"torch"`` (the module itself, any ``device``) and, for ``span-attn``, ``"numpy"`` (its NumPy
twin :class:`policies.learned.span.NumpySpan`). Every path gives torch's beams to 1e-5
(``python runners/bench_policy.py latency`` measures them side by side).

Without ``checkpoint`` the one for the scenario is looked up (:mod:`policies.learned.checkpoints`:
the checkpoint root, then the shipped folder, the scenario's ``base`` chain, the runners' cache);
a missing one, or one made for another system, is a one-line :class:`CheckpointMissing` naming
the file and the command that trains one; an explicit ``checkpoint`` that does not exist or is not
a cfisac checkpoint says so; a ``scenario`` the loader does not know is the loader's own
``ValueError``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from cfisac_env.physics.los_fit import los_fit as fit_los
from cfisac_env.physics.propagation import MODELS
from cfisac_env.physics.system import System
from policies.base import DistributedPolicy
from policies.learned import checkpoints as store
from policies.learned.fastpath import FastGram, FastSpan
from policies.learned.roles import role as role_of
from policies.learned.span import NumpySpan, SpanUnit

# A missing, unreadable or foreign checkpoint (the store's error, under its historical name).
CheckpointMissing = store.CheckpointError
#: Inference paths, the default first.
BACKENDS = ("compiled", "torch", "numpy")


class LearnedPolicy(DistributedPolicy):
    """A learned role (class attribute ``role``, a name of the roles table) as a distributed
    policy.

    Args:
        system: the system to act in (span: any N from 1 to 16; paper: the checkpoint's).
        scenario: scenario family whose checkpoint is used (``pos1``, ``pos2``, ``road``...; a
            scenario without its own uses its ``base`` chain's).
        checkpoint: path of a checkpoint to use instead.
        arch: paper scheme only, the architecture of the checkpoint (None = any shipped).
        rho: span scheme only, the operating point (communication share of the reference).
        backend: inference path (module docstring): ``"compiled"`` (default, fastest),
            ``"torch"`` or, span scheme only, ``"numpy"``. ``"compiled"`` compiles on its first
            use on a machine (cached in ``__pycache__``) and runs once here, so no decision
            waits for the compiler. A ``device`` other than the CPU runs the torch module there.
        device: torch device (``backend="torch"``, or a paper net without a compiled twin).
        channel: the scenario's channel model (``[channel] model``; the evaluation harness
            passes it on), ``"los"`` by default.
        los_fit: span scheme only, whether each AP fits its CSI columns to single LoS paths
            before its network (None: when ``channel`` is ``"los"``).
    """

    role = "student"

    def __init__(self, system: System, scenario: str = "pos2", checkpoint: str | Path | None = None,
                 arch: str | None = None, rho: float = 0.5, backend: str = "compiled",
                 device: str = "cpu", channel: str = "los", los_fit: bool | None = None
                 ) -> None:
        super().__init__(system)
        spec = role_of(self.role)
        self.spec, self.device = spec, torch.device(device)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, "
                             f"got {backend!r}")
        if channel not in MODELS:
            raise ValueError(f"channel must be one of {', '.join(map(repr, MODELS))}, got "
                             f"{channel!r}")
        if self.device.type != "cpu" and backend != "torch":
            backend = "torch"                         # an accelerator: the torch module on it
        if spec.scheme == "span":
            if not 0.0 < rho <= 1.0:
                raise ValueError(f"rho must be in (0, 1], got {rho!r}")
            path = store.require_span(scenario) if checkpoint is None else Path(checkpoint)
            self.net, self.meta = store.load_span(path, system, scenario)
            self.net.to(self.device)
            self.rho = spec.rho if spec.rho is not None else float(rho)
            self.nets = SpanUnit(self.net, system, self.rho)
            self.los_fit = channel == "los" if los_fit is None else bool(los_fit)
            self._act = self._span_path(backend)
        else:
            if backend == "numpy":
                raise ValueError(f"backend 'numpy' exists for the span-attn network only; "
                                 f"{self.role} takes 'compiled' or 'torch'")
            path = store.require(scenario, system.N, spec.trained, arch) if checkpoint is None \
                else checkpoint
            self.nets, self.meta = store.load(path, system, device,
                                              command=store.paper_command(scenario, system.N,
                                                                          arch, spec.trained))
            self.nets.eval()
            if backend == "compiled" and self.nets.arch == "gram-mlp":
                fast = [FastGram(ap) for ap in self.nets.aps]
                self._act = lambda l, x: fast[l](x)
            else:                                     # torch, or no compiled twin (seed nets)
                backend = "torch"
                self._act = self._torch_paper
        self.backend = backend
        self.checkpoint = Path(path)

    def _span_path(self, backend: str) -> Callable[[int, np.ndarray], np.ndarray]:
        """AP ``l``'s span-attn forward ``(l, csi_l) -> beams`` on ``backend``."""
        rho, ref = self.rho, self.spec.reference
        if backend == "compiled":
            fast = FastSpan(self.net, los_fit=self.los_fit)
            return lambda l, x: fast(l, x, rho, ref)
        sp = self.system.spacing
        fit = (lambda x: fit_los(x, sp)) if self.los_fit else (lambda x: x)
        if backend == "numpy":
            twin = NumpySpan(self.net)
            return lambda l, x: twin(l, fit(x), rho, ref)
        return lambda l, x: self._torch_span(l, fit(x))

    @torch.no_grad()
    def _torch_span(self, l: int, csi_l: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(csi_l, dtype=np.float32), device=self.device)
        w, ref = self.net.ap_forward(x, l, self.rho)
        return (ref if self.spec.reference else w).cpu().numpy()

    @torch.no_grad()
    def _torch_paper(self, l: int, csi_l: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.asarray(csi_l, dtype=np.float32), device=self.device)
        return self.nets.aps[l](x).cpu().numpy()

    def act_ap(self, l: int, csi_l: np.ndarray) -> np.ndarray:
        """AP ``l``'s network alone: ``(B, 2, M, Q)`` float32 -> beams ``(B, 2, M, Q)``."""
        return self._act(l, csi_l)


class Student(LearnedPolicy):
    """The shipped best student: the any-N span-attn network at ``rho`` (default 0.5)."""

    role = "student"


class SINRTeacher(LearnedPolicy):
    """The span-attn network's max-min SINR reference beams at the full budget."""

    role = "sinr-teacher"


class SSNRTeacher(LearnedPolicy):
    """The seed's SSNR teacher: eq. 10 at beta = 0 (sensing only)."""

    role = "ssnr-teacher"


class PaperStudent(LearnedPolicy):
    """The seed's published student: eq. 11, lambda adapted by eq. 12 (one net per N)."""

    role = "paper-student"


class PaperSINRTeacher(LearnedPolicy):
    """The seed's SINR teacher (eq. 10, beta = 1)."""

    role = "paper-sinr-teacher"


class FixedBeta(LearnedPolicy):
    """Sensitivity baseline: eq. 10 with a fixed beta (seed Fig. 11)."""

    role = "fixed-beta"


class FixedLambda(LearnedPolicy):
    """Sensitivity baseline: eq. 11 with a fixed lambda (seed Fig. 12)."""

    role = "fixed-lambda"
