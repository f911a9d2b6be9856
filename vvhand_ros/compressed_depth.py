"""compressedDepth (image_transport's compressed_depth_image_transport) without ROS imports.

Wire format of a ``sensor_msgs/CompressedImage`` on ``<depth topic>/compressedDepth``:

- ``format``: ``"<encoding>; compressedDepth <codec>"``, encoding ``16UC1`` (mm) or ``32FC1``
  (m), codec ``png`` or ``rvl`` (``"<encoding>; compressedDepth"`` alone means png).
- ``data``: a 12-byte little-endian header ``int32 format`` (0 = INV_DEPTH, the only value
  the transport writes), ``float32 depthQuantA``, ``float32 depthQuantB``; then the payload:
  a 16-bit greyscale PNG, or for rvl ``uint32 cols, uint32 rows`` and the RVL stream.
- 16UC1 stores millimetres as they are (0 = invalid). 32FC1 stores quantised inverse depth
  ``q = uint16(A / depth_m + B)``, 0 = invalid, and decodes as ``depth_m = A / (q - B)``;
  the publisher derives ``A = z0 * (z0 + 1)`` and ``B = 1 - A / depth_max`` from its
  ``depth_quantization`` (z0, default 100) and ``depth_max`` (default 10 m) parameters.

RVL (Wilson 2017, "Fast Lossless Depth Image Compression") codes runs of zeros and of
non-zeros as variable-length nibble values (3 data bits + a continuation bit, packed into
little-endian 32-bit words, most significant nibble first); each non-zero pixel is the
zigzag-coded difference to the previous non-zero pixel. The decoder here is our own,
vectorised with numpy and bounded: a truncated or corrupt stream raises ConversionError
instead of reading past the buffer (the PyPI packages checked, ``rvl`` and ``pyrvl``, crash
the process on truncated input; see docs/architecture.md).

PNG goes through Pillow. Every malformed message raises :class:`ConversionError`.
"""

from __future__ import annotations

import io
import struct
from array import array

import numpy as np

from vvhand_ros.depth_encoding import ConversionError

HEADER = struct.Struct("<iff")  # format, depthQuantA, depthQuantB
INV_DEPTH = 0
CODECS = ("png", "rvl")
ENCODINGS = ("16UC1", "32FC1")
# Decoded images larger than this are refused before any memory is spent on them.
MAX_PIXELS = 4096 * 4096
_NIBBLE_SHIFTS = np.arange(28, -1, -4, dtype=np.uint32)  # most significant nibble first


def parse_format(fmt: str) -> tuple[str, str]:
    """``"16UC1; compressedDepth png"`` -> (``"16UC1"``, ``"png"``); ConversionError otherwise."""
    encoding, sep, rest = str(fmt).partition(";")
    encoding, words = encoding.strip(), rest.split()
    if not sep or not words or words[0] != "compressedDepth" or len(words) > 2:
        raise ConversionError(f"not a compressedDepth format: {fmt!r} "
                              "(expected '<16UC1|32FC1>; compressedDepth <png|rvl>')")
    codec = words[1] if len(words) == 2 else "png"
    if encoding not in ENCODINGS:
        raise ConversionError(f"unsupported compressedDepth encoding {encoding!r}; "
                              f"expected one of {list(ENCODINGS)}")
    if codec not in CODECS:
        raise ConversionError(f"unsupported compressedDepth codec {codec!r}; expected png or rvl")
    return encoding, codec


def compressed_to_depth_mm(msg, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode a compressedDepth CompressedImage (``format``, ``data``) to float32 mm (H, W).

    0 = invalid, as for raw images. Raises ConversionError on an unknown format string, a
    short or unknown header, a payload that is not a complete PNG / RVL image, or a size
    beyond ``MAX_PIXELS``, or other than ``expected_size`` (width, height; camera_info's)
    when given. Sizes are read from the PNG / RVL header and checked before anything is
    decoded, so work and memory are bounded by the image's own size (see rvl_decode).
    """
    encoding, codec = parse_format(msg.format)
    data = as_buffer(msg.data)
    if len(data) <= HEADER.size:
        raise ConversionError(f"compressedDepth data has {len(data)} B, less than the "
                              f"{HEADER.size}-byte header and a payload")
    kind, quant_a, quant_b = HEADER.unpack_from(data)
    if kind != INV_DEPTH:
        raise ConversionError(f"compressedDepth header has format {kind}; only 0 (INV_DEPTH) "
                              "is defined")
    payload = data[HEADER.size:]
    stored = (_decode_png(payload, expected_size) if codec == "png"
              else _decode_rvl_image(payload, expected_size))
    if encoding == "16UC1":
        return stored.astype(np.float32)
    return inverse_depth_to_mm(stored, quant_a, quant_b)


def as_buffer(data) -> memoryview:
    """A byte view of a message's uint8[] field (bytes, array.array, numpy array or list)."""
    try:
        view = memoryview(data)
        return view.cast("B") if view.format != "B" or view.ndim != 1 else view
    except TypeError:
        return memoryview(bytes(data))


def inverse_depth_to_mm(stored: np.ndarray, quant_a: float, quant_b: float) -> np.ndarray:
    """32FC1 compressedDepth: quantised inverse depth (uint16, 0 invalid) -> float32 mm."""
    if not (np.isfinite(quant_a) and np.isfinite(quant_b)) or quant_a <= 0.0:
        raise ConversionError(f"compressedDepth header has invalid quantisation parameters "
                              f"A={quant_a}, B={quant_b}")
    q = stored.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.float32(quant_a * 1000.0) / (q - np.float32(quant_b))
    depth[(stored == 0) | ~np.isfinite(depth) | (depth <= 0.0)] = 0.0
    return depth


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(payload: memoryview) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk; None when the payload is not a PNG."""
    head = bytes(payload[:24])
    if len(head) < 24 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _decode_png(payload: memoryview, expected_size: tuple[int, int] | None) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    size = png_size(payload)
    if size is not None:  # refused before Pillow reads more (or warns of a bomb)
        _check_size(*size, expected_size)
    try:
        img = Image.open(io.BytesIO(payload))
        if img.format != "PNG":
            raise ConversionError(f"compressedDepth payload is {img.format}, not PNG")
        _check_size(*img.size, expected_size)
        img.load()
    except ConversionError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
            ValueError, EOFError) as exc:
        raise ConversionError(f"compressedDepth PNG cannot be decoded: {exc}") from exc
    if img.mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(img, dtype=np.uint16)
    raise ConversionError(f"compressedDepth PNG is mode {img.mode!r}; expected 16-bit greyscale")


def _check_size(w: int, h: int, expected_size: tuple[int, int] | None = None) -> None:
    if w <= 0 or h <= 0 or w * h > MAX_PIXELS:
        raise ConversionError(f"compressedDepth image size {w}x{h} is empty or above "
                              f"{MAX_PIXELS} pixels")
    if expected_size is not None and (w, h) != tuple(expected_size):
        ew, eh = expected_size
        raise ConversionError(f"depth image is {w}x{h} but camera_info describes {ew}x{eh}")


def _decode_rvl_image(payload: memoryview, expected_size: tuple[int, int] | None
                      ) -> np.ndarray:
    if len(payload) < 8:
        raise ConversionError(f"RVL payload has {len(payload)} B, less than its 8-byte size")
    cols, rows = struct.unpack_from("<II", payload)
    _check_size(cols, rows, expected_size)
    return rvl_decode(payload[8:], cols * rows).reshape(rows, cols)


# -- RVL ------------------------------------------------------------------------------------
def max_rvl_bytes(num_pixels: int) -> int:
    """Longest RVL stream an image of ``num_pixels`` can need [B].

    Each run pair covers at least one pixel, a run length of n pixels takes at most n
    nibbles and a pixel's zigzag difference at most 6 (17 bits): at most 7 nibbles per
    pixel, 3.5 B, written here with room to spare as 4 B per pixel and one padded word.
    """
    return 4 * num_pixels + 8


class _Values:
    """The variable-length values of an RVL stream, decoded a chunk of words at a time.

    Only as much of the stream is decoded as the run walk asks for, so time and memory
    follow the image, never the length of the payload.
    """

    MAX_NIBBLES = 10  # 30 bits: more than any run length (<= 2**24) or difference needs

    def __init__(self, data: memoryview, chunk_words: int = 1 << 13) -> None:
        self._data = data
        self._n_words = len(data) // 4
        self._word = 0
        self._chunk = chunk_words
        self._carry = np.zeros(0, np.uint8)     # nibbles of a value not finished yet
        self.chunks: list[np.ndarray] = []      # int32 values decoded so far
        self.count = 0
        self._py: list[int] = []                # the last two chunks as Python ints
        self._py_start = 0
        self._last: list[int] = []

    def _decode(self, nibbles: np.ndarray) -> np.ndarray:
        ends = np.flatnonzero(nibbles < 8)  # nibbles that end a value (no continuation bit)
        starts = np.empty_like(ends)
        starts[:1], starts[1:] = 0, ends[:-1] + 1
        lengths = ends - starts + 1
        longest = int(lengths.max()) if lengths.size else 0
        if longest > self.MAX_NIBBLES:
            raise ConversionError(f"RVL stream has a value longer than {self.MAX_NIBBLES} "
                                  "nibbles (corrupt data)")
        data_bits = (nibbles & 7).astype(np.int32)
        values = data_bits[starts]
        for k in range(1, longest):  # most values are one or two nibbles long
            longer = np.flatnonzero(lengths > k)
            values[longer] |= data_bits[starts[longer] + k] << (3 * k)
        return values

    def more(self) -> bool:
        """Decode the next chunk of words; False at the end of the stream."""
        if self._word >= self._n_words:
            return False
        w0, w1 = self._word, min(self._n_words, self._word + self._chunk)
        self._word = w1
        # little-endian words, most significant nibble first: bytes 3, 2, 1, 0, high then low
        b = np.frombuffer(self._data, np.uint8, count=4 * (w1 - w0),
                          offset=4 * w0).reshape(-1, 4)[:, ::-1]
        nibbles = np.empty((b.shape[0], 4, 2), np.uint8)
        np.right_shift(b, 4, out=nibbles[:, :, 0])
        np.bitwise_and(b, 0xF, out=nibbles[:, :, 1])
        nibbles = np.concatenate([self._carry, nibbles.ravel()])
        done = int(np.flatnonzero(nibbles < 8)[-1]) + 1 if (nibbles < 8).any() else 0
        self._carry = nibbles[done:]
        if self._carry.size > self.MAX_NIBBLES:
            raise ConversionError(f"RVL stream has a value longer than {self.MAX_NIBBLES} "
                                  "nibbles (corrupt data)")
        values = self._decode(nibbles[:done])
        self.chunks.append(values)
        new = values.tolist()
        self._py_start = self.count - len(self._last)
        self._py = self._last + new
        self._last = new
        self.count += values.size
        return True

    def pair(self, i: int) -> tuple[int, int] | None:
        """Values i and i + 1, decoding further as needed; None past the end."""
        while self.count < i + 2:
            if not self.more():
                return None
        j = i - self._py_start
        return self._py[j], self._py[j + 1]


def rvl_decode(data, num_pixels: int, chunk_words: int = 1 << 13) -> np.ndarray:
    """Decode an RVL stream to ``num_pixels`` uint16 values; ConversionError if malformed.

    Bounded by the image: a stream longer than ``max_rvl_bytes(num_pixels)`` is refused
    before decoding, a run pair that covers no pixel is corrupt, and the stream is decoded
    (``chunk_words`` 32-bit words at a time) only as far as the image's pixels need, so
    the walk takes at most one step per pixel and memory follows the pixels.
    """
    data = memoryview(data)
    if len(data) > max_rvl_bytes(num_pixels):
        raise ConversionError(f"RVL stream of {len(data)} B is longer than any image of "
                              f"{num_pixels} pixels can need ({max_rvl_bytes(num_pixels)} B)")
    vals = _Values(data, chunk_words)
    heads = array("q")  # index of each run pair's first value
    i, filled = 0, 0
    while filled < num_pixels:  # walk the run headers only; pixels are filled vectorised
        pair = vals.pair(i)
        if pair is None:
            raise ConversionError(f"RVL stream ends after {filled} of {num_pixels} pixels "
                                  "(truncated)")
        covered = pair[0] + pair[1]
        if covered == 0:
            raise ConversionError(f"RVL stream has a run pair of no pixels after {filled} of "
                                  f"{num_pixels} pixels (corrupt data)")
        filled += covered
        heads.append(i)
        i += 2 + pair[1]
    if filled != num_pixels:
        raise ConversionError(f"RVL runs cover {filled} pixels, the image has {num_pixels}")
    while vals.count < i and vals.more():
        pass
    if vals.count < i:
        raise ConversionError(f"RVL stream ends inside its last run of {pair[1]} pixels "
                              "(truncated)")
    values = np.concatenate(vals.chunks)[:i]
    starts = np.frombuffer(heads, np.int64)
    zero_runs, nz = values[starts].astype(np.int64), values[starts + 1].astype(np.int64)
    marks = (np.bincount(starts + 2, minlength=i + 1)
             - np.bincount(starts + 2 + nz, minlength=i + 1))
    coded = values[np.cumsum(marks[:-1]) > 0].astype(np.int64)
    deltas = (coded >> 1) ^ -(coded & 1)  # zigzag
    out = np.zeros(num_pixels, np.uint16)
    is_value = np.repeat(np.tile(np.array([False, True]), nz.size),
                         np.column_stack([zero_runs, nz]).ravel())
    out[is_value] = (np.cumsum(deltas) & 0xFFFF).astype(np.uint16)
    return out


def rvl_encode(pixels: np.ndarray) -> bytes:
    """RVL stream of uint16 pixels (row-major), as compressed_depth_image_transport writes it."""
    p = np.ascontiguousarray(pixels, dtype=np.uint16).ravel()
    values: list[np.ndarray] = []
    nonzero = p != 0
    edges = np.flatnonzero(np.diff(nonzero.astype(np.int8))) + 1
    bounds = np.concatenate([[0], edges, [p.size]])
    previous = 0
    k = 0
    while k < bounds.size - 1:  # alternate: a zero run (maybe empty), then a non-zero run
        zeros = 0
        if not nonzero[bounds[k]]:
            zeros = int(bounds[k + 1] - bounds[k])
            k += 1
        run = p[bounds[k]:bounds[k + 1]] if k < bounds.size - 1 else p[:0]
        values.append(np.array([zeros, run.size], np.int64))
        if run.size:
            cur = run.astype(np.int64)
            delta = np.diff(np.concatenate([[previous], cur]))
            values.append((delta << 1) ^ (delta >> 63))  # zigzag
            previous = int(cur[-1])
        k += 1
    return _vle_pack(np.concatenate(values) if values else np.zeros(0, np.int64))


def _vle_pack(values: np.ndarray) -> bytes:
    """Variable-length nibbles of ``values`` (>= 0) packed into little-endian 32-bit words."""
    v = values.astype(np.int64)
    bits = np.maximum(1, np.ceil(np.log2(v + 1)).astype(np.int64))
    counts = (bits + 2) // 3
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    owner = np.repeat(v, counts)
    nib = (owner >> (3 * offsets)) & 7
    more = offsets < np.repeat(counts - 1, counts)
    nib = nib | (more.astype(np.int64) << 3)
    pad = (-nib.size) % 8
    nib = np.concatenate([nib, np.zeros(pad, np.int64)]).reshape(-1, 8)
    words = (nib.astype(np.uint32) << _NIBBLE_SHIFTS).sum(axis=1, dtype=np.uint32)
    return words.astype("<u4").tobytes()


# -- encoding (tests, synthetic bags, benchmarks) ------------------------------------------
def depth_mm_to_compressed(depth_mm: np.ndarray, encoding: str = "16UC1", codec: str = "png",
                           depth_max_m: float = 10.0,
                           depth_quantization: float = 100.0) -> tuple[str, bytes]:
    """(format, data) of a CompressedImage as compressed_depth_image_transport publishes it.

    16UC1: mm rounded, values beyond ``depth_max_m`` set to 0. 32FC1: inverse depth
    quantised with ``A = z0 (z0 + 1)``, ``B = 1 - A / depth_max_m`` (z0 = depth_quantization).
    """
    if encoding not in ENCODINGS or codec not in CODECS:
        raise ConversionError(f"cannot encode compressedDepth {encoding!r} / {codec!r}")
    d = np.asarray(depth_mm, dtype=np.float64)
    valid = np.isfinite(d) & (d > 0)
    quant_a = quant_b = 0.0
    if encoding == "16UC1":
        stored = np.clip(np.rint(np.where(valid, d, 0.0)), 0, 65535).astype(np.uint16)
        stored[stored > depth_max_m * 1000.0] = 0
    else:
        quant_a = np.float32(depth_quantization * (depth_quantization + 1.0))
        quant_b = np.float32(1.0 - quant_a / depth_max_m)
        depth_m = np.where(valid, d / 1000.0, np.inf).astype(np.float32)
        with np.errstate(divide="ignore"):
            q = quant_a / depth_m + quant_b
        stored = np.where(depth_m < depth_max_m, np.clip(q, 0, 65535), 0).astype(np.uint16)
    if codec == "png":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(stored).save(buf, format="PNG", compress_level=1)
        payload = buf.getvalue()
    else:
        h, w = stored.shape
        payload = struct.pack("<II", w, h) + rvl_encode(stored)
    header = HEADER.pack(INV_DEPTH, float(quant_a), float(quant_b))
    return f"{encoding}; compressedDepth {codec}", header + payload


__all__ = ["ConversionError", "compressed_to_depth_mm", "depth_mm_to_compressed",
           "inverse_depth_to_mm", "max_rvl_bytes", "parse_format", "png_size", "rvl_decode",
           "rvl_encode"]
