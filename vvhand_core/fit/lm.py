"""Levenberg-Marquardt with box bounds, for residuals that come with their Jacobian.

``fn(x, jacobian)`` returns the residuals r (m,) at x (n,) and, when asked, their
Jacobian J (m, n) (the fit's terms give it in closed form, :mod:`vvhand_core.fit.terms`).

Bounds: a parameter at a bound whose gradient points out of the box is held for the step
(active set), and every trial point is clamped into the box (projected LM); a parameter
whose bounds coincide is always held. Damping: Marquardt's scaling of the normal matrix's
diagonal, with a floor (a parameter that barely moves anything, such as the thumb's axial
opposition while the thumb is straight, must not take a huge step). A trial that raises
the cost is rejected and the damping grows (x ``grow``; a success divides it by 3),
re-solving with the stored Jacobian. The normal equations and the damped solve run as
numba kernels where they are enabled (:mod:`.compiled`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.linalg.lapack import dposv

from vvhand_core.fit import compiled, compiled_lm

ResidualFn = Callable[[np.ndarray, bool], tuple[np.ndarray, np.ndarray | None]]
FLOOR = 0.05  # damping floor, relative to the median of the normal matrix's diagonal


@dataclass
class LMResult:
    """What LM found.

    x (n,) the best point; cost: 0.5 |r(x)|^2; evaluations: calls of ``fn``; accepted:
    steps that lowered the cost.
    """

    x: np.ndarray
    cost: float
    evaluations: int
    accepted: int


def levenberg_marquardt(fn: ResidualFn, x0: np.ndarray, lower: np.ndarray,
                        upper: np.ndarray, iterations: int, damping: float = 1e-2,
                        grow: float = 8.0) -> LMResult:
    """Minimise 0.5 |fn(x)|^2 within [lower, upper] from x0 (all (n,) float64).

    Exactly ``iterations`` (>= 1) calls of ``fn``; the last one asks for no Jacobian.
    """
    iterations = max(1, iterations)
    lo, hi = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
    held = lo >= hi
    x = np.minimum(np.maximum(np.asarray(x0, np.float64), lo), hi)
    best_x, best_cost = x, float("inf")
    jtj = jtr = None
    lam, accepted = damping, 0
    for it in range(iterations):
        last = it == iterations - 1
        r, jac = fn(x, not last)
        cost = 0.5 * float(r @ r)
        if cost < best_cost:
            if it > 0:
                accepted += 1
                lam = max(lam / 3.0, 1e-7)
            best_x, best_cost = x, cost
            if last:
                break
            jtj, jtr = _normal_equations(jac, r, x, lo, hi, held)
        else:
            lam *= grow
        if last:
            break
        if compiled.ENABLED:
            x = compiled_lm.damped_step(jtj, jtr, lam, FLOOR, best_x, lo, hi)
            continue
        diag = jtj.diagonal()
        floor = FLOOR * np.partition(diag, len(diag) // 2)[len(diag) // 2] + 1e-12  # median
        a = jtj.copy()
        a.flat[::len(diag) + 1] += lam * np.maximum(diag, floor)
        x = np.minimum(np.maximum(best_x + _solve_spd(a, jtr), lo), hi)
    return LMResult(best_x, best_cost, iterations, accepted)


def _normal_equations(jac: np.ndarray, r: np.ndarray, x: np.ndarray, lo: np.ndarray,
                      hi: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """J^T J and J^T r, with no coupling and no gradient for the parameters held this step.

    Held: those whose bounds coincide, and those at a bound whose gradient points out of
    the box. Rows of J that are all zero add nothing and are skipped.
    """
    if compiled.ENABLED:
        return compiled_lm.normal_equations(jac, r, x, lo, hi, held)
    gradient = jac.T @ r
    fixed = held | ((x <= lo) & (gradient > 0)) | ((x >= hi) & (gradient < 0))
    live = jac.any(axis=1)
    if not live.all():
        jac = jac[live]
    jtj = jac.T @ jac
    if fixed.any():
        free = ~fixed
        jtj *= free[:, None] & free[None, :]
        gradient = np.where(fixed, 0.0, gradient)
    return jtj, gradient


def _solve_spd(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """-a^-1 g for the damped normal matrix a (symmetric positive definite).

    LAPACK's Cholesky solver directly (np.linalg.solve's checks cost more than the solve
    at n = 35); a general solve if a is not numerically positive definite.
    """
    _, step, info = dposv(a, g, lower=False, overwrite_a=False, overwrite_b=False)
    return -step if info == 0 else np.linalg.solve(a, -g)
