"""compressedDepth (png and rvl, 16UC1 and 32FC1): decoding, bad input, bags in each format."""

from __future__ import annotations

import struct
from types import SimpleNamespace

import numpy as np
import pytest

from vvhand_core.data.synthetic.generator import sample_sequence
from vvhand_ros.bag import read_frames
from vvhand_ros.compressed_depth import (
    HEADER,
    compressed_to_depth_mm,
    depth_mm_to_compressed,
    parse_format,
    rvl_decode,
    rvl_encode,
)
from vvhand_ros.depth_encoding import ConversionError
from vvhand_ros.depth_input import DepthInput
from vvhand_ros.synth_bag import live_camera_config, write_synthetic_bag

FORMATS = [("16UC1", "png"), ("16UC1", "rvl"), ("32FC1", "png"), ("32FC1", "rvl")]


def msg(fmt: str, data: bytes):
    return SimpleNamespace(format=fmt, data=np.frombuffer(data, np.uint8))


@pytest.fixture(scope="module")
def depth_mm():
    return next(iter(sample_sequence(live_camera_config(4), 1))).depth_mm


def test_rvl_matches_the_published_bitstream():
    """[0, 0, 5, 7]: zeros 2, non-zeros 2, zigzag deltas 10 (two nibbles) and 4.

    Nibbles 2 2 A 1 4, padded to one word 0x22A14000, stored little-endian.
    """
    stream = bytes([0x00, 0x40, 0xA1, 0x22])
    np.testing.assert_array_equal(rvl_decode(stream, 4), [0, 0, 5, 7])
    assert rvl_encode(np.array([0, 0, 5, 7], np.uint16)) == stream


@pytest.mark.parametrize("n", [1, 2, 3, 31, 1000])
@pytest.mark.parametrize("chunk_words", [1, 3, 1 << 13])
def test_rvl_round_trip(n, chunk_words):
    """Values straddling the decoder's chunks of words decode alike."""
    rng = np.random.default_rng(n)
    for _ in range(30):
        a = rng.integers(0, 65536, size=n).astype(np.uint16)
        a[rng.random(n) < rng.random()] = 0
        np.testing.assert_array_equal(rvl_decode(rvl_encode(a), n, chunk_words), a)


@pytest.mark.parametrize(("encoding", "codec"), FORMATS)
def test_decode_matches_the_raw_depth(depth_mm, encoding, codec):
    fmt, data = depth_mm_to_compressed(depth_mm, encoding, codec)
    assert fmt == f"{encoding}; compressedDepth {codec}"
    out = compressed_to_depth_mm(msg(fmt, data))
    ref = np.rint(depth_mm)
    assert out.dtype == np.float32 and out.shape == depth_mm.shape
    np.testing.assert_array_equal(out == 0, ref == 0)
    # 16UC1 is lossless; 32FC1 quantises inverse depth (step d^2 / A, < 0.1 mm at 1.2 m)
    tol = 0.0 if encoding == "16UC1" else 0.6
    assert np.abs(out - ref)[ref > 0].max() <= tol


def test_format_strings():
    assert parse_format("16UC1; compressedDepth") == ("16UC1", "png")
    assert parse_format("32FC1; compressedDepth rvl") == ("32FC1", "rvl")
    for bad in ("16UC1", "png", "16UC1; png", "16UC1; compressed png", "rgb8; compressedDepth",
                "16UC1; compressedDepth jpeg", "", "16UC1; compressedDepth png extra"):
        with pytest.raises(ConversionError):
            parse_format(bad)


def _bad_messages(depth_mm):
    fmt, png = depth_mm_to_compressed(depth_mm, "16UC1", "png")
    _, rvl = depth_mm_to_compressed(depth_mm, "16UC1", "rvl")
    fmt_rvl = "16UC1; compressedDepth rvl"
    _, png32 = depth_mm_to_compressed(depth_mm, "32FC1", "png")
    return {
        "format string": msg("16UC1; jpeg", png),
        "empty data": msg(fmt, b""),
        "header only": msg(fmt, png[:12]),
        "unknown header format": msg(fmt, struct.pack("<i", 7) + png[4:]),
        "truncated png": msg(fmt, png[: len(png) // 2]),
        "png garbage": msg(fmt, png[:12] + b"\x89PNG" + b"\x00" * 50),
        "truncated rvl": msg(fmt_rvl, rvl[: len(rvl) // 2]),
        "rvl size only": msg(fmt_rvl, rvl[:20]),
        "rvl huge size": msg(fmt_rvl, rvl[:12] + struct.pack("<II", 100000, 100000) + rvl[20:]),
        "rvl zero size": msg(fmt_rvl, rvl[:12] + struct.pack("<II", 0, 480) + rvl[20:]),
        "32FC1 bad quantisation": msg("32FC1; compressedDepth png",
                                      HEADER.pack(0, float("nan"), 1.0) + png32[12:]),
    }


def test_bad_headers_and_truncated_payloads_raise_conversion_error(depth_mm):
    for name, m in _bad_messages(depth_mm).items():
        with pytest.raises(ConversionError) as err:
            compressed_to_depth_mm(m)
        assert "\n" not in str(err.value), name  # one line


def test_8bit_png_is_refused():
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(buf, format="PNG")
    with pytest.raises(ConversionError, match="16-bit"):
        compressed_to_depth_mm(msg("16UC1; compressedDepth png", HEADER.pack(0, 0, 0)
                                   + buf.getvalue()))


def test_decode_fuzz_only_raises_conversion_error(depth_mm):
    rng = np.random.default_rng(5)
    small = depth_mm[::8, ::8]
    seeds = [depth_mm_to_compressed(small, e, c) for e, c in FORMATS]
    decoded = raised = 0
    for _ in range(600):
        fmt, data = seeds[rng.integers(len(seeds))]
        b = bytearray(data)
        choice = rng.integers(3)
        if choice == 0:
            b = b[: rng.integers(0, len(b))]
        elif choice == 1:
            for _ in range(rng.integers(1, 8)):
                b[rng.integers(len(b))] = int(rng.integers(256))
        else:
            b = b[:12] + bytearray(rng.integers(0, 256, size=rng.integers(0, 200), dtype=np.uint8))
        try:
            out = compressed_to_depth_mm(msg(fmt, bytes(b)))
            assert out.dtype == np.float32 and np.all(np.isfinite(out)) and np.all(out >= 0)
            decoded += 1
        except ConversionError:
            raised += 1
    assert raised > 100 and decoded > 10


@pytest.mark.parametrize("storage", ["sqlite3", "mcap"])
@pytest.mark.parametrize(("encoding", "codec"), FORMATS)
def test_bags_in_each_format_decode_like_the_raw_bag(tmp_path, storage, encoding, codec):
    """Bags written as image_transport records compressedDepth read back as the raw bag."""
    raw, comp = tmp_path / "raw", tmp_path / "comp"
    write_synthetic_bag(raw, 3, seed=1, storage=storage, encoding=encoding, progress=False)
    write_synthetic_bag(comp, 3, seed=1, storage=storage, encoding=encoding, progress=False,
                        depth_format=f"compressedDepth {codec}")
    inp = DepthInput()
    raw_frames = list(read_frames(raw))
    # the base topic finds <base>/compressedDepth; the recorded topic works as well
    for topic in ("/camera/depth/image_raw", "/camera/depth/image_raw/compressedDepth"):
        comp_frames = list(read_frames(comp, depth_topic=topic))
        assert [f.stamp_ns for f in comp_frames] == [f.stamp_ns for f in raw_frames]
        for r, c in zip(raw_frames, comp_frames, strict=True):
            assert c.image.format == f"{encoding}; compressedDepth {codec}"
            d_raw, k_raw = inp.prepare(r.image, r.info)
            d_comp, k_comp = inp.prepare(c.image, c.info)
            assert k_raw == k_comp
            np.testing.assert_array_equal(d_comp == 0, d_raw == 0)
            tol = 0.0 if encoding == "16UC1" else 0.6
            assert np.abs(d_comp - d_raw).max() <= tol


def _peak_bytes(fn) -> tuple[int, Exception | None]:
    """Peak of Python and numpy allocations while ``fn`` runs, and what it raised."""
    import tracemalloc

    tracemalloc.start()
    err = None
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - returned to the test
        err = exc
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, err


def test_rvl_work_follows_the_image_not_the_payload():
    """1024x1024 declared, then 1 MB of zero words (run pairs of no pixels): refused at the
    first pair, allocating about one chunk, not the payload's values."""
    data = HEADER.pack(0, 0, 0) + struct.pack("<II", 1024, 1024) + bytes(1 << 20)
    peak, err = _peak_bytes(lambda: compressed_to_depth_mm(msg("16UC1; compressedDepth rvl",
                                                                   data)))
    assert isinstance(err, ConversionError) and "run pair of no pixels" in str(err), err
    assert peak < 4 << 20, peak
    # longer than any 4x4 image can need: refused before decoding
    with pytest.raises(ConversionError, match="longer than any image of 16 pixels"):
        rvl_decode(bytes(4 * 16 + 12), 16)
    # a valid stream with trailing words up to the bound decodes; the tail is never read
    a = np.arange(1, 17, dtype=np.uint16)
    np.testing.assert_array_equal(rvl_decode(rvl_encode(a) + bytes(8), 16), a)


def test_png_sizes_are_checked_before_pillow_decodes():
    """IHDR declaring 2**31-1 squared: one ConversionError (Pillow raised its own
    DecompressionBombError); a size other than camera_info's is refused undecoded."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">II5B", 2**31 - 1, 2**31 - 1, 16, 0, 0, 0, 0)
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(8)))
           + chunk(b"IEND", b""))
    with pytest.raises(ConversionError, match="above"):
        compressed_to_depth_mm(msg("16UC1; compressedDepth png", HEADER.pack(0, 0, 0) + png))
    fmt, data = depth_mm_to_compressed(np.full((480, 640), 700.0), "16UC1", "png")
    peak, err = _peak_bytes(lambda: compressed_to_depth_mm(msg(fmt, data), (4, 4)))
    assert isinstance(err, ConversionError), err
    assert str(err) == "depth image is 640x480 but camera_info describes 4x4"
    assert peak < 480 * 640 * 2, peak  # the 16-bit image was never decoded
    assert compressed_to_depth_mm(msg(fmt, data), (640, 480)).shape == (480, 640)
