"""Rotation and flip of whole windows: the 2019 tool's 32 augmented variants.

One function, :func:`transform_windows`, serves both places that augment:
main.py ``--offline-augment`` (stores the copies, as the original did) and the
training input pipeline (draws one variant per window on the fly). Both call the
same graph op on the same stored pixels, so they give identical results.

Convention: rotation by ``r`` degrees counter-clockwise about the frame centre
``((W-1)/2, (H-1)/2)`` with black fill and bilinear sampling, then flip id
0 (none), 1 (left-right), 2 (up-down) or 3 (both). The result is rounded back to the
input dtype. All frames of a window get the same transform.
"""

import math

import numpy as np

from coreLib import storage

tf = storage.tf

ROTATIONS = tuple(range(0, 40, 5))   # 0, 5, ..., 35 degrees
FLIPS = (0, 1, 2, 3)                  # none, left-right, up-down, both
NUM_VARIANTS = len(ROTATIONS) * len(FLIPS)  # 32


# Online augmentation modes: the flip ids each may draw (every rotation always).
# An up-down flip shows a hand upside down, which no head-worn camera sees; a
# left-right flip is a left-handed performer, but it also turns some motions into
# others (a left stroke into a right one, a clockwise circle into an anticlockwise
# one). "all" is the 1.0.4 tool's 32 variants.
AUGMENT_NONE = "none"
AUGMENT_MODES = {AUGMENT_NONE: (), "rotate": (0,), "rotate-lr": (0, 1), "all": FLIPS}


def check_augment_mode(mode) -> str:
    """The mode name; True means ``all`` (the 32 variants), False ``none``.

    Raises:
        ValueError: an unknown mode.
    """
    if mode is True or mode is False:
        return "all" if mode else AUGMENT_NONE
    if mode not in AUGMENT_MODES:
        raise ValueError(f"augment must be one of {', '.join(AUGMENT_MODES)}, got {mode!r}")
    return mode


def mode_variant_ids(mode: str) -> tuple:
    """Variant ids (into :func:`variants`) a mode draws from, ascending."""
    allowed = AUGMENT_MODES[check_augment_mode(mode)]
    return tuple(index * len(FLIPS) + flip for index in range(len(ROTATIONS))
                 for flip in allowed)


def variants():
    """All (rotation, flip) pairs in the original's order (rotation major)."""
    return [(rotation, flip) for rotation in ROTATIONS for flip in FLIPS]


def projective_transforms(rotations, flips, height: int, width: int):
    """The 8-parameter output->input maps of ImageProjectiveTransformV3.

    Args:
        rotations: ``(N,)`` rotation angles in degrees (any numeric dtype).
        flips: ``(N,)`` flip ids 0-3.
        height, width: frame size.

    Returns:
        ``(N, 8)`` float32 tensor.
    """
    angle = tf.cast(rotations, tf.float32) * (math.pi / 180.0)
    flips = tf.cast(flips, tf.int32)
    sign_x = tf.where(tf.equal(flips % 2, 1), -1.0, 1.0)        # ids 1 and 3
    sign_y = tf.where(flips >= 2, -1.0, 1.0)                    # ids 2 and 3
    cos, sin = tf.cos(angle), tf.sin(angle)
    center_x, center_y = (width - 1) / 2.0, (height - 1) / 2.0
    # input = R^-1 (S (output - c)) + c, R = counter-clockwise rotation, S = flips.
    a0, a1 = cos * sign_x, -sin * sign_y
    b0, b1 = sin * sign_x, cos * sign_y
    a2 = center_x - a0 * center_x - a1 * center_y
    b2 = center_y - b0 * center_x - b1 * center_y
    zeros = tf.zeros_like(a0)
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def apply_window_transforms(windows, transforms, fill_mode: str = "CONSTANT"):
    """One projective transform per window, the same for all of its frames.

    Args:
        windows: ``(B, L, H, W, C)`` float32 tensor.
        transforms: ``(B, 8)`` float32 output->input maps (as from
            :func:`projective_transforms`).
        fill_mode: ``CONSTANT`` (black outside the frame) or ``NEAREST`` (edge
            pixels extended).

    Returns:
        ``(B, L, H, W, C)`` float32, bilinear.
    """
    shape = tf.shape(windows)
    batch, seq_len = shape[0], shape[1]
    transforms = tf.repeat(transforms, seq_len, axis=0)  # one per frame
    frames = tf.reshape(windows, tf.concat([[batch * seq_len], shape[2:]], axis=0))
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=frames, transforms=transforms, output_shape=shape[2:4],
        fill_value=0.0, interpolation="BILINEAR", fill_mode=fill_mode)
    return tf.reshape(out, shape)


def transform_windows(windows, rotations, flips):
    """Rotates and flips each window of a batch (same transform for all its frames).

    Args:
        windows: ``(B, L, H, W, C)`` uint8, uint16 or float tensor.
        rotations: ``(B,)`` degrees.
        flips: ``(B,)`` flip ids 0-3.

    Returns:
        ``(B, L, H, W, C)`` tensor of the input dtype (integers rounded).
    """
    windows = tf.convert_to_tensor(windows)
    dtype = windows.dtype
    transforms = projective_transforms(rotations, flips, windows.shape[2], windows.shape[3])
    out = apply_window_transforms(tf.cast(windows, tf.float32), transforms)
    if dtype.is_integer:
        out = tf.clip_by_value(tf.round(out), dtype.min, dtype.max)
    return tf.cast(out, dtype)


def augment_window_variants(window: np.ndarray) -> np.ndarray:
    """The 32 stored copies of one window, as ``--offline-augment`` writes them.

    Args:
        window: ``(L, D, D, C)`` uint8/uint16 array.

    Returns:
        ``(32, L, D, D, C)`` array of the same dtype, in :func:`variants` order.
    """
    pairs = variants()
    rotations = np.array([rotation for rotation, _ in pairs], np.int32)
    flips = np.array([flip for _, flip in pairs], np.int32)
    batch = np.broadcast_to(window, (len(pairs),) + window.shape)
    return transform_windows(batch, rotations, flips).numpy()
