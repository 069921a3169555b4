"""The tf.data input pipeline on tiny generated shards: exact pixels, labels, errors."""

import numpy as np
import pytest

from coreLib import storage
from coreLib.data import manifest
from coreLib.preprocessing import augment, records, shards
from coreLib.training import online_augment, pipeline
from coreLib.errors import ActrecogError

tf = storage.tf

SEQ_LEN, IMAGE_DIM, CHANNELS = 2, 16, 3
ACTIONS = tuple(f"action-{index}" for index in range(16))
CLASSES = ACTIONS + (manifest.NO_ACTION,)          # 17 classes, as the real data


def random_windows(count, dtype=np.uint8, channels=CHANNELS, seed=0):
    """``(count, L, D, D, C)`` distinct random windows."""
    top = np.iinfo(dtype).max + 1
    rng = np.random.default_rng(seed)
    return rng.integers(0, top, (count, SEQ_LEN, IMAGE_DIM, IMAGE_DIM, channels),
                        dtype=dtype)


def write_shard(path, windows, labels, subjects=None):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for index, (window, label) in enumerate(zip(windows, labels)):
            subject = "LN" if subjects is None else subjects[index]
            writer.write(records.serialize_window(window, int(label), subject,
                                                  CLASSES[int(label)], index))


def write_dataset(folder, windows, labels, shard_size, split="Train", channels=CHANNELS):
    """A DataSet folder with shards of ``shard_size`` windows and its manifest."""
    shards = []
    for shard_index, begin in enumerate(range(0, len(windows), shard_size)):
        relative = manifest.shard_name(split, shard_index)
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        write_shard(path, windows[begin:begin + shard_size], labels[begin:begin + shard_size])
        shards.append(manifest.ShardInfo(relative, len(windows[begin:begin + shard_size]),
                                          storage.sha256_of(str(path))))
    info = manifest.SplitInfo(split, manifest.split_json_name(split, 1, SEQ_LEN), 1,
                              len(windows), ("LN",), tuple(shards))
    value = manifest.Manifest(CLASSES, SEQ_LEN, IMAGE_DIM, channels,
                              "color" if channels == 3 else "depth",
                              np.dtype(windows.dtype).name, False, {split: info}, "src")
    manifest.write_manifest(str(folder), value)
    return value


def scaled(windows):
    return records.scale_pixels(windows, np.dtype(windows.dtype).name).numpy()


def collect(dataset, batches):
    pixels, labels = [], []
    for batch_pixels, batch_labels in dataset.take(batches):
        pixels.append(batch_pixels.numpy())
        labels.append(batch_labels.numpy())
    return pixels, labels


@pytest.mark.parametrize("dtype,channels", [(np.uint8, 3), (np.uint16, 1)])
def test_online_augmentation_equals_offline_copies_for_every_variant(tmp_path, dtype,
                                                                     channels):
    window = random_windows(1, dtype, channels, seed=5)[0]
    # The stored record, read back as the pipeline reads it.
    write_shard(tmp_path / "one.tfrecord", [window], [0])
    serialized = next(iter(tf.data.TFRecordDataset(str(tmp_path / "one.tfrecord"))
                           .batch(1)))
    stored = records.parse_window_batch(serialized, SEQ_LEN, IMAGE_DIM, channels,
                                        np.dtype(dtype).name)[records.PIXELS_KEY]
    pairs = augment.variants()
    rotations = np.array([rotation for rotation, _ in pairs], np.int32)
    flips = np.array([flip for _, flip in pairs], np.int32)
    online = online_augment.augment_and_scale(
        np.repeat(stored.numpy(), len(pairs), axis=0), rotations, flips).numpy()
    offline = augment.augment_window_variants(window)       # main.py --offline-augment
    assert online.dtype == np.float32 and online.shape == (32,) + window.shape
    for index, (rotation, flip) in enumerate(pairs):
        np.testing.assert_array_equal(online[index], scaled(offline[index]),
                                      err_msg=f"rotation {rotation} flip {flip}")
    # Different variants really differ (the comparison is not vacuous).
    assert len({online[index].tobytes() for index in range(32)}) == 32


def test_training_batches_hold_offline_variants_and_repeat_by_epoch(tmp_path):
    windows = random_windows(16)
    labels = np.arange(16)                                   # label = window id
    value = write_dataset(tmp_path, windows, labels, shard_size=5)
    config = pipeline.PipelineConfig(batch_size=8, training=True, seed=7,
                                     deterministic=True, verify_sha256=True)
    dataset = pipeline.make_dataset(str(tmp_path), "Train", value, config)
    epochs = 12
    pixels, one_hot = collect(dataset, 2 * epochs)           # 16 windows = 2 batches
    offline = {index: scaled(augment.augment_window_variants(windows[index]))
               for index in range(16)}
    seen_variants, epoch_orders = set(), []
    for epoch in range(epochs):
        batch_labels = np.concatenate(one_hot[2 * epoch:2 * epoch + 2])
        batch_pixels = np.concatenate(pixels[2 * epoch:2 * epoch + 2])
        assert batch_pixels.shape == (16, SEQ_LEN, IMAGE_DIM, IMAGE_DIM, CHANNELS)
        assert batch_labels.shape == (16, 17)
        np.testing.assert_array_equal(batch_labels.sum(axis=1), np.ones(16))
        order = batch_labels.argmax(axis=1)
        assert sorted(order) == list(range(16))              # every window once per epoch
        epoch_orders.append(tuple(order))
        for row, source in enumerate(order):
            matches = [variant for variant in range(32)
                       if np.array_equal(batch_pixels[row], offline[source][variant])]
            assert len(matches) == 1, f"epoch {epoch} window {source}: {matches}"
            seen_variants.add(matches[0])
    assert len(set(epoch_orders)) > 1                        # reshuffled each epoch
    assert seen_variants == set(range(32))                   # 192 draws hit all 32
    # The same seed gives the same stream; another seed another one.
    again, _ = collect(pipeline.make_dataset(str(tmp_path), "Train", value, config), 2)
    np.testing.assert_array_equal(again[0], pixels[0])
    other = pipeline.PipelineConfig(batch_size=8, training=True, seed=8, deterministic=True)
    different, _ = collect(pipeline.make_dataset(str(tmp_path), "Train", value, other), 1)
    assert not np.array_equal(different[0], pixels[0])


@pytest.mark.parametrize("mode", ["rotate", "rotate-lr"])
def test_augment_modes_draw_only_their_variants_with_the_offline_pixels(tmp_path, mode):
    windows = random_windows(16)
    value = write_dataset(tmp_path, windows, np.arange(16), shard_size=8)
    config = pipeline.PipelineConfig(batch_size=8, training=True, seed=7, augment=mode,
                                     deterministic=True)
    pixels, one_hot = collect(pipeline.make_dataset(str(tmp_path), "Train", value, config),
                              16)
    offline = {index: scaled(augment.augment_window_variants(windows[index]))
               for index in range(16)}
    seen = set()
    for batch_pixels, batch_labels in zip(pixels, one_hot):
        for row, source in enumerate(batch_labels.argmax(axis=1)):
            matches = [variant for variant in range(32)
                       if np.array_equal(batch_pixels[row], offline[source][variant])]
            assert len(matches) == 1
            seen.add(matches[0])
    allowed = set(augment.mode_variant_ids(mode))
    # rotate: flip 0 only (ids 0, 4, ..., 28); rotate-lr: flips 0 and 1.
    assert allowed == {4 * r + f for r in range(8) for f in augment.AUGMENT_MODES[mode]}
    assert seen == allowed                                   # 128 draws hit every one
    with pytest.raises(ValueError, match="augment must be one of"):
        pipeline.PipelineConfig(batch_size=8, training=True, augment="mirror")


def test_eval_scaling_one_hot_and_remainder_exact(tmp_path):
    windows = random_windows(10, np.uint16, channels=1, seed=2)
    labels = np.array([0, 16, 3, 5, 16, 1, 2, 9, 15, 4])
    value = write_dataset(tmp_path, windows, labels, shard_size=4, split="Eval",
                          channels=1)
    keep = pipeline.PipelineConfig(batch_size=4, training=False, drop_remainder=False,
                                   deterministic=True)
    pixels, one_hot = collect(pipeline.make_dataset(str(tmp_path), "Eval", value, keep), 10)
    assert [batch.shape[0] for batch in pixels] == [4, 4, 2]
    pixels, one_hot = np.concatenate(pixels), np.concatenate(one_hot)
    assert pixels.dtype == np.float32 and one_hot.dtype == np.float32
    # Eval is one pass, no augmentation: window i comes back exactly as
    # min(stored, 4095) / 4095.
    starts = []
    for row in range(10):
        source = [index for index in range(10)
                  if np.array_equal(pixels[row], np.minimum(windows[index], 4095)
                                    .astype(np.float32) / np.float32(4095))]
        assert len(source) == 1
        starts.append(source[0])
        expected = np.zeros(17, np.float32)
        expected[labels[source[0]]] = 1.0
        np.testing.assert_array_equal(one_hot[row], expected)
    assert sorted(starts) == list(range(10))
    assert pixels.max() <= 1.0 and pixels.min() >= 0.0
    drop = pipeline.PipelineConfig(batch_size=4, training=False, deterministic=True)
    pixels, _ = collect(pipeline.make_dataset(str(tmp_path), "Eval", value, drop), 10)
    assert [batch.shape[0] for batch in pixels] == [4, 4]


def test_uint8_scaling_is_divide_by_255(tmp_path):
    windows = np.zeros((2, SEQ_LEN, IMAGE_DIM, IMAGE_DIM, CHANNELS), np.uint8)
    windows[0] = 255
    windows[1, 0, 0, 0] = (0, 1, 128)
    value = write_dataset(tmp_path, windows, np.array([0, 1]), shard_size=2, split="Eval")
    config = pipeline.PipelineConfig(batch_size=2, training=False, deterministic=True)
    pixels, one_hot = collect(pipeline.make_dataset(str(tmp_path), "Eval", value, config), 1)
    assert one_hot[0].argmax(axis=1).tolist() == [0, 1]
    assert np.all(pixels[0][0] == 1.0)
    assert pixels[0][1, 0, 0, 0].tolist() == [0.0, np.float32(1) / np.float32(255),
                                              np.float32(128) / np.float32(255)]
    assert np.count_nonzero(pixels[0][1]) == 2


def test_legacy_records_are_detected_and_read_unaugmented(tmp_path):
    rng = np.random.default_rng(3)
    feats = rng.random((6, SEQ_LEN, IMAGE_DIM, IMAGE_DIM, CHANNELS), dtype=np.float32)
    files = []
    for part in range(2):
        path = str(tmp_path / f"Train_{part}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for index in range(3 * part, 3 * part + 3):
                writer.write(records.serialize_legacy(feats[index], index))
        files.append(path)
    shape = (SEQ_LEN, IMAGE_DIM, IMAGE_DIM, CHANNELS)
    assert pipeline.detect_files_format(files, shape) == shards.ShardFormat("legacy",
                                                                              "float32")
    config = pipeline.PipelineConfig(batch_size=3, training=True, seed=1, augment=True,
                                     deterministic=True)
    dataset = pipeline.make_dataset_from_files(files, *shape[:2], CHANNELS, 17, config)
    pixels, one_hot = collect(dataset, 4)                    # two epochs of 6
    for batch_pixels, batch_labels in zip(pixels, one_hot):
        assert batch_pixels.shape == (3,) + shape
        for row, label in enumerate(batch_labels.argmax(axis=1)):
            # Stored pre-augmented in 2019: returned exactly as stored.
            np.testing.assert_array_equal(batch_pixels[row], feats[label])
    assert sorted(np.concatenate(one_hot[:2]).argmax(axis=1)) == list(range(6))


def test_mixed_formats_and_wrong_legacy_size_are_errors(tmp_path):
    legacy = str(tmp_path / "legacy.tfrecord")
    with tf.io.TFRecordWriter(legacy) as writer:
        writer.write(records.serialize_legacy(
            np.zeros((SEQ_LEN, IMAGE_DIM, IMAGE_DIM, CHANNELS), np.float32), 0))
    window = str(tmp_path / "window.tfrecord")
    write_shard(window, random_windows(1), [0])
    shape = (SEQ_LEN, IMAGE_DIM, IMAGE_DIM, CHANNELS)
    with pytest.raises(ActrecogError, match="window.tfrecord: holds window records of "
                                            "uint8, but .*legacy.tfrecord holds legacy"):
        pipeline.detect_files_format([legacy, window], shape)
    with pytest.raises(ActrecogError, match=r"legacy.tfrecord: 2019 record holds 1536 "
                                            r"values, expected 3072"):
        pipeline.detect_files_format([legacy], (SEQ_LEN, 32, 16, CHANNELS))
    empty = str(tmp_path / "empty.tfrecord")
    with tf.io.TFRecordWriter(empty):
        pass
    with pytest.raises(ActrecogError, match="empty.tfrecord: shard holds no records"):
        pipeline.detect_files_format([empty], shape)


def test_check_shards_names_a_missing_or_changed_shard(tmp_path):
    windows = random_windows(6)
    value = write_dataset(tmp_path, windows, np.zeros(6, int), shard_size=2)
    uris = shards.check_shards(str(tmp_path), value, "Train")
    assert uris == [str(tmp_path / f"TFRECORD/Train/Train_{index}.tfrecord")
                    for index in range(3)]
    changed = tmp_path / "TFRECORD/Train/Train_1.tfrecord"
    changed.write_bytes(changed.read_bytes() + changed.read_bytes())   # one record more
    with pytest.raises(ActrecogError, match="Train_1.tfrecord: sha256 .* differs"):
        shards.check_shards(str(tmp_path), value, "Train")
    assert shards.check_shards(str(tmp_path), value, "Train", verify_sha256=False) == uris
    (tmp_path / "TFRECORD/Train/Train_2.tfrecord").unlink()
    with pytest.raises(ActrecogError, match="Train_2.tfrecord: shard listed in the "
                                            "manifest is missing"):
        pipeline.make_dataset(str(tmp_path), "Train", value,
                              pipeline.PipelineConfig(batch_size=2, training=True,
                                                      verify_sha256=False))
    with pytest.raises(ActrecogError, match="lists no Eval shards"):
        shards.check_shards(str(tmp_path), value, "Eval")


def test_records_of_another_shape_name_the_shard(tmp_path):
    value = write_dataset(tmp_path, random_windows(4), np.zeros(4, int), shard_size=2)
    # Shard 1 rewritten with 8x8 frames (and a matching sha256 in the manifest).
    small = np.zeros((2, SEQ_LEN, 8, 8, CHANNELS), np.uint8)
    path = tmp_path / "TFRECORD/Train/Train_1.tfrecord"
    write_shard(path, small, [0, 0])
    infos = list(value.splits["Train"].shards)
    infos[1] = manifest.ShardInfo(infos[1].path, 2, storage.sha256_of(str(path)))
    split = manifest.SplitInfo(**{**value.splits["Train"].__dict__, "shards": tuple(infos)})
    value = manifest.Manifest(**{**value.__dict__, "splits": {"Train": split}})
    with pytest.raises(ActrecogError, match=r"Train_1.tfrecord: records hold windows of "
                                            r"shape \(2, 8, 8, 3\), expected \(2, 16, 16, 3\)"):
        shards.check_shards(str(tmp_path), value, "Train")


def test_a_later_record_of_another_shape_fails_in_the_graph(tmp_path):
    good = random_windows(1)[0]
    # Same byte count, other shape: only the stored shape field tells them apart.
    odd = np.zeros((SEQ_LEN * 3, IMAGE_DIM, IMAGE_DIM, 1), np.uint8)
    path = tmp_path / "mixed.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(records.serialize_window(good, 0, "LN", "a", 0))
        writer.write(records.serialize_window(odd, 0, "LN", "a", 1))
    config = pipeline.PipelineConfig(batch_size=2, training=False)
    dataset = pipeline.make_dataset_from_files([str(path)], SEQ_LEN, IMAGE_DIM, CHANNELS,
                                               17, config)
    with pytest.raises(tf.errors.InvalidArgumentError, match="record window shape differs"):
        next(iter(dataset))


def test_input_context_reads_a_share_with_per_replica_batches(tmp_path):
    windows = random_windows(8)
    value = write_dataset(tmp_path, windows, np.arange(8), shard_size=2)
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                         num_replicas_in_sync=2)
    config = pipeline.PipelineConfig(batch_size=4, training=False, deterministic=True)
    dataset = pipeline.make_dataset(str(tmp_path), "Train", value, config,
                                    input_context=context)
    _, one_hot = collect(dataset, 10)
    assert [batch.shape[0] for batch in one_hot] == [2, 2]
    # Pipeline 1 of 2 reads shards 1 and 3: windows 2, 3, 6, 7.
    assert sorted(np.concatenate(one_hot).argmax(axis=1)) == [2, 3, 6, 7]


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        pipeline.PipelineConfig(batch_size=0, training=True)
    with pytest.raises(ValueError, match="shuffle_buffer"):
        pipeline.PipelineConfig(batch_size=2, training=True, shuffle_buffer=-1)
    with pytest.raises(ValueError, match="seed"):
        pipeline.PipelineConfig(batch_size=2, training=True, seed=-3)


def test_color_jitter_is_one_clipped_affine_map_per_window_and_channel(tmp_path):
    strength = 0.5
    windows = random_windows(12, seed=5)
    write_dataset(tmp_path, windows, np.arange(12) % 17, shard_size=12)
    value = manifest.load_manifest(str(tmp_path))

    def first_batch(**overrides):
        config = pipeline.PipelineConfig(batch_size=12, training=True, seed=9,
                                         augment=False, deterministic=True,
                                         verify_sha256=False, **overrides)
        (pixels,), _ = collect(pipeline.make_dataset(str(tmp_path), "Train", value,
                                                     config), 1)
        return pixels

    plain = first_batch()
    jittered = first_batch(color_jitter=strength)
    assert jittered.shape == plain.shape and jittered.dtype == np.float32
    assert jittered.min() >= 0.0 and jittered.max() <= 1.0
    assert not np.array_equal(jittered, plain)
    # The same seed gives the same bytes (a resumed run sees the same batches).
    np.testing.assert_array_equal(first_batch(color_jitter=strength), jittered)
    low, high = (1 - strength) * (1 - strength / 2), (1 + strength) * (1 + strength / 2)
    slopes = []
    for window_in, window_out in zip(plain, jittered):
        for channel in range(CHANNELS):
            x = window_in[..., channel].ravel()
            y = window_out[..., channel].ravel()
            inside = (y > 0) & (y < 1)   # the clip only bends the ends
            slope, offset = np.polyfit(x[inside], y[inside], 1)
            # One map for every frame and pixel of the window's channel.
            np.testing.assert_allclose(slope * x[inside] + offset, y[inside], atol=2e-6)
            assert low - 1e-5 <= slope <= high + 1e-5
            slopes.append(slope)
    # Windows and channels draw their own factors.
    assert len(np.unique(np.round(slopes, 4))) == len(slopes)


def test_zoom_jitter_is_one_zoom_and_shift_per_window():
    """On linear ramps bilinear sampling is exact: each window's output is a ramp
    again, whose slope gives 1/zoom and whose intercept the shift."""
    strength, size, batch, seq_len, gain = 0.3, 32, 16, 3, 0.01
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    ramps = np.stack([gain * xs, gain * ys], axis=-1)[None, None]  # x in ch 0, y in ch 1
    pixels = tf.constant(np.broadcast_to(ramps, (batch, seq_len, size, size, 2)))
    zoom_windows = online_augment.zoom_windows
    out = zoom_windows(pixels, tf.constant(7, tf.int64), 3, strength).numpy()
    assert out.shape == pixels.shape and out.dtype == np.float32
    # Frames of a window share the transform; edges extend, values stay in range.
    np.testing.assert_array_equal(out[:, 1:], np.repeat(out[:, :1], seq_len - 1, axis=1))
    assert out.min() >= -1e-6 and out.max() <= gain * (size - 1) + 1e-6
    center, inner = (size - 1) / 2, np.arange(12, 20)   # inside for every allowed draw
    draws = []
    for window in out[:, 0]:
        slope_x, intercept_x = np.polyfit(inner, window[12, 12:20, 0], 1)
        slope_y, intercept_y = np.polyfit(inner, window[12:20, 12, 1], 1)
        zoom = gain / slope_x
        assert zoom == pytest.approx(gain / slope_y, rel=1e-4)
        assert 1 - strength - 1e-4 <= zoom <= 1 + strength + 1e-4
        # out(x) = gain * ((x - c - shift) / zoom + c)
        shifts = [zoom * (center - intercept / gain) - center
                  for intercept in (intercept_x, intercept_y)]
        assert max(abs(shift) for shift in shifts) <= strength / 2 * size + 1e-3
        draws.append((round(zoom, 4), round(shifts[0], 3), round(shifts[1], 3)))
    assert len(set(draws)) == batch   # each window its own draw
    again = zoom_windows(pixels, tf.constant(7, tf.int64), 3, strength).numpy()
    np.testing.assert_array_equal(again, out)   # stateless: (seed, batch index)
    other = zoom_windows(pixels, tf.constant(8, tf.int64), 3, strength).numpy()
    assert not np.array_equal(other, out)
    identity = zoom_windows(pixels, tf.constant(7, tf.int64), 3, 0.0).numpy()
    np.testing.assert_allclose(identity, pixels.numpy(), atol=1e-6)


def test_color_jitter_leaves_eval_alone_and_rejects_bad_strengths(tmp_path):
    windows = random_windows(6, seed=2)
    write_dataset(tmp_path, windows, np.arange(6) % 17, shard_size=6, split="Eval")
    value = manifest.load_manifest(str(tmp_path))
    config = pipeline.PipelineConfig(batch_size=6, training=False, color_jitter=0.5,
                                     verify_sha256=False)
    (pixels,), _ = collect(pipeline.make_dataset(str(tmp_path), "Eval", value, config), 1)
    np.testing.assert_array_equal(pixels, scaled(windows))
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="color_jitter"):
            pipeline.PipelineConfig(batch_size=2, training=True, color_jitter=bad)
        with pytest.raises(ValueError, match="zoom_jitter"):
            pipeline.PipelineConfig(batch_size=2, training=True, zoom_jitter=bad)


def test_mixup_blends_each_window_with_another_subjects_window_only():
    batch = 8
    rng = np.random.default_rng(4)
    pixels = rng.random((batch, SEQ_LEN, IMAGE_DIM, IMAGE_DIM, 1), dtype=np.float32)
    labels = np.eye(batch, dtype=np.float32)      # window i is class i: the mix shows j
    subjects = tf.constant([b"a", b"a", b"b", b"b", b"c", b"c", b"d", b"d"])
    mixup = online_augment.mixup_windows

    def run(index, names=subjects):
        out_pixels, out_labels = mixup(tf.constant(pixels), tf.constant(labels), names,
                                       tf.constant(index, tf.int64), 5, 1.0)
        return out_pixels.numpy(), out_labels.numpy()

    out_pixels, out_labels = run(3)
    assert out_pixels.shape == pixels.shape and out_labels.shape == labels.shape
    np.testing.assert_allclose(out_labels.sum(axis=1), 1.0, atol=1e-6)
    blended = 0
    for i in range(batch):
        own = out_labels[i, i]
        partners = [j for j in np.flatnonzero(out_labels[i]) if j != i]
        assert 0.5 <= own <= 1.0
        if not partners:
            assert own == 1.0
            np.testing.assert_array_equal(out_pixels[i], pixels[i])
            continue
        (j,) = partners
        blended += 1
        assert subjects.numpy()[j] != subjects.numpy()[i]
        assert out_labels[i, j] == pytest.approx(1.0 - own, abs=1e-6)
        np.testing.assert_allclose(out_pixels[i], own * pixels[i] + (1 - own) * pixels[j],
                                   atol=1e-6)
    assert blended >= 2
    # Stateless: (seed, batch index).
    for again, wanted in zip(run(3), (out_pixels, out_labels)):
        np.testing.assert_array_equal(again, wanted)
    assert not np.array_equal(run(4)[1], out_labels)
    # One subject: nothing to blend with.
    same = tf.constant([b"a"] * batch)
    np.testing.assert_array_equal(run(3, same)[0], pixels)


def test_mixup_reaches_train_batches_only_and_rejects_bad_values(tmp_path):
    windows = random_windows(8, seed=6)
    for split in ("Train", "Eval"):
        write_dataset(tmp_path / split, windows, np.arange(8) % 17, shard_size=8, split=split)
    value = manifest.load_manifest(str(tmp_path / "Train"))

    def first_batch(folder, split, training, mixup):
        config = pipeline.PipelineConfig(batch_size=8, training=training, seed=1,
                                         augment=False, mixup=mixup, deterministic=True,
                                         verify_sha256=False)
        (pixels,), (labels,) = collect(pipeline.make_dataset(
            str(folder), split, manifest.load_manifest(str(folder)), config), 1)
        return pixels, labels

    # Every window of write_dataset is subject LN: a mixup across subjects leaves them.
    assert set(np.unique(first_batch(tmp_path / "Train", "Train", True, 1.0)[1])) == {0, 1}
    # Four subjects (the shard rewritten; the hashes are not checked here).
    (shard,) = value.splits["Train"].shards
    write_shard(tmp_path / "Train" / shard.path, windows, np.arange(8),
                ["a", "b", "c", "d"] * 2)
    plain_pixels, plain_labels = first_batch(tmp_path / "Train", "Train", True, 0.0)
    mixed_pixels, mixed_labels = first_batch(tmp_path / "Train", "Train", True, 1.0)
    assert set(np.unique(plain_labels)) == {0, 1}
    assert len(np.unique(mixed_labels)) > 2 and not np.array_equal(mixed_pixels, plain_pixels)
    np.testing.assert_allclose(mixed_labels.sum(axis=1), 1.0, atol=1e-6)
    # Eval is never mixed.
    eval_pixels, eval_labels = first_batch(tmp_path / "Eval", "Eval", False, 1.0)
    np.testing.assert_array_equal(eval_pixels, scaled(windows))
    assert set(np.unique(eval_labels)) == {0, 1}
    for bad in (-0.5, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="mixup"):
            pipeline.PipelineConfig(batch_size=2, training=True, mixup=bad)
