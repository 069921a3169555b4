"""Online augmentation of whole batches of windows, stateless and bit-exact.

Every function here is a function of ``(seed, batch index)``, so a run with a seed
is repeatable and a resumed run redraws the same variants:

- :func:`draw_variant_ids`: one of the original tool's 32 variants per window
  (rotation 0, 5, ..., 35 degrees x flip id 0-3), or of a mode's subset;
- :func:`augment_variants_and_scale` / :func:`augment_and_scale`: applies them
  with XLA-compiled bilinear sampling that is bit-identical to
  :func:`coreLib.preprocessing.augment.transform_windows` (the op main.py
  ``--offline-augment`` stores its copies with) followed by the pipeline's
  scaling to [0, 1];
- :func:`zoom_windows` and :func:`jitter_windows`: the geometric and photometric
  jitters of ``--zoom-jitter`` and ``--color-jitter``.
"""

import numpy as np

from coreLib import storage
from coreLib.preprocessing import augment, records

tf = storage.tf

PIXEL_SCALE = records.PIXEL_SCALE


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
_MIXUP_STREAM = 0x3A1C


def mixup_windows(pixels, labels, subjects, batch_index, seed: int, alpha: float):
    """Mixup across subjects: each window blended with another subject's window.

    Per window i a partner j from a random permutation of the batch and a weight
    ``w = max(l, 1 - l)``, ``l ~ Beta(alpha, alpha)`` (the window's own label stays
    the larger part); ``pixels_i = w x_i + (1 - w) x_j`` and the same for the
    one-hot labels. A partner of the same subject leaves the window as it is
    (``w = 1``): the blend is meant to mix performers, not to average one
    performer's windows. Stateless: a function of (seed, batch index).

    Args:
        pixels: ``(B, L, H, W, C)`` float32 in [0, 1].
        labels: ``(B, K)`` float32 one-hot.
        subjects: ``(B,)`` tf.string subject names (None: 1.0.4 records, which
            name none; every pair is then blended).
        batch_index: scalar int64, the batch's position in the stream.
        seed: the pipeline's seed.
        alpha: the Beta distribution's parameter, > 0.

    Returns:
        ``(pixels, labels)`` of the same shapes.
    """
    batch = tf.shape(pixels)[0]
    base = tf.constant(seed, tf.int64) + _MIXUP_STREAM
    index = tf.cast(batch_index, tf.int64)
    partner = tf.argsort(tf.random.stateless_uniform(tf.reshape(batch, [1]),
                                                     tf.stack([base, index])))
    gammas = [tf.random.stateless_gamma(tf.reshape(batch, [1]), tf.stack([base + k, index]),
                                        alpha=alpha) for k in (1, 2)]
    weight = gammas[0] / tf.maximum(gammas[0] + gammas[1], 1e-12)
    weight = tf.maximum(weight, 1.0 - weight)
    if subjects is not None:
        same = tf.equal(subjects, tf.gather(subjects, partner))
        weight = tf.where(same, tf.ones_like(weight), weight)
    pixel_weight = tf.reshape(weight, [-1, 1, 1, 1, 1])
    mixed = pixel_weight * pixels + (1.0 - pixel_weight) * tf.gather(pixels, partner)
    label_weight = tf.reshape(weight, [-1, 1])
    return mixed, label_weight * labels + (1.0 - label_weight) * tf.gather(labels, partner)


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
