"""Latency a robot feels: depth frames at camera rate through hand_pose_node (loopback).

`vvhand bench latency`: a person-scene bag with ground truth (`vvhand synth-bag --scenes
2`) at --fps frames/s is published onto a hand_pose_node child process at its own timing
(`vvhand replay --mode live --rate 1`), once per backend. The node keeps only the newest
frame (docs/ros.md, "Behaviour under load"), so at a rate above what it can process it
drops frames rather than queue them. Per backend: frames answered and dropped, output
rate, end-to-end latency (publish -> HandPose received) p50 / p95 / max, the node's own
processing time p50 / p95 and the accuracy of the answered frames. A backend entry may add
the node's optional stages: ``onnxruntime+mirror+fit`` (parameters mirror, fit;
``+grasp``: alternate_model grasp, which needs ``+fit``).
``--scenes 3``: stills of the v3 test scenes with two labelled hands (seed 9, `vvhand
synth-bag --scenes 3 --two-hands`) instead, and the hands reported of those labelled;
``--max-hands``: the node's max_hands (default 2, its default). A second table gives the
stages' times inside the node (the node runs under :func:`node_with_stage_log`, which
records each frame's ``timings_ms`` and the wall, thread-CPU and process-CPU time of each
hand's fit): the networks' time (student + render + A2J) and the fit's per frame, per hand
fitted and in CPU time, comparable with `vvhand bench pipeline`'s stages. A third table
takes the node's worker apart per frame: the frame's wait in the one-frame slot (which the
node's processing time includes), decoding, the pipeline, building and publishing the
messages (and by topic), the debug image, and the worker's and the process's CPU. Appends
the tables to docs/results.md (or $VVHAND_RESULTS).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HEADER = ["backend", "frames in", "answered", "dropped", "output frames/s", "end-to-end p50 ms",
          "p95 ms", "max ms", "processing p50 ms", "p95 ms", "answered with a hand",
          "mean error mm (those)", "hands reported / labelled"]
STAGE_HEADER = ["backend", "frames timed", "networks p50 ms", "fit p50 ms (per frame)",
                "fits per frame", "fit p50 ms (per hand)", "fit thread CPU p50 ms (per hand)",
                "fit process CPU p50 ms (per hand)", "total p50 ms (stages)"]
NETWORK_STAGES = ("student", "render", "a2j")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand bench latency`."""
    parser.add_argument("--fps", type=float, default=30.0, help="input frame rate")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the input")
    parser.add_argument("--backends", default="torch,onnxruntime",
                        help="comma-separated node backends, each optionally with +mirror, "
                             "+fit and / or +grasp (alternate_model grasp; e.g. "
                             "onnxruntime+fit+grasp)")
    parser.add_argument("--model", default="", help="checkpoint; default: the shipped model")
    parser.add_argument("--seed", type=int, default=7, help="seed of the bag's motion")
    parser.add_argument("--scenes", type=int, choices=(2, 3), default=2,
                        help="2: person scenes (one hand moving); 3: v3 stills with two "
                             "labelled hands (seed 9)")
    parser.add_argument("--max-hands", type=int, default=2, help="the node's max_hands")
    parser.add_argument("--num-threads", type=int, default=0,
                        help="the node's num_threads (1: its networks on one core; 0: its "
                             "default, one per core)")
    parser.add_argument("--bag", type=Path, default=None,
                        help="replay this bag (written by `vvhand synth-bag` with the same "
                             "--scenes and --fps) instead of writing one")
    parser.add_argument("--dds", choices=("large-images", "default"), default="large-images",
                        help="large-images: the Fast DDS profile of docs/ros.md ('Large "
                             "images': 640x480 frames through shared memory) for the "
                             "publisher and the node; default: Fast DDS's defaults (UDP "
                             "fragments); a set FASTDDS_DEFAULT_PROFILES_FILE wins over both")
    parser.add_argument("--no-write", action="store_true", help="print only")


def parse_variant(entry: str) -> tuple[str, bool, bool, str]:
    """'onnxruntime+mirror+fit+grasp' -> ("onnxruntime", mirror, fit, alternate model).

    The alternate model is "grasp" with ``+grasp``, else "". ValueError otherwise, and for
    ``+grasp`` without ``+fit``.
    """
    backend, *stages = [x.strip() for x in entry.split("+")]
    unknown = set(stages) - {"mirror", "fit", "grasp"}
    if not backend or unknown:
        raise ValueError(f"bad --backends entry {entry!r}: <backend>[+mirror][+fit][+grasp]")
    if "grasp" in stages and "fit" not in stages:
        raise ValueError(f"bad --backends entry {entry!r}: +grasp needs +fit")
    return backend, "mirror" in stages, "fit" in stages, "grasp" if "grasp" in stages else ""


def row(backend: str, report) -> list[object]:
    """One table row from a live replay report."""
    lat = report.latency_ms
    e2e = [r.end_to_end_ms for r in report.records if r.answered]
    acc = report.accuracy or {}
    return [backend, report.frames, report.answered, report.dropped, report.fps,
            lat["end_to_end_p50"], lat["end_to_end_p95"], float(np.nanmax(e2e)) if e2e
            else float("nan"), lat["processing_p50"], lat["processing_p95"],
            acc.get("frames_scored", 0), acc.get("mean_error_mm", float("nan")),
            _hands(report)]


def _hands(report) -> str:
    """"matched / labelled" of every hand (replay's ``hands``), "-" without them."""
    s = report.hands.get("all")
    return f"{s['matched']} / {s['labelled']}" if s else "-"


def run(args: argparse.Namespace) -> int:
    """Write the bag, replay it live once per backend, print and append the table."""
    from vvhand_core.benchmarks.results import append_section, markdown_table
    from vvhand_ros.bag import read_ground_truth
    from vvhand_ros.reliability_harness import dds_environment
    from vvhand_ros.replay import ReplayConfig, run_replay
    from vvhand_ros.synth_bag import write_synthetic_bag

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    frames = max(1, int(round(args.fps * args.seconds)))
    rows, stage_rows, worker_rows, publish_lines = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="vvhand_latency_") as tmp, \
            dds_environment(args.dds) as dds:
        bag = args.bag or Path(tmp) / "bag"
        if args.bag is not None:
            frames = len(read_ground_truth(bag))
        elif args.scenes == 3:
            write_synthetic_bag(bag, frames, seed=9, fps=args.fps, scene_version=3,
                                two_hands=True, progress=False)
        else:
            write_synthetic_bag(bag, frames, seed=args.seed, fps=args.fps, scene_version=2)
        for entry in [b.strip() for b in args.backends.split(",") if b.strip()]:
            backend, mirror, fit, alternate = parse_variant(entry)
            cfg = ReplayConfig(bag=bag, mode="live", model=args.model, backend=backend,
                               mirror=mirror, fit=fit, alternate_model=alternate, rate=1.0,
                               out_dir=Path(tmp) / entry,
                               max_hands=args.max_hands, num_threads=args.num_threads,
                               start_node=False)
            log = Path(tmp) / f"{entry}.stages.jsonl"
            with timed_node(cfg, log):
                report, _, _ = run_replay(cfg, progress=False)
            rows.append(row(entry, report))
            logged = read_stage_log(log)
            stage_rows.append(stage_row(entry, logged))
            worker_rows.append(worker_row(entry, logged))
            publish_lines.append(f"- {entry}: {publish_by_topic(logged)}")
    table = markdown_table(HEADER, rows)
    scenes = ("640x480, person scenes" if args.scenes == 2 else
              "v3 stills with two labelled hands, seed 9, each frame its sampled camera")
    body = (f"{frames} depth frames ({scenes}) at {args.fps:g} frames/s into "
            f"hand_pose_node (student-3, max_hands {args.max_hands}, num_threads "
            f"{args.num_threads}, default parameters but "
            "smoothing off, reliable QoS "
            f"on loopback, DDS: {dds}); the node answers the newest frame and drops the "
            "rest. Output frames/s: answers per second from the first frame sent to the "
            "last answer (start-up and model load not counted).\n\n"
            f"{table}\n\nStage times inside the node (medians over the frames it processed; "
            "networks: student + render + A2J; the fit per frame sums the hands fitted, "
            "phantoms the residual limit then drops included; thread CPU: the fitting "
            "thread's CPU time, process CPU: every thread's while it fits):\n\n"
            f"{markdown_table(STAGE_HEADER, stage_rows)}\n\n"
            "The node's worker per frame (medians; wall ms of each piece of "
            "``HandPoseCore._process``; waited: from the image callback to the worker "
            "taking the frame, which the node's processing time includes; rest: the frame's "
            "work outside the pieces; CPU: the worker thread's and the whole process's "
            "during the frame's work):\n\n"
            f"{markdown_table(WORKER_HEADER, worker_rows)}\n\nPublishing by topic (p50 ms a "
            "frame, over the frames that published on it):\n\n" + "\n".join(publish_lines)
            + "\n")
    print(body)
    if not args.no_write:
        cmd = (f"vvhand bench latency --fps {args.fps:g} --seconds {args.seconds:g} "
               f"--backends {args.backends} --dds {args.dds} --scenes {args.scenes} "
               f"--max-hands {args.max_hands} --num-threads {args.num_threads}"
               + (f" --bag {args.bag}" if args.bag else "")
               + (f" --model {args.model}" if args.model else ""))
        print(f"appended to {append_section('Node latency at camera rate', cmd, body)}")
    return 0


def read_stage_log(path: Path) -> list[dict]:
    """The frames :func:`node_with_stage_log` recorded (none when the file is missing)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stage_row(backend: str, frames: list[dict]) -> list[object]:
    """One row of the stage table (module doc) from the recorded frames."""
    timed = [f for f in frames if "total" in f.get("stages_ms", {})]

    def p50(values) -> float:
        values = list(values)
        return float(np.median(values)) if values else float("nan")

    fits = [c for f in timed for c in f["fits_ms"]]
    return [backend, len(timed),
            p50(sum(f["stages_ms"].get(k, 0.0) for k in NETWORK_STAGES) for f in timed),
            p50(f["stages_ms"].get("fit", 0.0) for f in timed),
            float(np.mean([len(f["fits_ms"]) for f in timed])) if timed else float("nan"),
            p50(c[0] for c in fits), p50(c[1] for c in fits), p50(c[2] for c in fits),
            p50(f["stages_ms"]["total"] for f in timed)]


@contextlib.contextmanager
def timed_node(cfg, log: Path):
    """hand_pose_node for the live replay ``cfg`` (start_node False), under the stage log.

    The node's own command line (``replay_live``), run through :func:`node_with_stage_log`;
    stopped with SIGTERM (SIGKILL after 10 s) when the block ends.
    """
    from vvhand_ros.bag import depth_topic_of
    from vvhand_ros.replay_live import _node_command

    command = _node_command(cfg, depth_topic_of(cfg.bag, cfg.depth_topic))
    if command[1:3] != ["-m", "vvhand_ros.node"]:
        raise RuntimeError(f"unexpected node command {command[:3]}")
    command[1:3] = ["-m", "vvhand_ros.bench_latency", "--stage-log", str(log), "--"]
    with open(log.with_suffix(".out"), "w") as out:
        child = subprocess.Popen(command, env=dict(os.environ), stdout=out,
                                 stderr=subprocess.STDOUT)
        try:
            yield child
        finally:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


WORKER_PIECES = ("decode", "pipeline", "build", "publish", "debug")
WORKER_HEADER = ["backend", "frames", "waited in the slot p50 ms", *[f"{p} p50 ms" for p in
                 WORKER_PIECES], "rest p50 ms", "frame's work p50 ms", "mean ms",
                 "worker thread CPU p50 ms", "process CPU p50 ms", "node CPU a frame ms",
                 "outside the worker a frame ms"]


def node_with_stage_log(log_path: str, ros_args: list[str]) -> None:
    """Run hand_pose_node (``ros_args``: its command line) and log each frame's stages.

    One JSON line per frame the worker takes (``HandPoseCore._process``): ``stages_ms``,
    the ``timings_ms`` of the frame's ``HandsResult`` (absent for a frame rejected before
    the pipeline); ``fits_ms``, [wall, thread CPU, process CPU] ms of each
    ``FitStage.apply`` (one per hand fitted); ``worker_ms``: the frame's wait in the node's
    one-frame slot (from the image callback to the worker taking it: part of the
    ``processing_time`` the node reports) and the wall ms of each piece of the worker's
    work (``WORKER_PIECES``: decoding the image, ``run_hands``, building the messages, every
    ``publish`` of the worker thread, the debug image), ``process`` the whole of it,
    ``publish_ms`` the publishing by topic,
    ``thread_cpu`` / ``process_cpu`` the worker's and every thread's CPU meanwhile,
    ``cpu_at`` the process's and the worker's CPU time (s) when the frame ends. Only
    timing is added (clock reads around the calls, a line written per frame); the process
    ends as the node's entry point ends it.
    """
    import threading

    from rclpy.publisher import Publisher

    from vvhand_core import hands
    from vvhand_core.fit.stage import FitStage
    from vvhand_ros import node_core
    from vvhand_ros.depth_input import DepthInput
    from vvhand_ros.frame_output import FrameOutput

    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - open until the process ends
    frame: dict = {"fits_ms": [], "worker_ms": dict.fromkeys(WORKER_PIECES, 0.0)}
    worker: list[int] = []  # the worker thread's id, once it runs
    apply, init = FitStage.apply, hands.HandsResult.__init__

    def timed_apply(self, *args, **kwargs):
        w, c, p = time.perf_counter(), time.thread_time(), time.process_time()
        try:
            return apply(self, *args, **kwargs)
        finally:
            frame["fits_ms"].append([1e3 * (time.perf_counter() - w),
                                     1e3 * (time.thread_time() - c),
                                     1e3 * (time.process_time() - p)])

    def logged_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        frame["stages_ms"] = dict(self.timings_ms)

    def timed(piece: str, fn, also=None):
        """Calls of ``fn`` on the worker timed into ``piece`` (and ``also(args, ms)``)."""
        def call(*args, **kwargs):
            if not worker or threading.get_ident() != worker[0]:
                return fn(*args, **kwargs)  # not the worker's (the executor's, start-up)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                ms = 1e3 * (time.perf_counter() - start)
                frame["worker_ms"][piece] += ms
                if also is not None:
                    also(args, ms)
        return call

    def by_topic(args, ms: float) -> None:  # Publisher.publish(self, msg): self's topic
        topics = frame.setdefault("publish_ms", {})
        topics[args[0].topic_name] = topics.get(args[0].topic_name, 0.0) + ms

    process = node_core.HandPoseCore._process

    def timed_process(self, msg, info, t_in):
        worker[:] = [threading.get_ident()]
        waited = 1e3 * (time.monotonic() - t_in)
        w, c, p = time.perf_counter(), time.thread_time(), time.process_time()
        try:
            return process(self, msg, info, t_in)
        finally:
            frame["worker_ms"] |= {
                "waited": waited, "process": 1e3 * (time.perf_counter() - w),
                "thread_cpu": 1e3 * (time.thread_time() - c),
                "process_cpu": 1e3 * (time.process_time() - p)}
            frame["cpu_at"] = [time.process_time(), time.thread_time()]
            log.write(json.dumps(frame) + "\n")
            frame.clear()
            frame.update(fits_ms=[], worker_ms=dict.fromkeys(WORKER_PIECES, 0.0))

    FitStage.apply, hands.HandsResult.__init__ = timed_apply, logged_init
    node_core.HandPoseCore._process = timed_process
    DepthInput.prepare = timed("decode", DepthInput.prepare)
    FrameOutput.build = timed("build", FrameOutput.build)
    Publisher.publish = timed("publish", Publisher.publish, also=by_topic)
    node_core.HandPoseCore._publish_debug = timed("debug", node_core.HandPoseCore._publish_debug)
    _time_pipelines(timed)
    from vvhand_ros.node import main
    from vvhand_ros.node_startup import exit_process

    sys.argv = ["hand_pose_node", *ros_args]
    exit_process(main())


def _time_pipelines(timed) -> None:
    """Time ``run_hands`` of both pipelines (the torch one where torch imports)."""
    from vvhand_core.lite.pipeline import LitePipeline

    LitePipeline.run_hands = timed("pipeline", LitePipeline.run_hands)
    with contextlib.suppress(ImportError):
        from vvhand_core.pipeline import VirtualViewPipeline

        VirtualViewPipeline.run_hands = timed("pipeline", VirtualViewPipeline.run_hands)


def worker_row(backend: str, frames: list[dict]) -> list[object]:
    """One row of the worker table (``WORKER_HEADER``) from the recorded frames.

    The last two columns: the node process's CPU from the end of the first frame to the
    end of the last, per frame in between (every thread: receiving the frames it drops
    too), and the part of it outside the worker thread.
    """
    timed = [f["worker_ms"] for f in frames if "process" in f.get("worker_ms", {})]
    ends = [f["cpu_at"] for f in frames if "cpu_at" in f]
    node = outside = float("nan")
    if len(ends) > 1:
        node = 1e3 * (ends[-1][0] - ends[0][0]) / (len(ends) - 1)
        outside = node - 1e3 * (ends[-1][1] - ends[0][1]) / (len(ends) - 1)

    def p50(key: str) -> float:
        return float(np.median([t[key] for t in timed])) if timed else float("nan")

    rest = [t["process"] - sum(t[k] for k in WORKER_PIECES) for t in timed]
    return [backend, len(timed), p50("waited"), *[p50(k) for k in WORKER_PIECES],
            float(np.median(rest)) if rest else float("nan"), p50("process"),
            float(np.mean([t["process"] for t in timed])) if timed else float("nan"),
            p50("thread_cpu"), p50("process_cpu"), node, outside]


def publish_by_topic(frames: list[dict]) -> str:
    """"topic p50 ms, ..." of the worker's publishing, slowest first."""
    times: dict[str, list[float]] = {}
    for f in frames:
        for topic, ms in f.get("publish_ms", {}).items():
            times.setdefault(topic, []).append(ms)
    p50 = sorted(((float(np.median(v)), k) for k, v in times.items()), reverse=True)
    return ", ".join(f"{k} {v:.2f}" for v, k in p50) or "nothing published"


if __name__ == "__main__":  # python -m vvhand_ros.bench_latency --stage-log FILE -- ARGS
    if len(sys.argv) < 4 or sys.argv[1] != "--stage-log" or sys.argv[3] != "--":
        sys.exit("usage: python -m vvhand_ros.bench_latency --stage-log FILE -- NODE_ARGS")
    node_with_stage_log(sys.argv[2], sys.argv[4:])
