"""The shared pieces every tool relies on: records, manifest, augmentation, storage."""

import json

import numpy as np
import pytest

from coreLib import storage
from coreLib.data import manifest
from coreLib.preprocessing import augment, records
from coreLib.errors import ActrecogError


def test_window_record_round_trip_uint16():
    pixels = np.arange(2 * 4 * 4 * 1, dtype=np.uint16).reshape(2, 4, 4, 1) * 1000
    data = records.serialize_window(pixels, 3, "LN", "asl-blue", 17, rotation=5, flip=2)
    assert records.detect_format(data) == records.WINDOW_FORMAT
    parsed = records.parse_window_batch(np.array([data, data]), 2, 4, 1, "uint16")
    np.testing.assert_array_equal(parsed[records.PIXELS_KEY].numpy()[1], pixels)
    assert parsed[records.LABEL_KEY].numpy().tolist() == [3, 3]
    assert parsed[records.SUBJECT_KEY].numpy()[0] == b"LN"
    assert parsed[records.START_KEY].numpy()[0] == 17
    assert parsed[records.ROTATION_KEY].numpy()[0] == 5
    assert parsed[records.FLIP_KEY].numpy()[0] == 2


def test_legacy_record_is_detected_and_parsed():
    feats = np.linspace(0, 1, 2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3)
    data = records.serialize_legacy(feats, 7)
    assert records.detect_format(data) == records.LEGACY_FORMAT
    parsed = records.parse_legacy_batch(np.array([data]), 2, 3, 3)
    np.testing.assert_array_equal(parsed[records.PIXELS_KEY].numpy()[0], feats)
    assert parsed[records.LABEL_KEY].numpy().tolist() == [7]


def test_flips_are_exact_mirrors_and_rotation_matches_numpy():
    window = np.random.default_rng(0).integers(0, 256, (1, 3, 7, 7, 3), dtype=np.uint8)
    for flip, expected in [(0, window), (1, window[:, :, :, ::-1]),
                           (2, window[:, :, ::-1]), (3, window[:, :, ::-1, ::-1])]:
        out = augment.transform_windows(window, np.array([0]), np.array([flip])).numpy()
        np.testing.assert_array_equal(out, expected)
    out = augment.transform_windows(window, np.array([90]), np.array([0])).numpy()
    np.testing.assert_array_equal(out[0, 0], np.rot90(window[0, 0]))
    assert len(augment.variants()) == 32


def test_manifest_round_trip(tmp_path):
    split = manifest.SplitInfo("Train", "x.json", 2, 10, ("LN",),
                               (manifest.ShardInfo("TFRECORD/Train/Train_0.tfrecord", 10, "ab"),),
                               {"a": 5, "no-action": 5})
    value = manifest.Manifest(("a", "no-action"), 6, 64, 3, "color", "uint8", False,
                              {"Train": split}, "/src")
    manifest.write_manifest(str(tmp_path), value)
    assert manifest.load_manifest(str(tmp_path)) == value
    assert json.loads((tmp_path / "dataset.json").read_text())["seq_len"] == 6
    assert value.splits["Train"].num_records == 10


def test_missing_manifest_is_a_one_line_error(tmp_path):
    with pytest.raises(ActrecogError, match="no dataset.json"):
        manifest.load_manifest(str(tmp_path))


def test_atomic_write_leaves_no_temporary(tmp_path):
    target = str(tmp_path / "out.json")
    storage.write_json_atomic(target, {"b": 1, "a": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    assert (tmp_path / "out.json").read_text() == '{\n "a": 2,\n "b": 1\n}\n'
