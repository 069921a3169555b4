"""TFRecord layout of one window, shared by the writer (main.py), the readers
(train.py, debug.py) and the tests.

A window record (``tf.train.Example``) holds:
    pixels    bytes   raw pixels of the window, ``(L, D, D, C)`` row-major, uint8
                      (color) or little-endian uint16 (depth, confi)
    shape     int64   ``[L, D, D, C]``
    label     int64   class index into the manifest's class list
    subject   bytes   subject name, e.g. ``LN``
    action    bytes   the sequence's action name (also for no-action windows)
    start     int64   first frame index of the window in its sequence
    rotation  int64   degrees applied before storing (0 unless --offline-augment)
    flip      int64   flip id applied before storing (0 unless --offline-augment)

The 2019 tool's records hold ``feats`` (float32 list of L*64*64*3 values in [0, 1])
and ``label`` (int64); :func:`detect_format` tells the two apart from a record.
"""

from typing import Optional

import numpy as np

from coreLib import storage
from coreLib.data import frames
from coreLib.data.record_keys import (  # noqa: F401  (re-exported: records.PIXELS_KEY, ...)
    ACTION_KEY, CROP_KEY, FLIP_KEY, LABEL_KEY, LEGACY_FEATS_KEY, PIXELS_KEY, ROTATION_KEY,
    SHAPE_KEY, START_KEY, SUBJECT_KEY)

tf = storage.tf

WINDOW_FORMAT = "window"
LEGACY_FORMAT = "legacy"


def _int64(values) -> "tf.train.Feature":
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _bytes(value: bytes) -> "tf.train.Feature":
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def serialize_window(pixels: np.ndarray, label: int, subject: str, action: str,
                     start: int, rotation: int = 0, flip: int = 0,
                     crop: Optional[np.ndarray] = None) -> bytes:
    """Serialises one window.

    Args:
        pixels: ``(L, D, D, C)`` uint8 or uint16 array.
        label: class index.
        subject, action: where the window came from.
        start: first frame index of the window.
        rotation, flip: augmentation already applied to ``pixels``.
        crop: hand-centred windows: ``(L, 4)`` float32 crop boxes
            (``CROP_KEY``); None for full frames.

    Returns:
        The serialised ``tf.train.Example``.
    """
    if pixels.ndim != 4 or pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"pixels must be (L, D, D, C) uint8/uint16, got "
                         f"{pixels.shape} {pixels.dtype}")
    raw = np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder("<")).tobytes()
    feature = {
        PIXELS_KEY: _bytes(raw),
        SHAPE_KEY: _int64(pixels.shape),
        LABEL_KEY: _int64([int(label)]),
        SUBJECT_KEY: _bytes(subject.encode("utf-8")),
        ACTION_KEY: _bytes(action.encode("utf-8")),
        START_KEY: _int64([int(start)]),
        ROTATION_KEY: _int64([int(rotation)]),
        FLIP_KEY: _int64([int(flip)]),
    }
    if crop is not None:
        feature[CROP_KEY] = _bytes(np.ascontiguousarray(crop, "<f4").tobytes())
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)


WINDOW_FEATURES = {
    PIXELS_KEY: tf.io.FixedLenFeature([], tf.string),
    SHAPE_KEY: tf.io.FixedLenFeature([4], tf.int64),
    LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    SUBJECT_KEY: tf.io.FixedLenFeature([], tf.string),
    ACTION_KEY: tf.io.FixedLenFeature([], tf.string),
    START_KEY: tf.io.FixedLenFeature([], tf.int64),
    ROTATION_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    FLIP_KEY: tf.io.FixedLenFeature([], tf.int64, default_value=0),
}


def parse_window_batch(serialized, seq_len: int, image_dim: int, channels: int,
                       dtype: str):
    """Parses a batch of window records in one op (much faster than per record).

    Args:
        serialized: ``(B,)`` tf.string tensor of records.
        seq_len, image_dim, channels: the window shape from the manifest.
        dtype: ``uint8`` or ``uint16``.

    Returns:
        A dict with ``pixels`` ``(B, L, D, D, C)`` of ``dtype``, ``label`` ``(B,)``
        int64, ``shape`` ``(B, 4)`` int64, and the provenance fields.
    """
    parsed = tf.io.parse_example(serialized, WINDOW_FEATURES)
    flat = tf.io.decode_raw(parsed[PIXELS_KEY], tf.dtypes.as_dtype(dtype),
                            little_endian=True)
    parsed[PIXELS_KEY] = tf.reshape(flat, [-1, seq_len, image_dim, image_dim, channels])
    return parsed


def legacy_features(seq_len: int, image_dim: int, channels: int) -> dict:
    """Feature spec of the 2019 tool's records."""
    return {
        LEGACY_FEATS_KEY: tf.io.FixedLenFeature([seq_len * image_dim * image_dim * channels],
                                                tf.float32),
        LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }


def parse_legacy_batch(serialized, seq_len: int, image_dim: int, channels: int):
    """Parses a batch of 2019-format records.

    Returns:
        A dict with ``pixels`` ``(B, L, D, D, C)`` float32 in [0, 1] and ``label``
        ``(B,)`` int64.
    """
    parsed = tf.io.parse_example(serialized, legacy_features(seq_len, image_dim, channels))
    return {
        PIXELS_KEY: tf.reshape(parsed[LEGACY_FEATS_KEY],
                               [-1, seq_len, image_dim, image_dim, channels]),
        LABEL_KEY: parsed[LABEL_KEY],
    }


def serialize_legacy(feats: np.ndarray, label: int) -> bytes:
    """Serialises a record exactly as the 2019 tool did (for tests and benchmarks).

    Args:
        feats: ``(L, D, D, C)`` float32 in [0, 1].
        label: class index.
    """
    example = tf.train.Example(features=tf.train.Features(feature={
        LEGACY_FEATS_KEY: tf.train.Feature(float_list=tf.train.FloatList(
            value=np.asarray(feats, np.float32).ravel())),
        LABEL_KEY: _int64([int(label)]),
    }))
    return example.SerializeToString(deterministic=True)


def detect_format(record: bytes) -> str:
    """``WINDOW_FORMAT`` or ``LEGACY_FORMAT``, from the keys of one record.

    Raises:
        ValueError: the record is neither.
    """
    example = tf.train.Example.FromString(record)
    keys = set(example.features.feature.keys())
    if PIXELS_KEY in keys and SHAPE_KEY in keys:
        return WINDOW_FORMAT
    if LEGACY_FEATS_KEY in keys and LABEL_KEY in keys:
        return LEGACY_FORMAT
    raise ValueError(f"record holds neither window nor 2019 keys: {sorted(keys)}")


def first_record(path: str) -> bytes:
    """The first record of a TFRecord file (raises StopIteration when empty)."""
    for record in tf.data.TFRecordDataset(path).take(1):
        return record.numpy()
    raise StopIteration(path)


# Stored value -> model input (why 4095 for uint16: coreLib.data.frames).
PIXEL_SCALE = frames.MODEL_INPUT_SCALE


def scale_pixels(pixels, dtype: str):
    """Stored pixels to float32 in [0, 1]: ``min(x, PIXEL_SCALE) / PIXEL_SCALE``.

    Args:
        pixels: ``(..., C)`` of ``dtype`` (``uint8``, ``uint16`` or ``float32``,
            the last already scaled).
        dtype: the stored dtype name.

    Returns:
        float32 tensor of the same shape.
    """
    if dtype == "float32":
        return tf.cast(pixels, tf.float32)
    scale = PIXEL_SCALE[dtype]
    values = tf.cast(pixels, tf.float32)
    if scale < np.iinfo(dtype).max:   # uint16 only: uint8 cannot pass 255
        values = tf.minimum(values, scale)
    return values / scale
