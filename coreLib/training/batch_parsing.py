"""The per-batch map of the input pipeline: raw records -> checked, scaled windows.

One batch of serialized records is parsed in one op (window records or the 2019
tool's ``feats`` records), every record's shape (1.0.4: every label) is asserted,
the pixels are augmented online or only scaled to [0, 1], jittered when asked,
and the labels become one-hot.
"""

from coreLib import storage
from coreLib.preprocessing import augment, records, shards
from coreLib.training import online_augment

tf = storage.tf


def one_hot_labels(labels, num_classes: int):
    """``(B,)`` int64 class indices -> ``(B, num_classes)`` float32 one-hot."""
    return tf.one_hot(labels, num_classes, dtype=tf.float32)


def parse_checked_batch(serialized, seq_len: int, image_dim: int, channels: int,
                        num_classes: int, shard_format: shards.ShardFormat) -> dict:
    """Parses a batch of serialized records and asserts what no manifest vouches for.

    Args:
        serialized: ``(B,)`` string records of ``shard_format``.
        seq_len, image_dim, channels: the window shape ``(L, D, D, C)``.
        num_classes: the class count (1.0.4 labels must lie below it).
        shard_format: the records' format and pixel dtype.

    Returns:
        ``records``' parsed dict: ``PIXELS_KEY`` ``(B, L, D, D, C)`` stored pixels,
        ``LABEL_KEY`` ``(B,)`` int64, each behind its check (the check fails the
        step with ``InvalidArgumentError``).
    """
    if shard_format.format == records.LEGACY_FORMAT:
        parsed = records.parse_legacy_batch(serialized, seq_len, image_dim, channels)
        # No manifest vouches for 1.0.4 labels: one past the class list would
        # silently one-hot to zeros.
        labels = parsed[records.LABEL_KEY]
        check = tf.debugging.Assert(
            tf.reduce_all((labels >= 0) & (labels < num_classes)),
            [f"1.0.4 record label outside the {num_classes} classes "
             f"0..{num_classes - 1} (--legacy-classes); labels:", labels], summarize=8)
        with tf.control_dependencies([check]):
            parsed[records.LABEL_KEY] = tf.identity(labels)
        return parsed
    parsed = records.parse_window_batch(serialized, seq_len, image_dim, channels,
                                        shard_format.dtype)
    # A record of another shape would be silently mis-reshaped otherwise.
    expected_shape = tf.constant([seq_len, image_dim, image_dim, channels], tf.int64)
    check = tf.debugging.assert_equal(
        parsed[records.SHAPE_KEY],
        tf.broadcast_to(expected_shape, tf.shape(parsed[records.SHAPE_KEY])),
        message=f"record window shape differs from the expected "
                f"{(seq_len, image_dim, image_dim, channels)}")
    with tf.control_dependencies([check]):
        parsed[records.PIXELS_KEY] = tf.identity(parsed[records.PIXELS_KEY])
    return parsed


def batch_function(seq_len: int, image_dim: int, channels: int, num_classes: int,
                   shard_format: shards.ShardFormat, augment_mode: str, seed: int,
                   color_jitter: float = 0.0, zoom_jitter: float = 0.0,
                   mixup: float = 0.0):
    """The per-batch map: ``(batch index, (B,) serialized records)`` ->
    ``(pixels (B, L, D, D, C) float32 in [0, 1], (B, num_classes) float32 one-hot)``.

    ``augment_mode``: a key of ``augment.AUGMENT_MODES`` (``none`` only scales);
    ``seed``: the pipeline's seed of the variant and jitter draws; the jitter
    strengths and ``mixup``'s Beta parameter as in ``pipeline.PipelineConfig`` (0 = off).
    """
    augment_windows = augment_mode != augment.AUGMENT_NONE
    if augment_windows:
        # Computed once here (eagerly), captured as constants by the map function.
        weight_table, index_table = online_augment.variant_taps(image_dim, image_dim)

    def parse(batch_index, serialized):
        parsed = parse_checked_batch(serialized, seq_len, image_dim, channels, num_classes,
                                     shard_format)
        pixels = parsed[records.PIXELS_KEY]
        if augment_windows:
            variant = online_augment.draw_variant_ids(batch_index, tf.shape(serialized)[0],
                                                      seed, augment_mode)
            pixels = online_augment.augment_variants_and_scale(pixels, variant,
                                                               weight_table, index_table)
        else:
            pixels = records.scale_pixels(pixels, shard_format.dtype)
        if zoom_jitter:
            pixels = online_augment.zoom_windows(pixels, batch_index, seed, zoom_jitter)
        if color_jitter:
            pixels = online_augment.jitter_windows(pixels, batch_index, seed, color_jitter)
        pixels = tf.ensure_shape(pixels, [None, seq_len, image_dim, image_dim, channels])
        labels = one_hot_labels(parsed[records.LABEL_KEY], num_classes)
        if mixup:
            pixels, labels = online_augment.mixup_windows(
                pixels, labels, parsed.get(records.SUBJECT_KEY), batch_index, seed, mixup)
        return pixels, labels

    return parse
