"""One compiled kernel for a whole LM evaluation: every residual term and its Jacobian.

:func:`residuals` is the compiled twin of ``terms.Terms.evaluate``'s numpy path, which
builds each term (``point_pull``, ``data_term``, ``free_term``, the temporal pull, the
scale and finger length priors) and stacks them (``stack_terms``). The numpy path spends
most of an evaluation dispatching ~150 small array operations; here the same arithmetic
runs in one call over the posed model, calling the point kernels of
:mod:`vvhand_core.fit.compiled` (nearest surface, free space, Jacobian rows).

Rows, in order: joints (63: joint j's x, y, z), data points (N), free-space samples (2K:
outside, then in front), the temporal pull (63, in sequences), the scale prior (1), the
finger length priors (5, when they are fitted). ``test/test_fit_compiled.py`` compares
residuals and Jacobian with the numpy path.

numba compiles the kernels of :mod:`.compiled` that this one calls into its own machine
code, and its cache (``cache=True``) is refreshed only when this file changes: after
editing a kernel of :mod:`.compiled`, delete ``vvhand_core/fit/__pycache__/*.nb[ic]``.
"""

from __future__ import annotations

import math

import numpy as np

from vvhand_core.fit.bodies import _MOVES_DEG as MOVES_DEG
from vvhand_core.fit.bodies import (
    FINGER_OF_BODY,
    FINGER_ROOT_JOINT,
    JOINT_BODY,
    PART_BODY,
    SAMPLE_BODY,
)
from vvhand_core.fit.compiled import _fill_rows, _free, _jit, _nearest
from vvhand_core.fit.tables import IDX

_ROOTS = np.array(FINGER_ROOT_JOINT, np.int64)
_PIVOTS = np.ascontiguousarray(IDX["pivots"], np.int64)
_ROUND0, _ROUND1 = IDX["round0"], IDX["round1"]
_S0, _S1, _SFRAC = IDX["s0"], IDX["s1"], np.ascontiguousarray(IDX["sfrac"][:, 0])
_NO_POINTS, _NO_CAND = np.zeros((0, 3)), np.zeros((0, 1), np.int64)
_NO_GRID = np.zeros((4, 2))
JOINT_BODY_K = np.ascontiguousarray(JOINT_BODY, np.int64)
PART_BODY_K = np.ascontiguousarray(PART_BODY, np.int64)
SAMPLE_BODY_K = np.ascontiguousarray(SAMPLE_BODY, np.int64)
FINGER_OF_BODY_K = np.ascontiguousarray(FINGER_OF_BODY, np.int64)


@_jit
def _robust(e, c):
    """``terms.robust`` for one residual: (psi, d psi / d e)."""
    u = abs(e) / c if c != 1.0 else abs(e)
    u2 = u * u
    root = math.sqrt(math.log1p(u2))
    dpsi = 1.0 if u2 < 1e-8 else u / (max(root, 1e-150) * (1.0 + u2))
    return math.copysign(root * c if c != 1.0 else root, e), dpsi


@_jit
def _pull(joints, target, w, sigma, row, r, pts, body, g, anchors):
    """A pull of the 21 joints to targets (``terms.point_pull``) into rows row..row+63."""
    for j in range(21):
        for c in range(3):
            i = row + 3 * j + c
            psi, dpsi = _robust((joints[j, c] - target[j, c]) / sigma, 1.0)
            r[i] = psi * w[j]
            g[i, c] = dpsi * (w[j] / sigma)
            for a in range(3):
                pts[i, a] = anchors[i, a] = joints[j, a]
            body[i] = JOINT_BODY_K[j]


@_jit
def _coefficients(axes, pivots, jl, t, wrist_centre):
    """``bodies.jacobian_rows``' coefficient tables: coef (6, 26), wrist_coef (2, 3)."""
    coef = np.empty((6, 26))
    sk = np.array([[0.0, -t[2], t[1]], [t[2], 0.0, -t[0]], [-t[1], t[0], 0.0]])
    for a in range(3):
        for b in range(3):
            coef[a, b] = jl[a, b]
            coef[3 + a, b] = sk[a, 0] * jl[0, b] + sk[a, 1] * jl[1, b] + sk[a, 2] * jl[2, b]
    for j in range(23):
        ax, q = axes[j], pivots[j]
        coef[0, 3 + j], coef[1, 3 + j], coef[2, 3 + j] = ax[0], ax[1], ax[2]
        coef[3, 3 + j] = -(ax[1] * q[2] - ax[2] * q[1])
        coef[4, 3 + j] = -(ax[2] * q[0] - ax[0] * q[2])
        coef[5, 3 + j] = -(ax[0] * q[1] - ax[1] * q[0])
    wrist = np.empty((2, 3))
    for k in range(2):
        ax = axes[21 + k]
        q0, q1, q2 = (pivots[21 + k, 0] - wrist_centre[0], pivots[21 + k, 1] - wrist_centre[1],
                      pivots[21 + k, 2] - wrist_centre[2])
        wrist[k, 0] = ax[1] * q2 - ax[2] * q1
        wrist[k, 1] = ax[2] * q0 - ax[0] * q2
        wrist[k, 2] = ax[0] * q1 - ax[1] * q0
    return coef, wrist


@_jit
def _evaluate(points, ell_rot, axes, x, jl, round_r, ell_semi, sample_r, target, joint_w,
              joint_mm, prev, temporal_w, temporal_mm, data_pts, cand, all_parts, data_k,
              data_mm, data_c, with_free, grid_k, u0, v0, stride, both, h, w, free_k, free_mm,
              margin_mm, step_mm, scale_k, scale_prior, length_k, with_length_prior, jac):
    s = x[6]
    nd = data_pts.shape[0]
    ns = _S0.shape[0] if with_free else 0
    nt = 63 if prev.shape[0] == 21 else 0
    chain = 63 + nd + 2 * ns + nt
    m = chain + 1 + (5 if with_length_prior else 0)
    r = np.empty(m)
    pts, anchors = np.empty((chain, 3)), np.empty((chain, 3))
    body = np.empty(chain, np.int64)
    g, extra = np.zeros((chain, 3)), np.zeros(chain)
    _pull(points, target, joint_w, joint_mm, 0, r, pts, body, g, anchors)
    if nd:
        p0, p1 = points[_ROUND0], points[_ROUND1]
        dist, grad, part = _nearest(data_pts, p0, p1, round_r * s, cand, all_parts,
                                    points[27:29], ell_rot, ell_semi * s, jac)
        for i in range(nd):
            psi, dpsi = _robust(dist[i] / data_mm, data_c)
            k = 63 + i
            r[k] = psi * data_k
            dr_dd = dpsi * (data_k / data_mm)
            radius = round_r[min(part[i], 45)] * s
            for a in range(3):
                g[k, a] = -dr_dd * grad[i, a]
                pts[k, a] = data_pts[i, a]
                anchors[k, a] = data_pts[i, a] - grad[i, a] * (dist[i] + radius)
            extra[k] = dr_dd * dist[i] / s
            body[k] = PART_BODY_K[part[i]]
    if ns:
        centres = np.empty((ns, 3))
        for i in range(ns):
            for a in range(3):
                q0 = points[_S0[i], a]
                centres[i, a] = q0 + _SFRAC[i] * (points[_S1[i], a] - q0)
        rf, gf, ef = _free(centres, sample_r * s, grid_k, u0, v0, stride, both, h, w, free_k,
                           free_mm, margin_mm, s, step_mm, jac)
        row = 63 + nd
        for i in range(2 * ns):
            r[row + i] = rf[i]
            extra[row + i] = ef[i]
            body[row + i] = SAMPLE_BODY_K[i % ns]
            for a in range(3):
                g[row + i, a] = gf[i, a]
                pts[row + i, a] = anchors[row + i, a] = centres[i % ns, a]
    if nt:
        _pull(points, prev, temporal_w, temporal_mm, chain - 63, r, pts, body, g, anchors)
    r[chain] = (s - scale_prior) * scale_k
    if with_length_prior:
        for f in range(5):
            r[chain + 1 + f] = (x[30 + f] - 1.0) * length_k
    if not jac:
        return r, np.zeros((0, 35))
    out = np.zeros((m, 35))
    coef, wrist = _coefficients(axes, points[_PIVOTS], jl, x[3:6], points[28])
    _fill_rows(out, pts, body, g, coef, wrist, MOVES_DEG, FINGER_OF_BODY_K, x[3:6], s, extra,
               points[_ROOTS], x[30:35], anchors, True)
    out[chain, 6] = scale_k
    if with_length_prior:
        for f in range(5):
            out[chain + 1 + f, 30 + f] = length_k
    return r, out


def residuals(lin, x: np.ndarray, terms, jac: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """``terms.Terms.evaluate`` compiled: residuals (m,) and Jacobian (m, 35) or None.

    lin: the ``terms.Linearisation`` of x (with joint axes when ``jac``).
    """
    p, obs, shape = lin.posed, terms.obs, lin.posed.shape
    data = terms.points is not None and len(terms.points) > 0
    every = terms.candidates is None
    grid = (obs.k, float(obs.u0), float(obs.v0), float(obs.stride), obs.both,
            *obs.slack_px.shape) if obs is not None else (_NO_GRID[0], 0.0, 0.0, 1.0, _NO_GRID,
                                                          2, 2)
    r, out = _evaluate(
        p.points, np.ascontiguousarray(p.ell_rot), p.axes if jac else _NO_AXES, x, lin.jl,
        shape.round_r, shape.ell_semi, shape.sample_r, terms.target, terms.joint_w,
        terms.joint_mm, _NO_POINTS if terms.prev is None else terms.prev, terms.temporal_w,
        terms.temporal_mm, terms.points if data else _NO_POINTS,
        _NO_CAND if every else terms.candidates, every, terms.data_k, terms.data_mm,
        terms.data_robust, obs is not None, *grid, terms.free_k, terms.free_mm,
        terms.margin_mm, terms.step_mm, terms.scale_k, terms.scale_prior,
        terms.length_k, terms.length_prior, jac)
    return r, (out if jac else None)


_NO_AXES = np.zeros((23, 3))
