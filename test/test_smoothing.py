"""One Euro filter and hand track (vvhand_core.smoothing) against the paper's formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vvhand_core.smoothing import HandTrack, OneEuroFilter, SmoothingConfig


def reference_one_euro(ts, xs, min_cutoff, beta, d_cutoff):
    """Casiez et al. 2012, written out for one scalar signal."""

    def alpha(te, fc):
        tau = 1.0 / (2 * math.pi * fc)
        return 1.0 / (1.0 + tau / te)

    out, x_hat, dx_hat = [xs[0]], xs[0], 0.0
    for i in range(1, len(xs)):
        te = ts[i] - ts[i - 1]
        dx = (xs[i] - x_hat) / te
        dx_hat = dx_hat + alpha(te, d_cutoff) * (dx - dx_hat)
        fc = min_cutoff + beta * abs(dx_hat)
        x_hat = x_hat + alpha(te, fc) * (xs[i] - x_hat)
        out.append(x_hat)
    return np.array(out)


def test_matches_the_paper_on_a_one_dimensional_signal():
    rng = np.random.default_rng(0)
    ts = np.cumsum(rng.uniform(0.02, 0.05, 200))
    xs = 100 * np.sin(ts * 3) + rng.normal(0, 3, 200)
    f = OneEuroFilter(min_cutoff_hz=1.2, beta=0.05, d_cutoff_hz=1.0)
    # a joint moving along x only: its speed norm is |dx|, so the filter is the scalar one
    got = np.array([f(t, np.array([[x, 5.0, -2.0]]))[0, 0] for t, x in zip(ts, xs, strict=True)])
    assert np.allclose(got, reference_one_euro(ts, xs, 1.2, 0.05, 1.0), atol=1e-9)


def test_still_noise_is_reduced_and_motion_is_followed():
    rng = np.random.default_rng(1)
    t = np.arange(300) / 30.0
    still = rng.normal(0, 5.0, (300, 21, 3))
    f = OneEuroFilter(1.0, 0.02)
    out = np.stack([f(ti, x) for ti, x in zip(t, still, strict=True)])
    assert out[30:].std() < 0.5 * still[30:].std()
    # a fast ramp (300 mm/s): beta raises the cutoff, so it lags less than without beta
    ramp = (300.0 * t)[:, None, None] * np.ones((1, 21, 3))
    lag = {}
    for beta in (0.0, 0.05):
        f = OneEuroFilter(1.0, beta)
        out = np.stack([f(ti, x) for ti, x in zip(t, ramp, strict=True)])
        lag[beta] = float((ramp - out)[-1].mean())
    assert lag[0.05] < 0.5 * lag[0.0]
    with pytest.raises(ValueError, match="time must increase"):
        f(t[-1], ramp[-1])


def test_track_restarts_on_loss_jump_gap_and_time_going_back():
    track = HandTrack(SmoothingConfig(jump_mm=50.0, max_gap_s=0.5))
    hand = np.zeros((21, 3))
    u = track.update(0.0, hand)
    assert u.track_id == 1 and u.restarted == "new"
    u = track.update(0.1, hand + 10.0)
    assert u.track_id == 1 and not u.restarted
    assert np.all(u.joints_mm < 10.0) and np.all(u.joints_mm > 0.0)  # filtered
    assert track.lost().track_id == 0
    u = track.update(0.2, hand + 10.0)
    assert (u.track_id, u.restarted) == (2, "new") and np.allclose(u.joints_mm, 10.0)
    u = track.update(0.3, hand + 200.0)  # jump: new track, the filter starts again
    assert (u.track_id, u.restarted) == (3, "jump") and np.allclose(u.joints_mm, 200.0)
    u = track.update(1.3, hand + 200.0)
    assert (u.track_id, u.restarted) == (4, "gap")
    u = track.update(1.0, hand + 200.0)
    assert (u.track_id, u.restarted) == (5, "time")
    track.configure(SmoothingConfig(enabled=False))
    u = track.update(1.1, hand + 230.0)
    assert u.track_id == 5 and np.allclose(u.joints_mm, 230.0)  # unfiltered
    bad = track.update(1.2, np.full((21, 3), np.nan))  # passed through, filter not poisoned
    assert bad.restarted == "nonfinite"
    u = track.update(1.3, hand + 240.0)
    assert (u.track_id, u.restarted) == (6, "new") and np.allclose(u.joints_mm, 240.0)
