"""Window runners: every window of L frames of a sequence through a window model.

:class:`WindowRunner` cuts windows of stored pixels; :class:`SharedFrameRunner`
(LRCN: a model its registry record splits per frame) turns each frame into
features once and cuts the windows from those.
:func:`window_probabilities` gives one row per window, by its last frame.
"""

from typing import Iterable, List

import numpy as np

from coreLib import models, storage
from coreLib.data import manifest as manifest_lib
from coreLib.inference import forward as forward_lib
from coreLib.preprocessing import records

tf = storage.tf


class WindowRunner:
    """How a window model labels windows: stored pixels in, probabilities out.

    The plain runner cuts windows of stored pixels and calls the model on them
    (:func:`coreLib.inference.forward.make_forward`: scaling, then the traced model).
    :class:`SharedFrameRunner` instead turns each frame into features once and
    cuts the windows from the features.

    Args:
        forward: ``forward(pixels (B, L, D, D, C) stored dtype, rotations (B,),
            flips (B,)) -> (B, K)`` tensor, from :func:`coreLib.inference.forward.make_forward`.
    """

    def __init__(self, forward):
        self.forward = forward

    def frame_items(self, chunk: np.ndarray) -> np.ndarray:
        """What a window is cut from, per frame: here the stored pixels themselves."""
        return chunk

    def windows(self, items: np.ndarray) -> np.ndarray:
        """``(B, L, ...)`` windows of frame items -> ``(B, K)`` float32."""
        unrotated = np.zeros(len(items), np.int32)
        return self.forward(items, unrotated, unrotated).numpy()


class SharedFrameRunner(WindowRunner):
    """A model with each frame's features computed once (LRCN).

    When a model's first layers act on each frame alone and only a head mixes the
    frames of a window (its registry record's ``frame_split``), the per-frame part
    runs once per frame and the head once per window on the stored features: L
    times less work on the per-frame part than running every window, with the same
    layers and weights (LRCN: probabilities agree to float rounding, ~1e-7).

    Args:
        frame_model: ``(B, 1, D, D, C)`` float32 -> ``(B, 1, F)`` features.
        head_model: ``(B, L, F)`` float32 -> ``(B, K)`` float32.
        manifest: window shape and dtype.
    """

    def __init__(self, frame_model, head_model, manifest: manifest_lib.Manifest):
        self.dtype = manifest.dtype
        seq_len, image_dim, _, channels = manifest.window_shape
        feature_size = int(head_model.input_shape[-1])
        self.frame_call = tf.function(
            lambda batch: frame_model(batch, training=False),
            input_signature=[tf.TensorSpec((None, 1, image_dim, image_dim, channels),
                                           tf.float32)])
        self.head_call = tf.function(
            lambda batch: head_model(batch, training=False),
            input_signature=[tf.TensorSpec((None, seq_len, feature_size), tf.float32)])

    def frame_items(self, chunk):
        scaled = records.scale_pixels(chunk[:, np.newaxis], self.dtype)
        return self.frame_call(scaled).numpy()[:, 0]

    def windows(self, items):
        return self.head_call(items).numpy()


def make_window_runner(model_name: str, model, manifest: manifest_lib.Manifest) -> WindowRunner:
    """A model whose registry record splits it into a per-frame part and a head
    (LRCN) shares its per-frame features between windows; other models (whose
    first layers mix frames) run every window whole."""
    frame_split = models.get_model_record(model_name).frame_split
    if frame_split is not None:
        return SharedFrameRunner(*frame_split(model, manifest.window_shape), manifest)
    return WindowRunner(forward_lib.make_forward(model, manifest))


def window_probabilities(chunks: Iterable[np.ndarray], manifest: manifest_lib.Manifest,
                         runner: WindowRunner, batch_size: int, bar=None) -> np.ndarray:
    """Probabilities of every window of L frames, by its last frame.

    Args:
        chunks: the sequence's frames in order, ``(T, D, D, C)`` stored dtype.
        manifest: window shape and classes.
        runner: see :class:`WindowRunner`.
        batch_size: windows per model call.
        bar: a progress report (coreLib.progress) to advance by frames.

    Returns:
        ``(N, K)`` float32; row t is the window of frames ``t-L+1 .. t`` (rows
        ``0 .. L-2`` stay 0: no full window ends there).
    """
    seq_len = manifest.seq_len
    tail = None     # the last L-1 frame items of the chunks before
    rows: List[np.ndarray] = []
    seen = 0
    for chunk in chunks:
        items = runner.frame_items(chunk)
        buffer = items if tail is None else np.concatenate([tail, items])
        # The sequence's first L-1 frames end no full window.
        without_window = max(0, min(len(chunk), seq_len - 1 - seen))
        if without_window:
            rows.append(np.zeros((without_window, manifest.num_classes), np.float32))
        count = len(chunk) - without_window
        if count > 0:
            views = np.lib.stride_tricks.sliding_window_view(buffer, seq_len, axis=0)
            windows = np.moveaxis(views, -1, 1)   # (count, L, ...), no copy yet
            for begin in range(0, count, batch_size):
                rows.append(runner.windows(
                    np.ascontiguousarray(windows[begin:begin + batch_size])))
        seen += len(chunk)
        tail = buffer[max(0, len(buffer) - (seq_len - 1)):]
        if bar is not None:
            bar.update(len(chunk))
    if not rows:
        return np.zeros((0, manifest.num_classes), np.float32)
    return np.concatenate(rows).astype(np.float32)
