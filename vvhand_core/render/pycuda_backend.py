"""PyCUDA renderer: one CUDA thread per (frame, view, source pixel), atomicMin z-buffer.

Optional: pycuda is source-only on PyPI and builds only where CUDA is installed, so it is
not in requirements/base.txt; scripts/gpu_check.sh installs it on a CUDA machine. It is
imported lazily (this module imports without it). The kernel works on the tensors'
memory directly (torch's primary CUDA context, default stream).

Depths are positive floats, whose IEEE bit patterns order like int32, so the z-buffer is
an int32 buffer initialised to the bits of +inf and updated with atomicMin on
__float_as_int(depth); a final pass turns +inf into 0. The arithmetic repeats
render.common's formula with explicitly rounded intrinsics (__fmul_rn, __fadd_rn,
__fdiv_rn: no fused multiply-add), so the output equals the torch backend's bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch

from vvhand_core.render.common import check_inputs, view_homographies

KERNEL_SOURCE = r"""
__device__ __forceinline__ float ray_row(const float* G, float j, float i)
{
    return __fadd_rn(__fadd_rn(__fmul_rn(G[0], j), __fmul_rn(G[1], i)), G[2]);
}

__global__ void render_views(const float* __restrict__ crop,   // (B, S, S)
                             const float* __restrict__ g,      // (B, V, 3, 3)
                             const float* __restrict__ bvec,   // (B, V, 3)
                             int* __restrict__ zbuf,           // (B, V, S, S), +inf bits
                             int B, int V, int S)
{
    const long long ss = (long long)S * S;
    const long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (tid >= (long long)B * V * ss) return;
    const long long view = tid / ss;            // b * V + v
    const int p = (int)(tid - view * ss);       // source pixel i * S + j
    const int b = (int)(view / V);
    const float z = crop[(long long)b * ss + p];
    if (!(z > 0.0f)) return;
    const float j = (float)(p % S);
    const float i = (float)(p / S);
    const float* G = g + view * 9;
    const float* t = bvec + view * 3;
    const float hz = __fadd_rn(__fmul_rn(z, ray_row(G + 6, j, i)), t[2]);
    const float hx = __fadd_rn(__fmul_rn(z, ray_row(G + 0, j, i)), t[0]);
    const float hy = __fadd_rn(__fmul_rn(z, ray_row(G + 3, j, i)), t[1]);
    const float u = rintf(__fdiv_rn(hx, hz));   // nearest, ties to even (torch.round)
    const float w = rintf(__fdiv_rn(hy, hz));
    const float last = (float)(S - 1);
    if (!(hz > 0.0f && u >= 0.0f && u <= last && w >= 0.0f && w <= last)) return;
    atomicMin(zbuf + view * ss + (long long)w * S + (long long)u, __float_as_int(hz));
}

__global__ void empty_to_zero(int* __restrict__ zbuf, long long n)
{
    const long long tid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (tid < n && zbuf[tid] == 0x7f800000) zbuf[tid] = 0;   // +inf -> 0.0f
}
"""

INF_BITS = 0x7F800000
BLOCK = 256


def pycuda_missing() -> str | None:
    """None when CUDA and pycuda are both usable here, else what is missing."""
    if not torch.cuda.is_available():
        return "CUDA is not available to torch on this machine"
    try:
        import pycuda.driver  # noqa: F401
    except Exception as exc:  # ImportError, or a driver library that fails to load
        return f"the pycuda package is not installed ({exc}); see scripts/gpu_check.sh"
    return None


class PyCudaRenderer:
    """Render virtual views with the CUDA kernel above (float32 only)."""

    backend = "pycuda"

    def __init__(self, device: str | torch.device = "cuda") -> None:
        """Compile the kernel in torch's primary context of the given CUDA device."""
        missing = pycuda_missing()
        if missing is not None:
            raise RuntimeError(f"pycuda renderer unavailable: {missing}")
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise RuntimeError(f"pycuda renderer needs a CUDA device, got {self.device}")
        import pycuda.driver as drv

        self._drv = drv
        index = self.device.index if self.device.index is not None else 0
        torch.zeros(1, device=self.device)  # make torch create the primary context first
        drv.init()
        self._ctx = drv.Device(index).retain_primary_context()
        self._ctx.push()
        try:
            from pycuda.compiler import SourceModule

            module = SourceModule(KERNEL_SOURCE)
            self._render = module.get_function("render_views")
            self._render.prepare([np.uintp] * 4 + [np.int32] * 3)
            self._empty = module.get_function("empty_to_zero")
            self._empty.prepare([np.uintp, np.int64])
            self._module = module
        except Exception as exc:  # compiler missing or failing: say so clearly
            raise RuntimeError(f"pycuda renderer: kernel compilation failed: {exc}") from exc
        finally:
            self._ctx.pop()

    def render(
        self,
        crop_mm: torch.Tensor,
        t: torch.Tensor,
        k: torch.Tensor,
        view_mats: torch.Tensor,
    ) -> torch.Tensor:
        """Render crops (B, S, S) mm through views (B, V, 4, 4) -> (B, V, S, S) float32 mm."""
        check_inputs(crop_mm, t, k, view_mats)
        dev = self.device
        crop = crop_mm.to(device=dev, dtype=torch.float32).contiguous()
        b, s = crop.shape[0], crop.shape[-1]
        v = view_mats.shape[1]
        g, bvec = view_homographies(t.to(dev), k.to(dev), view_mats.to(dev), torch.float32)
        g, bvec = g.contiguous(), bvec.contiguous()
        n = b * v * s * s
        zbuf = torch.full((n,), INF_BITS, dtype=torch.int32, device=dev)
        # The kernels run on the legacy default stream, which is torch's default stream;
        # on any other torch stream, synchronise around them.
        other_stream = torch.cuda.current_stream(dev) != torch.cuda.default_stream(dev)
        if other_stream:
            torch.cuda.current_stream(dev).synchronize()
        self._ctx.push()
        try:
            grid = ((n + BLOCK - 1) // BLOCK, 1, 1)
            self._render.prepared_call(
                grid, (BLOCK, 1, 1),
                crop.data_ptr(), g.data_ptr(), bvec.data_ptr(), zbuf.data_ptr(), b, v, s,
            )
            self._empty.prepared_call(grid, (BLOCK, 1, 1), zbuf.data_ptr(), n)
            if other_stream:
                self._drv.Context.synchronize()
        finally:
            self._ctx.pop()
        return zbuf.view(torch.float32).view(b, v, s, s)
