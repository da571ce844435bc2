"""Export each AP's network alone for deployment: ONNX, or a ``torch.export`` program.

A learned distributed policy is ``L`` independent networks; AP ``l`` runs only its own
(:class:`policies.learned.nets.APNetwork`, ``policy.nets.aps[l]``)::

    csi_l  (B, 2, M, Q) float32   ->   beams_l  (B, 2, M, Q) float32,  sum_q ||w_lq||^2 = P_l

(axis 1 = real/imag, column N = the target steering, beam N = the sensing beam; the budget
normalisation of eqs. 17-18 is part of the exported graph). The batch ``B`` is dynamic.

- ``"onnx"``: :func:`export_onnx`, ``torch.onnx.export(..., dynamo=True)`` (the ``torch.export``
  based exporter), input ``"csi"``, output ``"beams"``; run it with onnxruntime
  (:func:`onnx_session`).
- ``"torchscript"``: TorchScript's replacement, a ``torch.export`` ``ExportedProgram`` saved with
  ``torch.export.save`` (``.pt2``); load with ``torch.export.load(path).module()``.

:func:`export_policy` writes one file per AP, ``ap_<l>.onnx`` / ``ap_<l>.pt2``, plus
``export.json`` describing them. Needs torch >= 2.5 and, for ONNX, the ``onnx`` and
``onnxscript`` packages (``pip install "cfisac[ecosystem]"``).
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

from policies.learned.nets import APNetwork

FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt2"}
INPUT, OUTPUT = "csi", "beams"


def _example(net: APNetwork, batch: int = 2) -> torch.Tensor:
    """A ``(batch, 2, M, Q)`` float32 input for tracing (any values: the graph is traced)."""
    m, q = net.one_ap.M, net.one_ap.Q
    g = torch.Generator().manual_seed(0)
    return torch.randn(batch, 2, m, q, generator=g)


def _dynamic_batch() -> dict[str, dict[int, Any]]:
    return {"csi_l": {0: torch.export.Dim("batch", min=1, max=1 << 20)}}


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


def export_program(net: APNetwork) -> torch.export.ExportedProgram:
    """``torch.export`` of one AP's network in eval mode, dynamic batch."""
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), _quiet():
            return torch.export.export(net, (_example(net),), dynamic_shapes=_dynamic_batch())
    finally:
        net.train(was_training)


def export_onnx(net: APNetwork, path: str | Path) -> Path:
    """Write AP network ``net`` alone as ONNX at ``path`` (input ``"csi"``, output ``"beams"``,
    each ``(B, 2, M, Q)`` float32 with a dynamic ``B``)."""
    path = Path(path)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), _quiet():
            prog = torch.onnx.export(net, (_example(net),), dynamo=True,
                                     dynamic_shapes=_dynamic_batch(), input_names=[INPUT],
                                     output_names=[OUTPUT], verbose=False)
            prog.save(str(path))
    finally:
        net.train(was_training)
    return path


def export_torch(net: APNetwork, path: str | Path) -> Path:
    """Write AP network ``net`` alone as a ``torch.export`` program (``.pt2``) at ``path``."""
    path = Path(path)
    torch.export.save(export_program(net), str(path))
    return path


def export_nets(aps: Any, out: str | Path, fmt: str = "onnx") -> list[Path]:
    """Write every AP's network (``aps``: a sequence of :class:`APNetwork`, e.g.
    ``policy.nets.aps``) into folder ``out`` as ``ap_<l>.onnx`` / ``ap_<l>.pt2``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    writer = export_onnx if fmt == "onnx" else export_torch
    return [writer(net, out / f"ap_{l}{SUFFIX[fmt]}") for l, net in enumerate(aps)]


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


def load_program(path: str | Path) -> torch.nn.Module:
    """The callable module of a ``.pt2`` file written by :func:`export_torch`."""
    return torch.export.load(str(path)).module()
