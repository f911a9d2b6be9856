"""The node's plumbing without DDS (issue 15): throttling keys, input-loss diagnostics,
start-up parameter messages, uniform grid sizes."""

from __future__ import annotations

import math

import pytest

from vvhand_ros.depth_encoding import ConversionError, image_to_depth_mm
from vvhand_ros.diagnostics import OK, WARN, DiagnosticBounds, RateDelayMonitor, assess
from vvhand_ros.node_support import (
    MAX_REASONS,
    NodeStats,
    ReasonCounter,
    ThrottledReporter,
    problem_kind,
    reason_label,
)


class ListLogger:
    def __init__(self):
        self.lines: list[str] = []

    def warning(self, text):
        self.lines.append(text)

    error = info = warning


class Msg:
    def __init__(self, encoding):
        self.encoding, self.height, self.width, self.step = encoding, 2, 2, 4
        self.is_bigendian, self.data = 0, bytes(8)


def _kind_of(encoding: str) -> str:
    try:
        image_to_depth_mm(Msg(encoding))
    except ConversionError as exc:
        return problem_kind(exc)
    raise AssertionError("not rejected")


def test_the_key_does_not_depend_on_the_text():
    """100 encoding names that differ in their first characters: one kind, one line."""
    kinds = {_kind_of(f"{i:03d}-" + "x" * 50) for i in range(100)}
    assert len(kinds) == 1
    (kind,) = kinds
    assert "depth_encoding.py" in kind and "ConversionError" in kind
    # another problem is another kind
    assert _kind_of("") == kind  # same raise site: unsupported encoding
    m = Msg("16UC1")
    m.data = b""
    with pytest.raises(ConversionError) as err:
        image_to_depth_mm(m)
    assert problem_kind(err.value) != kind

    log = ListLogger()
    reporter = ThrottledReporter(log, period_s=3600.0)
    for i in range(100):
        reporter.report(kind, f"frame rejected: encoding {i}")
    assert len(log.lines) == 1


def test_the_table_of_kinds_is_bounded():
    log = ListLogger()
    reporter = ThrottledReporter(log, period_s=3600.0, max_kinds=16)
    for i in range(1000):
        reporter.report(f"kind{i}", "x")
    assert len(reporter) == 16 and len(log.lines) == 1000
    reporter.report("kind999", "x")  # the newest are remembered: still throttled
    assert len(log.lines) == 1000


def test_rejections_are_counted_by_reason_in_a_bounded_table():
    """/diagnostics carries rejected.<reason> and failed.<type>: the values are not in the
    reason (100 encodings, one reason) and the table stays bounded whatever arrives."""
    stats = NodeStats()
    for i in range(100):
        try:
            image_to_depth_mm(Msg(f"{i:03d}-bogus"))
        except ConversionError as exc:
            stats.count_rejected(exc)
    short = Msg("16UC1")
    short.data = b""
    for size in (1, 2, 3):
        short.height = short.width = size
        short.step = 2 * size
        try:
            image_to_depth_mm(short)
        except ConversionError as exc:
            assert stats.count_rejected(exc) == "depth data has N B"
    stats.count_failed(RuntimeError("boom 1"))
    stats.count_failed(RuntimeError("boom 2"))
    d = stats.as_dict()
    assert d["rejected"] == 103 and d["rejected.unsupported depth encoding"] == 100, d
    assert d["rejected.depth data has N B"] == 3 and d["failed.RuntimeError"] == 2, d
    assert sum(v for k, v in d.items() if k.startswith("rejected.")) == d["rejected"]
    assert reason_label("depth image is 640x480 but camera_info describes 320x240 (x)") == (
        "depth image is NxN but camera_info describes NxN")
    assert reason_label("step 3 is shorter than one row of 5 x 16UC1 (10 B)") == (
        "step N is shorter than one row of N x 16UC1")
    assert reason_label("camera_info K has an invalid focal length (fx=nan, fy=0.0)") == (
        "camera_info K has an invalid focal length")
    assert reason_label("") == "unknown" and len(reason_label("x" * 500)) == 80
    counter = ReasonCounter()
    for i in range(1000):
        counter.add(f"reason {i}")
    assert len(counter) == MAX_REASONS + 1 and counter["other"] == 1000 - MAX_REASONS
    assert sum(counter.values()) == 1000


def test_input_loss_from_camera_info_without_images():
    """30 Hz camera_info, every tenth image arrives: 90 % lost before the node, WARN."""
    m = RateDelayMonitor(window_s=2.0)
    for i in range(60):
        t = 100.0 + i / 30.0
        m.info(t + 0.002, t)
        if i % 10 == 0:
            m.input(t + 0.004, t)
    s = m.summary(102.0)
    assert s["stamp_rate_hz"] == pytest.approx(30.0, rel=1e-3)
    assert s["input_loss_fraction"] == pytest.approx(0.9, abs=0.02)
    assert s["info_rate_hz"] > 5 * s["input_rate_hz"]
    level, text = assess(s, DiagnosticBounds(), {})
    assert level == WARN and "90% of the depth images lost" in text, text
    # every image arrives: no loss, OK
    m = RateDelayMonitor(window_s=2.0)
    for i in range(60):
        t = 100.0 + i / 30.0
        m.info(t, t)
        m.input(t, t)
    s = m.summary(102.0)
    assert s["input_loss_fraction"] == 0.0 and assess(s, DiagnosticBounds(), {}) == (OK, "ok")
    # no camera_info at all: nothing to compare with, rate from the images' stamps
    m = RateDelayMonitor(window_s=2.0)
    for i in range(10):
        m.input(100.0 + i * 0.1, 50.0 + i * 0.1)
    s = m.summary(101.0)
    assert math.isnan(s["input_loss_fraction"]) and s["stamp_rate_hz"] == pytest.approx(10.0)


def test_parameter_messages_and_uniform_sizes():
    pytest.importorskip("rclpy")
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
    from rclpy.parameter import Parameter

    from vvhand_ros.node_params import UNIFORM_NUM_VIEWS, _bad_parameter, check_num_views

    exc = InvalidParameterValueException("num_views", 30, "out of range")
    text = _bad_parameter("num_views", 3, (1, 25), exc)
    assert text == "parameter num_views must be an integer like 3 in 1..25, got 30", text
    exc = InvalidParameterTypeException(Parameter("num_views", value="abc"), "INTEGER")
    text = _bad_parameter("num_views", 3, (1, 25), exc)
    assert text == "parameter num_views must be an integer like 3 in 1..25, got 'abc' (string)"
    assert UNIFORM_NUM_VIEWS == (1, 3, 9, 15, 25)
    check_num_views("uniform", 9)
    check_num_views("student", 4)
    with pytest.raises(ValueError, match=r"one of \[1, 3, 9, 15, 25\], got 81"):
        check_num_views("uniform", 81)


def test_the_documented_dds_profile_carries_a_640x480_image_in_shared_memory():
    """docs/ros.md, "Large images": the Fast DDS profile is well-formed XML whose shared-
    memory segment holds 640x480 16UC1 images (614 kB; the default segment is 512 KiB)."""
    import re
    import xml.etree.ElementTree as ET
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "ros.md").read_text()
    section = text[text.index("### Large images"):]
    block = re.search(r"\n((?:    .*\n)+)", section[section.index("<?xml") - 10:]).group(1)
    root = ET.fromstring("\n".join(ln[4:] for ln in block.splitlines()).encode())
    ns = {"d": "http://www.eprosima.com"}
    (segment,) = root.findall(".//d:transport_descriptor[d:type='SHM']/d:segment_size", ns)
    assert int(segment.text) >= 20 * 640 * 480 * 2
    used = [t.text for t in root.findall(".//d:userTransports/d:transport_id", ns)]
    assert "shm_large" in used and root.find(".//d:useBuiltinTransports", ns).text == "false"


def test_frames_dropped_under_overload_raise_warn():
    """63 % of the frames superseded before processing (a 2x overload) is WARN; a frame now
    and then (the keep-newest policy) is not."""
    from vvhand_ros.diagnostics import dropped_fraction

    m = RateDelayMonitor(window_s=2.0)
    for i in range(60):
        m.info(100.0 + i / 30.0, 100.0 + i / 30.0)
        m.input(100.0 + i / 30.0, 100.0 + i / 30.0)
    s = m.summary(102.0)
    s["dropped_fraction"] = dropped_fraction(63, 100)
    level, text = assess(s, DiagnosticBounds(), {})
    assert level == WARN and "63% of the depth frames dropped" in text, text
    s["dropped_fraction"] = dropped_fraction(1, 30)
    assert assess(s, DiagnosticBounds(), {}) == (OK, "ok")
    assert math.isnan(dropped_fraction(0, 0))
