"""BLAS / LAPACK on one thread inside the convex solvers.

Their products are small or batched over blocks, and BLAS threads only slow them down: on a busy
2-core machine the joint SDP at (L, N, M) = (4, 16, 16) took 112-122 s per drop with OpenBLAS
threads against 6-9 s on one (``runners/bench_cvx.py --scale``).
"""

from __future__ import annotations

import functools

from threadpoolctl import ThreadpoolController


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def single_blas_thread():
    """Context manager limiting every loaded BLAS (OpenBLAS, MKL, ...) to one thread."""
    return _controller().limit(limits=1, user_api="blas")
