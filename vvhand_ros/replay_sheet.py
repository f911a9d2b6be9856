"""The contact sheet of a replay: skeletons over the bag's depth for worst / median / best frames.

Frames are ranked by their mean joint error against the bag's ground truth (without
ground truth: the first answered frames in order); only the frames drawn are decoded a
second time from the bag, with the node's own input path (vvhand_ros.depth_input).
ROS-free (rosbags), so `vvhand replay` offline and live and `make demo` share it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vvhand_core.contact_sheet import Panel, pick_worst_median_best, write_contact_sheet
from vvhand_core.skeletons import HANDS2019_21, Skeleton, get_skeleton
from vvhand_ros.bag import depth_topic_of, read_frames
from vvhand_ros.depth_input import ConversionError, DepthInput


def skeleton_for(records) -> Skeleton:
    """The skeleton the estimates name (hands2019_21 when none does, e.g. no answers).

    ValueError for a name that is not a registered skeleton or for estimates that name
    more than one.
    """
    names = {r.skeleton for r in records if r.joints_mm is not None and r.skeleton}
    if len(names) > 1:
        raise ValueError(f"the estimates use more than one skeleton: {sorted(names)}")
    return get_skeleton(names.pop()) if names else HANDS2019_21


def chosen_records(records, gt: dict[int, np.ndarray], per_row: int) -> list:
    """The records to draw: worst, median, best by error (or the first answered ones)."""
    answered = [r for r in records if r.answered and r.valid and r.joints_mm is not None]
    scored = [r for r in answered if r.stamp_ns in gt]
    if scored:
        err = np.array([np.linalg.norm(np.asarray(r.joints_mm) - gt[r.stamp_ns], axis=-1).mean()
                        for r in scored])
        return [scored[i] for row in pick_worst_median_best(err, per_row) for i in row]
    return answered[:3 * per_row]


def write_replay_sheet(cfg, records, gt: dict[int, np.ndarray], skeleton: Skeleton,
                       path: str | Path, per_row: int = 4) -> Path | None:
    """Write the sheet; None when no frame has an estimate."""
    chosen = {r.index: r for r in chosen_records(records, gt, per_row)}
    if not chosen:
        return None
    depth_input = DepthInput(cfg.camera_model, depth_topic_of(cfg.bag, cfg.depth_topic).base)
    panels = {}
    for frame in read_frames(cfg.bag, cfg.depth_topic, cfg.info_topic,
                             slop_ns=round(cfg.sync_slop_s * 1e9)):
        rec = chosen.get(frame.index)
        if rec is None or frame.info is None:
            continue
        try:
            depth, intr = depth_input.prepare(frame.image, frame.info)
        except ConversionError:
            continue
        panels[frame.index] = Panel(depth, intr, np.asarray(rec.joints_mm, np.float64),
                                    gt.get(rec.stamp_ns), f"frame {frame.index}")
        if len(panels) == len(chosen):
            break
    if not panels:
        return None
    ordered = [panels[i] for i in chosen if i in panels]
    return write_contact_sheet(ordered, skeleton, path,
                               f"{Path(cfg.bag).name}: {Path(str(cfg.model) or 'default').name}"
                               f", {cfg.selector}-{cfg.num_views}", per_row)
