"""Export each AP's network alone for deployment: ONNX, TorchScript, or a ``torch.export`` program.

A learned distributed policy is ``L`` independent per-AP maps; AP ``l`` runs only its own::

    csi_l  (B, 2, M, Q) float32   ->   beams_l  (B, 2, M, Q) float32,  sum_q ||w_lq||^2 = P_l

(axis 1 = real/imag, column N = the target steering, beam N = the sensing beam; the budget
normalisation of eqs. 17-18 is part of every exported graph). The batch ``B`` is dynamic; ``M``
and ``Q = N + 1`` are fixed at export. :func:`ap_modules` gives the per-AP modules of a policy:

- the seed scheme's nets (``paper-student``, ``ssnr-teacher``, ...): ``policy.nets.aps[l]``
  (:class:`policies.learned.nets.APNetwork`);
- the any-N ``span-attn`` policies (``student``, ``sinr-teacher``):
  :class:`policies.learned.span_graph.SpanGraph`, the policy's per-AP map at the exported ``N``
  in real float64 arithmetic (no complex dtypes; the two Hermitian positive-definite solves by
  an unrolled Cholesky factorisation), at the policy's ``rho``, with ``sinr-teacher``'s
  reference beams as its output, and with the policy's single-path LoS fit of the CSI
  (:mod:`cfisac_env.physics.los_fit`, on under a LoS channel) inside the graph: the file takes
  the AP's raw CSI. The policy's own inference paths do not use it and keep their numbers. It
  equals the torch policy to 1.1e-6 on ``pos2``; on ``street`` the in-graph fit (equal to the
  compiled one to float32 rounding) moves the beams by up to 2e-5 (see its module).

Formats (:data:`FORMATS`, one file per AP, ``ap_<l><suffix>``):

- ``"onnx"`` (``.onnx``): ``torch.onnx.export(..., dynamo=True)``, input ``"csi"``, output
  ``"beams"``; run it with onnxruntime (:func:`onnx_session`, :func:`run_onnx`). A span policy's
  APs share one graph, exported once (:func:`export_span_onnx`); each file holds its AP's
  constants.
- ``"torchscript"`` (``.pt``): TorchScript, ``torch.jit.trace`` in eval mode; load with
  ``torch.jit.load(path)`` (:func:`load_torchscript`), no cfisac import needed (recent torch
  marks TorchScript deprecated and warns on load).
- ``"pt2"`` (``.pt2``): a ``torch.export`` ``ExportedProgram`` saved with ``torch.export.save``
  (TorchScript's successor); load with ``torch.export.load(path).module()``
  (:func:`load_program`).

:func:`export_nets` writes the files; ``runners/export.py`` adds ``export.json`` and checks each
file against the torch policy. Needs torch >= 2.5 and, for ONNX, the ``onnx`` and ``onnxscript``
packages (``pip install "cfisac[ecosystem]"``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from policies.learned.span import ARCH as SPAN
from policies.learned.span_graph import AP_TENSORS, SpanCore, SpanGraph

FORMATS = ("onnx", "torchscript", "pt2")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "pt2": ".pt2"}
INPUT, OUTPUT = "csi", "beams"


def ap_modules(policy: Any) -> list[nn.Module]:
    """The per-AP modules of a learned distributed ``policy`` to export (module docstring):
    ``span-attn`` policies as :class:`SpanGraph` s, others as ``policy.nets.aps``."""
    nets = policy.nets
    if getattr(nets, "arch", None) == SPAN:
        return [SpanGraph(policy.net, policy.system, l, policy.rho, policy.spec.reference,
                          policy.los_fit).eval() for l in range(policy.system.L)]
    return list(nets.aps)


def _example(net: nn.Module, batch: int = 2) -> torch.Tensor:
    """A ``(batch, 2, M, Q)`` float32 input for tracing (any values: the graph is traced)."""
    m, q = net.one_ap.M, net.one_ap.Q
    g = torch.Generator().manual_seed(0)
    return torch.randn(batch, 2, m, q, generator=g)


def _dynamic_batch(*fixed: str) -> dict[str, Any]:
    """Dynamic shapes: ``csi_l``'s batch; the inputs named in ``fixed`` static."""
    return {"csi_l": {0: torch.export.Dim("batch", min=1, max=1 << 20)},
            **{name: None for name in fixed}}


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' progress prints, warnings and log lines."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo",
                                               "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


@contextlib.contextmanager
def _eval(net: nn.Module):
    """``net`` in eval mode, no gradients, exporters quiet; its mode restored after."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), _quiet():
            yield
    finally:
        net.train(was_training)


def export_program(net: nn.Module) -> torch.export.ExportedProgram:
    """``torch.export`` of one AP's module in eval mode, dynamic batch."""
    with _eval(net):
        return torch.export.export(net, (_example(net),), dynamic_shapes=_dynamic_batch())


def export_onnx(net: nn.Module, path: str | Path) -> Path:
    """Write AP module ``net`` alone as ONNX at ``path`` (input ``"csi"``, output ``"beams"``,
    each ``(B, 2, M, Q)`` float32 with a dynamic ``B``)."""
    path = Path(path)
    with _eval(net):
        prog = torch.onnx.export(net, (_example(net),), dynamo=True,
                                 dynamic_shapes=_dynamic_batch(), input_names=[INPUT],
                                 output_names=[OUTPUT], verbose=False)
        prog.save(str(path))
    return path


def export_span_onnx(graphs: list[SpanGraph], paths: list[str | Path]) -> list[Path]:
    """Write the :class:`SpanGraph` s of one policy as ONNX files ``paths`` (one per AP), the
    graph exported once: :class:`SpanCore` with the AP tensors (:data:`AP_TENSORS`) as inputs,
    which each file then holds as constants (initializers) of its AP, leaving ``"csi"`` the one
    input."""
    import onnx
    from onnx import numpy_helper

    first = graphs[0]
    core = SpanCore(first)
    with _eval(core):
        prog = torch.onnx.export(core, (_example(first), *first.ap_tensors()), dynamo=True,
                                 dynamic_shapes=_dynamic_batch(*AP_TENSORS),
                                 input_names=[INPUT, *AP_TENSORS], output_names=[OUTPUT],
                                 verbose=False)
    proto = prog.model_proto
    out = []
    for graph, path in zip(graphs, paths, strict=True):
        model = onnx.ModelProto()
        model.CopyFrom(proto)
        keep = [i for i in model.graph.input if i.name not in AP_TENSORS]
        del model.graph.input[:]
        model.graph.input.extend(keep)
        model.graph.initializer.extend(
            numpy_helper.from_array(t.detach().cpu().numpy(), name)
            for name, t in zip(AP_TENSORS, graph.ap_tensors(), strict=True))
        onnx.save(model, str(path))
        out.append(Path(path))
    return out


def export_torchscript(net: nn.Module, path: str | Path) -> Path:
    """Write AP module ``net`` alone as TorchScript (``torch.jit.trace`` in eval mode) at
    ``path``; ``torch.jit.load(path)`` maps ``(B, 2, M, Q)`` float32 to the AP's beams, any
    ``B``."""
    path = Path(path)
    with _eval(net):      # trace warnings: the budget and shapes but B are constants, as meant
        traced = torch.jit.trace(net, _example(net), check_trace=False)
    traced.save(str(path))
    return path


def export_pt2(net: nn.Module, path: str | Path) -> Path:
    """Write AP module ``net`` alone as a ``torch.export`` program (``.pt2``) at ``path``."""
    path = Path(path)
    torch.export.save(export_program(net), str(path))
    return path


WRITERS = {"onnx": export_onnx, "torchscript": export_torchscript, "pt2": export_pt2}


def export_nets(aps: Any, out: str | Path, fmt: str = "onnx") -> list[Path]:
    """Write every AP's module (``aps``: a sequence of them, e.g. :func:`ap_modules` or
    ``policy.nets.aps``) into folder ``out`` as ``ap_<l>`` + :data:`SUFFIX` ``[fmt]``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    paths = [out / f"ap_{l}{SUFFIX[fmt]}" for l in range(len(aps))]
    if fmt == "onnx" and aps and all(isinstance(a, SpanGraph) for a in aps):
        return export_span_onnx(list(aps), paths)
    return [WRITERS[fmt](net, path) for net, path in zip(aps, paths, strict=True)]


def onnx_session(path: str | Path, threads: int = 1) -> Any:
    """An onnxruntime CPU ``InferenceSession`` of an exported file (``threads`` intra-op)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_onnx(session: Any, csi_l: np.ndarray) -> np.ndarray:
    """``csi_l (B, 2, M, Q)`` float32 -> beams ``(B, 2, M, Q)`` float32 through ``session``."""
    return session.run([OUTPUT], {INPUT: np.ascontiguousarray(csi_l, dtype=np.float32)})[0]


def load_torchscript(path: str | Path) -> torch.nn.Module:
    """The TorchScript module of a ``.pt`` file written by :func:`export_torchscript`."""
    return torch.jit.load(str(path))


def load_program(path: str | Path) -> torch.nn.Module:
    """The callable module of a ``.pt2`` file written by :func:`export_pt2`."""
    return torch.export.load(str(path)).module()


def run_file(path: str | Path, fmt: str, csi_l: np.ndarray) -> np.ndarray:
    """Beams ``(B, 2, M, Q)`` float32 of the exported file ``path`` (format ``fmt``) on
    ``csi_l (B, 2, M, Q)``: onnxruntime, ``torch.jit.load`` or ``torch.export.load``."""
    if fmt == "onnx":
        return run_onnx(onnx_session(path), csi_l)
    module = load_torchscript(path) if fmt == "torchscript" else load_program(path)
    with torch.no_grad():
        return module(torch.from_numpy(np.ascontiguousarray(csi_l, dtype=np.float32))).numpy()
