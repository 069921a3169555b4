"""The tf.data input pipeline over the window shards (local folders or ``gs://``).

Shape of the pipeline (Train; Eval skips the shuffles, repeat and augmentation)::

    shard URIs -> shuffle files -> parallel interleave of TFRecordDataset readers
    -> shuffle records -> repeat -> batch (raw records) -> enumerate
    -> map(parse the batch in one op, draw one (rotation, flip) per window,
           one batched projective transform, scale to [0, 1], the zoom and colour
           jitter when asked, one-hot labels)
    -> prefetch

Why batch before parsing: parsing, decoding and transforming 128 windows in one
op each costs a fraction of 128 per-record maps (the per-element overhead of
tf.data and of the op launches dominates at this window size).

Online augmentation draws, for every window, one of the original tool's 32
variants (rotation 0, 5, ..., 35 degrees x flip id 0-3) with stateless random ops
seeded by ``(seed, batch index)``, so a run with a seed is repeatable, and applies
it with :func:`coreLib.preprocessing.augment.transform_windows`, the very op main.py
``--offline-augment`` stores its copies with: both give identical pixels.

The 2019 tool's records (float32 ``feats`` + ``label``) are read too. Their format
is detected from the first record of each file, never from a flag; they were
stored already augmented, so they are not augmented again.
"""

import random
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np

from coreLib import storage
from coreLib.preprocessing import augment, records, shards
from coreLib.errors import ActrecogError
from coreLib.data.manifest import Manifest

tf = storage.tf

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_SHUFFLE_BUFFER = 6400      # the 2019 notebooks' buffer
# Bytes each TFRecord reader buffers; large reads keep gs:// round trips few.
READ_BUFFER_BYTES = 8 << 20
PIXEL_SCALE = records.PIXEL_SCALE


@dataclass(frozen=True)
class PipelineConfig:
    """How :func:`make_dataset` reads a split.

    Attributes:
        batch_size: global batch size B (the trainer splits it over replicas).
        training: True for Train: shuffle files and records, repeat for ever,
            augment online. False for Eval: one pass in stored order (within the
            interleave), no augmentation.
        shuffle_buffer: records held by the shuffle (the original used 6400).
        seed: seed of the shuffles and the augmentation draws; None = a fresh one
            per dataset (not repeatable).
        augment: online augmentation mode, a key of ``augment.AUGMENT_MODES``
            (``none``, ``rotate``, ``rotate-lr``, ``all`` = the 32 variants; True
            means ``all``, False ``none``): one variant drawn per window (Train
            only; ignored for records already stored augmented).
        color_jitter: strength s of the photometric jitter (Train only; 0 = off):
            per window, contrast about its mean times U(1-s, 1+s), each channel
            times U(1-s/2, 1+s/2), brightness plus U(-s/4, s/4), then clipped to
            [0, 1] (see :func:`jitter_windows`).
        zoom_jitter: strength z of the geometric jitter (Train only; 0 = off): per
            window a zoom by U(1-z, 1+z) and a shift by U(-z/2, z/2) of the frame
            in x and y, edge pixels extended (see :func:`zoom_windows`).
        drop_remainder: drop a last partial batch (static batch size, as TPUs and
            the distributed loop want).
        deterministic: keep the element order of the parallel interleave and maps
            (repeatable runs; slightly slower).
        cycle_length: shards read at once by the interleave.
        verify_sha256: hash every shard against the manifest before reading
            (:func:`make_dataset`; reads every byte once more).
    """
    batch_size: int
    training: bool
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER
    seed: Optional[int] = None
    augment: str = "all"
    color_jitter: float = 0.0
    zoom_jitter: float = 0.0
    drop_remainder: bool = True
    deterministic: bool = False
    cycle_length: int = 4
    verify_sha256: bool = True

    def __post_init__(self):
        object.__setattr__(self, "augment", augment.check_augment_mode(self.augment))
        for name in ("batch_size", "shuffle_buffer", "cycle_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"PipelineConfig.{name} must be a positive integer, "
                                 f"got {value!r}")
        for name in ("color_jitter", "zoom_jitter"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"PipelineConfig.{name} must be in [0, 1), got {value!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise ValueError(f"PipelineConfig.seed must be None or an integer >= 0, "
                             f"got {self.seed!r}")


def draw_variant_ids(batch_index, batch_size, seed: int, mode: str = "all"):
    """One variant id per window, stateless: a function of (seed, batch index).

    Args:
        batch_index: scalar int64, the batch's position in the stream.
        batch_size: scalar int32, windows in the batch.
        seed: the pipeline's seed.
        mode: the augmentation mode (``augment.AUGMENT_MODES``); each of its
            variants is equally likely.

    Returns:
        ``(B,)`` int32 ids into ``augment.variants()`` (rotation index * 4 + flip id).
    """
    stateless_seed = tf.stack([tf.constant(seed, tf.int64), tf.cast(batch_index, tf.int64)])
    allowed = augment.mode_variant_ids(mode)
    draw = tf.random.stateless_uniform(tf.reshape(batch_size, [1]), stateless_seed,
                                       minval=0, maxval=len(allowed), dtype=tf.int32)
    if len(allowed) == augment.NUM_VARIANTS:
        return draw   # ids 0-31 themselves (the draws of every earlier release)
    return tf.gather(tf.constant(allowed, tf.int32), draw)


# Streams of the jitter draws, apart from the rotation/flip draws of the same batch
# and from each other.
_JITTER_STREAM = 0x6A17
_ZOOM_STREAM = 0x2004


def jitter_windows(pixels, batch_index, seed: int, strength: float):
    """Photometric jitter: each window as if filmed under another light and camera.

    Subjects differ in skin tone, background and exposure; with a dozen training
    subjects a model can latch on to one brightness relation between hand and
    background. Per window (all its frames alike): contrast about the window's
    per-channel mean times ``c ~ U(1-s, 1+s)``, each channel times
    ``g ~ U(1-s/2, 1+s/2)``, brightness plus ``b ~ U(-s/4, s/4)``, clipped to [0, 1]:
    ``out = clip(g * (mean + c * (x - mean)) + b)``. Stateless: a function of
    (seed, batch index), like the rotation/flip draws.

    Args:
        pixels: ``(B, L, H, W, C)`` float32 in [0, 1].
        batch_index: scalar int64, the batch's position in the stream.
        seed: the pipeline's seed.
        strength: s in [0, 1).

    Returns:
        ``(B, L, H, W, C)`` float32 in [0, 1].
    """
    shape = tf.shape(pixels)
    batch, channels = shape[0], shape[4]
    stateless_seed = tf.stack([tf.constant(seed, tf.int64) + _JITTER_STREAM,
                               tf.cast(batch_index, tf.int64)])
    draws = tf.random.stateless_uniform(tf.stack([batch, 2 + channels]), stateless_seed,
                                        minval=-1.0, maxval=1.0)
    contrast = tf.reshape(1.0 + strength * draws[:, 0], [-1, 1, 1, 1, 1])
    brightness = tf.reshape(0.25 * strength * draws[:, 1], [-1, 1, 1, 1, 1])
    gains = tf.reshape(1.0 + 0.5 * strength * draws[:, 2:], tf.stack([batch, 1, 1, 1,
                                                                      channels]))
    mean = tf.reduce_mean(pixels, axis=[1, 2, 3], keepdims=True)
    jittered = gains * (mean + contrast * (pixels - mean)) + brightness
    return tf.clip_by_value(jittered, 0.0, 1.0)


def zoom_windows(pixels, batch_index, seed: int, strength: float):
    """Geometric jitter: each window as if the hand were nearer, farther or elsewhere.

    Performers differ in hand size, arm length and where the hand rests in the
    camera's view; with a dozen training subjects a model can learn their few
    scales and places instead of the motion. Per window (all its frames alike): a
    zoom about the frame centre by ``z ~ U(1-s, 1+s)`` and a shift by
    ``(dx, dy) ~ U(-s/2, s/2)`` of the frame's width and height, bilinear, edge
    pixels extended (a zoom-out shows more of the background, not a black border).
    Stateless: a function of (seed, batch index).

    Args:
        pixels: ``(B, L, H, W, C)`` float32.
        batch_index: scalar int64, the batch's position in the stream.
        seed: the pipeline's seed.
        strength: s in [0, 1).

    Returns:
        ``(B, L, H, W, C)`` float32, values within the input's range.
    """
    batch = tf.shape(pixels)[0]
    height, width = pixels.shape[2], pixels.shape[3]
    stateless_seed = tf.stack([tf.constant(seed, tf.int64) + _ZOOM_STREAM,
                               tf.cast(batch_index, tf.int64)])
    draws = tf.random.stateless_uniform(tf.stack([batch, 3]), stateless_seed,
                                        minval=-1.0, maxval=1.0)
    zoom = 1.0 + strength * draws[:, 0]
    shift_x = 0.5 * strength * draws[:, 1] * width
    shift_y = 0.5 * strength * draws[:, 2] * height
    center_x, center_y = (width - 1) / 2.0, (height - 1) / 2.0
    # output = zoom * (input - c) + c + shift  =>  input = (output - c - shift) / zoom + c
    inverse = 1.0 / zoom
    zeros = tf.zeros_like(zoom)
    transforms = tf.stack([inverse, zeros, center_x - inverse * (center_x + shift_x),
                           zeros, inverse, center_y - inverse * (center_y + shift_y),
                           zeros, zeros], axis=1)
    return augment.apply_window_transforms(pixels, transforms, fill_mode="NEAREST")


def variant_taps(height: int, width: int):
    """Bilinear taps of the 32 variants, computed once per pipeline.

    Returns:
        ``(weights, indices)``, each ``(32, 4, H*W)`` (see :func:`_bilinear_taps`),
        in ``augment.variants()`` order.
    """
    pairs = augment.variants()
    rotations = tf.constant([rotation for rotation, _ in pairs], tf.int32)
    flips = tf.constant([flip for _, flip in pairs], tf.int32)
    return _bilinear_taps(rotations, flips, height, width)


def _bilinear_taps(rotations, flips, height: int, width: int):
    """Where ``ImageProjectiveTransformV3`` samples, with its float32 arithmetic.

    Computed with the kernel's own expressions in the kernel's order, so the
    weights and indices are bit-identical to what it uses.

    Returns:
        ``(weights, indices)``: ``(B, 4, H*W)`` float32 ``[x_ceil - x, x - x_floor,
        y_ceil - y, y - y_floor]`` and ``(B, 4, H*W)`` int32 flat indices of the taps
        ``(y_floor, x_floor), (y_floor, x_ceil), (y_ceil, x_floor), (y_ceil, x_ceil)``;
        a tap outside the frame points at index ``H*W`` (a black pixel).
    """
    transforms = augment.projective_transforms(rotations, flips, height, width)
    grid_y, grid_x = np.meshgrid(np.arange(height, dtype=np.float32),
                                 np.arange(width, dtype=np.float32), indexing="ij")
    out_x = tf.constant(grid_x.reshape(1, -1))
    out_y = tf.constant(grid_y.reshape(1, -1))
    a0, a1, a2, b0, b1, b2 = (transforms[:, i:i + 1] for i in range(6))
    # The projective divisor is exactly 1 for these affine maps.
    in_x = a0 * out_x + a1 * out_y + a2
    in_y = b0 * out_x + b1 * out_y + b2
    x_floor, y_floor = tf.floor(in_x), tf.floor(in_y)
    x_ceil, y_ceil = x_floor + 1.0, y_floor + 1.0
    weights = tf.stack([x_ceil - in_x, in_x - x_floor, y_ceil - in_y, in_y - y_floor], axis=1)

    def flat_index(tap_y, tap_x):
        row, column = tf.cast(tap_y, tf.int32), tf.cast(tap_x, tf.int32)
        inside = (row >= 0) & (row < height) & (column >= 0) & (column < width)
        return tf.where(inside, row * width + column, height * width)

    indices = tf.stack([flat_index(y_floor, x_floor), flat_index(y_floor, x_ceil),
                        flat_index(y_ceil, x_floor), flat_index(y_ceil, x_ceil)], axis=1)
    return weights, indices


@tf.function(jit_compile=True)
def _interpolate_and_scale(windows, weight_table, index_table, variant, max_value):
    """Bilinear sampling of whole windows at given taps, rounded and scaled, in XLA.

    One fused loop instead of the kernel's per-element coordinate work and the
    separate cast/round/scale passes: about twice as fast on CPU. Bit-identical to
    ``ImageProjectiveTransformV3`` followed by round, clip and scaling: the same
    products and sums in the same order; each product passes an integer xor with
    a zero XLA cannot prove is zero, so LLVM cannot fuse a product and its sum
    into one FMA (which rounds once instead of twice).

    Args:
        windows: ``(B, L, H, W, C)`` uint8/uint16.
        weight_table, index_table: ``(N, 4, H*W)`` from :func:`_bilinear_taps`.
        variant: ``(B,)`` int32 row of the tables for each window.
        max_value: float32 scalar, ``PIXEL_SCALE`` of the dtype (255 or 4095).

    Returns:
        ``(B, L, H, W, C)`` float32 in [0, 1].
    """
    batch = tf.shape(windows)[0]
    _, seq_len, height, width, channels = windows.shape
    weights = tf.gather(weight_table, variant)
    indices = tf.gather(index_table, variant)
    frames = tf.reshape(windows, [batch, seq_len, height * width, channels])
    frames = tf.concat([frames, tf.zeros([batch, seq_len, 1, channels], windows.dtype)],
                       axis=2)                                    # index H*W: black
    taps = tf.cast(tf.gather(frames, indices, axis=2, batch_dims=1), tf.float32)
    # Weights are in [0, 1]: the comparison is false, but only at run time.
    zero = tf.cast(weights[0, 0, 0] > 2.0, tf.int32)

    def product(weight, value):
        bits = tf.bitcast(weights[:, None, weight, :, None] * value, tf.int32)
        return tf.bitcast(tf.bitwise.bitwise_xor(bits, zero), tf.float32)

    value_y_floor = product(0, taps[:, :, 0]) + product(1, taps[:, :, 1])
    value_y_ceil = product(0, taps[:, :, 2]) + product(1, taps[:, :, 3])
    weights_y = weights[:, None, 2:, :, None]
    bits_floor = tf.bitcast(weights_y[:, :, 0] * value_y_floor, tf.int32)
    bits_ceil = tf.bitcast(weights_y[:, :, 1] * value_y_ceil, tf.int32)
    out = (tf.bitcast(tf.bitwise.bitwise_xor(bits_floor, zero), tf.float32)
           + tf.bitcast(tf.bitwise.bitwise_xor(bits_ceil, zero), tf.float32))
    out = tf.clip_by_value(tf.round(out), 0.0, max_value) / max_value
    return tf.reshape(out, [batch, seq_len, height, width, channels])


def augment_and_scale(pixels, rotations, flips):
    """The online augmentation: the offline path's transform, then scaling to [0, 1].

    Gives exactly ``records.scale_pixels(augment.transform_windows(pixels, rotations,
    flips))``, i.e. the copies ``augment.augment_window_variants`` stores for
    main.py ``--offline-augment``, scaled as the pipeline scales stored pixels.

    Args:
        pixels: ``(B, L, D, D, C)`` uint8/uint16 stored pixels.
        rotations: ``(B,)`` degrees.
        flips: ``(B,)`` flip ids 0-3.

    Returns:
        ``(B, L, D, D, C)`` float32 in [0, 1].
    """
    pixels = tf.convert_to_tensor(pixels)
    if pixels.dtype not in (tf.uint8, tf.uint16):
        raise ValueError(f"augment_and_scale needs uint8/uint16 pixels, got {pixels.dtype}")
    weights, indices = _bilinear_taps(rotations, flips, pixels.shape[2], pixels.shape[3])
    max_value = tf.constant(PIXEL_SCALE[pixels.dtype.name], tf.float32)
    variant = tf.range(tf.shape(pixels)[0], dtype=tf.int32)
    return _interpolate_and_scale(pixels, weights, indices, variant, max_value)


def augment_variants_and_scale(pixels, variant, weight_table, index_table):
    """:func:`augment_and_scale` for variant ids, with taps from :func:`variant_taps`.

    Args:
        pixels: ``(B, L, D, D, C)`` uint8/uint16 stored pixels.
        variant: ``(B,)`` int32 ids into ``augment.variants()``.
        weight_table, index_table: :func:`variant_taps` of the frame size.

    Returns:
        ``(B, L, D, D, C)`` float32 in [0, 1].
    """
    max_value = tf.constant(PIXEL_SCALE[pixels.dtype.name], tf.float32)
    return _interpolate_and_scale(pixels, weight_table, index_table, variant, max_value)


def one_hot_labels(labels, num_classes: int):
    """``(B,)`` int64 class indices -> ``(B, num_classes)`` float32 one-hot."""
    return tf.one_hot(labels, num_classes, dtype=tf.float32)


def _batch_function(seq_len: int, image_dim: int, channels: int, num_classes: int,
                    shard_format: shards.ShardFormat, augment_mode: str, seed: int,
                    color_jitter: float = 0.0, zoom_jitter: float = 0.0):
    """The per-batch map: raw records -> (pixels (B,L,D,D,C) float32, one-hot)."""
    expected_shape = tf.constant([seq_len, image_dim, image_dim, channels], tf.int64)
    augment_windows = augment_mode != augment.AUGMENT_NONE
    if augment_windows:
        # Computed once here (eagerly), captured as constants by the map function.
        weight_table, index_table = variant_taps(image_dim, image_dim)

    def parse(batch_index, serialized):
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
        else:
            parsed = records.parse_window_batch(serialized, seq_len, image_dim, channels,
                                                shard_format.dtype)
            # A record of another shape would be silently mis-reshaped otherwise.
            check = tf.debugging.assert_equal(
                parsed[records.SHAPE_KEY],
                tf.broadcast_to(expected_shape, tf.shape(parsed[records.SHAPE_KEY])),
                message=f"record window shape differs from the expected "
                        f"{(seq_len, image_dim, image_dim, channels)}")
            with tf.control_dependencies([check]):
                parsed[records.PIXELS_KEY] = tf.identity(parsed[records.PIXELS_KEY])
        pixels = parsed[records.PIXELS_KEY]
        if augment_windows:
            variant = draw_variant_ids(batch_index, tf.shape(serialized)[0], seed,
                                       augment_mode)
            pixels = augment_variants_and_scale(pixels, variant, weight_table, index_table)
        else:
            pixels = records.scale_pixels(pixels, shard_format.dtype)
        if zoom_jitter:
            pixels = zoom_windows(pixels, batch_index, seed, zoom_jitter)
        if color_jitter:
            pixels = jitter_windows(pixels, batch_index, seed, color_jitter)
        pixels = tf.ensure_shape(pixels, [None, seq_len, image_dim, image_dim, channels])
        labels = one_hot_labels(parsed[records.LABEL_KEY], num_classes)
        return pixels, labels

    return parse


def detect_files_format(files: Sequence[str], window_shape: Sequence[int]) -> shards.ShardFormat:
    """The common :class:`ShardFormat` of record files, from each file's first record.

    Raises:
        ActrecogError: no files, or a file unreadable, of another shape or of a
            different format than the first (naming it).
    """
    if not files:
        raise ActrecogError("no record files to read")
    first = shards.inspect_shard(files[0], window_shape)
    for path in files[1:]:
        other = shards.inspect_shard(path, window_shape)
        if other != first:
            raise ActrecogError(f"{path}: holds {other.format} records of {other.dtype}, "
                                f"but {files[0]} holds {first.format} records of "
                                f"{first.dtype}")
    return first


def make_dataset_from_files(files: Sequence[str], seq_len: int, image_dim: int,
                            channels: int, num_classes: int, config: PipelineConfig,
                            shard_format: Optional[shards.ShardFormat] = None,
                            input_context=None) -> "tf.data.Dataset":
    """The input pipeline over record files of either format.

    Args:
        files: TFRecord paths or URIs (window records, or the 2019 tool's).
        seq_len, image_dim, channels: the window shape ``(L, D, D, C)``.
        num_classes: length of the one-hot labels.
        config: batch size, shuffling, augmentation.
        shard_format: the files' format when already checked; None = detect it
            from the first record of every file.
        input_context: a ``tf.distribute.InputContext`` when called from
            ``strategy.distribute_datasets_from_function``: this pipeline then
            reads its share of the files and yields per-replica batches.

    Returns:
        ``tf.data.Dataset`` of ``(pixels, labels)``: ``(B, L, D, D, C)`` float32 in
        [0, 1] and ``(B, num_classes)`` float32 one-hot. Training datasets repeat
        for ever.

    Raises:
        ActrecogError: a file unreadable, empty, of another shape or format.
    """
    window_shape = (seq_len, image_dim, image_dim, channels)
    files = [str(path) for path in files]
    if shard_format is None:
        shard_format = detect_files_format(files, window_shape)
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2 ** 31)
    batch_size = config.batch_size
    file_dataset = tf.data.Dataset.from_tensor_slices(files)
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(config.batch_size)
        file_dataset = file_dataset.shard(input_context.num_input_pipelines,
                                          input_context.input_pipeline_id)
    if config.training:
        file_dataset = file_dataset.shuffle(len(files), seed=seed,
                                            reshuffle_each_iteration=True)
    dataset = file_dataset.interleave(
        lambda path: tf.data.TFRecordDataset(path, buffer_size=READ_BUFFER_BYTES),
        cycle_length=min(config.cycle_length, len(files)), block_length=1,
        num_parallel_calls=AUTOTUNE, deterministic=config.deterministic)
    if config.training:
        dataset = dataset.shuffle(config.shuffle_buffer, seed=seed + 1,
                                  reshuffle_each_iteration=True)
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=config.drop_remainder)
    augment_mode = (config.augment if config.training
                    and shard_format.format == records.WINDOW_FORMAT else augment.AUGMENT_NONE)
    parse = _batch_function(seq_len, image_dim, channels, num_classes, shard_format,
                            augment_mode, seed,
                            config.color_jitter if config.training else 0.0,
                            config.zoom_jitter if config.training else 0.0)
    dataset = dataset.enumerate().map(parse, num_parallel_calls=AUTOTUNE,
                                      deterministic=config.deterministic)
    return dataset.prefetch(AUTOTUNE)


def make_dataset(dataset_dir: str, split: str, manifest: Manifest,
                 config: PipelineConfig, input_context=None,
                 shard_uris: Optional[Sequence[str]] = None) -> "tf.data.Dataset":
    """The input pipeline over one split of a preprocessed ``DataSet`` folder.

    Checks the split's shards first (:func:`shards.check_shards`), unless given. Train records stored
    already augmented (``manifest.offline_augment``) are not augmented again.

    Args:
        dataset_dir: the ``DataSet`` folder or URI holding ``dataset.json``.
        split: ``Train`` or ``Eval``.
        manifest: the loaded manifest.
        config: batch size, shuffling, augmentation.
        input_context: see :func:`make_dataset_from_files`.
        shard_uris: the split's shards as :func:`shards.check_shards` returned them
            earlier in the run (a trainer checks once, not every epoch); None =
            check them now.

    Returns:
        ``tf.data.Dataset`` of ``(pixels, labels)``: ``(B, L, D, D, C)`` float32 in
        [0, 1] and ``(B, num_classes)`` float32 one-hot.

    Raises:
        ActrecogError: a shard missing, changed, or of another shape (naming it).
    """
    files = shard_uris or shards.check_shards(dataset_dir, manifest, split,
                                              config.verify_sha256)
    if manifest.offline_augment and config.augment != augment.AUGMENT_NONE:
        config = replace(config, augment=augment.AUGMENT_NONE)
    return make_dataset_from_files(
        files, manifest.seq_len, manifest.image_dim, manifest.channels,
        manifest.num_classes, config,
        shard_format=shards.stored_format(manifest.dtype),
        input_context=input_context)

