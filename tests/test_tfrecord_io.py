"""coreLib.preprocessing.tfrecord_io makes, without TensorFlow, the same bytes as
records.serialize_window (tf.train.Example) and tf.io.TFRecordWriter; shards the
worker processes write from cache files are read back by tf.data."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from coreLib import storage
from coreLib.data import frames
from coreLib.preprocessing import records, sequence_cache, shard_writer, tfrecord_io

tf = storage.tf


def test_keys_are_the_keys_of_records():
    for name in ("PIXELS_KEY", "SHAPE_KEY", "LABEL_KEY", "SUBJECT_KEY", "ACTION_KEY",
                 "START_KEY", "ROTATION_KEY", "FLIP_KEY"):
        assert getattr(tfrecord_io, name) == getattr(records, name)
    assert set(records.WINDOW_FEATURES) == {
        tfrecord_io.PIXELS_KEY, tfrecord_io.SHAPE_KEY, tfrecord_io.LABEL_KEY,
        tfrecord_io.SUBJECT_KEY, tfrecord_io.ACTION_KEY, tfrecord_io.START_KEY,
        tfrecord_io.ROTATION_KEY, tfrecord_io.FLIP_KEY}


def hand_made(pixels, *arguments):
    return b"".join(tfrecord_io.window_record_parts(tfrecord_io.little_endian_bytes(pixels),
                                                    pixels.shape, *arguments))


SHAPES = [(6, 64, 64, 3), (2, 8, 8, 1), (1, 1, 1, 1), (3, 37, 37, 3), (40, 20, 20, 1)]
METADATA = [
    (3, "LN", "asl-blue", 17, 5, 2),
    (0, "", "", 0, 0, 0),            # empty strings and zeros
    (16, "xiaowei", "no-action", 127, 128, 3),   # varints across one byte
    (2 ** 40, "ü-ñ", "a" * 300, 2 ** 62, -90, 1),  # long names, large and negative ints
    (-1, "LN", "a", -5, 0, 0),
]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("shape", SHAPES)
def test_window_record_equals_serialize_window(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    pixels = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
    for arguments in METADATA:
        assert hand_made(pixels, *arguments) == records.serialize_window(pixels, *arguments)


def test_pixels_are_a_piece_of_their_own():
    raw = bytes(range(256)) * 64
    parts = tfrecord_io.window_record_parts(raw, (1, 64, 64, 4), 1, "LN", "a", 0)
    assert any(part is raw for part in parts)
    assert len(parts) == 3  # short pieces before and after are joined


def test_record_files_equal_tf_record_writer(tmp_path):
    rng = np.random.default_rng(1)
    windows = [rng.integers(0, 255, (4, 9, 9, 3), dtype=np.uint8) for _ in range(5)]
    expected_path = str(tmp_path / "tf.tfrecord")
    with tf.io.TFRecordWriter(expected_path) as writer:
        for index, window in enumerate(windows):
            writer.write(records.serialize_window(window, index, "LN", "act", index))
    with open(tmp_path / "hand.tfrecord", "wb") as handle:
        writer = tfrecord_io.RecordWriter(handle)
        for index, window in enumerate(windows):
            writer.write(tfrecord_io.window_record_parts(window.tobytes(), window.shape,
                                                         index, "LN", "act", index))
    data = (tmp_path / "hand.tfrecord").read_bytes()
    assert data == open(expected_path, "rb").read()
    assert writer.num_bytes == len(data) and writer.num_records == 5
    assert writer.hexdigest() == hashlib.sha256(data).hexdigest()


def test_masked_crc32c_matches_tensorflow_framing():
    # An empty record: 8-byte length 0, its masked crc, no data, masked crc of b"".
    import google_crc32c
    header = (0).to_bytes(8, "little")
    assert tfrecord_io.masked_crc32c(google_crc32c.value(header)) == int.from_bytes(
        _tf_framed(b"")[8:12], "little")
    assert tfrecord_io.masked_crc32c(google_crc32c.value(b"")) == int.from_bytes(
        _tf_framed(b"")[12:16], "little")


def _tf_framed(record: bytes) -> bytes:
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "one.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            writer.write(record)
        with open(path, "rb") as handle:
            return handle.read()


def _cache(tmp_path, name, pixels, modality):
    path = str(tmp_path / name)
    pixels.tofile(path)
    return sequence_cache.DecodeTask(str(tmp_path), modality, pixels.shape[0],
                                     pixels.shape[1], path, True)


@pytest.mark.parametrize("modality", ["color", "depth"])
def test_worker_shard_is_read_by_tf_data(modality, tmp_path):
    spec = frames.modality_spec(modality)
    rng = np.random.default_rng(2)
    sequences = [rng.integers(0, np.iinfo(spec.dtype).max, (n, 8, 8, spec.channels),
                              dtype=spec.dtype, endpoint=True) for n in (7, 5)]
    caches = tuple(_cache(tmp_path, f"s{i}.raw", s, modality) for i, s in enumerate(sequences))
    source = np.array([1, 0, 0, 1, 0], np.int32)
    start = np.array([2, 0, 3, 0, 1], np.int32)
    label = np.array([4, 0, 1, 2, 3], np.int32)
    task = shard_writer.ShardTask(str(tmp_path / "Train_0.tfrecord"), caches,
                                  ("LN", "bob"), ("a", "b"), 3, source, start, label)
    result = shard_writer.write_shard(task)
    data = (tmp_path / "Train_0.tfrecord").read_bytes()
    assert not result.reused and result.num_bytes == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert [name for name in os.listdir(tmp_path) if sequence_cache.TEMP_MARKER in name] == []

    expected = [records.serialize_window(sequences[s][b:b + 3], l, ("LN", "bob")[s],
                                         ("a", "b")[s], b)
                for s, b, l in zip(source, start, label)]
    read = [record.numpy() for record in tf.data.TFRecordDataset(str(tmp_path /
                                                                   "Train_0.tfrecord"))]
    assert read == expected
    parsed = records.parse_window_batch(np.array(read), 3, 8, spec.channels, spec.dtype)
    for index, (s, b) in enumerate(zip(source, start)):
        np.testing.assert_array_equal(parsed[records.PIXELS_KEY][index], sequences[s][b:b + 3])

    # A complete shard is only hashed again (a killed run's finished work).
    again = shard_writer.write_shard(task)
    assert again == shard_writer.ShardResult(result.num_bytes, result.sha256, True)


def test_worker_modules_do_not_import_tensorflow():
    code = ("import sys; import coreLib.preprocessing.sequence_cache, "
            "coreLib.preprocessing.tfrecord_io, coreLib.preprocessing.shard_writer, "
            "coreLib.preprocessing.png_check; print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         check=True).stdout
    assert out.strip() == "False"
