"""Reliability of hand_pose_node: fuzzed input, overload, signals, bad parameters.

`vvhand bench reliability`: hand_pose_node runs as a child process (loopback DDS only, its
own namespace and domain) while this process (1) publishes --messages bad or fuzzed cases
(vvhand_ros.reliability_fuzz), raw then compressedDepth, each node's rejections counted by
reason on its /diagnostics; (2) sets invalid runtime parameters over the parameter
services; (3) publishes valid frames at twice the measured processing rate for
--overload-s seconds (RSS, latency, drops); (4) ends every node with SIGINT or SIGTERM
while it processes. Prints a Markdown section and appends it to docs/results.md (or
$VVHAND_RESULTS); exits 1 when a check failed (a crash, a traceback, an exit status other
than 0, an invalid parameter accepted, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vvhand_ros.node_support import COUNTERS

ACCOUNTED = ("dropped", "unpaired", "rejected", "failed", "processed", "tf_unavailable")
# (what, {parameter: invalid value}, set atomically)
INVALID_PARAMETERS = [
    ("num_views below range", {"num_views": 0}, False),
    ("num_views above range", {"num_views": 30}, False),
    ("num_views as text", {"num_views": "abc"}, False),
    ("num_views as float", {"num_views": 2.5}, False),
    ("unknown selector", {"selector": "bogus"}, False),
    ("unknown fusion", {"fusion": "x"}, False),
    ("unknown localiser", {"localiser": "bogus"}, False),
    ("uniform selector with 4 views", {"selector": "uniform", "num_views": 4}, True),
    ("negative cube", {"cube_m": -1.0}, False),
    ("NaN cube", {"cube_m": float("nan")}, False),
    ("infinite cube", {"cube_m": float("inf")}, False),
    ("min depth above max depth", {"min_depth_m": 5.0}, False),
    ("negative confidence scale", {"confidence_scale_m": -1.0}, False),
    ("retired millimetre name", {"cube_mm": 300.0}, False),
    ("no fit iterations", {"fit_iterations": 0}, False),
    ("fit as text", {"fit": "on"}, False),
    ("negative smoothing beta", {"smoothing_beta": -1.0}, False),
    ("NaN smoothing beta", {"smoothing_beta": float("nan")}, False),
    ("zero smoothing cutoff", {"smoothing_min_cutoff_hz": 0.0}, False),
    ("boolean as text", {"publish_tf": "yes"}, False),
    ("TF prefix with blanks", {"tf_prefix": "bad name!"}, False),
    ("absolute TF prefix", {"tf_prefix": "/abs_"}, False),
    ("warn fraction above 1", {"diag_rate_warn_fraction": 2.0}, False),
    ("error delay below warn delay", {"diag_delay_error_s": 0.1}, False),
    ("read-only model_path", {"model_path": "/tmp/other.pt"}, False),
    ("read-only status period", {"status_period_s": 1.0}, False),
    ("undeclared parameter", {"no_such_parameter": 1}, False),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `vvhand bench reliability`."""
    parser.add_argument("--messages", type=int, default=10_000,
                        help="bad or fuzzed cases (each one or two messages) to publish")
    parser.add_argument("--overload-s", type=float, default=300.0,
                        help="seconds of valid frames at twice the processing rate")
    parser.add_argument("--model", default="", help="checkpoint (default: the shipped model)")
    parser.add_argument("--device", default="auto", help="the node's device parameter")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fuzz and the frames")
    parser.add_argument("--rate", type=float, default=100.0,
                        help="fuzz cases per second at most; halved while the node reports "
                             "dropped frames (frames the node answers are waited for)")
    parser.add_argument("--compressed-share", type=float, default=0.25,
                        help="share of the cases sent as compressedDepth (to a second node)")
    parser.add_argument("--signal-runs", type=int, default=1,
                        help="extra node runs per signal (every node is ended by one anyway)")
    parser.add_argument("--fuzz-max-s", type=float, default=1800.0,
                        help="time bound of each fuzz phase [s]")
    parser.add_argument("--dds", choices=("large-images", "default"), default="large-images",
                        help="large-images: the Fast DDS profile of docs/ros.md ('Large "
                             "images': 640x480 frames through shared memory) for the bench "
                             "and the nodes; a set FASTDDS_DEFAULT_PROFILES_FILE wins")
    parser.add_argument("--domain", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", 100)),
                        help="ROS_DOMAIN_ID of the bench (default: $ROS_DOMAIN_ID or 100)")
    parser.add_argument("--probe", action=argparse.BooleanOptionalAction, default=True,
                        help="the phases of issue 25's probe (vvhand_ros.reliability_probe): "
                             "stamps backwards, intrinsics extremes, decoder amplification, "
                             "start-up signals, damaged exports")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--no-write", action="store_true", help="print only")


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces these figures."""
    cmd = (f"vvhand bench reliability --messages {args.messages} --overload-s {args.overload_s:g} "
           f"--seed {args.seed} --rate {args.rate:g} --signal-runs {args.signal_runs}")
    if args.compressed_share != 0.25:
        cmd += f" --compressed-share {args.compressed_share:g}"
    if args.model:
        cmd += f" --model {args.model}"
    if args.device != "auto":
        cmd += f" --device {args.device}"
    if args.dds != "large-images":
        cmd += f" --dds {args.dds}"
    if not args.probe:
        cmd += " --no-probe"
    return cmd


def _percentiles(values_ms: list[float]) -> dict[str, float]:
    a = np.asarray(values_ms, np.float64)
    if not a.size:
        return {"p50": float("nan"), "p95": float("nan"), "max": float("nan")}
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "max": float(a.max())}


class Bench:
    """The phases, sharing one peer, one frame stream and the node start-up parameters."""

    def __init__(self, args, peer, env, frames, fuzz) -> None:
        from vvhand_ros.reliability_harness import FrameStream

        self.args, self.peer, self.env, self.fuzz = args, peer, env, fuzz
        self.stream = FrameStream(peer, frames)
        self.params = ["num_threads:=1", "status_period_s:=0.5", f"device:={args.device}"]
        if args.model:
            self.params.append(f"model_path:={args.model}")
        self.children = []
        self.interval_s = 0.1  # between frames while a signal is sent; set by the overload
        self.outputs: list[str] = []

    def start(self, transport: str = "raw"):
        from vvhand_ros.reliability_harness import NodeProcess

        child = NodeProcess(self.env, [*self.params, f"depth_transport:={transport}"])
        self.children.append(child)
        self.stream.transport = transport
        pub = self.peer.pub_comp if transport == "compressedDepth" else self.peer.pub_img
        if not self.peer.wait_ready(child, pub):
            child.finish(10.0)
            raise RuntimeError(f"hand_pose_node did not start:\n{child.output[-3000:]}")
        self.stream.one_at_a_time(1)  # the first frame warms the model up
        return child

    def warm_up_small(self, compressed: bool) -> None:
        """A small valid frame (the first of a size is slow), then stamps after it."""
        case = self.fuzz.final(compressed, stamp=time.time_ns())
        for kind, msg in case.messages:
            self.peer.publish(kind, msg)
        self.peer.wait_for(lambda: case.stamp_ns in self.peer.answers, 120.0)
        self.fuzz.start_at(time.time_ns())  # after the warm-up frames' stamps

    def settle(self, images_sent: int, timeout_s: float = 60.0) -> dict[str, float]:
        """The node's status once every image it received is accounted for."""
        deadline = time.monotonic() + timeout_s
        status = self.peer.fresh_status()
        while time.monotonic() < deadline:
            accounted = sum(status.get(k, 0.0) for k in ACCOUNTED)
            if status.get("frames_in", -1) >= images_sent and accounted >= status["frames_in"]:
                break
            status = self.peer.fresh_status()
        return status

    # -- phases ---------------------------------------------------------------------------
    def fuzz_phase(self, n: int, compressed: bool) -> tuple[dict, object]:
        name = "compressedDepth" if compressed else "raw"
        child = self.start("compressedDepth" if compressed else "raw")
        self.warm_up_small(compressed)
        base = self.peer.fresh_status()
        cases, messages = Counter(), Counter()
        crashes, waits, timeouts, sent = [], 0, Counter(), 0
        # AIMD pacing on the node's /diagnostics: halve the rate when it reports frames
        # superseded in its one-frame mailbox, grow it back by a quarter when it does not
        rate, t_next, seen = self.args.rate, time.monotonic(), self.peer.status_count
        drops, min_rate = base.get("dropped", 0.0), rate
        t0 = time.monotonic()
        for _ in tqdm(range(n), desc=f"fuzz {name}", unit="case", mininterval=2.0):
            case = self.fuzz.compressed() if compressed else self.fuzz.raw()
            before = self.peer.answers.get(case.stamp_ns)  # stamps may repeat: a new answer
            for kind, msg in case.messages:
                self.peer.publish(kind, msg)
                messages[kind] += 1
            cases[case.category] += 1
            sent += 1
            if case.answered:
                waits += 1
                if not self.peer.wait_for(lambda c=case, b=before, p=child: (
                        self.peer.answers.get(c.stamp_ns) is not b or not p.alive()), 10.0):
                    timeouts[case.category] += 1
                t_next = time.monotonic()
            else:
                t_next = max(t_next + 1.0 / rate, time.monotonic() - 1.0)
                time.sleep(max(0.0, t_next - time.monotonic()))
            if self.peer.status_count != seen:
                seen, now_drops = self.peer.status_count, self.peer.status.get("dropped", drops)
                rate = (max(5.0, rate / 2.0) if now_drops > drops
                        else min(self.args.rate, rate * 1.25))
                drops, min_rate = now_drops, min(min_rate, rate)
            if not child.alive():
                crashes.append({"exit_status": child.finish(5.0), "after_cases": sent,
                                "output_tail": child.output[-2000:]})
                self.outputs.append(child.output)
                child = self.start("compressedDepth" if compressed else "raw")
                self.warm_up_small(compressed)
            if time.monotonic() - t0 > self.args.fuzz_max_s:
                break
        elapsed = time.monotonic() - t0
        answers = self.peer.answer_count  # a valid frame after all: rules out waiting ones
        for kind, msg in self.fuzz.final(compressed).messages:
            self.peer.publish(kind, msg)
        self.peer.wait_for(lambda: self.peer.answer_count > answers, 30.0)
        images = messages["image"] + messages["compressed"] + 1
        status = self.settle(images + int(base.get("frames_in", 0)))
        counters = {k for k in status if k in COUNTERS or "." in k}
        return {
            "transport": name, "cases": sent, "cases_asked": n, "seconds": elapsed,
            "min_rate": min_rate,
            "messages": dict(messages), "by_category": dict(sorted(cases.items())),
            "answered_cases": waits, "answer_timeouts": sum(timeouts.values()),
            "timeouts_by_category": dict(timeouts), "crashes": crashes,
            "alive": child.alive(),
            "status": {k: v - base.get(k, 0.0) if k in counters else v
                       for k, v in status.items()},
        }, child

    def parameters_phase(self) -> dict:
        rows = []
        names = sorted({k for _, values, _ in INVALID_PARAMETERS for k in values})
        declared = [k for k in names if k != "no_such_parameter"]
        before = self.peer.get_parameters(declared)
        for what, values, atomically in tqdm(INVALID_PARAMETERS, desc="parameters"):
            results = self.peer.set_parameters(values, atomically)
            ok = bool(results) and not any(r[0] for r in results)
            reason = "; ".join(r[1] for r in results) if results else "no answer"
            rows.append({"case": what, "values": {k: repr(v) for k, v in values.items()},
                         "rejected": ok, "reason": reason})
        after = self.peer.get_parameters(declared)
        control = self.peer.set_parameters({"num_views": 5})
        restored = self.peer.set_parameters({"num_views": int(before.get("num_views", 3))})
        return {"cases": rows, "unchanged": bool(before) and before == after,
                "valid_change_accepted": bool(control) and control[0][0]
                and bool(restored) and restored[0][0]}

    def overload_phase(self) -> tuple[dict, object]:
        child = self.start()
        self.stream.one_at_a_time(2)
        period = statistics.median(self.stream.one_at_a_time(8))
        self.interval_s = period / 2.0
        base = self.peer.fresh_status()
        rss0 = child.rss_bytes()
        rss_max, stamps, n_levels = rss0, [], len(self.peer.levels)
        t0 = time.monotonic()
        t_next, t_sample = t0, t0
        with tqdm(total=int(self.args.overload_s), desc="overload", unit="s") as bar:
            while time.monotonic() - t0 < self.args.overload_s:
                stamps.append(self.stream.send())
                t_next = max(t_next + self.interval_s, time.monotonic() - period)
                time.sleep(max(0.0, t_next - time.monotonic()))
                if time.monotonic() - t_sample >= 1.0:
                    t_sample += 1.0
                    rss_max = max(rss_max, child.rss_bytes())
                    bar.update(1)
        elapsed = time.monotonic() - t0
        last_answered = self.peer.wait_for(lambda: stamps[-1] in self.peer.answers, 60.0)
        rss1 = child.rss_bytes()
        status = self.peer.fresh_status()
        levels = self.peer.levels[n_levels:]  # /diagnostics during the overload
        answered = [self.peer.answers[s] for s in stamps if s in self.peer.answers]
        e2e = [1000.0 * (self.peer.answers[s].received_s - self.stream.sent_at[s])
               for s in stamps if s in self.peer.answers]
        return {
            "processing_period_ms": 1000.0 * period, "send_rate_hz": 1.0 / self.interval_s,
            "seconds": elapsed, "sent": len(stamps), "answered": len(answered),
            "received": status.get("frames_in", 0.0) - base.get("frames_in", 0.0),
            "dropped": status.get("dropped", 0.0) - base.get("dropped", 0.0),
            "unpaired": status.get("unpaired", 0.0) - base.get("unpaired", 0.0),
            "failed": status.get("failed", 0.0) - base.get("failed", 0.0),
            "answered_rate_hz": len(answered) / elapsed, "last_frame_answered": last_answered,
            "hand_found": sum(a.valid for a in answered),
            "rss_start_mb": rss0 / 2**20, "rss_end_mb": rss1 / 2**20,
            "rss_max_mb": max(rss_max, rss1) / 2**20,
            "node_latency_ms": _percentiles([1000.0 * a.processing_s for a in answered]),
            "end_to_end_ms": _percentiles(e2e), "alive": child.alive(),
            "diag_reports": len(levels), "diag_warn_or_worse": sum(lv >= 1 for lv, _ in levels),
            "diag_says_dropped": sum("dropped unprocessed" in m for _, m in levels),
        }, child

    def stop_while_processing(self, child, sig, when: str) -> dict:
        """Frames flowing at twice the processing rate, the node answering: ``sig``."""
        n0 = self.peer.answer_count
        deadline = time.monotonic() + 120.0
        while self.peer.answer_count == n0 and child.alive() and time.monotonic() < deadline:
            self.stream.send()
            time.sleep(self.interval_s)
        self.stream.send()
        time.sleep(self.interval_s / 2.0)  # the worker holds a frame; another one waits
        answered = self.peer.answer_count - n0
        t_sig = time.monotonic()
        child.signal(sig)
        while child.alive() and time.monotonic() - t_sig < 2.0:
            self.stream.send()
            time.sleep(self.interval_s)
        rc = child.finish(30.0)
        out = child.output
        self.outputs.append(out)
        return {"signal": signal.Signals(sig).name, "when": when, "answered_before": answered,
                "exit_status": "killed after 30 s" if rc is None else rc,
                "exit_s": time.monotonic() - t_sig, "traceback": "Traceback" in out,
                "frame_failed_logged": "frame failed" in out, "output_tail": out[-1500:]}


def _run_phases(args: argparse.Namespace, dds: str) -> dict:
    """The bench's phases in this DDS environment; the results dict (without the verdict)."""
    import rclpy

    from vvhand_core.assets import default_model_path
    from vvhand_core.data.synthetic.generator import sample_sequence
    from vvhand_ros import reliability_probe as probe
    from vvhand_ros.reliability_fuzz import FuzzSource
    from vvhand_ros.reliability_harness import Peer
    from vvhand_ros.synth_bag import live_camera_config

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    frames = list(sample_sequence(live_camera_config(args.seed), 12))
    fuzz = FuzzSource(frames[0].depth_mm, frames[0].intrinsics, args.seed)
    context = rclpy.context.Context()
    rclpy.init(context=context, domain_id=args.domain)
    peer = Peer(context)
    bench = Bench(args, peer, env, frames, fuzz)
    n_comp = int(round(args.messages * args.compressed_share))
    results: dict = {"command": command_line(args), "fuzz": [], "signals": [],
                     "model": args.model or "the shipped default model", "dds": dds,
                     "load_start": os.getloadavg()[0]}
    t0 = time.monotonic()
    try:
        fuzz_raw, child = bench.fuzz_phase(args.messages - n_comp, compressed=False)
        results["fuzz"].append(fuzz_raw)
        results["parameters"] = bench.parameters_phase()
        if args.probe:
            results["time"] = probe.time_phase(bench, child)
            results["intrinsics"] = probe.intrinsics_phase(bench, child)
        results["signals"].append(bench.stop_while_processing(child, signal.SIGINT,
                                                              "after the raw fuzz"))
        if n_comp:
            fuzz_comp, child = bench.fuzz_phase(n_comp, compressed=True)
            results["fuzz"].append(fuzz_comp)
            if args.probe:
                results["decoders"] = probe.decoder_phase(bench, child)
            results["signals"].append(bench.stop_while_processing(
                child, signal.SIGTERM, "after the compressedDepth fuzz"))
        results["overload"], child = bench.overload_phase()
        results["signals"].append(bench.stop_while_processing(child, signal.SIGINT,
                                                              "after the overload"))
        for k in range(args.signal_runs):
            for sig in (signal.SIGINT, signal.SIGTERM):
                results["signals"].append(bench.stop_while_processing(
                    bench.start(), sig, f"extra run {k + 1}"))
        if args.probe:
            results["startup"] = probe.startup_phase(bench)
            results["exports"] = probe.export_phase(bench, args.model or str(
                default_model_path()))
    finally:
        for child in bench.children:
            if child.alive():
                child.kill()
        peer.close()
        context.try_shutdown()
    results["tracebacks"] = sum("Traceback" in out for out in bench.outputs)
    results["messages_published"] = dict(peer.published)
    results["seconds"] = time.monotonic() - t0
    return results


def run(args: argparse.Namespace) -> int:
    """Run the phases, print the report, append it to docs/results.md."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # never beyond this machine
    os.environ.pop("ROS_STATIC_PEERS", None)
    os.environ["ROS_DOMAIN_ID"] = str(args.domain)
    from vvhand_core.benchmarks.results import append_section
    from vvhand_ros.reliability_harness import dds_environment
    from vvhand_ros.reliability_report import markdown, problems

    with dds_environment(args.dds) as dds:  # restored however the run ends
        results = _run_phases(args, dds)
    results["load_end"] = os.getloadavg()[0]
    text = markdown(results)
    print(text)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    if not args.no_write:
        path = append_section("hand_pose_node reliability (issue 15)", results["command"], text)
        print(f"appended to {path}")
    found = problems(results)
    for p in found:
        print(f"PROBLEM: {p}", file=sys.stderr)
    return 1 if found else 0
