"""Virtual-view renderer: exact identity, analytic plane and sphere, z-buffer, backends."""

from __future__ import annotations

import argparse
import ctypes
import shutil
import subprocess

import pytest
import torch

from vvhand_core.camera import Intrinsics
from vvhand_core.crop import crop_intrinsics, crop_transform
from vvhand_core.render import TorchRenderer, make_renderer
from vvhand_core.render.scenes import compose, pixel_rays, plane_depth, sphere_depth
from vvhand_core.views import rotation_matrices, view_grid, view_matrices

NYU = Intrinsics(588.03, 587.07, 320.0, 240.0, 640, 480)
S = 96


def frame(centre, dtype=torch.float64, size=S):
    k = NYU.as_tensor(dtype=dtype)[None]
    c = torch.tensor([centre], dtype=dtype)
    t = crop_transform(c, k, 250.0, size)
    return c, t, k, crop_intrinsics(t, k)[0]


def random_crops(b, size, gen, dtype=torch.float32):
    """Random blobs of random (non-integer) depths with random holes: (B, S, S)."""
    depth = 500 + 120 * (torch.rand(b, size, size, generator=gen) - 0.5)
    blob = torch.rand(b, size, size, generator=gen) < 0.6
    return torch.where(blob, depth, 0.0).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_identity_view_reproduces_random_crops_exactly(dtype):
    gen = torch.Generator().manual_seed(7)
    b = 3
    crops = random_crops(b, S, gen, dtype)
    crops[1, : S // 2] = 0  # frames with different foreground sizes (padding path)
    centre = torch.tensor([[10.0, -5.0, 500.0], [-40.0, 20.0, 480.0], [0.0, 0.0, 530.0]])
    k = NYU.as_tensor()[None].expand(b, 4)
    t = crop_transform(centre, k, 250.0, S)
    mats = view_matrices(view_grid(9), centre)  # float32 matrices, identity at index 4
    out = TorchRenderer("cpu").render(crops, t, k, mats)
    assert out.shape == (b, 9, S, S) and out.dtype == dtype
    assert torch.equal(out[:, 4], crops)
    assert not torch.equal(out[:, 0], crops)
    # one frame alone gives the same views as inside the batch
    alone = TorchRenderer("cpu").render(crops[1:2], t[1:2], k[1:2], mats[1:2])
    assert torch.equal(alone[0], out[1])


def test_empty_and_integer_crops():
    c, t, k, _ = frame([0.0, 0.0, 500.0], torch.float32)
    mats = view_matrices(view_grid(3), c)
    r = make_renderer("torch", "cpu")
    assert r.render(torch.zeros(1, S, S), t, k, mats).eq(0).all()
    crop = torch.zeros(1, S, S, dtype=torch.int32)
    crop[0, 40:50, 30:60] = 510
    out = r.render(crop, t, k, mats)
    assert out.dtype == torch.float32 and torch.equal(out[0, 1], crop[0].float())
    with pytest.raises(ValueError):
        r.render(torch.zeros(1, S, S + 1), t, k, mats)


def test_zbuffer_keeps_the_nearest_and_fills_no_holes():
    c, t, k, kc = frame([0.0, 0.0, 700.0])
    fx = float(kc[0])
    crop = torch.zeros(1, S, S, dtype=torch.float64)
    row = 40
    crop[0, row, 10] = 500.0  # near point
    crop[0, row, 12] = 1000.0  # far point two pixels to the right
    # translate by dx so that both land on column 14: 10 + f dx/500 = 12 + f dx/1000
    dx = 2000.0 / fx
    mats = torch.eye(4, dtype=torch.float64).repeat(1, 1, 1, 1)
    mats[0, 0, 0, 3] = dx
    out = TorchRenderer("cpu").render(crop, t, k, mats)[0, 0]
    assert out[row, 14] == 500.0  # nearest wins
    assert out[row, 10] == 0 and out[row, 12] == 0  # moved away, nothing fills the holes
    assert int((out > 0).sum()) == 1
    crop[0, row, 10], crop[0, row, 12] = 1000.0, 500.0  # now the far point is on the left:
    out = TorchRenderer("cpu").render(crop, t, k, mats)[0, 0]  # they no longer collide
    assert int((out > 0).sum()) == 2


def analytic_bounds(kc, size, depth_fn, sub=5):
    """Min/max of an analytic depth over each pixel's square (sub x sub samples)."""
    offs = (torch.arange(sub, dtype=torch.float64) / (sub - 1)) - 0.5
    lo = torch.full((size, size), float("inf"), dtype=torch.float64)
    hi = torch.full((size, size), -float("inf"), dtype=torch.float64)
    fx, fy, cx, cy = (float(x) for x in kc)
    for du in offs:
        for dv in offs:
            rays = pixel_rays([fx, fy, cx - float(du), cy - float(dv)], size, size)
            d = depth_fn(rays)
            lo, hi = torch.minimum(lo, d), torch.maximum(hi, d)
    return lo, hi


def test_rotated_plane_matches_analytic_depth():
    c, t, k, kc = frame([15.0, -10.0, 520.0])
    rays = pixel_rays(kc, S, S)
    crop = compose(plane_depth(rays, c[0], (0.0, 0.0, 1.0)))[None]  # frontal plane through C
    crop[0, :, :10] = 0  # a border so that both edges of the patch show
    angles = torch.tensor([[30.0, 0.0], [-20.0, 25.0]], dtype=torch.float64)
    mats = view_matrices(angles, c)
    out = TorchRenderer("cpu").render(crop, t, k, mats)[0]
    for v in range(2):
        rot = rotation_matrices(angles[v])
        normal = rot @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)  # plane turns about C
        lo, hi = analytic_bounds(kc, S, lambda r, n=normal: plane_depth(r, c[0], n))
        got = out[v]
        hit = got > 0
        assert hit.sum() > 0.5 * (crop > 0).sum()
        tol = 1e-6 * got
        assert ((got >= lo - tol) & (got <= hi + tol))[hit].all()
        assert not torch.equal(got, crop[0])


def test_sphere_seen_from_a_known_rotation():
    c, t, k, kc = frame([0.0, 0.0, 600.0])
    sphere_c = torch.tensor([25.0, -15.0, 590.0], dtype=torch.float64)  # off the rotation centre
    radius = 60.0
    rays = pixel_rays(kc, S, S)
    crop = compose(sphere_depth(rays, sphere_c, radius))[None]
    angles = torch.tensor([[25.0, -20.0]], dtype=torch.float64)
    m = view_matrices(angles, c)
    out = TorchRenderer("cpu").render(crop, t, k, m)[0, 0]
    moved_c = (m[0, 0, :3, :3] @ sphere_c) + m[0, 0, :3, 3]
    lo, hi = analytic_bounds(kc, S, lambda r: sphere_depth(r, moved_c, radius), sub=7)
    # visible: the rotated sphere's front point at the pixel centre came from a point the
    # source view saw (its normal faced the camera), away from silhouettes
    front = sphere_depth(rays, moved_c, radius)
    p = rays * front[..., None]
    rot = m[0, 0, :3, :3]
    src = (p - m[0, 0, :3, 3]) @ rot  # M^-1 p
    normal = (src - sphere_c) / radius
    facing = (normal * src).sum(-1) / src.norm(dim=-1)
    visible = torch.isfinite(front) & (facing < -0.2) & torch.isfinite(hi) & (hi - lo < 5)
    assert visible.sum() > 1000
    got = out[visible]
    filled = got > 0
    # forward mapping leaves holes where the new view magnifies the surface; where the
    # source saw it nearly head-on, few pixels stay empty
    head_on = visible & (facing < -0.8)
    assert (out[head_on] > 0).float().mean() > 0.85
    tol = 1e-4
    assert ((got >= lo[visible] - tol) & (got <= hi[visible] + tol))[filled].all()
    # pixels whose whole square misses the rotated sphere stay empty
    assert out[torch.isinf(lo)].eq(0).all() and torch.isinf(lo).sum() > 1000


def test_make_renderer_choices():
    assert make_renderer("torch", "cpu").backend == "torch"
    assert make_renderer("auto", "cpu").backend == "torch"
    with pytest.raises(ValueError):
        make_renderer("opengl")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            make_renderer("pycuda", "cpu")


def test_bench_render_smoke(tmp_path, monkeypatch, capsys):
    from vvhand_core.benchmarks import render as bench

    out = tmp_path / "results.md"
    monkeypatch.setenv("VVHAND_RESULTS", str(out))
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--device", "cpu", "--repeats", "1", "--batch", "2",
                              "--views", "3", "--crop-size", "48"])
    assert bench.run(args) == 0
    text = out.read_text()
    assert "Renderer speed" in text and "| torch | cpu | 2 | 3 |" in text
    assert "median ms" in capsys.readouterr().out


# The CUDA kernel's source compiled as C++ with stand-ins for the CUDA built-ins, one
# "thread" after another: checks its indexing and arithmetic where no GPU is available.
CUDA_STANDINS = r"""
#include <cmath>
#define __global__ static
#define __device__ static
#define __forceinline__ inline
#define __restrict__
struct Dim3 { unsigned x, y, z; };
static Dim3 blockIdx, blockDim, threadIdx;
static float __fadd_rn(float a, float b) { return a + b; }
static float __fmul_rn(float a, float b) { return a * b; }
static float __fdiv_rn(float a, float b) { return a / b; }
static int __float_as_int(float f) { int i; __builtin_memcpy(&i, &f, 4); return i; }
static int atomicMin(int* p, int v) { int old = *p; if (v < old) *p = v; return old; }
using std::rintf;
"""
CUDA_DRIVER = r"""
extern "C" void run(const float* crop, const float* g, const float* b, int* zbuf,
                    int B, int V, int S) {
    long long n = (long long)B * V * S * S;
    blockDim.x = 128;
    for (long long t = 0; t < n; ++t) {
        blockIdx.x = t / 128; threadIdx.x = t % 128;
        render_views(crop, g, b, zbuf, B, V, S);
    }
    for (long long t = 0; t < n; ++t) {
        blockIdx.x = t / 128; threadIdx.x = t % 128;
        empty_to_zero(zbuf, n);
    }
}
"""


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs a C++ compiler (g++)")
def test_cuda_kernel_source_matches_torch_on_cpu(tmp_path):
    from vvhand_core.render.common import view_homographies
    from vvhand_core.render.pycuda_backend import INF_BITS, KERNEL_SOURCE

    src = tmp_path / "kernel.cpp"
    src.write_text(CUDA_STANDINS + KERNEL_SOURCE + CUDA_DRIVER)
    lib_path = tmp_path / "kernel.so"
    subprocess.run(["g++", "-O1", "-std=c++14", "-ffp-contract=off", "-shared", "-fPIC",
                    str(src), "-o", str(lib_path)], check=True, timeout=120)
    lib = ctypes.CDLL(str(lib_path))
    gen = torch.Generator().manual_seed(5)
    b, v = 2, 9
    crops = random_crops(b, 48, gen).round()
    crops[1, :20] = 0
    centre = torch.tensor([[10.0, -5.0, 500.0], [-30.0, 15.0, 650.0]])
    k = NYU.as_tensor()[None].expand(b, 4)
    t = crop_transform(centre, k, 250.0, 48)
    mats = view_matrices(view_grid(v), centre)
    g, bvec = (x.contiguous() for x in view_homographies(t, k, mats, torch.float32))
    zbuf = torch.full((b * v * 48 * 48,), INF_BITS, dtype=torch.int32)
    ptr = ctypes.c_void_p
    lib.run(ptr(crops.data_ptr()), ptr(g.data_ptr()), ptr(bvec.data_ptr()),
            ptr(zbuf.data_ptr()), b, v, 48)
    kernel = zbuf.view(torch.float32).view(b, v, 48, 48)
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")  # the torch renderer's CUDA-order path
    try:
        ref = TorchRenderer("cpu").render(crops, t, k, mats)
    finally:
        torch.set_float32_matmul_precision(precision)
    assert (ref > 0).sum() > 5000
    assert torch.equal(kernel, ref)
    assert torch.equal(kernel[:, v // 2], crops)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@needs_cuda
def test_torch_cuda_matches_cpu_and_identity_is_exact():
    gen = torch.Generator().manual_seed(11)
    crops = random_crops(4, 176, gen)
    centre = torch.tensor([[10.0, -5.0, 500.0]]).expand(4, 3)
    k = NYU.as_tensor()[None].expand(4, 4)
    t = crop_transform(centre, k, 250.0, 176)
    mats = view_matrices(view_grid(25), centre)
    cpu = TorchRenderer("cpu").render(crops, t, k, mats)
    gpu = TorchRenderer("cuda").render(crops.cuda(), t.cuda(), k.cuda(), mats.cuda()).cpu()
    assert torch.equal(gpu[:, 12], crops)
    # the CPU path uses one matmul: last-bit depth differences, (almost) the same pixels
    assert ((cpu > 0) == (gpu > 0)).float().mean() > 0.9999
    both = (cpu > 0) & (gpu > 0)
    assert torch.allclose(cpu[both], gpu[both], rtol=1e-6, atol=1e-3)


@pytest.mark.gpu
@needs_cuda
def test_pycuda_matches_torch_cuda():
    from vvhand_core.render.pycuda_backend import pycuda_missing

    missing = pycuda_missing()
    if missing is not None:
        pytest.skip(missing)
    gen = torch.Generator().manual_seed(12)
    crops = random_crops(3, 176, gen).round()  # integer depths in mm
    centre = torch.tensor([[0.0, 10.0, 520.0], [30.0, 0.0, 800.0], [-20.0, 5.0, 450.0]])
    k = NYU.as_tensor()[None].expand(3, 4)
    t = crop_transform(centre, k, 250.0, 176)
    mats = view_matrices(view_grid(25), centre)
    args = [x.cuda() for x in (crops, t, k, mats)]
    ref = TorchRenderer("cuda").render(*args)
    got = make_renderer("pycuda", "cuda").render(*args)
    assert torch.equal(got[:, 12].cpu(), crops)
    assert torch.equal(got, ref)
    assert make_renderer("auto", "cuda").backend == "pycuda"
