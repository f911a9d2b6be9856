"""Levenberg-Marquardt with box bounds, for residuals that come with their Jacobian.

``fn(x, jacobian)`` returns the residuals r (m,) at x (n,) and, when asked, their
Jacobian J (m, n) (the fit's terms give it in closed form, :mod:`vvhand_core.fit.terms`).

Bounds: a parameter at a bound whose gradient points out of the box is held for the step
(active set), and every trial point is clamped into the box (projected LM); a parameter
whose bounds coincide is always held. Damping: Marquardt's scaling of the normal matrix's
diagonal, with a floor (a parameter that barely moves anything, such as the thumb's axial
opposition while the thumb is straight, must not take a huge step). A trial that raises
the cost is rejected and the damping grows (x ``grow``; a success divides it by 3),
re-solving with the stored Jacobian.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

ResidualFn = Callable[[torch.Tensor, bool], tuple[torch.Tensor, torch.Tensor | None]]
FLOOR = 0.05  # damping floor, relative to the median of the normal matrix's diagonal


@dataclass
class LMResult:
    """What LM found.

    x (n,) the best point; cost: 0.5 |r(x)|^2; evaluations: calls of ``fn``; accepted:
    steps that lowered the cost.
    """

    x: torch.Tensor
    cost: float
    evaluations: int
    accepted: int


def levenberg_marquardt(fn: ResidualFn, x0: torch.Tensor, lower: torch.Tensor,
                        upper: torch.Tensor, iterations: int, damping: float = 1e-2,
                        grow: float = 8.0) -> LMResult:
    """Minimise 0.5 |fn(x)|^2 within [lower, upper] from x0 (all (n,) float64).

    Exactly ``iterations`` (>= 1) calls of ``fn``; the last one asks for no Jacobian.
    """
    iterations = max(1, iterations)
    lo, hi = lower.numpy(), upper.numpy()
    held = lo >= hi
    x = np.minimum(np.maximum(x0.numpy(), lo), hi)
    best_x, best_cost = x, float("inf")
    jtj = jtr = None
    lam, accepted = damping, 0
    for it in range(iterations):
        last = it == iterations - 1
        r, jac = fn(torch.from_numpy(x), not last)
        r = r.numpy()
        cost = 0.5 * float(r @ r)
        if cost < best_cost:
            if it > 0:
                accepted += 1
                lam = max(lam / 3.0, 1e-7)
            best_x, best_cost = x, cost
            if last:
                break
            jac = jac.numpy()
            jtr = jac.T @ r
            fixed = held | ((x <= lo) & (jtr > 0)) | ((x >= hi) & (jtr < 0))
            jac = jac * ~fixed
            jtr = np.where(fixed, 0.0, jtr)
            jtj = jac.T @ jac
        else:
            lam *= grow
        if last:
            break
        diag = np.diag(jtj)
        floor = FLOOR * np.partition(diag, len(diag) // 2)[len(diag) // 2] + 1e-12  # median
        a = jtj + lam * np.diag(np.maximum(diag, floor))
        x = np.minimum(np.maximum(best_x + np.linalg.solve(a, -jtr), lo), hi)
    return LMResult(torch.from_numpy(best_x), best_cost, iterations, accepted)
