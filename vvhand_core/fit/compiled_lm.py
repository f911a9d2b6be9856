"""Compiled kernels (numba) of Levenberg-Marquardt's algebra (``vvhand_core.fit.lm``).

:func:`normal_equations` (J^T J and J^T r over each row's non-zero entries, the parameters
that bounds hold left out) and :func:`damped_step` (the damped normal equations solved by
Cholesky, the trial point clamped to the box). In use where :mod:`.compiled` is
(``compiled.ENABLED``); tested equal to ``lm``'s numpy code (``test/test_fit_compiled.py``).
"""

from __future__ import annotations

import math

import numpy as np

from vvhand_core.fit.compiled import _jit


@_jit
def _normal(jac, r, x, lo, hi, held):
    m, n = jac.shape
    jtj = np.zeros((n, n))
    jtr = np.zeros(n)
    for i in range(m):  # the full gradient first: which parameters a bound holds
        ri = r[i]
        for a in range(n):
            jtr[a] += jac[i, a] * ri
    fixed = held.copy()
    for a in range(n):
        fixed[a] |= (x[a] <= lo[a] and jtr[a] > 0) or (x[a] >= hi[a] and jtr[a] < 0)
        jtr[a] = 0.0
    cols = np.empty(n, np.int64)
    for i in range(m):
        k = 0
        for a in range(n):
            if jac[i, a] != 0.0 and not fixed[a]:
                cols[k] = a
                k += 1
        ri = r[i]
        for p in range(k):
            a = cols[p]
            ja = jac[i, a]
            jtr[a] += ja * ri
            for q in range(p, k):
                jtj[a, cols[q]] += ja * jac[i, cols[q]]
    for a in range(n):  # the upper triangle was filled
        for b in range(a):
            jtj[a, b] = jtj[b, a]
    return jtj, jtr


def normal_equations(jac: np.ndarray, r: np.ndarray, x: np.ndarray, lo: np.ndarray,
                     hi: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """J^T J (n, n) and J^T r (n,) over the rows' non-zero entries, held parameters out.

    Held (``lm._normal_equations``): ``held`` (n,), and those at a bound of [lo, hi] whose
    gradient points out of the box; their rows and columns (and gradient) are 0.
    """
    return _normal(np.ascontiguousarray(jac, np.float64), np.ascontiguousarray(r, np.float64),
                   x, lo, hi, np.ascontiguousarray(held, np.bool_))


@_jit
def _step(jtj, jtr, lam, floor_share, best_x, lo, hi):
    n = jtr.shape[0]
    diag = np.empty(n)
    for a in range(n):
        diag[a] = jtj[a, a]
    floor = floor_share * np.sort(diag)[n // 2] + 1e-12  # the median, as lm takes it
    a_mat = jtj.copy()
    for a in range(n):
        a_mat[a, a] += lam * max(diag[a], floor)
    chol = np.zeros((n, n))  # Cholesky a = L L^T; not positive definite: a general solve
    ok = True
    for i in range(n):
        for j in range(i + 1):
            acc = a_mat[i, j]
            for k in range(j):
                acc -= chol[i, k] * chol[j, k]
            if i == j:
                if acc <= 0.0:
                    ok = False
                    break
                chol[i, i] = math.sqrt(acc)
            else:
                chol[i, j] = acc / chol[j, j]
        if not ok:
            break
    if ok:
        y = np.empty(n)
        for i in range(n):
            acc = -jtr[i]
            for k in range(i):
                acc -= chol[i, k] * y[k]
            y[i] = acc / chol[i, i]
        step = np.empty(n)
        for i in range(n - 1, -1, -1):
            acc = y[i]
            for k in range(i + 1, n):
                acc -= chol[k, i] * step[k]
            step[i] = acc / chol[i, i]
    else:
        step = np.linalg.solve(a_mat, -jtr)
    return np.minimum(np.maximum(best_x + step, lo), hi)


def damped_step(jtj: np.ndarray, jtr: np.ndarray, lam: float, floor_share: float,
                best_x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``lm``'s next trial point: the damped normal equations solved, clamped to the box."""
    return _step(jtj, jtr, float(lam), float(floor_share), best_x, lo, hi)
