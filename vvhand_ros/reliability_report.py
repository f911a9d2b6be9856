"""The report of `vvhand bench reliability`: Markdown tables and the list of problems.

Both read the results dictionary the bench builds (vvhand_ros.bench_reliability); no ROS
imports, so the verdict is testable with made-up results.
"""

from __future__ import annotations

from vvhand_core.benchmarks.results import markdown_table

RSS_GROWTH_LIMIT_MB = 100.0  # more over the overload is a problem (a leak or a queue)
TIMEOUT_LIMIT = 0.05  # fraction of the frames expected to be answered that may time out
DROP_SHARE = 0.2  # the node's WARN threshold (vvhand_ros.diagnostics.DROP_WARN_FRACTION)
NODE_ACCOUNT = ("frames_in", "processed", "no_hand", "published", "dropped", "tf_unavailable")


def _cell(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def problems(results: dict) -> list[str]:
    """Every check that failed, one line each; empty when the node behaved."""
    out = []
    for f in results.get("fuzz", []):
        t = f["transport"]
        if f["crashes"]:
            out.append(f"{len(f['crashes'])} crash(es) of the node during the {t} fuzz")
        if not f["alive"]:
            out.append(f"the node was not running at the end of the {t} fuzz")
        if f["status"].get("failed", 0) > 0:
            out.append(f"{f['status']['failed']:.0f} frame(s) failed (exception in the "
                       f"pipeline) during the {t} fuzz")
        if f["answered_cases"] and f["answer_timeouts"] > TIMEOUT_LIMIT * f["answered_cases"]:
            out.append(f"{f['answer_timeouts']} of {f['answered_cases']} frames that reach "
                       f"the pipeline were not answered within 10 s ({t} fuzz: "
                       f"{f.get('timeouts_by_category', {})})")
        if f["cases"] < f["cases_asked"]:
            out.append(f"only {f['cases']} of {f['cases_asked']} {t} cases sent in the "
                       "time bound")
    if results.get("tracebacks", 0):
        out.append(f"a traceback in the output of {results['tracebacks']} node run(s)")
    params = results.get("parameters")
    if params is not None:
        for row in params["cases"]:
            if not row["rejected"]:
                out.append(f"invalid parameter accepted: {row['case']} {row['values']}")
        if not params["unchanged"]:
            out.append("a rejected parameter changed the node's parameter values")
        if not params["valid_change_accepted"]:
            out.append("a valid parameter change (num_views 5, then back) was not accepted")
    ov = results.get("overload")
    if ov is not None:
        if not ov["last_frame_answered"]:
            out.append("the last frame of the overload was not answered within 60 s")
        if not ov["alive"]:
            out.append("the node was not running at the end of the overload")
        if ov["failed"] > 0:
            out.append(f"{ov['failed']:.0f} frame(s) failed during the overload")
        growth = ov["rss_end_mb"] - ov["rss_start_mb"]
        if growth > RSS_GROWTH_LIMIT_MB:
            out.append(f"RSS grew by {growth:.0f} MB during the overload")
    for s in results.get("signals", []):
        if s["exit_status"] != 0 or s["traceback"]:
            out.append(f"{s['signal']} {s['when']}: exit status {s['exit_status']}"
                       + (", traceback" if s["traceback"] else ""))
    return out + probe_problems(results)


def probe_problems(results: dict) -> list[str]:
    """The checks of issue 25's phases (vvhand_ros.reliability_probe)."""
    out = []
    for row in results.get("time", {}).get("rows", []):
        lost = row["sent"] - row["answered"]
        if lost > (1 if "2038" in row["category"] else 0):  # image-first: one may go
            out.append(f"{lost} of {row['sent']} frames unanswered: {row['category']}")
    for phase in ("time", "intrinsics", "decoders"):
        if phase in results and not results[phase]["alive"]:
            out.append(f"the node was not running after the {phase} phase")
    for phase in ("intrinsics", "decoders"):
        for row in results.get(phase, {}).get("rows", []):
            if not row["next_frame_answered"]:
                out.append(f"no answer to the valid frame after {row['case']}")
            # a valid frame may keep what decoding it needs (its peak, measured in the bench
            # process) in the allocator's pools; beyond that and the limit is a problem
            allowed = RSS_GROWTH_LIMIT_MB + (row.get("decode_peak_mb", 0.0)
                                             if row.get("decode_outcome") == "decoded" else 0.0)
            if row["rss_after_mb"] - row["rss_before_mb"] > allowed:
                out.append(f"RSS grew by {row['rss_after_mb'] - row['rss_before_mb']:.0f} MB "
                           f"after {row['case']} (allowed {allowed:.0f} MB)")
    ov = results.get("overload")
    if ov is not None and "diag_reports" in ov and ov["dropped"] > DROP_SHARE * ov["sent"] \
            and not ov["diag_says_dropped"]:
        out.append(f"/diagnostics never said frames were dropped while {ov['dropped']:.0f} of "
                   f"{ov['sent']} were")
    start = results.get("startup", {})
    for row in start.get("signals", []):
        if row["exit_status"] != 0 or row["traceback"]:
            out.append(f"{row['signal']} {row['after_s']:.2f} s after the start: exit status "
                       f"{row['exit_status']}" + (", traceback" if row["traceback"] else ""))
    pf = start.get("params_file")
    if pf and (pf["exit_status"] != 1 or pf["fatal_lines"] != 1 or pf["traceback"]):
        out.append(f"unreadable --params-file: exit status {pf['exit_status']}, "
                   f"{pf['fatal_lines']} FATAL lines" + (", traceback" if pf["traceback"]
                                                          else ""))
    exports = results.get("exports", {})
    if exports.get("error"):
        out.append(exports["error"])
    for row in exports.get("rows", []):
        if row["exit_status"] != 1 or row["fatal_lines"] != 1 or row["traceback"]:
            out.append(f"export with {row['damage']}: exit status {row['exit_status']}, "
                       f"{row['fatal_lines']} FATAL lines"
                       + (", traceback" if row["traceback"] else ""))
    return out


def _fuzz_tables(fuzz: list[dict]) -> str:
    names = [f["transport"] for f in fuzz]
    summary = [["cases", *[f["cases"] for f in fuzz]],
               ["depth messages", *[f["messages"].get("image", 0)
                                    + f["messages"].get("compressed", 0) for f in fuzz]],
               ["camera_info messages", *[f["messages"].get("info", 0) for f in fuzz]],
               ["seconds", *[f["seconds"] for f in fuzz]],
               ["lowest pacing rate [cases/s]", *[f.get("min_rate", float("nan"))
                                                   for f in fuzz]],
               ["cases answered (reach the pipeline)", *[f["answered_cases"] for f in fuzz]],
               ["answers not within 10 s", *[f["answer_timeouts"] for f in fuzz]],
               ["crashes (node exited)", *[len(f["crashes"]) for f in fuzz]],
               ["node running at the end", *["yes" if f["alive"] else "NO" for f in fuzz]]]
    text = markdown_table(["fuzz", *names], summary)
    categories = sorted({c for f in fuzz for c in f["by_category"]})
    rows = [[_cell(c), *[f["by_category"].get(c, "") for f in fuzz]] for c in categories]
    text += "\n\nCases sent, by category:\n\n" + markdown_table(["category", *names], rows)
    keys = [k for k in NODE_ACCOUNT if any(k in f["status"] for f in fuzz)]
    for prefix in ("rejected", "unpaired", "failed"):
        reasons = sorted({k for f in fuzz for k in f["status"] if k.startswith(prefix + ".")})
        keys += [prefix, *reasons]
    rows = [[_cell(k.replace(".", ": ", 1)),
             *[f"{f['status'][k]:.0f}" if k in f["status"] else "" for f in fuzz]]
            for k in keys]
    text += ("\n\nThe node's account (its /diagnostics counters over the phase, one final "
             "valid frame included; `dropped` = superseded in the node's one-frame mailbox "
             "before the worker took it, so never decoded; a reason is the stable part of the "
             "warning):\n\n" + markdown_table(["node counter", *names], rows))
    return text


def _parameter_table(params: dict) -> str:
    rows = [[_cell(r["case"]), _cell(", ".join(f"{k}={v}" for k, v in r["values"].items())),
             "yes" if r["rejected"] else "NO", _cell(r["reason"])] for r in params["cases"]]
    text = markdown_table(["case", "value", "rejected", "reason given"], rows)
    return text + (f"\n\nValues unchanged after the rejections: "
                   f"{'yes' if params['unchanged'] else 'NO'}; a valid change (num_views 5, "
                   f"then back) accepted: {'yes' if params['valid_change_accepted'] else 'NO'}.")


def _overload_table(ov: dict) -> str:
    node, e2e = ov["node_latency_ms"], ov["end_to_end_ms"]
    rows = [["processing period, one frame at a time [ms]", ov["processing_period_ms"]],
            ["frames sent at [Hz] (2x the processing rate)", ov["send_rate_hz"]],
            ["duration [s]", ov["seconds"]],
            ["frames sent / received by the node / answered",
             f"{ov['sent']} / {ov.get('received', float('nan')):.0f} / {ov['answered']}"],
            ["dropped (superseded by a newer frame)", f"{ov['dropped']:.0f}"],
            ["unpaired (camera_info of the stamp gone)", f"{ov.get('unpaired', 0.0):.0f}"],
            ["answered with a hand found", f"{ov.get('hand_found', '?')}"],
            ["answered rate [Hz]", ov["answered_rate_hz"]],
            ["failed", f"{ov['failed']:.0f}"],
            ["RSS at start / end / max [MB]",
             f"{ov['rss_start_mb']:.1f} / {ov['rss_end_mb']:.1f} / {ov['rss_max_mb']:.1f}"],
            ["node latency p50 / p95 / max [ms] (receipt to publication)",
             f"{node['p50']:.0f} / {node['p95']:.0f} / {node['max']:.0f}"],
            ["end-to-end latency p50 / p95 / max [ms] (publish to HandPose received)",
             f"{e2e['p50']:.0f} / {e2e['p95']:.0f} / {e2e['max']:.0f}"],
            ["last frame answered", "yes" if ov["last_frame_answered"] else "NO"]]
    if "diag_reports" in ov:
        rows.append(["/diagnostics reports during the overload: total / WARN or worse / "
                     "saying frames were dropped", f"{ov['diag_reports']} / "
                     f"{ov['diag_warn_or_worse']} / {ov['diag_says_dropped']}"])
    return markdown_table(["overload", "value"], rows)


def _signal_table(signals: list[dict]) -> str:
    rows = [[s["signal"], s["when"], s["answered_before"], s["exit_status"], s["exit_s"],
             "YES" if s["traceback"] else "no"] for s in signals]
    return markdown_table(["signal", "node run", "frames answered before", "exit status",
                           "exit after [s]", "traceback"], rows)


def _summary_table(results: dict) -> str:
    """One row per probe category: answered frames, worst stall, memory."""
    rows = []
    for row in results.get("time", {}).get("rows", []):
        rows.append([_cell(row["category"]) + f" ({row['order']})",
                     f"{row['answered']} / {row['sent']}", "", ""])
    for phase in ("intrinsics", "decoders"):
        for row in results.get(phase, {}).get("rows", []):
            rows.append([_cell(row["case"]) + f" ({_cell(row.get('outcome', '?'))})",
                         "next valid frame: " + ("yes" if row["next_frame_answered"]
                                                 else "NO"),
                         f"{row.get('handled_s', float('nan')):.2f} / "
                         f"{row.get('next_frame_s', float('nan')):.2f}",
                         f"{row['rss_before_mb']:.0f} -> {row['rss_after_mb']:.0f}"])
    text = markdown_table(["category (what the node did)", "frames answered",
                           "hostile frame accounted for / next valid frame answered [s]",
                           "node RSS [MB]"], rows)
    dec = [[_cell(r["case"]), f"{r['bytes'] / 2**20:.1f}", f"{1000 * r['decode_s']:.1f}",
            f"{r['decode_peak_mb']:.1f}", _cell(r["decode_outcome"][:90])]
           for r in results.get("decoders", {}).get("rows", []) if "decode_s" in r]
    if dec:
        text += ("\n\nThe same compressedDepth messages decoded by the node's function in "
                 "the bench process (camera_info's size given), the decoder's own cost:\n\n"
                 + markdown_table(["message", "size [MB]", "decode [ms]",
                                   "peak traced memory [MB]", "outcome"], dec))
    return text


def _probe_sections(results: dict) -> list[str]:
    parts = []
    if "time" in results or "intrinsics" in results or "decoders" in results:
        text = _summary_table(results)
        for phase in ("intrinsics", "decoders"):
            counts = results.get(phase, {}).get("rejected") or results.get(phase, {}).get(
                "outcome") or {}
            if counts:
                text += (f"\n\nThe node's account of the {phase} phase: "
                         + "; ".join(f"{_cell(k)} {v:.0f}" for k, v in sorted(counts.items())))
        parts += ["#### Time going backwards, intrinsics extremes, decoder amplification "
                  "(issue 25)", text + "\n\nOne frame at a time, each waited for (10 s at "
                  "most). A hostile frame is sent, then the bench waits until the node's "
                  "/diagnostics counters account for it (so it is never superseded unread; "
                  "this includes up to one status period, 0.5 s), then sends a valid frame "
                  "and times its answer: a node stalled by the hostile frame answers late."]
    start = results.get("startup")
    if start:
        rows = [[r["signal"], f"{r['after_s']:.2f}", r["exit_status"], f"{r['exit_s']:.2f}",
                 "YES" if r["traceback"] else "no"] for r in start["signals"]]
        pf = start["params_file"]
        text = markdown_table(["signal", "sent after the start [s]", "exit status",
                               "exit after [s]", "traceback"], rows)
        text += (f"\n\nUnreadable `--params-file`: exit status {pf['exit_status']}, "
                 f"{pf['fatal_lines']} FATAL line(s), traceback "
                 f"{'YES' if pf['traceback'] else 'no'}.")
        parts += ["#### Signals during start-up (issue 25)", text]
    exports = results.get("exports")
    if exports:
        rows = [[_cell(r["damage"]), r["exit_status"], r["fatal_lines"],
                 "YES" if r["traceback"] else "no", _cell(r["fatal"])]
                for r in exports.get("rows", [])]
        parts += ["#### Damaged ONNX export descriptions (issue 25)",
                  markdown_table(["vvhand_onnx.json", "exit status", "FATAL lines",
                                  "traceback", "the FATAL line (end)"], rows)]
    return parts


def markdown(results: dict) -> str:
    """The report: verdict, fuzz, parameters, overload, signals."""
    found = problems(results)
    verdict = ("**No problem found.**" if not found else
               f"**{len(found)} problem(s):** " + "; ".join(found) + ".")
    parts = [
        "hand_pose_node as a child process (`num_threads:=1`, `status_period_s:=0.5`, "
        "default localiser), this process publishing over loopback DDS only "
        "(ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) with reliable input QoS (depth 200), so "
        f"that every message reaches the node's callbacks; DDS: {results.get('dds', '?')}. "
        "Cases the node answers (frames that reach the pipeline) are paced on the answer, "
        "the others sent at `--rate`. "
        f"Model: {results.get('model', '?')}. Load average (1 min) "
        f"{results.get('load_start', float('nan')):.1f} at the start, "
        f"{results.get('load_end', float('nan')):.1f} at the end; total "
        f"{results.get('seconds', 0.0) / 60.0:.1f} min. Messages published: "
        f"{sum(results.get('messages_published', {}).values())}. {verdict}",
    ]
    if results.get("fuzz"):
        parts += ["#### Bad and fuzzed input", _fuzz_tables(results["fuzz"])]
    if results.get("parameters"):
        parts += ["#### Invalid runtime parameters (SetParameters on the running node)",
                  _parameter_table(results["parameters"])]
    if results.get("overload"):
        parts += ["#### Overload: valid frames at twice the processing rate",
                  _overload_table(results["overload"])]
    parts += _probe_sections(results)
    if results.get("signals"):
        parts += ["#### SIGINT / SIGTERM while frames are processed", _signal_table(
            results["signals"]) + "\n\nFrames keep coming at twice the processing rate "
            "before and after the signal; `exit after` runs from the signal to the end of "
            "the process, Python's interpreter shutdown (torch) included."]
    return "\n\n".join(parts) + "\n"


__all__ = ["markdown", "problems"]
