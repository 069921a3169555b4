"""Window records and TFRecord files written without TensorFlow.

main.py's worker processes write the shards, and they must stay TensorFlow-free
(a spawned process that imports TensorFlow takes seconds and ~700 MB). This
module produces the very bytes TensorFlow would:

- :func:`window_record_parts`: a window's ``tf.train.Example`` in the protobuf
  wire format, equal to ``records.serialize_window(...)`` - which stays the
  definition of the record (tests/test_tfrecord_io.py compares the two, and
  main.py compares them once per run before writing a shard). The pixels are
  returned as their own piece, so they are never copied into a message.
- :class:`RecordWriter`: TFRecord framing as ``tf.io.TFRecordWriter`` writes it
  (no compression): per record ``uint64 length``, ``masked crc32c(length)``, the
  data, ``masked crc32c(data)``, little-endian; the file's size and sha256 are
  computed from the bytes as they are written, so nothing is read back.

A ``tf.train.Example`` is ``Example{features=1: Features{feature=1: map<string,
Feature>}}``; ``Feature`` holds one of ``bytes_list=1`` / ``int64_list=3``, each a
list in field 1 (int64 values packed). Deterministic serialisation writes the
map entries sorted by key, each as ``{key=1, value=2}``.
"""

import functools
import hashlib
import struct
import sys
from typing import BinaryIO, Callable, List, Optional, Sequence, Tuple

import google_crc32c
import numpy as np

from coreLib import storage
from coreLib.data.record_keys import (ACTION_KEY, CROP_KEY, FLIP_KEY, LABEL_KEY, PIXELS_KEY,
                                 ROTATION_KEY, SHAPE_KEY, START_KEY, SUBJECT_KEY)

_LENGTH_DELIMITED = 2
_MASK_DELTA = 0xA282EAD8
_UINT64 = (1 << 64) - 1
_SHORT_PIECE = 4096  # bytes; longer pieces are written without joining


@functools.lru_cache(maxsize=1 << 12)
def _varint(value: int) -> bytes:
    """Protobuf base-128 varint; negative int64 values as their 64-bit two's
    complement (10 bytes), as protobuf writes them."""
    value &= _UINT64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(field: int) -> bytes:
    return _varint((field << 3) | _LENGTH_DELIMITED)


def _field(number: int, payload_length: int) -> bytes:
    """Header of a length-delimited field whose payload follows."""
    return _tag(number) + _varint(payload_length)


def _int64_feature(values: Tuple[int, ...]) -> bytes:
    """``Feature{int64_list=3: Int64List{value=1 (packed)}}``."""
    packed = b"".join(_varint(int(value)) for value in values)
    int64_list = _field(1, len(packed)) + packed if packed else b""
    return _field(3, len(int64_list)) + int64_list


def _bytes_feature_header(value_length: int) -> bytes:
    """``Feature{bytes_list=1: BytesList{value=1}}`` up to the value's bytes."""
    bytes_list_length = len(_field(1, value_length)) + value_length
    return _field(1, bytes_list_length) + _field(1, value_length)


def _map_entry(key: str, feature_header: bytes, tail_length: int) -> bytes:
    """Header of one ``Features.feature`` map entry up to its value's tail.

    ``feature_header`` is the start of the serialised Feature; ``tail_length``
    the bytes of the Feature that follow it (e.g. the pixels).
    """
    encoded = key.encode("utf-8")
    feature_length = len(feature_header) + tail_length
    entry_length = (len(_field(1, len(encoded))) + len(encoded)
                    + len(_field(2, feature_length)) + feature_length)
    return (_field(1, entry_length) + _field(1, len(encoded)) + encoded
            + _field(2, feature_length) + feature_header)


# Map entries repeat (the same shape, labels, names, small starts in every
# shard), so their encodings are kept: a record then costs a few dict lookups.
@functools.lru_cache(maxsize=1 << 14)
def _int64_entry(key: str, values: Tuple[int, ...]) -> bytes:
    return _map_entry(key, _int64_feature(values), 0)


@functools.lru_cache(maxsize=1 << 12)
def _bytes_entry_header(key: str, length: int) -> bytes:
    return _map_entry(key, _bytes_feature_header(length), length)


@functools.lru_cache(maxsize=64)
def _sorted_keys(keys: Tuple[str, ...]) -> Tuple[str, ...]:
    return tuple(sorted(keys, key=lambda name: name.encode("utf-8")))


def example_parts(features: dict) -> List[bytes]:
    """A ``tf.train.Example`` of bytes and int64 features, serialised deterministically.

    Args:
        features: key -> ``bytes`` (a one-value bytes_list) or a tuple of ints
            (an int64_list).

    Returns:
        Pieces whose concatenation is the serialised Example; every ``bytes``
        value is one piece of its own, passed through uncopied.
    """
    pieces: List[bytes] = []
    for key in _sorted_keys(tuple(features)):
        value = features[key]
        if isinstance(value, (bytes, bytearray)):
            pieces.append(_bytes_entry_header(key, len(value)))
            pieces.append(value)
        else:
            pieces.append(_int64_entry(key, tuple(value)))
    total = sum(len(piece) for piece in pieces)
    return _merge_small([_field(1, total)] + pieces)  # Example.features


def _merge_small(pieces: List[bytes]) -> List[bytes]:
    """Joins runs of short pieces (headers, names, numbers) into one, so that a
    record is written in a few calls; long values stay uncopied."""
    merged: List[bytes] = []
    run: List[bytes] = []
    for piece in pieces:
        if len(piece) > _SHORT_PIECE:
            if run:
                merged.append(b"".join(run))
                run = []
            merged.append(piece)
        else:
            run.append(piece)
    if run:
        merged.append(b"".join(run))
    return merged


def window_record_parts(raw_pixels: bytes, shape: Tuple[int, int, int, int], label: int,
                        subject: str, action: str, start: int, rotation: int = 0,
                        flip: int = 0, crop: Optional[bytes] = None) -> List[bytes]:
    """The pieces of ``records.serialize_window`` for one window, without TensorFlow.

    Args:
        raw_pixels: the window's ``(L, D, D, C)`` pixels, row-major, uint8 or
            little-endian uint16 (see :func:`little_endian_bytes`).
        shape: ``(L, D, D, C)``.
        label, subject, action, start, rotation, flip: as serialize_window.
        crop: hand-centred windows' crop boxes, ``(L, 4)`` little-endian float32
            bytes (see ``record_keys.CROP_KEY``); None for full frames.

    Returns:
        Pieces whose concatenation equals ``records.serialize_window(...)``.
    """
    features = {
        PIXELS_KEY: raw_pixels,
        SHAPE_KEY: tuple(int(value) for value in shape),
        LABEL_KEY: (int(label),),
        SUBJECT_KEY: subject.encode("utf-8"),
        ACTION_KEY: action.encode("utf-8"),
        START_KEY: (int(start),),
        ROTATION_KEY: (int(rotation),),
        FLIP_KEY: (int(flip),),
    }
    if crop is not None:
        features[CROP_KEY] = bytes(crop)
    return example_parts(features)


def little_endian_bytes(pixels: np.ndarray) -> bytes:
    """An array's bytes row-major and little-endian (as serialize_window stores them)."""
    return np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder("<")).tobytes()


def native_is_little_endian() -> bool:
    """Whether this machine stores numbers little-endian, as the records' pixel bytes are."""
    return sys.byteorder == "little"


def masked_crc32c(crc: int) -> int:
    """TFRecord's masked CRC-32C of a value whose plain CRC-32C is ``crc``."""
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


class RecordWriter:
    """Appends TFRecord records to an open binary file, hashing what it writes.

    Attributes:
        num_bytes: bytes written so far.
        num_records: records written so far.
    """

    def __init__(self, handle: BinaryIO):
        self._handle = handle
        self._sha256 = hashlib.sha256()
        self.num_bytes = 0
        self.num_records = 0

    def _put(self, data: bytes) -> None:
        self._handle.write(data)
        self._sha256.update(data)
        self.num_bytes += len(data)

    def write(self, pieces: Sequence[bytes]) -> None:
        """Writes one record whose data is the concatenation of ``pieces``."""
        length = struct.pack("<Q", sum(len(piece) for piece in pieces))
        crc = 0
        for piece in pieces:
            crc = google_crc32c.extend(crc, bytes(piece) if isinstance(piece, bytearray)
                                       else piece)
        self._put(length + struct.pack("<I", masked_crc32c(google_crc32c.value(length))))
        for piece in pieces:
            self._put(piece)
        self._put(struct.pack("<I", masked_crc32c(crc)))
        self.num_records += 1

    def hexdigest(self) -> str:
        """sha256 of every byte written so far."""
        return self._sha256.hexdigest()


def write_record_file(path: str, write_records: Callable[[RecordWriter], None]
                      ) -> Tuple[int, str]:
    """Writes a TFRecord file atomically (local path or URI), hashed while written.

    Args:
        path: the final name; the file appears there only when complete.
        write_records: called with a :class:`RecordWriter` on the temporary file.

    Returns:
        ``(size in bytes, hex sha256)`` of the file.
    """
    with storage.atomic_path(path) as temp:
        with storage.open_file(temp, "wb") as handle:
            writer = RecordWriter(handle)
            write_records(writer)
    return writer.num_bytes, writer.hexdigest()
