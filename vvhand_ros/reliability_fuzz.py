"""Bad and fuzzed input for `vvhand bench reliability`: one case = messages of one stamp.

:class:`FuzzSource` draws cases by category (weights below) from a seeded generator: depth
images with wrong encodings, sizes, steps and data lengths, NaN / inf / zero / noise depth,
camera_info with zero, NaN, huge or negative focal lengths, far principal points, bad sizes
and distortion, empty frame_ids, stamps out of order or without a partner, garbage
compressedDepth payloads (random bytes, unknown formats, bad headers, truncated or
corrupted PNG and RVL), and valid frames in between. A case says whether the node will
answer it (its frame reaches the pipeline: a HandPose is published; for a corrupted
compressed payload, whether the node's decoder takes it), so the bench can pace itself on
the answers instead of letting the newest frame replace the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from vvhand_core.camera import Intrinsics
from vvhand_ros.compressed_depth import HEADER, depth_mm_to_compressed
from vvhand_ros.conversions import depth_mm_to_image, intrinsics_to_camera_info
from vvhand_ros.depth_input import ConversionError, DepthInput

BASE_NS = 1_700_000_000_000_000_000
STEP_NS = 1_000_000  # one case per millisecond of stamps
FRAME_ID = "bench_depth_optical"
ENCODINGS = ["rgb8", "bgr8", "8UC1", "mono8", "16SC1", "32FC3", "64FC1", "", "yuv422",
             "16UC1 ", "\u00e9\u00e9\u00e9", "bayer_rggb16", "32SC1"]


@dataclass
class Case:
    """Messages (topic kind 'info' | 'image' | 'compressed', message) to publish in order."""

    category: str
    messages: list = field(default_factory=list)
    answered: bool = False  # the frame reaches the pipeline: a HandPose will be published

    @property
    def stamp_ns(self) -> int | None:
        """The depth image's stamp (None for a camera_info alone)."""
        for kind, msg in self.messages:
            if kind != "info":
                stamp = msg.header.stamp
                return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
        return None


def header(stamp_ns: int, frame_id: str = FRAME_ID) -> Header:
    return Header(stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000),
                  frame_id=frame_id)


class FuzzSource:
    """Seeded cases around a real hand frame (full size) and a small 64x48 copy of it."""

    def __init__(self, depth_mm: np.ndarray, intr: Intrinsics, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self._decoder = DepthInput("auto", "/depth/image")  # the node's decoding, defaults
        self.k = 0
        self.base_ns = BASE_NS
        self.full = (depth_mm.astype(np.float32), intr)
        small = depth_mm[::10, ::10].astype(np.float32)
        h, w = small.shape
        self.small = (small, Intrinsics(fx=intr.fx / 10, fy=intr.fy / 10, cx=w / 2, cy=h / 2,
                                        width=w, height=h))
        self.compressed_full = [depth_mm_to_compressed(depth_mm, enc, codec)
                                for enc, codec in (("16UC1", "png"), ("32FC1", "rvl"))]
        self.compressed_small = {codec: depth_mm_to_compressed(small, "16UC1", codec)
                                 for codec in ("png", "rvl")}
        self.raw_categories = [
            ("wrong encoding", 12, self._wrong_encoding),
            ("step shorter than a row", 5, self._short_step),
            ("data shorter than step x height", 6, self._short_data),
            ("empty frame (0 width or height)", 4, self._empty),
            ("image and camera_info sizes differ", 4, self._size_mismatch),
            ("NaN depth (32FC1)", 2, lambda s: self._depth(s, np.nan, "32FC1")),
            ("inf or negative depth (32FC1)", 2, self._inf_negative),
            ("zero depth", 2, lambda s: self._depth(s, 0.0, str(self.rng.choice(
                ["16UC1", "32FC1", "mono16"])))),
            ("random depth noise (either byte order)", 1, self._noise),
            ("camera_info zero focal length", 5, lambda s: self._bad_k(s, [0.0, -0.0])),
            ("camera_info NaN or inf focal length", 5,
             lambda s: self._bad_k(s, [np.nan, np.inf, -np.inf])),
            ("camera_info huge, tiny or negative focal length", 4,
             lambda s: self._bad_k(s, [1e30, 1e-30, -500.0, 1e6])),
            ("camera_info principal point far off", 3, self._far_centre),
            ("camera_info zero or huge image size", 3, self._bad_info_size),
            ("camera_info with unsupported distortion", 3, self._bad_distortion),
            ("empty frame_id", 3, self._empty_frame_id),
            ("stamp out of order, no camera_info", 3, self._old_stamp_alone),
            ("stamp out of order or repeated, with camera_info", 2, self._old_stamp_pair),
            ("image without camera_info", 3, self._image_only),
            ("camera_info without image", 2, self._info_only),
            ("camera_info after its image", 2, self._info_after),
            ("valid hand frame (640x480)", 0.5, self._valid_full),
        ]
        self.compressed_categories = [
            ("random bytes", 4, self._c_random),
            ("unknown format string", 3, self._c_format),
            ("shorter than the 12-byte header", 2, self._c_short_header),
            ("header format not INV_DEPTH", 2, self._c_header_kind),
            ("NaN or zero quantisation (32FC1)", 2, self._c_quant),
            ("truncated PNG", 3, lambda s: self._c_cut("png", s)),
            ("PNG with corrupted bytes", 3, lambda s: self._c_flip("png", s)),
            ("truncated RVL", 3, lambda s: self._c_cut("rvl", s)),
            ("RVL declaring a huge image", 2, self._c_huge_rvl),
            ("RVL with a corrupt stream", 3, lambda s: self._c_flip("rvl", s)),
            ("valid compressed hand frame (640x480)", 0.5, self._c_valid),
        ]

    def start_at(self, stamp_ns: int) -> None:
        """Stamp the next cases from ``stamp_ns`` on.

        Later than any frame the node has paired already: a camera_info newer than a
        case's image rules the image out.
        """
        self.base_ns, self.k = int(stamp_ns), 0

    # -- drawing --------------------------------------------------------------------------
    def _draw(self, categories) -> Case:
        weights = np.array([w for _, w, _ in categories], np.float64)
        i = int(self.rng.choice(len(categories), p=weights / weights.sum()))
        name, _, build = categories[i]
        self.k += 1
        case = build(self.base_ns + self.k * STEP_NS)
        case.category = name
        return case

    def raw(self) -> Case:
        return self._draw(self.raw_categories)

    def compressed(self) -> Case:
        return self._draw(self.compressed_categories)

    def final(self, compressed: bool = False, stamp: int | None = None) -> Case:
        """A valid small frame stamped after every case, or at ``stamp``.

        After every case it rules out every waiting image; at ``stamp`` it is a node's first
        small frame (the first of a size is slow, later ones are not).
        """
        stamp = self.base_ns + (self.k + 10_000) * STEP_NS if stamp is None else stamp
        if compressed:
            return self._c_pair(stamp, *self.compressed_small["rvl"], answered=True)
        return self._pair(stamp, self._small_image(stamp), answered=True)

    # -- helpers --------------------------------------------------------------------------
    def _info(self, stamp: int, intr: Intrinsics | None = None, frame_id: str = FRAME_ID):
        return intrinsics_to_camera_info(intr or self.small[1], header(stamp, frame_id))

    def _small_image(self, stamp: int, frame_id: str = FRAME_ID) -> Image:
        return depth_mm_to_image(self.small[0], header(stamp, frame_id))

    def _pair(self, stamp, image, info=None, answered=False) -> Case:
        return Case("", [("info", info or self._info(stamp)), ("image", image)], answered)

    def _image(self, stamp, h, w, encoding, step, data, bigendian=0) -> Image:
        return Image(header=header(stamp), height=int(h), width=int(w), encoding=encoding,
                     is_bigendian=int(bigendian), step=int(step), data=bytes(data))

    def _bytes(self, n: int) -> bytes:
        return self.rng.integers(0, 256, size=max(0, int(n)), dtype=np.uint8).tobytes()

    # -- raw depth images -----------------------------------------------------------------
    def _wrong_encoding(self, s):
        h, w = self.small[1].height, self.small[1].width
        enc = str(self.rng.choice(ENCODINGS))
        return self._pair(s, self._image(s, h, w, enc, 2 * w, self._bytes(2 * w * h)))

    def _short_step(self, s):
        h, w = self.small[1].height, self.small[1].width
        step = int(self.rng.integers(0, 2 * w))
        return self._pair(s, self._image(s, h, w, "16UC1", step, self._bytes(2 * w * h)))

    def _short_data(self, s):
        h, w = self.small[1].height, self.small[1].width
        enc, size = [("16UC1", 2), ("32FC1", 4), ("mono16", 2)][int(self.rng.integers(0, 3))]
        n = size * w * h - int(self.rng.integers(1, size * w * h + 1))
        return self._pair(s, self._image(s, h, w, enc, size * w, self._bytes(n)))

    def _empty(self, s):
        h, w = [(0, 64), (48, 0), (0, 0)][int(self.rng.integers(0, 3))]
        return self._pair(s, self._image(s, h, w, "16UC1", 2 * w, b""))

    def _size_mismatch(self, s):
        intr = self.small[1].scaled(*[(0.5, 0.5), (2.0, 2.0), (1.0, 0.5)][
            int(self.rng.integers(0, 3))])
        return self._pair(s, self._small_image(s), self._info(s, intr))

    def _depth(self, s, value, encoding):
        depth = np.full(self.small[0].shape, value, np.float32)
        if encoding == "32FC1":
            img = self._image(s, *depth.shape, "32FC1", 4 * depth.shape[1],
                              (depth / 1000.0).astype("<f4").tobytes())
        else:
            img = depth_mm_to_image(np.nan_to_num(depth), header(s), "16UC1")
            img.encoding = encoding
        return self._pair(s, img, answered=True)

    def _inf_negative(self, s):
        choice = [np.inf, -np.inf, -1000.0, np.nan][int(self.rng.integers(0, 4))]
        depth = self.small[0] / 1000.0
        mask = self.rng.random(depth.shape) < 0.5
        depth = np.where(mask, choice, depth).astype("<f4")
        img = self._image(s, *depth.shape, "32FC1", 4 * depth.shape[1], depth.tobytes())
        return self._pair(s, img, answered=True)

    def _noise(self, s):
        h, w = self.small[0].shape
        return self._pair(s, self._image(s, h, w, "16UC1", 2 * w, self._bytes(2 * w * h),
                                         bigendian=int(self.rng.integers(0, 2))), answered=True)

    # -- camera_info ----------------------------------------------------------------------
    def _bad_k(self, s, values):
        info = self._info(s)
        k = list(info.k)
        which = int(self.rng.integers(0, 3))  # fx, fy or both
        bad = float(self.rng.choice(values))
        if which in (0, 2):
            k[0] = bad
        if which in (1, 2):
            k[4] = bad
        info.k = k
        info.p = [k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0]
        return self._pair(s, self._small_image(s), info)

    def _far_centre(self, s):
        info = self._info(s)
        k = list(info.k)
        k[2 + 3 * int(self.rng.integers(0, 2))] = float(self.rng.choice(
            [1e12, -1e12, np.nan, np.inf, 5000.0]))
        info.k = k
        return self._pair(s, self._small_image(s), info)

    def _bad_info_size(self, s):
        info = self._info(s)
        info.width, info.height = [(0, 48), (64, 0), (100_000, 100_000), (2**31, 1)][
            int(self.rng.integers(0, 4))]
        return self._pair(s, self._small_image(s), info)

    def _bad_distortion(self, s):
        info = self._info(s)
        model, n = [("bogus", 5), ("plumb_bob", 20), ("equidistant", 6), ("", 3)][
            int(self.rng.integers(0, 4))]
        info.distortion_model = model
        info.d = (self.rng.normal(0, 0.1, size=n) + 0.01).tolist()
        return self._pair(s, self._small_image(s), info)

    def _empty_frame_id(self, s):
        frame_id = str(self.rng.choice(["", " ", "\t"]))
        return self._pair(s, self._small_image(s, frame_id), self._info(s, frame_id=frame_id))

    # -- stamps and partners --------------------------------------------------------------
    def _old(self, s) -> int:
        return s - int(self.rng.integers(1, 60)) * STEP_NS

    def _old_stamp_alone(self, s):
        return Case("", [("image", self._small_image(self._old(s)))])

    def _old_stamp_pair(self, s):
        # an earlier case's stamp, at most 5 back, so that this camera_info stays among the
        # node's 10 newest. Not waited for: the two topics race, and an image that arrives
        # before its (old) camera_info is ruled out at once as unpaired
        old = s - int(self.rng.integers(1, 6)) * STEP_NS
        return self._pair(old, self._small_image(old))

    def _image_only(self, s):
        return Case("", [("image", self._small_image(s))])

    def _info_only(self, s):
        return Case("", [("info", self._info(s))])

    def _info_after(self, s):
        return Case("", [("image", self._small_image(s)), ("info", self._info(s))], True)

    def _valid_full(self, s):
        depth, intr = self.full
        return self._pair(s, depth_mm_to_image(depth, header(s)), self._info(s, intr), True)

    # -- compressedDepth ------------------------------------------------------------------
    def _c_pair(self, s, fmt, data, intr=None, answered=False) -> Case:
        msg = CompressedImage(header=header(s), format=fmt, data=bytes(data))
        info = self._info(s, intr)
        if not answered:  # a corrupted payload may still decode: then the node answers it
            try:
                self._decoder.prepare(msg, info)
                answered = True
            except ConversionError:
                pass
        return Case("", [("info", info), ("compressed", msg)], answered)

    def _c_random(self, s):
        fmt = str(self.rng.choice(["16UC1; compressedDepth png", "32FC1; compressedDepth rvl",
                                   "16UC1; compressedDepth"]))
        return self._c_pair(s, fmt, self._bytes(self.rng.integers(0, 400)))

    def _c_format(self, s):
        fmt = str(self.rng.choice(["", "png", "jpeg", "16UC1; compressedDepth jpeg",
                                   "8UC3; compressedDepth png", "16UC1; compressed png",
                                   "\u00e9; compressedDepth rvl", "16UC1;;;"]))
        return self._c_pair(s, fmt, self.compressed_small["png"][1])

    def _c_short_header(self, s):
        return self._c_pair(s, "16UC1; compressedDepth png",
                            self._bytes(self.rng.integers(0, HEADER.size)))

    def _c_header_kind(self, s):
        fmt, data = self.compressed_small[str(self.rng.choice(["png", "rvl"]))]
        kind = int(self.rng.integers(1, 2**31))
        return self._c_pair(s, fmt, kind.to_bytes(4, "little") + bytes(data[4:]))

    def _c_quant(self, s):
        fmt, data = depth_mm_to_compressed(self.small[0], "32FC1", "rvl")
        a, b = [(np.nan, 1.0), (0.0, 0.0), (np.inf, -np.inf), (1.0, np.nan)][
            int(self.rng.integers(0, 4))]
        head = HEADER.pack(0, a, b)
        return self._c_pair(s, fmt, head + bytes(data[HEADER.size:]))

    def _c_cut(self, codec, s):
        fmt, data = self.compressed_small[codec]
        cut = int(self.rng.integers(HEADER.size, len(data)))
        return self._c_pair(s, fmt, bytes(data[:cut]))

    def _c_flip(self, codec, s):
        fmt, data = self.compressed_small[codec]
        buf = bytearray(data)
        for i in self.rng.integers(HEADER.size, len(buf), size=int(self.rng.integers(1, 9))):
            buf[int(i)] ^= int(self.rng.integers(1, 256))
        return self._c_pair(s, fmt, bytes(buf))

    def _c_huge_rvl(self, s):
        fmt, data = self.compressed_small["rvl"]
        cols, rows = [(100_000, 100_000), (2**32 - 1, 2), (0, 48), (64, 0)][
            int(self.rng.integers(0, 4))]
        body = cols.to_bytes(4, "little") + rows.to_bytes(4, "little")
        return self._c_pair(s, fmt, bytes(data[:HEADER.size]) + body
                            + bytes(data[HEADER.size + 8:]))

    def _c_valid(self, s):
        fmt, data = self.compressed_full[int(self.rng.integers(0, 2))]
        return self._c_pair(s, fmt, data, intr=self.full[1], answered=True)


__all__ = ["BASE_NS", "Case", "FuzzSource", "header"]
