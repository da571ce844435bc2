"""Per-AP subspace reduction shared by the convex solvers.

Every quantity in the NS+OPT SOCP and the joint SDP touches AP ``l``'s part of a beam only through
inner products with ``h_l1 .. h_lN`` (and ``a_l`` for the SDP) and through its norm. Projecting
AP ``l``'s part onto ``span_l = span{those vectors}`` keeps every inner product and does not raise
any norm or trace, so an optimum exists inside ``span_l`` and the problems may be solved in the
coordinates of an orthonormal basis ``U_l`` (``M x r``, ``r = min(M, K)`` for ``K`` vectors):

    w_l = U_l x_l,    h~_n = [U_1^H h_1n; ...; U_L^H h_Ln]  (length L r),   F = B X B^H.

With M = 16 and N = 5 the SDP's matrices shrink from LM = 32 to L Q = 12 rows.
"""

from __future__ import annotations

import numpy as np


def span_basis(vectors: np.ndarray) -> np.ndarray:
    """Orthonormal basis that contains the span of the columns.

    Args:
        vectors: complex ``(L, M, K)``, ``K`` vectors per AP.

    Returns:
        ``(L, M, r)`` complex with ``r = min(M, K)`` orthonormal columns per AP whose span holds
        the ``K`` vectors (when they are linearly dependent the spare columns complete the basis).
    """
    u, _, _ = np.linalg.svd(vectors, full_matrices=True)
    return u[..., : min(vectors.shape[-2], vectors.shape[-1])]


def reduce(basis: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Stacked reduced coordinates: ``(L, M, r)`` basis, ``(L, M, K)`` -> ``(L r, K)`` complex."""
    coords = basis.conj().transpose(0, 2, 1) @ vectors                 # (L, r, K)
    return coords.reshape(-1, vectors.shape[-1])


def expand(basis: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Back to antennas: ``(L, M, r)`` basis, ``(L r, K)`` coordinates -> ``(L, M, K)``."""
    L, _, r = basis.shape
    return basis @ coords.reshape(L, r, -1)
