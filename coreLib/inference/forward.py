"""The batched forward pass of a trained model over listed windows (score.py, detect.py).

The model runs in the calling thread on one batch while the decoder threads of
:mod:`coreLib.inference.frame_reader` prepare the next. Pixels are scaled exactly as
the training input pipeline scales the stored records (``records.scale_pixels``),
after the same rotation/flip (``augment.transform_windows``) when a window asks for one.
"""

from typing import Optional, Sequence

import numpy as np

from coreLib import storage
from coreLib.data import manifest as manifest_lib
from coreLib.data.window_lists import ListedWindow
from coreLib.errors import ActrecogError
from coreLib.progress import progress_bar
from coreLib.inference import frame_reader
from coreLib.preprocessing import augment, records

tf = storage.tf

# XLA makes LRCN's batch call ~20% cheaper on CPU (5.6 -> 4.5 ms per window at
# batch 64, 2 cores) but compiling takes ~3x as long as tracing (about 3 s more
# on 2 quiet cores, measured 10 s more under load alongside a 3.5-8.5 ms saving
# per window); from about this many windows on it pays. Probabilities agree
# with the traced call to ~2e-8.
JIT_MIN_WINDOWS = 2500


def make_forward(model, manifest: manifest_lib.Manifest, augmented: bool = False,
                 jit_compile: bool = False):
    """The model's inference call on stored pixels.

    A batch crosses from Python to TensorFlow once, as compact uint8/uint16. The
    pixels are scaled by eager ops between the traced rotation/flip and the traced
    model: inside a traced graph the division is rewritten and probabilities
    move by ~1e-8, and the Results must not change with the speed-up. The model
    is traced once for every batch size; with ``jit_compile`` XLA compiles it once
    per batch size (:func:`predict_windows` pads the last batch, so once).

    Args:
        model: ``(B, L, D, D, C)`` float32 -> ``(B, K)`` float32.
        manifest: window shape and pixel dtype.
        augmented: apply each window's rotation and flip first.
        jit_compile: compile the model with XLA (~2e-8 from the traced call).

    Returns:
        ``forward(pixels (B, L, D, D, C) stored dtype, rotations (B,) int32,
        flips (B,) int32) -> (B, K) float32 tensor``.
    """
    pixel_spec = tf.TensorSpec((None,) + tuple(manifest.window_shape),
                               tf.dtypes.as_dtype(manifest.dtype))
    vector_spec = tf.TensorSpec((None,), tf.int32)
    run_model = tf.function(
        lambda batch: model(batch, training=False), jit_compile=jit_compile or None,
        input_signature=[tf.TensorSpec((None,) + tuple(manifest.window_shape),
                                       tf.float32)])
    transform = tf.function(augment.transform_windows,
                            input_signature=[pixel_spec, vector_spec, vector_spec])

    def forward(pixels, rotations, flips):
        if augmented:
            pixels = transform(pixels, rotations, flips)
        return run_model(records.scale_pixels(pixels, manifest.dtype))

    return forward


def predict_windows(model, windows: Sequence[ListedWindow], manifest: manifest_lib.Manifest,
                    batch_size: int = 64, workers: int = 2, progress: bool = True,
                    forward=None, jit_compile: Optional[bool] = None,
                    boxes: Optional[dict] = None) -> np.ndarray:
    """Class probabilities of every window.

    The model runs in this thread on one batch while the decoder threads prepare
    the next (no tf.data: its generator thread and per-element hand-overs cost
    more than they overlapped on two cores).

    Args:
        model: ``(B, L, D, D, C)`` float32 -> ``(B, K)`` float32.
        windows: the Test windows.
        manifest: window shape and pixel dtype.
        batch_size: windows per model call.
        workers: decoding threads.
        progress: report progress over windows (a bar on a terminal).
        forward: from :func:`make_forward` (to reuse a traced call across runs);
            it must apply rotations/flips if any window has one.
        jit_compile: for the forward made here, and whether to pad the last
            batch to ``batch_size`` (one XLA compilation); None: from
            :data:`JIT_MIN_WINDOWS` windows on.
        boxes: hand-centred frames: receives every frame's crop box by
            ``(path, index)`` (:func:`frame_reader.iterate_batches`).

    Returns:
        ``(N, K)`` float32 probabilities, row i for ``windows[i]``.

    Raises:
        ActrecogError: a frame that cannot be read or decoded.
    """
    if jit_compile is None:
        jit_compile = len(windows) >= JIT_MIN_WINDOWS
    augmented = any(window.rotation or window.flip for window in windows)
    forward = forward or make_forward(model, manifest, augmented, jit_compile)
    probabilities = np.zeros((len(windows), manifest.num_classes), np.float32)
    seen = np.zeros(len(windows), bool)
    with progress_bar(len(windows), desc="scoring", unit="window",
                      enabled=progress) as bar:
        for numbers, pixels, rotations, flips in frame_reader.iterate_batches(
                windows, manifest, batch_size, workers, boxes):
            count = len(numbers)
            if jit_compile and count < batch_size and len(windows) > batch_size:
                # Repeating the last window keeps the compiled shape; rows are
                # independent, so the padding does not touch the others.
                pad = batch_size - count
                pixels = np.concatenate([pixels, np.repeat(pixels[-1:], pad, axis=0)])
                rotations = np.concatenate([rotations, np.repeat(rotations[-1:], pad)])
                flips = np.concatenate([flips, np.repeat(flips[-1:], pad)])
            probabilities[numbers] = forward(pixels, rotations, flips).numpy()[:count]
            seen[numbers] = True
            bar.update(len(numbers))
    if not seen.all():
        raise ActrecogError(f"{int((~seen).sum())} windows were not scored")
    return probabilities
