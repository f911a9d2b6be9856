"""Compiled kernels (numba) of the fit's hottest loops, and whether they are in use.

The fit evaluates its residuals and their Jacobian about a dozen times per frame, on a
few hundred points: in numpy each evaluation is ~100 operations on arrays too small to
amortise an operation's dispatch, so the dispatch is most of the cost. These kernels do
the same arithmetic point by point, compiled once (``cache=True``: later processes load
the machine code from numba's cache):

* :func:`round_distances` -- every point's distance to every round part (the gate);
* :func:`nearest_surface` -- signed distance of points to the model's union of round
  parts (among each point's candidates) and two ellipsoids, its gradient and the part
  (``vvhand_core.fit.surface.nearest_surface``);
* :func:`lookup` -- the free-space lookup (``vvhand_core.fit.observe.lookup``) and
  :func:`free_residuals`, the free-space term with it (``vvhand_core.fit.terms.free_term``);
* :func:`pose` -- the fit's closed-form hand model (``vvhand_core.fit.hand_np.pose``);
* Levenberg-Marquardt's algebra: :mod:`.compiled_lm`; a whole LM evaluation (every term
  and its Jacobian in one call): :mod:`.compiled_terms`;
* :func:`jacobian_rows` -- the chain rule of every residual's point velocity
  (``vvhand_core.fit.bodies.jacobian_rows``).

Each is tested equal to its numpy twin (``test/test_fit_compiled.py``), which stays as the
reference and as the path where numba is not installed (``ENABLED`` False; or set the
environment variable ``VVHAND_FIT_NUMPY=1``). docs/architecture.md says why numba.
"""

from __future__ import annotations

import math
import os

import numpy as np

try:  # numba is a run-time dependency (requirements/base.txt), but the fit runs without it
    import numba
except ImportError:  # pragma: no cover - exercised where numba is missing
    numba = None

ENABLED = numba is not None and os.environ.get("VVHAND_FIT_NUMPY", "") in ("", "0")
_EPS = 1e-9


def _jit(fn):
    return numba.njit(cache=True, nogil=True)(fn) if numba is not None else fn


@_jit
def _nearest(points, p0, p1, radius, cand, all_parts, centres, rot, semi, want_grad):
    n = points.shape[0]
    nk = 46 if all_parts else cand.shape[1]
    dist = np.empty(n)
    grad = np.zeros((n, 3))
    part = np.empty(n, np.int64)
    seg = p1 - p0
    inv = np.empty(seg.shape[0])
    for j in range(seg.shape[0]):
        inv[j] = 1.0 / (seg[j, 0] * seg[j, 0] + seg[j, 1] * seg[j, 1] + seg[j, 2] * seg[j, 2]
                        + _EPS)
    # q = R^T (p - c) per ellipsoid: the constant part c . R (column per semi-axis)
    cr = np.empty((2, 3))
    for e in range(2):
        for a in range(3):
            cr[e, a] = centres[e, 0] * rot[e, 0, a] + centres[e, 1] * rot[e, 1, a] \
                + centres[e, 2] * rot[e, 2, a]
    for i in range(n):
        px, py, pz = points[i, 0], points[i, 1], points[i, 2]
        best, best_j, bx, by, bz, blen = np.inf, -1, 0.0, 0.0, 0.0, 0.0
        for k in range(nk):
            j = k if all_parts else cand[i, k]
            ox, oy, oz = px - p0[j, 0], py - p0[j, 1], pz - p0[j, 2]
            dx, dy, dz = seg[j, 0], seg[j, 1], seg[j, 2]
            t = (ox * dx + oy * dy + oz * dz) * inv[j]
            t = min(max(t, 0.0), 1.0)
            ox, oy, oz = ox - t * dx, oy - t * dy, oz - t * dz
            length = math.sqrt(ox * ox + oy * oy + oz * oz)
            d = length - radius[j]
            if d < best:
                best, best_j, bx, by, bz, blen = d, j, ox, oy, oz, length
        best_e = -1
        ek0 = ek1 = ev0 = ev1 = ev2 = fv0 = fv1 = fv2 = 0.0
        for e in range(2):
            q0 = px * rot[e, 0, 0] + py * rot[e, 1, 0] + pz * rot[e, 2, 0] - cr[e, 0]
            q1 = px * rot[e, 0, 1] + py * rot[e, 1, 1] + pz * rot[e, 2, 1] - cr[e, 1]
            q2 = px * rot[e, 0, 2] + py * rot[e, 1, 2] + pz * rot[e, 2, 2] - cr[e, 2]
            e0, e1, e2 = q0 / semi[e, 0], q1 / semi[e, 1], q2 / semi[e, 2]
            f0, f1, f2 = e0 / semi[e, 0], e1 / semi[e, 1], e2 / semi[e, 2]
            k0 = math.sqrt(e0 * e0 + e1 * e1 + e2 * e2) + _EPS
            k1 = math.sqrt(f0 * f0 + f1 * f1 + f2 * f2) + _EPS
            d = k0 * (k0 - 1.0) / k1
            if d < best:
                best, best_e, ek0, ek1 = d, e, k0, k1
                ev0, ev1, ev2, fv0, fv1, fv2 = e0, e1, e2, f0, f1, f2
        dist[i] = best
        if best_e < 0:
            part[i] = best_j
            if want_grad:
                m = max(blen, _EPS)
                grad[i, 0], grad[i, 1], grad[i, 2] = bx / m, by / m, bz / m
        else:
            part[i] = 46 + best_e
            if want_grad:
                a0, a1, a2 = semi[best_e, 0], semi[best_e, 1], semi[best_e, 2]
                u = (2 * ek0 - 1) / (ek1 * ek0)
                v = ek0 * (ek0 - 1) / (ek1 * ek1 * ek1)
                dq0 = u / a0 * ev0 - v / (a0 * a0) * fv0
                dq1 = u / a1 * ev1 - v / (a1 * a1) * fv1
                dq2 = u / a2 * ev2 - v / (a2 * a2) * fv2
                for c in range(3):
                    grad[i, c] = rot[best_e, c, 0] * dq0 + rot[best_e, c, 1] * dq1 \
                        + rot[best_e, c, 2] * dq2
    return dist, grad, part


def nearest_surface(points: np.ndarray, hp, candidates: np.ndarray | None, grad: bool):
    """``surface.nearest_surface`` compiled: (dist (N,), grad (N, 3) or None, part (N,))."""
    p0, p1, r = hp.round_parts()
    centres, rot, semi = hp.ellipsoids()
    every = candidates is None
    cand = _NO_CANDIDATES if every else np.ascontiguousarray(candidates, dtype=np.int64)
    dist, g, part = _nearest(np.ascontiguousarray(points, dtype=np.float64), p0, p1,
                             np.ascontiguousarray(r), cand, every, centres,
                             np.ascontiguousarray(rot), np.ascontiguousarray(semi), grad)
    return dist, (g if grad else None), part


_NO_CANDIDATES = np.zeros((0, 1), np.int64)


@_jit
def _round_all(points, p0, p1, radius):
    n, m = points.shape[0], p0.shape[0]
    out = np.empty((n, m))
    for j in range(m):
        dx, dy, dz = p1[j, 0] - p0[j, 0], p1[j, 1] - p0[j, 1], p1[j, 2] - p0[j, 2]
        inv = 1.0 / (dx * dx + dy * dy + dz * dz + _EPS)
        for i in range(n):
            ox, oy, oz = points[i, 0] - p0[j, 0], points[i, 1] - p0[j, 1], points[i, 2] - p0[j, 2]
            t = min(max((ox * dx + oy * dy + oz * dz) * inv, 0.0), 1.0)
            ox, oy, oz = ox - t * dx, oy - t * dy, oz - t * dz
            out[i, j] = math.sqrt(ox * ox + oy * oy + oz * oz) - radius[j]
    return out


def round_distances(points: np.ndarray, hp) -> np.ndarray:
    """Signed distances (N, 46) of points (N, 3) to every round part (``surface``)."""
    p0, p1, r = hp.round_parts()
    return _round_all(np.ascontiguousarray(points, dtype=np.float64), p0, p1,
                      np.ascontiguousarray(r))


@_jit
def _lookup_one(x, y, z, k, u0, v0, stride, both, h, w):
    z = max(z, 1.0)
    gu = ((k[0] * x / z + k[2]) - u0) / stride
    gv = ((k[1] * y / z + k[3]) - v0) / stride
    cu = min(max(gu, 0.0), w - 1.0)
    cv = min(max(gv, 0.0), h - 1.0)
    off = (abs(gu - cu) + abs(gv - cv)) * stride
    iu = min(int(math.floor(cu)), w - 2)
    iv = min(int(math.floor(cv)), h - 2)
    fu, fv = cu - iu, cv - iv
    c0 = iv * w + iu
    a, b, c, d = both[c0, 0], both[c0 + 1, 0], both[c0 + w, 0], both[c0 + w + 1, 0]
    top = a + fu * (b - a)
    slack = top + fv * (c + fu * (d - c) - top)
    a, b, c, d = both[c0, 1], both[c0 + 1, 1], both[c0 + w, 1], both[c0 + w + 1, 1]
    top = a + fu * (b - a)
    depth = top + fv * (c + fu * (d - c) - top)
    return (slack + off) * z / k[0], (0.0 if off > 0 else depth)


@_jit
def _lookup(points, k, u0, v0, stride, both, h, w):
    n = points.shape[0]
    outside = np.empty(n)
    depth = np.empty(n)
    for i in range(n):
        outside[i], depth[i] = _lookup_one(points[i, 0], points[i, 1], points[i, 2], k, u0, v0,
                                           stride, both, h, w)
    return outside, depth


def lookup(obs, points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``observe.lookup`` compiled: (outside_mm, observed_depth_mm), each points' shape[:-1]."""
    flat = np.ascontiguousarray(points_mm, dtype=np.float64).reshape(-1, 3)
    h, w = obs.slack_px.shape
    outside, depth = _lookup(flat, obs.k, float(obs.u0), float(obs.v0), float(obs.stride),
                             obs.both, h, w)
    shape = points_mm.shape[:-1]
    return outside.reshape(shape), depth.reshape(shape)


@_jit
def _robust(e):
    """``terms.robust`` with c = 1 for one residual: (psi, d psi / d e)."""
    u = abs(e)
    u2 = u * u
    root = math.sqrt(math.log1p(u2))
    dpsi = 1.0 if u2 < 1e-8 else u / (max(root, 1e-150) * (1.0 + u2))
    return math.copysign(root, e), dpsi


@_jit
def _free(centres, radii, k, u0, v0, stride, both, h, w, scale_k, sigma, margin, s, step, jac):
    n = centres.shape[0]
    r = np.empty(2 * n)
    g = np.zeros((2 * n, 3))
    extra = np.zeros(2 * n)
    for i in range(n):
        x, y, z = centres[i, 0], centres[i, 1], centres[i, 2]
        out0, depth0 = _lookup_one(x, y, z, k, u0, v0, stride, both, h, w)
        front_raw0 = depth0 - margin - (z - radii[i])
        active = front_raw0 > 0 and depth0 > 0
        psi_o, dpsi_o = _robust(out0 / sigma)
        psi_f, dpsi_f = _robust((front_raw0 if active else 0.0) / sigma)
        r[i], r[n + i] = psi_o * scale_k, psi_f * scale_k
        if not jac:
            continue
        f_o, f_f = dpsi_o * (scale_k / sigma), dpsi_f * (scale_k / sigma)
        for c in range(3):  # finite differences of the bilinear lookup, as numpy does
            px, py, pz = x + step * (c == 0), y + step * (c == 1), z + step * (c == 2)
            out_c, depth_c = _lookup_one(px, py, pz, k, u0, v0, stride, both, h, w)
            g[i, c] = (out_c - out0) / step * f_o
            if active:
                g[n + i, c] = ((depth_c - margin - (pz - radii[i])) - front_raw0) / step * f_f
        if active:
            extra[n + i] = f_f * radii[i] / s
    return r, g, extra


def free_residuals(obs, centres: np.ndarray, radii: np.ndarray, scale_k: float,
                   sigma_mm: float, margin_mm: float, s: float, step_mm: float, jac: bool):
    """``terms.free_term``'s residuals (2K,), sensitivities (2K, 3) and scale extras (2K,)."""
    h, w = obs.slack_px.shape
    return _free(np.ascontiguousarray(centres, np.float64), np.ascontiguousarray(radii),
                 obs.k, float(obs.u0), float(obs.v0), float(obs.stride), obs.both, h, w,
                 float(scale_k), float(sigma_mm), float(margin_mm), float(s), float(step_mm),
                 jac)


@_jit
def _rows(points, bodies, g, coef, wrist_coef, moves_deg, finger_of_body, t, s, extra,
          roots, lengths, anchors, with_lengths):
    out = np.zeros((points.shape[0], 35))
    _fill_rows(out, points, bodies, g, coef, wrist_coef, moves_deg, finger_of_body, t, s,
               extra, roots, lengths, anchors, with_lengths)
    return out


@_jit
def _fill_rows(out, points, bodies, g, coef, wrist_coef, moves_deg, finger_of_body, t, s,
               extra, roots, lengths, anchors, with_lengths):
    """Jacobian rows into out[:N] (zeros: only the non-zero entries are written)."""
    n = points.shape[0]
    pg = np.empty(6)
    for i in range(n):
        px, py, pz = points[i, 0], points[i, 1], points[i, 2]
        gx, gy, gz = g[i, 0], g[i, 1], g[i, 2]
        if gx == 0.0 and gy == 0.0 and gz == 0.0 and extra[i] == 0.0:
            continue  # a residual that nothing moves (an inactive free-space sample)
        pg[0], pg[1], pg[2] = py * gz - pz * gy, pz * gx - px * gz, px * gy - py * gx
        pg[3], pg[4], pg[5] = gx, gy, gz
        b = bodies[i]
        for c in range(3):  # rotation: (p - t) x g through the left Jacobian
            acc = 0.0
            for m in range(6):
                acc += pg[m] * coef[m, c]
            out[i, c] = acc
        out[i, 3], out[i, 4], out[i, 5] = gx, gy, gz
        out[i, 6] = (gx * (px - t[0]) + gy * (py - t[1]) + gz * (pz - t[2])) / s + extra[i]
        for j in range(23):
            mv = moves_deg[b, j]
            if mv != 0.0:
                acc = 0.0
                for m in range(6):
                    acc += pg[m] * coef[m, 3 + j]
                if b == 17 and j >= 21:  # the wrist ellipsoid turns about its own centre
                    acc += gx * wrist_coef[j - 21, 0] + gy * wrist_coef[j - 21, 1] \
                        + gz * wrist_coef[j - 21, 2]
                out[i, 7 + j] = acc * mv
        f = finger_of_body[b]
        if with_lengths and f >= 0:
            out[i, 30 + f] = (gx * (anchors[i, 0] - roots[f, 0]) + gy * (anchors[i, 1]
                              - roots[f, 1]) + gz * (anchors[i, 2] - roots[f, 2])) / lengths[f]


def jacobian_rows(points, bodies, g, coef, wrist_coef, moves_deg, finger_of_body, t, s,
                  extra, roots, lengths, anchors):
    """``bodies.jacobian_rows`` compiled, from its coefficient tables (N, 35)."""
    with_lengths = roots is not None and lengths is not None
    n = len(points)
    return _rows(np.ascontiguousarray(points, np.float64), np.ascontiguousarray(bodies, np.int64),
                 np.ascontiguousarray(g, np.float64), coef, wrist_coef, moves_deg,
                 finger_of_body, np.asarray(t, np.float64), float(s),
                 np.zeros(n) if extra is None else np.ascontiguousarray(extra, np.float64),
                 roots if with_lengths else _NO_ROOTS,
                 lengths if with_lengths else _NO_LENGTHS,
                 np.ascontiguousarray(points if anchors is None else anchors, np.float64),
                 with_lengths)


_NO_ROOTS, _NO_LENGTHS = np.zeros((5, 3)), np.ones(5)


@_jit
def _pose(angles, rot, trans, scale, lengths, thumb_lengths, angle_map, angle_offset,
          thumb_basis, thumb_cmc, template, mcp, forearm_ends, abd_sign, pivot, left,
          want_axes):
    every = angle_offset.copy()
    for j in range(23):  # degrees -> the radians pose needs (hand_np._ANGLE_MAP)
        a = angles[j]
        for m in range(42):
            if angle_map[j, m] != 0.0:
                every[m] += a * angle_map[j, m]
    cos, sin = np.cos(every), np.sin(every)
    ca, cf, co, sa, sf, so = cos[16], cos[17], cos[18], sin[16], sin[17], sin[18]
    coefs = np.array([cf, cf * ca, cf * sa, sf, sf * ca, sf * sa, 1.0, ca, sa])
    av = np.zeros((4, 3))  # A y0, A b0, A f0, A abd_axis
    for m in range(9):
        for q in range(12):
            av[q // 3, q % 3] += coefs[m] * thumb_basis[m, q]
    pts = template.copy()
    acc = np.zeros(3)
    for k in range(3):
        for c in range(3):
            col2 = so * av[1, c] + co * av[2, c]
            acc[c] += thumb_lengths[k] * (cos[39 + k] * av[0, c] + sin[39 + k] * col2)
            pts[2 + k, c] = thumb_cmc[c] + acc[c]
    for f in range(4):
        cp, sp = cos[23 + f], -sin[23 + f]
        x = y = z = 0.0
        for k in range(3):
            lcc = lengths[f, k] * cos[27 + 3 * f + k]
            x += lcc * -sp
            y += lcc * cp
            z += lengths[f, k] * sin[27 + 3 * f + k]
            row = 6 + 4 * f + k
            pts[row, 0], pts[row, 1], pts[row, 2] = mcp[f, 0] + x, mcp[f, 1] + y, mcp[f, 2] + z
    cw, cd, sw, sd = cos[21], cos[22], sin[21], sin[22]
    r_fore = np.array([[cd, -sd, 0.0], [cw * sd, cw * cd, sw], [-sw * sd, -sw * cd, cw]])
    for e in range(2):
        for c in range(3):
            pts[25 + e, c] = -r_fore[c, 1] * forearm_ends[e, 0]
    dev = r_fore[:, 2].copy()
    if left:
        for i in range(pts.shape[0]):
            pts[i, 0] = -pts[i, 0]
        for i in range(3):
            for c in range(3):
                if (i == 0) != (c == 0):
                    r_fore[i, c] = -r_fore[i, c]
    cam = np.empty_like(pts)
    shift = np.empty(3)
    for c in range(3):
        shift[c] = trans[c] - scale * (pivot[0] * rot[c, 0] + pivot[1] * rot[c, 1]
                                       + pivot[2] * rot[c, 2])
    for i in range(pts.shape[0]):
        for c in range(3):
            cam[i, c] = scale * (pts[i, 0] * rot[c, 0] + pts[i, 1] * rot[c, 1]
                                 + pts[i, 2] * rot[c, 2]) + shift[c]
    ell_rot = np.empty((2, 3, 3))
    ell_rot[0] = rot
    ell_rot[1] = rot @ r_fore
    ax = np.zeros((23, 3))
    if want_axes:
        for f in range(4):
            ax[4 * f, 2] = -abd_sign[f]
            for k in range(1, 4):
                ax[4 * f + k, 0], ax[4 * f + k, 1] = cos[23 + f], -sin[23 + f]
        for c in range(3):
            ax[16, c], ax[18, c] = av[3, c], av[0, c]
            ax[19, c] = ax[20, c] = co * av[1, c] - so * av[2, c]
            ax[22, c] = dev[c]
        ax[17, 2], ax[21, 0] = 1.0, -1.0
        if left:  # a mirrored hand turns about -M axis
            for i in range(23):
                ax[i, 1] = -ax[i, 1]
                ax[i, 2] = -ax[i, 2]
        ax = ax @ rot.T
    return cam, ell_rot, ax


def pose(angles_deg, rotation, translation_mm, scale, lengths, thumb_lengths, angle_map,
         shape, abd_sign, pivot, left, axes):
    """``hand_np.pose`` compiled: camera points (34, 3), ell_rot (2, 3, 3), axes or None.

    lengths (4, 3) and thumb_lengths (3,): the shape's, finger length factors applied.
    """
    cam, ell_rot, ax = _pose(
        np.ascontiguousarray(angles_deg, np.float64), np.ascontiguousarray(rotation, np.float64),
        np.asarray(translation_mm, np.float64), float(scale), lengths, thumb_lengths,
        angle_map, shape.angle_offset, shape.thumb_basis, shape.thumb_cmc, shape.template,
        shape.mcp, shape.forearm_ends, abd_sign, pivot, bool(left), bool(axes))
    return cam, ell_rot, (ax if axes else None)
