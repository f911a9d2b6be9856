"""Hand localisation without ground truth: forearm, wall, noise, border, empty, tracking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vvhand_core.camera import Intrinsics
from vvhand_core.localise import HandLocaliser, LocaliseConfig, oracle_centre
from vvhand_core.render.scenes import compose, hand_like, pixel_rays, plane_depth, sphere_depth

NYU = Intrinsics(588.03, 587.07, 320.0, 240.0, 640, 480)
PALM = np.array([30.0, -20.0, 500.0])


@pytest.fixture(scope="module")
def rays():
    return pixel_rays([NYU.fx, NYU.fy, NYU.cx, NYU.cy], NYU.height, NYU.width)


def surface_com(depth):
    """Centre of mass of every valid pixel's 3D point (the reference hand centre)."""
    v, u = np.nonzero(depth)
    z = depth[v, u]
    return np.array([((u - NYU.cx) / NYU.fx * z).mean(), ((v - NYU.cy) / NYU.fy * z).mean(),
                     z.mean()])


def locate(depth, **kw):
    return HandLocaliser(LocaliseConfig(use_tracking=False, **kw)).locate(depth, NYU)


def test_clean_hand_and_uint16(rays):
    depth = compose(hand_like(rays, PALM, forearm=False)).numpy()
    ref = surface_com(depth)
    c = locate(depth)
    assert c.shape == (3,) and np.linalg.norm(c - ref) < 10
    c16 = locate(depth.round().astype(np.uint16))
    assert np.linalg.norm(c16 - c) < 1


def test_forearm_does_not_drag_the_centre(rays):
    ref = surface_com(compose(hand_like(rays, PALM, forearm=False)).numpy())
    depth = compose(hand_like(rays, PALM, forearm=True)).numpy()
    naive = surface_com(depth)  # the whole arm's centre of mass
    assert np.linalg.norm(naive - ref) > 60  # the scene really is a trap
    c = locate(depth)
    assert np.linalg.norm(c - ref) < 35


def test_wall_behind(rays):
    hand = hand_like(rays, PALM, forearm=True)
    alone = locate(compose(hand).numpy())
    far_wall = compose(hand, plane_depth(rays, (0, 0, 800.0), (0, 0, 1))).numpy()
    assert np.linalg.norm(surface_com(np.where(far_wall <= 1200, far_wall, 0)) - alone) > 100
    assert np.linalg.norm(locate(far_wall) - alone) < 2
    # a wall only 100 mm behind the hand lies inside the depth slab: cut off by the depth step
    bare = hand_like(rays, PALM, forearm=False)
    ref = surface_com(compose(bare).numpy())
    near_wall = compose(bare, plane_depth(rays, (0, 0, 600.0), (0, 0, 1))).numpy()
    assert np.linalg.norm(locate(near_wall) - ref) < 10


def test_salt_noise(rays):
    depth = compose(hand_like(rays, PALM), plane_depth(rays, (0, 0, 800.0), (0, 0, 1))).numpy()
    clean = locate(depth)
    rng = np.random.default_rng(0)
    noisy = depth.copy()
    salt = rng.random(depth.shape) < 0.02
    noisy[salt] = rng.uniform(200, 1200, salt.sum())  # flying pixels anywhere in range
    noisy[rng.random(depth.shape) < 0.02] = 0  # dropouts
    assert np.linalg.norm(locate(noisy) - clean) < 10


def test_nothing_plausible_is_no_hand(rays):
    assert locate(np.zeros((480, 640), np.uint16)) is None
    rng = np.random.default_rng(1)
    noise = np.where(rng.random((480, 640)) < 0.02, rng.uniform(200, 1200, (480, 640)), 0)
    assert locate(noise) is None  # isolated noise pixels are never a hand
    assert locate(compose(plane_depth(rays, (0, 0, 700.0), (0, 0, 1))).numpy()) is None
    # a hand beyond max_depth is out of range
    assert locate(compose(hand_like(rays, (0, 0, 1500.0))).numpy()) is None
    assert locate(compose(hand_like(rays, (0, 0, 1500.0))).numpy(), max_depth_mm=1700) is not None


def test_hand_at_the_image_border(rays):
    palm = np.array([-330.0, 0.0, 600.0])  # the palm centre projects onto the left edge
    bare = compose(hand_like(rays, palm, forearm=False)).numpy()
    ref = surface_com(bare)  # of the visible part
    c = locate(compose(hand_like(rays, palm)).numpy())
    assert c is not None and np.linalg.norm(c - ref) < 40


def test_tracking_prior_and_its_loss(rays):
    hand = hand_like(rays, PALM, forearm=False)
    other = sphere_depth(rays, (-200.0, 50.0, 380.0), 45.0)  # a nearer object appears
    loc = HandLocaliser(LocaliseConfig(use_tracking=True))
    first = loc.locate(compose(hand).numpy(), NYU)
    assert loc.prior is not None and np.allclose(loc.prior, first)
    both = compose(hand, other).numpy()
    assert np.linalg.norm(loc.locate(both, NYU) - first) < 5  # sticks to the tracked hand
    other_ref = surface_com(compose(other).numpy())
    assert np.linalg.norm(locate(both) - other_ref) < 25  # without the prior: the nearest
    # the hand leaves: the prior is dropped and the remaining object is found
    assert np.linalg.norm(loc.locate(compose(other).numpy(), NYU) - other_ref) < 25
    assert loc.locate(np.zeros((480, 640)), NYU) is None and loc.prior is None
    loc.locate(compose(hand).numpy(), NYU)
    loc.reset()
    assert loc.prior is None
    no_track = HandLocaliser(LocaliseConfig(use_tracking=False))
    no_track.locate(compose(hand).numpy(), NYU)
    assert no_track.prior is None


def test_oracle_centre_numpy_and_torch():
    joints = np.arange(2 * 4 * 3, dtype=np.float64).reshape(2, 4, 3)
    assert np.allclose(oracle_centre(joints, [0, 2]), (joints[:, 0] + joints[:, 2]) / 2)
    assert np.allclose(oracle_centre(joints), joints.mean(1))
    t = torch.from_numpy(joints)
    assert torch.allclose(oracle_centre(t, (1, 3)), (t[:, 1] + t[:, 3]) / 2)


def test_config_validation():
    with pytest.raises(ValueError):
        LocaliseConfig(min_depth_mm=900, max_depth_mm=800)
    with pytest.raises(ValueError):
        LocaliseConfig(max_fill=0)
