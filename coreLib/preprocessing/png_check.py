"""Frame checks of the decoding workers: a PNG's validity without decoding its pixels,
and a decode that leaves colour in OpenCV's BGR order.

TensorFlow-free (the workers import it).
"""

import struct
import zlib
from typing import Optional, Tuple

import cv2
import numpy as np

from coreLib.data import frames

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# (bit depth, colour type) of the PNGs the fast check accepts, per modality:
# 8-bit RGB for colour, 16-bit grey for depth and confi.
_PNG_FORMATS = {1: (16, 0, 2), 3: (8, 2, 3)}  # channels -> (depth, type, bytes/pixel)
_PNG_MAX_SIDE = 1 << 15
_PNG_MAX_PIXELS = 1 << 26


def _png_chunks(data: bytes) -> Optional[Tuple[tuple, list]]:
    """``(IHDR fields, IDAT bodies)`` of a PNG of the plain layout OpenCV writes
    (signature, IHDR, IDAT chunks, IEND at the very end, every CRC right), else None."""
    view = memoryview(data)
    size = len(data)
    position = len(_PNG_SIGNATURE)
    header = None
    compressed = []
    while True:
        if position + 12 > size:
            return None
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 8 + length
        if end + 4 > size or zlib.crc32(view[position + 4:end]) != \
                struct.unpack_from(">I", data, end)[0]:
            return None
        body = view[position + 8:end]
        if header is None:
            if kind != b"IHDR" or length != 13:
                return None
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed.append(body)
        elif kind == b"IEND" and length == 0 and end + 4 == size and compressed:
            break
        else:
            return None
        position = end + 4
    return header, compressed


def checked_png_size(data: bytes, modality: str) -> Optional[Tuple[int, int]]:
    """``(height, width)`` of a PNG that certainly decodes to a valid frame of
    ``modality``, checked without decoding its pixels; None when not certain.

    Certain means: the plain layout OpenCV writes - signature, IHDR, IDAT
    chunks, IEND at the very end, nothing else - with every chunk CRC right; an
    IHDR of this modality's bit depth and colour type (8-bit RGB, 16-bit grey),
    not interlaced; a zlib stream (checksum included) that inflates to exactly
    the rows the IHDR promises, each starting with a valid filter type. What
    libpng (through cv2.imdecode) could reject besides - the unfiltered sample
    values - cannot be wrong. Anything else, valid or not, returns None and the
    frame is decoded in full (frames.decode_frame), which gives the verdict and
    its message; so this check changes the speed of validation, never a result.
    Inflating costs about half of a full decode.
    """
    spec = frames.modality_spec(modality)
    layout = _PNG_FORMATS.get(spec.channels)
    if layout is None or not data.startswith(_PNG_SIGNATURE):
        return None
    chunks = _png_chunks(data)
    if chunks is None:
        return None
    header, compressed = chunks
    width, height, bit_depth, colour_type, compression, filtering, interlace = header
    if ((bit_depth, colour_type) != layout[:2] or compression or filtering or interlace
            or not 0 < width <= _PNG_MAX_SIDE or not 0 < height <= _PNG_MAX_SIDE
            or width * height > _PNG_MAX_PIXELS):
        return None
    stride = 1 + width * layout[2]
    expected = stride * height
    inflater = zlib.decompressobj()
    try:
        rows = inflater.decompress(b"".join(compressed), expected + 1)
    except zlib.error:
        return None
    if (len(rows) != expected or not inflater.eof or inflater.unused_data
            or inflater.unconsumed_tail):
        return None
    if np.frombuffer(rows, np.uint8)[::stride].max() > 4:  # filter types 0..4
        return None
    return height, width


def decode_unconverted(data: bytes, modality: str, path: str) -> Tuple[np.ndarray, bool]:
    """A frame decoded and checked as frames.decode_frame does, except that colour
    stays in OpenCV's BGR order; returns ``(frame, is_bgr)``.

    Swapping the channels after resizing instead of before gives the same bytes
    (each channel is resized on its own) and touches 64x64 pixels, not the full
    frame. A frame that fails a check goes through frames.decode_frame, whose
    error (the one-line message) is raised.
    """
    spec = frames.modality_spec(modality)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        image = None
    channels = None if image is None else (1 if image.ndim == 2 else image.shape[2])
    if image is None or image.dtype != np.dtype(spec.dtype) or channels != spec.channels:
        return frames.decode_frame(data, modality, path), False
    if image.ndim == 2:
        return image[:, :, np.newaxis], False
    return image, True
