"""CPU threads of numpy's BLAS in a deployment (torch's and onnxruntime's are set elsewhere).

The node's numpy work is small matrices (the hand-model fit's 35 x 35 normal equations,
3 x 3 geometry), where a BLAS thread pool only costs: OpenBLAS's threads wake, spin and
compete with onnxruntime's, torch's and DDS's for the cores, which slows the fit stage
inside the node. :func:`limit_blas_threads` caps it for the whole process (threadpoolctl,
the maintained way to reach OpenBLAS / MKL / BLIS pools).
"""

from __future__ import annotations

DEPLOYED_BLAS_THREADS = 1


def limit_blas_threads(threads: int = DEPLOYED_BLAS_THREADS) -> int:
    """Cap numpy's (and scipy's) BLAS pools at ``threads`` for the rest of the process.

    Pools of libraries loaded later are not capped: call it once everything is imported.
    Returns the largest pool size seen before (0 when numpy loaded no BLAS pool).
    ValueError for threads < 1.
    """
    if threads < 1:
        raise ValueError(f"BLAS threads must be >= 1, got {threads}")
    import scipy.linalg  # noqa: F401 - scipy's own BLAS pool (the fit's solver) is loaded now
    from threadpoolctl import threadpool_info, threadpool_limits

    before = max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"),
                 default=0)
    threadpool_limits(limits=threads, user_api="blas")
    return before


def blas_threads() -> int:
    """The largest BLAS pool size in this process now (0: none loaded)."""
    from threadpoolctl import threadpool_info

    return max((p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"),
               default=0)
