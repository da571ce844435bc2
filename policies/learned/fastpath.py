"""Compiled forward passes of the learned per-AP networks (numba): the default inference path.

At batch 1 a per-AP network is a few hundred small operations; in NumPy or torch eager most of
the time is the cost of calling them. Here each network's whole per-AP forward is one
``numba.njit`` function (``cache=True``: compiled once per machine, then loaded from
``__pycache__``), the same maths as the torch module step by step. What remains is arithmetic
(``span-attn`` at N = 8: 1.51 MFLOP per AP, :func:`span_flops`), so the layers are written to
vectorise: matrix products blocked over four rows, an exp that vectorises in the softmax.

- :class:`FastSpan`: :meth:`policies.learned.span.SpanAttn.ap_forward` (``span-attn``, any N),
  ``FastSpan(net)(l, csi_l, rho, reference)``;
- :class:`FastGram`: one AP's ``gram-mlp`` network of the seed scheme
  (:class:`policies.learned.nets.APNetwork` with a
  :class:`policies.learned.architectures.GramMLP` body), ``FastGram(ap_net)(csi_l)``.

Both map ``csi_l (B, 2, M, Q)`` float32 to beams ``(B, 2, M, Q)`` float32 and equal torch to
1e-5. The precision of each step is torch's: the geometry, the Gram matrices, the inverses and
the beams in float64 (complex128), the network layers in float32 (torch runs them in float32).
Two exact rewrites save arithmetic: a query that is the same for every token is multiplied into
the key weights once (``(t W_k) e = t (W_k e)``), and a row that is the same for every token
(the target token ``e`` in the ``beta`` head, a UE token in the per-AP weights head) is
multiplied by its weights once.

The weights of a network are packed into one float32 vector and a table of ``(offset, rows,
cols)`` entries (one per :data:`SPAN_FIXED` / :data:`SPAN_LAYER` / :data:`GRAM_LAYERS` name, in
that order); the packer refuses a state dict with a parameter it does not know, so a changed
torch network fails here by name (update the layout and the kernel together;
``tests/policies/learned/test_fastpath.py`` compares both at random weights).

:func:`span_flops` / :func:`gram_flops` count the floating-point operations of one AP's forward
(what the latency benchmark divides by).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from cfisac_env.physics.los_fit import fit_columns
from policies.learned.architectures import SLOPE  # LeakyReLU slope of gram-mlp
from policies.learned.span import POS_SCALE, SIN_MIN  # position unit (m), end-fire floor

#: ``span-attn`` parameters before the attention blocks, in table order (weights stored
#: ``(in, out)``, each followed by its bias ``(1, out)``; ``bias`` is ``(layers, heads)``).
SPAN_FIXED = ("embed_ue.0", "embed_ue.2", "embed_tg.0", "embed_tg.2", "cross", "mlp_tg.0",
              "mlp_tg.2", "head_p", "head_mu", "head_beta.0", "head_beta.2", "head_tg")
#: Per attention block ``j`` (names formatted with ``j``).
SPAN_LAYER = ("qkv.{j}", "proj.{j}", "mlp.{j}.0", "mlp.{j}.2")
#: After the blocks: the weighted-RZF and the AP's own heads (rows 25 + 8 layers onwards).
SPAN_EXTRA = ("head_nu", "head_ap.0", "head_ap.2", "head_comm", "embed_rel.0", "embed_rel.2")
#: ``gram-mlp`` body layers (the Linear layers of ``body.mlp``).
GRAM_LAYERS = ("body.mlp.0", "body.mlp.2", "body.mlp.4", "body.mlp.6")
#: LLVM fast-math flags of the kernels: reassociation (vectorised sums) and fused multiply-adds,
#: but no "no NaN / no inf" assumptions (a running maximum starts from -inf).
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}


def _pack(sd: dict[str, Any], entries: list[str], what: str) -> tuple[np.ndarray, np.ndarray]:
    """Flatten ``sd`` into ``(weights float32 (K,), table int64 (R, 3))``: per entry, a raw
    tensor of ``sd`` (one row, ``(-1, last dim)``) or a Linear layer's ``W^T (in, out)`` then its
    bias ``(1, out)`` (two rows); a parameter of ``sd`` no entry names is an error."""
    used = {e for e in entries if e in sd}
    used |= {f"{e}.{p}" for e in entries if e not in sd for p in ("weight", "bias")}
    unknown, missing = sorted(set(sd) - used), sorted(used - set(sd))
    if unknown or missing:
        raise ValueError(f"the compiled {what} path does not match this network (unknown "
                         f"parameters {unknown}, missing {missing}); update "
                         "policies/learned/fastpath.py with the torch module")
    mats = []
    for e in entries:
        if e in sd:
            mats.append(np.asarray(sd[e], dtype=np.float32).reshape(-1, np.shape(sd[e])[-1]))
        else:
            mats += [np.asarray(sd[f"{e}.weight"], dtype=np.float32).T,
                     np.asarray(sd[f"{e}.bias"], dtype=np.float32)[None, :]]
    table = np.zeros((len(mats), 3), dtype=np.int64)
    off = 0
    for i, a in enumerate(mats):
        table[i] = off, a.shape[0], a.shape[1]
        off += a.size
    return np.concatenate([a.ravel() for a in mats]).astype(np.float32), table


def _state(module: Any) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().float().numpy() for k, v in module.state_dict().items()}


# ----------------------------------------------------------------------------- kernels

@njit(cache=True, inline="always")
def _mat(fw: np.ndarray, tab: np.ndarray, i: int) -> np.ndarray:
    o, r, c = tab[i, 0], tab[i, 1], tab[i, 2]
    return fw[o:o + r * c].reshape((r, c))


@njit(cache=True, fastmath=FASTMATH)
def _lin(x: np.ndarray, w: np.ndarray, b: np.ndarray, out: np.ndarray, act: int) -> None:
    """``out = act(x @ w + b)``: x ``(n, k)``, w ``(k, m)``, b ``(1, m)`` float32; ``act`` 0
    none, 1 ReLU, 2 LeakyReLU(SLOPE). Register blocking: four rows at a time share each load of
    ``w`` (k unrolled by 4); the rows left over go one at a time (k unrolled by 8)."""
    n, k = x.shape
    m = w.shape[1]
    k4, n4, k8 = k - k % 4, n - n % 4, k - k % 8
    for i in range(0, n4, 4):
        for j in range(m):
            out[i, j] = out[i + 1, j] = out[i + 2, j] = out[i + 3, j] = b[0, j]
        for kk in range(0, k4, 4):
            a0, a1, a2, a3 = x[i, kk], x[i, kk + 1], x[i, kk + 2], x[i, kk + 3]
            b0, b1, b2, b3 = x[i + 1, kk], x[i + 1, kk + 1], x[i + 1, kk + 2], x[i + 1, kk + 3]
            c0, c1, c2, c3 = x[i + 2, kk], x[i + 2, kk + 1], x[i + 2, kk + 2], x[i + 2, kk + 3]
            d0, d1, d2, d3 = x[i + 3, kk], x[i + 3, kk + 1], x[i + 3, kk + 2], x[i + 3, kk + 3]
            for j in range(m):
                w0, w1, w2, w3 = w[kk, j], w[kk + 1, j], w[kk + 2, j], w[kk + 3, j]
                out[i, j] += a0 * w0 + a1 * w1 + a2 * w2 + a3 * w3
                out[i + 1, j] += b0 * w0 + b1 * w1 + b2 * w2 + b3 * w3
                out[i + 2, j] += c0 * w0 + c1 * w1 + c2 * w2 + c3 * w3
                out[i + 3, j] += d0 * w0 + d1 * w1 + d2 * w2 + d3 * w3
        for kk in range(k4, k):
            for r in range(i, i + 4):
                xv = x[r, kk]
                for j in range(m):
                    out[r, j] += xv * w[kk, j]
    for i in range(n4, n):
        for j in range(m):
            out[i, j] = b[0, j]
        for kk in range(0, k8, 8):
            x0, x1, x2, x3 = x[i, kk], x[i, kk + 1], x[i, kk + 2], x[i, kk + 3]
            x4, x5, x6, x7 = x[i, kk + 4], x[i, kk + 5], x[i, kk + 6], x[i, kk + 7]
            for j in range(m):
                out[i, j] += (x0 * w[kk, j] + x1 * w[kk + 1, j] + x2 * w[kk + 2, j]
                              + x3 * w[kk + 3, j] + x4 * w[kk + 4, j] + x5 * w[kk + 5, j]
                              + x6 * w[kk + 6, j] + x7 * w[kk + 7, j])
        for kk in range(k8, k):
            xv = x[i, kk]
            for j in range(m):
                out[i, j] += xv * w[kk, j]
    if act == 1:
        for i in range(n):
            for j in range(m):
                out[i, j] = max(out[i, j], np.float32(0.0))
    elif act == 2:
        for i in range(n):
            for j in range(m):
                if out[i, j] < 0:
                    out[i, j] *= np.float32(SLOPE)


@njit(cache=True)
def _softplus(x: float) -> float:
    """torch's softplus (beta 1, threshold 20)."""
    return x if x > 20.0 else math.log1p(math.exp(x))


#: 2^-k, k = 0..126 (the exponent part of :func:`_softmax`'s exp).
_POW2 = np.ldexp(np.float32(1.0), -np.arange(127)).astype(np.float32)


@njit(cache=True, fastmath={"contract"})
def _softmax(z: np.ndarray, n: int) -> None:
    """``z[:n] <- softmax(z[:n])`` in place (float32). The exp is Cephes' ``expf`` (range
    reduction by ln 2 in two parts, a degree-6 polynomial, 2^k from a table: within 2 ulp),
    written so that the loop vectorises (libm's scalar ``expf`` is a call per element)."""
    mx = z[0]
    for c in range(1, n):
        mx = max(mx, z[c])
    tot = np.float32(0.0)
    for c in range(n):
        x = max(z[c] - mx, np.float32(-87.0))          # <= 0; exp(-87) is still normal
        k = np.floor(x * np.float32(1.44269504088896341) + np.float32(0.5))
        r = x - k * np.float32(0.693359375) - k * np.float32(-2.12194440e-4)
        pr = ((((np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)) * r
                + np.float32(8.3334519073e-3)) * r + np.float32(4.1665795894e-2)) * r
              + np.float32(1.6666665459e-1)) * r + np.float32(5.0000001201e-1)
        v = (pr * r * r + r + np.float32(1.0)) * _POW2[-np.int32(k)]
        z[c] = v
        tot += v
    inv = np.float32(1.0) / tot
    for c in range(n):
        z[c] *= inv


@njit(cache=True, fastmath=FASTMATH)
def _solve(a: np.ndarray, b: np.ndarray) -> None:
    """``b <- a^-1 b`` in place (Gauss-Jordan, partial pivoting; ``a`` is overwritten):
    a ``(n, n)``, b ``(n, k)`` complex128."""
    n = a.shape[0]
    k = b.shape[1]
    for c in range(n):
        p, best = c, abs(a[c, c])
        for r in range(c + 1, n):
            if abs(a[r, c]) > best:
                p, best = r, abs(a[r, c])
        if p != c:
            for j in range(n):
                a[c, j], a[p, j] = a[p, j], a[c, j]
            for j in range(k):
                b[c, j], b[p, j] = b[p, j], b[c, j]
        inv = 1.0 / a[c, c]
        for j in range(n):
            a[c, j] *= inv
        for j in range(k):
            b[c, j] *= inv
        for r in range(n):
            if r != c:
                f = a[r, c]
                if f != 0:
                    for j in range(n):
                        a[r, j] -= f * a[c, j]
                    for j in range(k):
                        b[r, j] -= f * b[c, j]


@njit(cache=True, fastmath=FASTMATH)
def _geometry(h: np.ndarray, l: int, ap: np.ndarray, lines: np.ndarray, lo: float, hi: float,
              sp: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:meth:`SpanAttn.geometry` and the Gram matrices of one drop: ``h (Q, M)`` complex128
    (the CSI transposed: column per row), the UE lines' y ``lines (J,)``, the UEs' x range
    ``[lo, hi]`` (``-inf, inf``: none) -> ``x (N,)`` metres, ``cos_all (L, N)``, per-AP
    ``gl (L, N, N)`` complex128, ``coh = |mean_k gl_k|^2`` float32 (the AP's own block measured,
    the others' LoS steering rebuilt)."""
    n, m = h.shape[0] - 1, h.shape[1]
    nl = ap.shape[0]
    ux = np.empty(n)
    cos_all = np.empty((nl, n))
    for c in range(n):
        st = 0j
        for i in range(m - 1):
            st += h[c, i + 1] * h[c, i].conjugate()
        cs = min(max(math.atan2(st.imag, st.real) / (2 * math.pi * sp), -1.0), 1.0)
        sn = max(math.sqrt(1 - cs * cs), SIN_MIN)
        best, bx, by = -math.inf, 0.0, lines[0]
        for j in range(lines.shape[0]):
            dy = abs(lines[j] - ap[l, 1])
            xj = ap[l, 0] + dy * cs / sn
            out = max(lo - xj, 0.0) + max(xj - hi, 0.0)
            score = -out - 1e6 if out > 0 else dy
            if score > best:
                best, bx, by = score, xj, lines[j]
        ux[c] = min(max(bx, lo), hi)
        for k in range(nl):
            dx = ux[c] - ap[k, 0]
            dyy = by - ap[k, 1]
            cos_all[k, c] = dx / max(math.sqrt(dx * dx + dyy * dyy), 1e-9)
    hall = np.empty((nl, n, m), dtype=np.complex128)             # (AP, UE, antenna)
    for k in range(nl):
        for c in range(n):
            if k == l:
                for i in range(m):
                    hall[k, c, i] = h[c, i]
            else:                                                # steering by recurrence
                ph = 2 * math.pi * sp * cos_all[k, c]
                z1 = complex(math.cos(ph), math.sin(ph))
                z = 1.0 + 0j
                for i in range(m):
                    hall[k, c, i] = z
                    z *= z1
    gl = np.empty((nl, n, n), dtype=np.complex128)              # per-AP Grams H_k^H H_k / M
    coh = np.empty((n, n), dtype=np.float32)
    for a_ in range(n):
        for b_ in range(a_, n):
            s = 0j
            for k in range(nl):
                sk = 0j
                for i in range(m):
                    sk += hall[k, a_, i].conjugate() * hall[k, b_, i]
                sk /= m
                gl[k, a_, b_] = sk
                gl[k, b_, a_] = sk.conjugate()
                s += sk
            s /= nl
            coh[a_, b_] = coh[b_, a_] = s.real * s.real + s.imag * s.imag
    return ux, cos_all, gl, coh


@njit(cache=True, fastmath=FASTMATH)
def _ue_stream(ux: np.ndarray, cos_all: np.ndarray, coh: np.ndarray, rho: float,
               fw: np.ndarray, tab: np.ndarray, heads: int, layers: int) -> np.ndarray:
    """The UE tokens and :meth:`SpanAttn._blocks` (float32): ``t (N, D)``."""
    nl, n = cos_all.shape
    d = tab[0, 2]
    hd = d // heads
    ue = np.empty((n, nl + 4), dtype=np.float32)
    for c in range(n):
        for k in range(nl):
            ue[c, k] = cos_all[k, c]
        cs_ = np.float32(0.0)
        for b_ in range(n):
            cs_ += coh[c, b_]
        ue[c, nl] = ux[c] / POS_SCALE
        ue[c, nl + 1] = cs_ / n
        ue[c, nl + 2] = rho
        ue[c, nl + 3] = 1.0 / n
    hid = np.empty((n, 2 * d), dtype=np.float32)
    t = np.empty((n, d), dtype=np.float32)
    tmp = np.empty((n, d), dtype=np.float32)
    _lin(ue, _mat(fw, tab, 0), _mat(fw, tab, 1), tmp, 1)
    _lin(tmp, _mat(fw, tab, 2), _mat(fw, tab, 3), t, 0)
    bias = _mat(fw, tab, 24)
    qkv = np.empty((n, 3 * d), dtype=np.float32)
    att = np.empty((n, d), dtype=np.float32)
    lg = np.empty(n, dtype=np.float32)
    inv_sq = np.float32(1.0 / math.sqrt(hd))
    for j in range(layers):
        base = 25 + 8 * j
        _lin(t, _mat(fw, tab, base), _mat(fw, tab, base + 1), qkv, 0)
        att[:] = 0.0
        for hh in range(heads):
            bj = bias[j, hh]
            o = hh * hd
            for r in range(n):
                for c in range(n):
                    s32 = np.float32(0.0)
                    for i in range(hd):
                        s32 += qkv[r, o + i] * qkv[c, d + o + i]
                    lg[c] = s32 * inv_sq + bj * coh[r, c]
                _softmax(lg, n)
                for c in range(n):
                    wgt = lg[c]
                    for i in range(hd):
                        att[r, o + i] += wgt * qkv[c, 2 * d + o + i]
        _lin(att, _mat(fw, tab, base + 2), _mat(fw, tab, base + 3), tmp, 0)
        t += tmp
        _lin(t, _mat(fw, tab, base + 4), _mat(fw, tab, base + 5), hid, 1)
        _lin(hid, _mat(fw, tab, base + 6), _mat(fw, tab, base + 7), tmp, 0)
        t += tmp
    return t


@njit(cache=True, fastmath=FASTMATH)
def _reference(h: np.ndarray, gl: np.ndarray, dl: np.ndarray, p: np.ndarray, nu: np.ndarray,
               budget: float) -> np.ndarray:
    """:meth:`SpanAttn._reference` of one drop: the AP's slice ``(N, M)`` complex128 (UE beams
    as rows) of the weighted joint RZF ``C = (sum_k D_k G_k / L + diag(nu))^-1``, joint beams at
    power ``p_n``, the slice scaled to ``budget``; ``h (Q, M)``, ``gl (L, N, N)``."""
    nl, n = gl.shape[0], gl.shape[1]
    m = h.shape[1]
    a = np.zeros((n, n), dtype=np.complex128)
    gw = np.zeros((n, n), dtype=np.complex128)
    cm = np.zeros((n, n), dtype=np.complex128)
    for k in range(nl):
        f1, f2 = dl[k] / nl, dl[k] * dl[k]
        for r in range(n):
            for c in range(n):
                a[r, c] += f1 * gl[k, r, c]
                gw[r, c] += f2 * gl[k, r, c]
    for r in range(n):
        a[r, r] += nu[r]
        cm[r, r] = 1.0
    _solve(a, cm)
    nr = np.zeros(n)
    for r in range(n):
        for c in range(n):
            g = 0j
            for k in range(n):
                g += gw[r, k] * cm[k, c]
            nr[c] += (cm[r, c].conjugate() * g).real
    for c in range(n):
        nr[c] = math.sqrt(p[c] / (max(nr[c], 1e-12) * m))
    dd = np.zeros((n, m), dtype=np.complex128)
    tot = 0.0
    for c in range(n):
        for k in range(n):
            f = cm[k, c] * nr[c]
            for i in range(m):
                dd[c, i] += f * h[k, i]
        for i in range(m):
            tot += dd[c, i].real ** 2 + dd[c, i].imag ** 2
    fr = math.sqrt(budget / (tot + 1e-12))
    for c in range(n):
        for i in range(m):
            dd[c, i] *= fr
    return dd


@njit(cache=True, fastmath=FASTMATH)
def _mlp_row(x: np.ndarray, w0: np.ndarray, b0: np.ndarray, w2: np.ndarray, b2: np.ndarray,
             out: np.ndarray) -> None:
    """A two-layer MLP (Linear, ReLU, Linear) on rows: ``out = relu(x w0 + b0) w2 + b2``."""
    hid = np.empty((x.shape[0], w0.shape[1]), dtype=np.float32)
    _lin(x, w0, b0, hid, 1)
    _lin(hid, w2, b2, out, 0)


@njit(cache=True, fastmath=FASTMATH)
def _ap_stream(h: np.ndarray, t: np.ndarray, l: int, ap: np.ndarray, rho: float, power: float,
               cos_all: np.ndarray, gl: np.ndarray, fw: np.ndarray, tab: np.ndarray, xb: int,
               sp: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The AP's own stream and the heads: ``(ref (N, M), comm (N, M), beta (N,), out_t (3,) =
    (mu_s, alpha, gamma) before the offsets)``; float32 layers, float64 / complex128 out;
    ``h (Q, M)``; ``xb``: the table row of the first extra head; ``sp``: the antenna spacing."""
    q, m = h.shape
    n, d = t.shape
    nl = gl.shape[0]
    diag = np.empty(q)
    for c in range(q):
        s64 = 0.0
        for i in range(m):
            s64 += h[c, i].real ** 2 + h[c, i].imag ** 2
        diag[c] = max(s64 / m, 1e-12)
    coht = np.empty(n, dtype=np.float32)                 # the target's coherence with each UE
    cmax, csum = -np.inf, 0.0
    for c in range(n):
        s = 0j
        for i in range(m):
            s += h[n, i].conjugate() * h[c, i]
        s /= m
        v = (s.real * s.real + s.imag * s.imag) / (diag[c] * diag[n])
        coht[c] = v
        cmax = max(cmax, v)
        csum += v
    st = 0j
    for i in range(m - 1):
        st += h[n, i + 1] * h[n, i].conjugate()
    cos_t = math.atan2(st.imag, st.real) / (2 * math.pi * sp)
    st /= abs(st) + 1e-12
    tg = np.empty((1, 9), dtype=np.float32)
    tg[0, 0], tg[0, 1], tg[0, 2] = st.real, st.imag, math.log(diag[n])
    tg[0, 3], tg[0, 4] = cmax, csum / n
    tg[0, 5], tg[0, 6] = ap[l, 0] / POS_SCALE, ap[l, 1] / POS_SCALE
    tg[0, 7], tg[0, 8] = rho, 1.0 / n
    # the reference: p_n, nu_n = mu_c exp(head_nu), per-AP weights D_k
    wp, bp = _mat(fw, tab, 14), _mat(fw, tab, 15)
    wmu, bmu = _mat(fw, tab, 16), _mat(fw, tab, 17)
    wnu, bnu = _mat(fw, tab, xb), _mat(fw, tab, xb + 1)
    p = np.empty(n)
    lnu = np.empty(n)
    tmean = np.zeros(d, dtype=np.float32)
    for c in range(n):
        s32 = bp[0, 0]
        s33 = bnu[0, 0]
        for i in range(d):
            s32 += t[c, i] * wp[i, 0]
            s33 += t[c, i] * wnu[i, 0]
        p[c] = _softplus(s32)
        lnu[c] = s33
        for i in range(d):
            tmean[i] += t[c, i]
    s32 = bmu[0, 0]
    for i in range(d):
        s32 += (tmean[i] / n) * wmu[i, 0]
    mu_c = _softplus(s32) + 1e-3
    nu = np.empty(n)
    for c in range(n):
        nu[c] = mu_c * math.exp(lnu[c])
    # per-AP weights: head_ap([t_c, cos_kc, ap_k]) for every AP k; the token part t_c W[:d] is
    # the same for every k, so it is multiplied once (exact) and each AP adds its 3 inputs
    wa0, ba0 = _mat(fw, tab, xb + 2), _mat(fw, tab, xb + 3)
    wa2, ba2 = _mat(fw, tab, xb + 4), _mat(fw, tab, xb + 5)
    ta = np.empty((n, d), dtype=np.float32)
    _lin(t, wa0[:d], ba0, ta, 0)
    dl = np.empty(nl)
    for k in range(nl):
        ax, ay = np.float32(ap[k, 0] / POS_SCALE), np.float32(ap[k, 1] / POS_SCALE)
        s32 = np.float32(0.0)
        for c in range(n):
            ck = np.float32(cos_all[k, c])
            o32 = ba2[0, 0]
            for i in range(d):
                v32 = ta[c, i] + ck * wa0[d, i] + ax * wa0[d + 1, i] + ay * wa0[d + 2, i]
                o32 += max(v32, np.float32(0.0)) * wa2[i, 0]
            s32 += o32
        dl[k] = math.exp(s32 / n)
    budget = rho * power
    ref = _reference(h, gl, dl, p, nu, budget)
    feats = np.empty((n, 2), dtype=np.float32)
    for c in range(n):
        ar = 0j
        pw = 0.0
        for i in range(m):
            ar += h[n, i].conjugate() * ref[c, i]
            pw += ref[c, i].real ** 2 + ref[c, i].imag ** 2
        feats[c, 0] = (ar.real * ar.real + ar.imag * ar.imag) / (m * budget)
        feats[c, 1] = pw / budget
    rel = np.empty((n, 4), dtype=np.float32)
    for c in range(n):
        rel[c, 0] = coht[c]
        rel[c, 1] = cos_all[l, c] - cos_t
        rel[c, 2], rel[c, 3] = feats[c, 0], feats[c, 1]
    t2 = np.empty((n, d), dtype=np.float32)
    _mlp_row(rel, _mat(fw, tab, xb + 8), _mat(fw, tab, xb + 9), _mat(fw, tab, xb + 10),
             _mat(fw, tab, xb + 11), t2)
    t2 += t
    e1 = np.empty((1, d), dtype=np.float32)
    e = np.empty((1, d), dtype=np.float32)
    _lin(tg, _mat(fw, tab, 4), _mat(fw, tab, 5), e1, 1)
    _lin(e1, _mat(fw, tab, 6), _mat(fw, tab, 7), e, 0)
    # cross attention: logits (t W_k + b_k) e = t (W_k e) + b_k e; context = (sum att t) W_v + b_v
    wc, bc = _mat(fw, tab, 8), _mat(fw, tab, 9)
    ec = np.empty((1, 2 * d), dtype=np.float32)          # [e, context], mlp_tg's input
    c0 = np.float32(0.0)
    u = np.empty(d, dtype=np.float32)
    for i in range(d):
        s32 = np.float32(0.0)
        for jj in range(d):
            s32 += wc[i, jj] * e[0, jj]
        u[i] = s32
        c0 += bc[0, i] * e[0, i]
        ec[0, i] = e[0, i]
        ec[0, d + i] = bc[0, d + i]
    lg = np.empty(n, dtype=np.float32)
    for c in range(n):
        s32 = c0
        for i in range(d):
            s32 += t2[c, i] * u[i]
        lg[c] = s32 / np.float32(math.sqrt(d))
    _softmax(lg, n)
    for i in range(d):
        tv = np.float32(0.0)
        for c in range(n):
            tv += lg[c] * t2[c, i]
        for jj in range(d):
            ec[0, d + jj] += tv * wc[i, d + jj]
    _lin(ec, _mat(fw, tab, 10), _mat(fw, tab, 11), e1, 1)
    e2 = np.empty((1, d), dtype=np.float32)
    _lin(e1, _mat(fw, tab, 12), _mat(fw, tab, 13), e2, 0)
    e2 += e
    # the AP's own communication part: factors exp(head_comm([t_n, e])) on p_n and nu_n
    wcm, bcm = _mat(fw, tab, xb + 6), _mat(fw, tab, xb + 7)
    pc = np.empty(n)
    nc = np.empty(n)
    for c in range(n):
        s0, s1 = bcm[0, 0], bcm[0, 1]
        for i in range(d):
            s0 += t[c, i] * wcm[i, 0] + e2[0, i] * wcm[d + i, 0]
            s1 += t[c, i] * wcm[i, 1] + e2[0, i] * wcm[d + i, 1]
        pc[c] = p[c] * math.exp(s0)
        nc[c] = nu[c] * math.exp(s1)
    comm = _reference(h, gl, dl, pc, nc, budget)
    wb0, bb0 = _mat(fw, tab, 18), _mat(fw, tab, 19)     # (2D + 3, D): [t, e, coh, feats]
    wb2, bb2 = _mat(fw, tab, 20), _mat(fw, tab, 21)
    pre = np.empty((1, d), dtype=np.float32)             # e's share, the same for every UE
    _lin(e2, wb0[d:2 * d], bb0, pre, 0)
    hb = np.empty((n, d), dtype=np.float32)
    _lin(t, wb0[:d], pre, hb, 0)
    beta = np.empty(n)
    for c in range(n):
        s32 = bb2[0, 0]
        for i in range(d):
            v32 = (hb[c, i] + coht[c] * wb0[2 * d, i] + feats[c, 0] * wb0[2 * d + 1, i]
                   + feats[c, 1] * wb0[2 * d + 2, i])
            s32 += max(v32, np.float32(0.0)) * wb2[i, 0]
        beta[c] = _softplus(s32)
    fm0, fm1 = np.float32(0.0), np.float32(0.0)
    for c in range(n):
        fm0 += feats[c, 0]
        fm1 += feats[c, 1]
    fm0 /= n
    fm1 /= n
    wt, bt = _mat(fw, tab, 22), _mat(fw, tab, 23)       # (D + 2, 3): [e, mean feats]
    out_t = np.empty(3)
    for k in range(3):
        s32 = bt[0, k] + fm0 * wt[d, k] + fm1 * wt[d + 1, k]
        for i in range(d):
            s32 += e2[0, i] * wt[i, k]
        out_t[k] = _softplus(s32)
    return ref, comm, beta, out_t


@njit(cache=True, fastmath=FASTMATH)
def _beams(h: np.ndarray, ref: np.ndarray, comm: np.ndarray, beta: np.ndarray,
           out_t: np.ndarray, power: float, reference: bool, out: np.ndarray) -> None:
    """:meth:`SpanAttn._beams` of one drop (complex128) into ``out (2, M, Q)`` float32 (the
    reference beams with ``reference``); ``h (Q, M)`` (the CSI transposed, so that every sum
    over the antennas runs along a row), ``ref``, ``comm (N, M)``."""
    q, m = h.shape
    n = q - 1
    if reference:
        for i in range(m):
            for c in range(n):
                out[0, i, c] = ref[c, i].real
                out[1, i, c] = ref[c, i].imag
            out[0, i, n] = 0.0
            out[1, i, n] = 0.0
        return
    # sensing direction: a off the UEs, s = unit(a - H_u (G_l + mu_s I)^-1 H_u^H a / M)
    a = np.empty((n, n), dtype=np.complex128)
    rhs = np.empty((n, 1), dtype=np.complex128)
    for r in range(n):
        for c in range(r, q):
            s = 0j
            for i in range(m):
                s += h[r, i].conjugate() * h[c, i]
            if c < n:
                a[r, c] = s / m
                a[c, r] = (s / m).conjugate()
            else:
                rhs[r, 0] = s / m
        a[r, r] += out_t[0] + 1e-3
    _solve(a, rhs)
    sv = np.empty(m, dtype=np.complex128)
    for i in range(m):
        sv[i] = h[n, i]
    for k in range(n):
        f = rhs[k, 0]
        for i in range(m):
            sv[i] -= h[k, i] * f
    ss = 0.0
    for i in range(m):
        ss += sv[i].real * sv[i].real + sv[i].imag * sv[i].imag
    sv /= math.sqrt(ss + 1e-12)
    as_ = 0j
    for i in range(m):
        as_ += h[n, i].conjugate() * sv[i]
    w = np.empty((q, m), dtype=np.complex128)            # beams as rows
    gamma, alpha = out_t[2], out_t[1]
    for c in range(n):
        ad = 0j
        for i in range(m):
            ad += h[n, i].conjugate() * comm[c, i]
        ph = ad * as_.conjugate()
        ph /= math.sqrt(ph.real * ph.real + ph.imag * ph.imag + 1e-12)
        f2 = beta[c] * ph
        for i in range(m):
            w[c, i] = comm[c, i] * gamma + sv[i] * f2
    for i in range(m):
        w[n, i] = sv[i] * alpha
    wp_ = 0.0
    for c in range(q):
        for i in range(m):
            wp_ += w[c, i].real ** 2 + w[c, i].imag ** 2
    fw_ = math.sqrt(power / (wp_ + 1e-12))
    for i in range(m):
        for c in range(q):
            out[0, i, c] = w[c, i].real * fw_
            out[1, i, c] = w[c, i].imag * fw_


@njit(cache=True)
def _span(x: np.ndarray, l: int, rho: float, reference: bool, fw: np.ndarray, tab: np.ndarray,
          cfg: np.ndarray) -> np.ndarray:
    """:meth:`SpanAttn.ap_forward` of AP ``l``: ``x (B, 2, M, Q)`` float32 -> beams (or the
    reference beams) ``(B, 2, M, Q)`` float32; ``cfg = [ue_line_y, spacing, heads, layers, L,
    AP positions (L x 2), budgets (L), J, the UE lines' y (J), UE x range (2)]`` (one array:
    fewer arguments to unbox per call)."""
    nl = int(cfg[4])
    ap = cfg[5:5 + 2 * nl].reshape((nl, 2))
    power = cfg[5 + 2 * nl + l]
    nj = int(cfg[5 + 3 * nl])
    lines = cfg[6 + 3 * nl:6 + 3 * nl + nj]
    lo, hi = cfg[6 + 3 * nl + nj], cfg[7 + 3 * nl + nj]
    layers = int(cfg[3])
    b, _, m, q = x.shape
    out = np.empty(x.shape, dtype=np.float32)
    h = np.empty((q, m), dtype=np.complex128)            # the CSI transposed: column per row
    for bi in range(b):
        for i in range(m):
            for c in range(q):
                h[c, i] = complex(x[bi, 0, i, c], x[bi, 1, i, c])
        ux, cos_all, gl, coh = _geometry(h, l, ap, lines, lo, hi, cfg[1])
        t = _ue_stream(ux, cos_all, coh, rho, fw, tab, int(cfg[2]), layers)
        ref, comm, beta, out_t = _ap_stream(h, t, l, ap, rho, power, cos_all, gl, fw, tab,
                                            25 + 8 * layers, cfg[1])
        _beams(h, ref, comm, beta, out_t, power, reference, out[bi])
    return out


@njit(cache=True, fastmath=FASTMATH)
def _gram(x: np.ndarray, fw: np.ndarray, tab: np.ndarray, power: float) -> np.ndarray:
    """:class:`GramMLP` + the budget normalisation: ``x (B, 2, M, Q)`` float32 -> beams."""
    b, _, m, q = x.shape
    out = np.empty(x.shape, dtype=np.float32)
    nin = 2 * q * q + q
    feats = np.empty((1, nin), dtype=np.float32)
    width = tab[0, 2]
    h1 = np.empty((1, width), dtype=np.float32)
    h2 = np.empty((1, width), dtype=np.float32)
    co = np.empty((1, 2 * q * q), dtype=np.float32)
    psi = np.empty(q, dtype=np.float32)
    hr, hi = np.empty((m, q)), np.empty((m, q))
    wr, wi = np.empty((m, q)), np.empty((m, q))
    for bi in range(b):
        xr, xi = x[bi, 0], x[bi, 1]
        for c in range(q):                            # phase steps in float32, as torch
            sr, si = np.float32(0.0), np.float32(0.0)
            for i in range(m - 1):
                sr += xr[i + 1, c] * xr[i, c] + xi[i + 1, c] * xi[i, c]
                si += xi[i + 1, c] * xr[i, c] - xr[i + 1, c] * xi[i, c]
            psi[c] = math.atan2(si, sr)
        order = np.empty(q, dtype=np.int64)
        order[:q - 1] = np.argsort(psi[:q - 1])
        order[q - 1] = q - 1
        for c in range(q):
            for i in range(m):
                hr[i, c] = xr[i, order[c]]
                hi[i, c] = xi[i, order[c]]
        for r in range(q):
            for c in range(q):
                gr, gi = 0.0, 0.0
                for i in range(m):
                    gr += hr[i, r] * hr[i, c] + hi[i, r] * hi[i, c]
                    gi += hr[i, r] * hi[i, c] - hi[i, r] * hr[i, c]
                feats[0, r * q + c] = gr / m
                feats[0, q * q + r * q + c] = gi / m
            feats[0, 2 * q * q + r] = psi[order[r]] / np.float32(math.pi)
        _lin(feats, _mat(fw, tab, 0), _mat(fw, tab, 1), h1, 2)
        _lin(h1, _mat(fw, tab, 2), _mat(fw, tab, 3), h2, 2)
        _lin(h2, _mat(fw, tab, 4), _mat(fw, tab, 5), h1, 2)
        _lin(h1, _mat(fw, tab, 6), _mat(fw, tab, 7), co, 0)
        tot = 0.0
        for i in range(m):
            for c in range(q):
                sr_, si_ = 0.0, 0.0
                for k in range(q):
                    cr, ci = co[0, k * q + c], co[0, q * q + k * q + c]
                    sr_ += hr[i, k] * cr - hi[i, k] * ci
                    si_ += hr[i, k] * ci + hi[i, k] * cr
                wr[i, c], wi[i, c] = sr_, si_
                tot += sr_ * sr_ + si_ * si_
        f = math.sqrt(power / (tot + 1e-12))
        for c in range(q):                            # back to the original column order
            for i in range(m):
                out[bi, 0, i, order[c]] = wr[i, c] * f
                out[bi, 1, i, order[c]] = wi[i, c] * f
    return out


# ----------------------------------------------------------------------------- wrappers

def _csi(csi_l: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(csi_l, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] != 2:
        raise ValueError(f"csi_l must be (B, 2, M, Q) float32, got shape {x.shape}")
    return x


class FastSpan:
    """:meth:`SpanAttn.ap_forward` compiled: ``FastSpan(net)(l, csi_l, rho, reference)``,
    ``csi_l (B, 2, M, Q)`` float32 -> AP ``l``'s beams ``(B, 2, M, Q)`` float32 (its reference
    beams with ``reference=True``); any ``N``. Construction runs it once (compiles on the first
    use on a machine, else loads the cache), so no decision waits for the compiler.
    ``los_fit``: each CSI column first replaced by its single-path LoS fit
    (:mod:`cfisac_env.physics.los_fit`)."""

    def __init__(self, net: Any, los_fit: bool = False) -> None:
        # table rows: the fixed layers (0..23), the attention bias (24), 8 per block, the extra
        # heads (12 rows)
        entries = [*SPAN_FIXED, "bias", *(s.format(j=j) for j in range(net.layers)
                                          for s in SPAN_LAYER), *SPAN_EXTRA]
        self.fw, self.tab = _pack(_state(net), entries, "span-attn")
        sysm = net.system
        ue_x = net.ue_x if net.ue_x is not None else (-np.inf, np.inf)
        self.cfg = np.concatenate([[net.ue_lines[0], sysm.spacing, net.heads, net.layers,
                                    sysm.L], np.ravel(sysm.ap_xy), sysm.P,
                                   [len(net.ue_lines)], net.ue_lines, ue_x]).astype(np.float64)
        self.fit, self.w = bool(los_fit), 2.0 * math.pi * float(sysm.spacing)
        m, q = net.system.M, min(net.system.Q, 3)
        self(0, np.ones((1, 2, m, q), np.float32) + np.arange(m * q, dtype=np.float32).reshape(
            1, 1, m, q) * 0.01)                                          # warm-up / compile

    def __call__(self, l: int, csi_l: np.ndarray, rho: float = 0.5, reference: bool = False
                 ) -> np.ndarray:
        x = _csi(csi_l)
        if self.fit:            # its own compiled function: numba's cache tracks one file each
            x = fit_columns(x, self.w)
        return _span(x, int(l), float(rho), bool(reference), self.fw, self.tab, self.cfg)


class FastGram:
    """One AP's ``gram-mlp`` network (:class:`policies.learned.nets.APNetwork`) compiled:
    ``FastGram(ap_net)(csi_l (B, 2, M, Q)) -> beams (B, 2, M, Q)`` float32 at the AP's full
    budget. Construction runs it once (compile or cache load)."""

    def __init__(self, ap_net: Any) -> None:
        self.fw, self.tab = _pack(_state(ap_net), list(GRAM_LAYERS), "gram-mlp")
        self.power = float(ap_net.one_ap.P[0])
        self.shape = (2, ap_net.one_ap.M, ap_net.one_ap.Q)
        self(np.ones((1, *self.shape), np.float32))                      # warm-up / compile

    def __call__(self, csi_l: np.ndarray) -> np.ndarray:
        return _gram(_csi(csi_l), self.fw, self.tab, self.power)


# ----------------------------------------------------------------------------- flop counts

def span_flops(n: int, m: int, nl: int, width: int = 64, heads: int = 4, layers: int = 2
               ) -> dict[str, int]:
    """Floating-point operations of one AP's ``span-attn`` forward at batch 1 (a multiply-add
    is 2, a complex one 8; exp, log, sqrt, atan2 count 1), as :class:`FastSpan` runs it:
    ``{"network": float32 layers and attention, "complex": geometry, Gram matrices, inverses and
    beams (float64), "total": both}``."""
    d = width

    def lin(rows: int, k: int, mm: int) -> int:
        return 2 * rows * k * mm

    net = lin(n, nl + 4, d) + lin(n, d, d)                              # UE embedding
    net += layers * (lin(n, d, 3 * d) + 4 * n * n * d + 3 * heads * n * n  # qkv, attention
                     + lin(n, d, d) + lin(n, d, 2 * d) + lin(n, 2 * d, d) + 2 * n * d)
    net += lin(1, 9, d) + lin(1, d, d)                                  # target embedding
    net += lin(1, d, d) + 2 * d + lin(n, d, 1) + 3 * n + 2 * n * d + lin(1, d, d)  # cross
    net += lin(1, 2 * d, d) + lin(1, d, d)                              # mlp_tg
    net += lin(n, d, 1) + lin(1, d, 1) + n * d + lin(n, d, 1)           # p, mu_c, nu
    net += lin(n, d, d) + nl * n * 9 * d                                # per-AP weights D_k
    net += lin(n, 4, d) + lin(n, d, d) + n * d                          # target-relative tokens
    net += lin(n, 2 * d, 2)                                             # own p, nu factors
    net += lin(1, d, d) + lin(n, d, d) + 6 * n * d + lin(n, d, 1)       # beta head
    net += lin(1, d + 2, 3)                                             # out_t
    q = n + 1
    cx = 8 * (m - 1) * q + nl * n * 12                                  # phase steps, positions
    cx += 6 * (nl - 1) * m * n                                          # LoS steering
    cx += 8 * nl * m * n * (n + 1) // 2                                 # per-AP Grams (Hermitian)
    cx += 2 * (4 * nl * n * n + 2 * 8 * n ** 3 + 8 * n ** 3 + 8 * m * n * n)  # 2 weighted RZFs
    cx += 8 * m * n                                                     # reference features
    cx += 4 * m * n * (n + 1) + 8 * m * n + 8 * n ** 3 + 8 * m * n      # G_l, rhs, solve, proj
    cx += 8 * m * q + 8 * m * n + 12 * m * q                            # tilts, beams, budget
    return {"network": net, "complex": cx, "total": net + cx}


def gram_flops(q: int, m: int, width: int = 256) -> dict[str, int]:
    """Floating-point operations of one AP's ``gram-mlp`` forward at batch 1 (as
    :func:`span_flops`)."""
    nin, nout = 2 * q * q + q, 2 * q * q
    net = 2 * (nin * width + 2 * width * width + width * nout)
    cx = 4 * (m - 1) * q + 4 * m * q * q + 8 * m * q * q + 3 * m * q
    return {"network": net, "complex": cx, "total": net + cx}
