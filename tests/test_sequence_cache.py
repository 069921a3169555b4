"""sequence_cache's fast PNG check (frames only validated, never stored) accepts
only what cv2 decodes to a valid frame, and defers everything else to a full
decode; frames no window reads are checked, not cached."""

import struct
import zlib

import cv2
import numpy as np
import pytest

from coreLib.data import frames
from coreLib.preprocessing import png_check, sequence_cache
from coreLib.errors import ActrecogError


def png(image, **params):
    return cv2.imencode(".png", image)[1].tobytes()


def chunks(data):
    """[(kind, body)] of a PNG."""
    found, position = [], 8
    while position < len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        found.append((kind, data[position + 8:position + 8 + length]))
        position += 12 + length
    return found


def build(parts, signature=b"\x89PNG\r\n\x1a\n"):
    out = bytearray(signature)
    for kind, body in parts:
        out += struct.pack(">I", len(body)) + kind + body
        out += struct.pack(">I", zlib.crc32(kind + body))
    return bytes(out)


RNG = np.random.default_rng(0)
COLOUR = RNG.integers(0, 256, (24, 40, 3), dtype=np.uint8)
DEPTH = RNG.integers(0, 65536, (24, 40), dtype=np.uint16)


def test_accepts_what_opencv_writes():
    assert png_check.checked_png_size(png(COLOUR), "color") == (24, 40)
    assert png_check.checked_png_size(png(DEPTH), "depth") == (24, 40)
    assert png_check.checked_png_size(png(DEPTH), "confi") == (24, 40)


def with_rows(image_rows, header):
    return build([(b"IHDR", header), (b"IDAT", zlib.compress(image_rows)), (b"IEND", b"")])


def variants():
    """(name, bytes) of PNGs the fast check must not accept as certain."""
    good = png(COLOUR)
    parts = chunks(good)
    header = parts[0][1]
    rows = zlib.decompress(b"".join(body for kind, body in parts if kind == b"IDAT"))
    bad_filter = bytearray(rows)
    bad_filter[0] = 5
    yield "truncated", good[:-30]
    yield "trailing bytes", good + b"x"
    yield "bad crc", good[:40] + bytes([good[40] ^ 1]) + good[41:]
    yield "not a png", b"not a png at all"
    yield "empty", b""
    yield "extra chunk", build(parts[:1] + [(b"tEXt", b"a\x00b")] + parts[1:])
    yield "no IDAT", build([parts[0], parts[-1]])
    yield "bad zlib", build([parts[0], (b"IDAT", b"\x78\x9c" + b"\xff" * 20), parts[-1]])
    yield "short rows", with_rows(rows[:-1], header)
    yield "long rows", with_rows(rows + b"\x00", header)
    yield "bad filter type", with_rows(bytes(bad_filter), header)
    yield "sixteen-bit colour", png(COLOUR.astype(np.uint16))
    yield "grey colour", png(COLOUR[:, :, 0])
    yield "alpha", png(np.dstack([COLOUR, COLOUR[:, :, :1]]))
    yield "interlaced", with_rows(rows, header[:12] + b"\x01")


@pytest.mark.parametrize("name, data", list(variants()), ids=[n for n, _ in variants()])
def test_anything_unusual_is_decoded_in_full(name, data):
    assert png_check.checked_png_size(data, "color") is None
    # The full decode gives the verdict: the same one as frames.decode_frame.
    try:
        expected = ("ok", frames.decode_frame(data, "color", "f.png").shape)
    except ActrecogError as error:
        expected = ("error", str(error))
    try:
        frame, _ = png_check.decode_unconverted(data, "color", "f.png")
        got = ("ok", frame.shape)
    except ActrecogError as error:
        got = ("error", str(error))
    assert got == expected


def test_depth_of_the_wrong_kind_is_not_certain():
    assert png_check.checked_png_size(png(DEPTH.astype(np.uint8)), "depth") is None
    assert png_check.checked_png_size(png(COLOUR), "depth") is None


def write_sequence(folder, images):
    for index, image in enumerate(images):
        assert cv2.imwrite(str(folder / f"color_{index}.png"), image)


def test_unneeded_frames_are_checked_not_cached(tmp_path):
    images = [RNG.integers(0, 256, (30, 50, 3), dtype=np.uint8) for _ in range(6)]
    write_sequence(tmp_path, images)
    task = sequence_cache.DecodeTask(str(tmp_path), "color", 6, 8, str(tmp_path / "c.raw"),
                                     True, ((1, 3), (4, 5)))
    assert sequence_cache.decode_sequence(task) == (6, 0)
    cached = np.fromfile(tmp_path / "c.raw", np.uint8).reshape(task.shape)
    for index, image in enumerate(images):
        if index in (1, 2, 4):
            expected = frames.resize_frame(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), 8)
            np.testing.assert_array_equal(cached[index], expected)
        else:
            assert not cached[index].any()


def test_unneeded_frames_are_still_checked(tmp_path):
    images = [RNG.integers(0, 256, (30, 50, 3), dtype=np.uint8) for _ in range(4)]
    images[3] = images[3][:, :40]
    write_sequence(tmp_path, images)
    task = sequence_cache.DecodeTask(str(tmp_path), "color", 4, 8, str(tmp_path / "c.raw"),
                                     True, ((0, 2),))
    with pytest.raises(ActrecogError, match="40x30 pixels, but frame 0 of the sequence "
                                            "is 50x30"):
        sequence_cache.decode_sequence(task)
    (tmp_path / "color_2.png").write_bytes(b"broken")
    with pytest.raises(ActrecogError, match="color_2.png: not a readable PNG"):
        sequence_cache.decode_sequence(task)
