"""Time the virtual-view renderer: 25 views of one 176x176 crop and of a batch of 16.

The scene is a hand-sized ellipsoid (semi-axes 45 x 80 x 25 mm, about 5,600 foreground
pixels of the 176x176 crop) at 600 mm in NYU intrinsics, rendered through the 25-view
grid. Prints a table and appends it to docs/results.md (or $VVHAND_RESULTS).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vvhand_core.benchmarks.results import append_section, markdown_table
from vvhand_core.camera import Intrinsics
from vvhand_core.crop import crop_intrinsics, crop_transform
from vvhand_core.render import make_renderer, resolve_device
from vvhand_core.render.scenes import compose, ellipsoid_depth, pixel_rays
from vvhand_core.views import view_grid, view_matrices

NYU = Intrinsics(588.03, 587.07, 320.0, 240.0, 640, 480)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand bench render`."""
    parser.add_argument("--backend", choices=("torch", "pycuda", "all"), default="torch",
                        help="renderer backend; all = torch and, on CUDA, pycuda too")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per case")
    parser.add_argument("--views", type=int, default=25, help="views per crop (a grid size)")
    parser.add_argument("--batch", type=int, default=16, help="crops in the batched case")
    parser.add_argument("--crop-size", type=int, default=176)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--no-write", action="store_true", help="print only")


def bench_scene(batch: int, crop_size: int, num_views: int, device: torch.device):
    """Crop (B, S, S), T, K and view matrices of the benchmark scene on device."""
    k = NYU.as_tensor(dtype=torch.float32)[None]
    centre = torch.tensor([[20.0, -10.0, 600.0]])
    t = crop_transform(centre, k, 250.0, crop_size)
    rays = pixel_rays(crop_intrinsics(t, k)[0], crop_size, crop_size)
    crop = compose(ellipsoid_depth(rays, (20.0, -10.0, 600.0), (45.0, 80.0, 25.0))).float()
    mats = view_matrices(view_grid(num_views), centre)
    b = batch
    return (crop[None].expand(b, -1, -1).contiguous().to(device), t.expand(b, -1, -1).to(device),
            k.expand(b, -1).to(device), mats.expand(b, -1, -1, -1).contiguous().to(device))


def time_render(renderer, inputs, repeats: int) -> tuple[float, float, float]:
    """Median and minimum wall time and median process CPU time (ms) of one render call.

    CPU time is what the call costs this process; on a shared machine the wall time also
    holds other processes' turns.
    """
    cuda = inputs[0].is_cuda
    for _ in range(3):
        renderer.render(*inputs)
    wall, cpu = [], []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        renderer.render(*inputs)
        if cuda:
            torch.cuda.synchronize()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table and append it to results.md."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    backends = ["torch", "pycuda"] if args.backend == "all" else [args.backend]
    if args.backend == "all" and device.type != "cuda":
        backends = ["torch"]
    rows = []
    for name in backends:
        try:
            renderer = make_renderer(name, device)
        except RuntimeError as exc:
            print(f"skipping {name}: {exc}")
            continue
        for batch in (1, args.batch):
            inputs = bench_scene(batch, args.crop_size, args.views, device)
            fg = int((inputs[0][0] > 0).sum())
            med, best, cpu = time_render(renderer, inputs, args.repeats)
            rows.append([name, str(device), batch, args.views, fg, med, best, cpu, med / batch])
    if not rows:
        print("no backend could run")
        return 1
    header = ["backend", "device", "crops", "views", "fg px/crop", "median ms", "min ms",
              "median CPU ms", "median ms/crop"]
    table = markdown_table(header, rows)
    print(table)
    if not args.no_write:
        cmd = (f"vvhand bench render --backend {args.backend} --device {args.device} "
               f"--repeats {args.repeats}")
        if args.threads > 0:
            cmd += f" --threads {args.threads}"
        body = (f"{args.views} views of a {args.crop_size}x{args.crop_size} crop; torch threads "
                f"{torch.get_num_threads()}.\n\n{table}")
        path = append_section("Renderer speed", cmd, body)
        print(f"appended to {path}")
    return 0
