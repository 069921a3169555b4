"""Stream steps: one frame and a state in, probabilities and the next state out.

A streaming model (CausalMobileNet's runner, an export's ``stream_step``) or a
window model behind the same interface; :func:`stream_probabilities` runs one
over a sequence, frame by frame.
"""

from typing import Any, Callable, Iterable, Optional, Tuple

import numpy as np

from coreLib import models, storage
from coreLib.data import manifest as manifest_lib
from coreLib.inference import exported_model
from coreLib.preprocessing import records

tf = storage.tf


class StreamStep:
    """The interface of a streaming model: one frame and a state in, probabilities
    and the next state out.

    Subclasses implement :meth:`initial_state` and :meth:`step`; the online runner
    (:func:`stream_probabilities`) calls ``step`` once per frame, in order, with
    the state it returned for the frame before.
    """

    def initial_state(self) -> Any:
        """The state before frame 0."""
        raise NotImplementedError

    # True when step takes frames as stored (an exported graph scales them itself).
    stored_pixels = False

    def step(self, frame: np.ndarray, state: Any) -> Tuple[np.ndarray, Any]:
        """One frame.

        Args:
            frame: ``(1, D, D, C)`` float32, scaled as the models' input.
            state: from :meth:`initial_state` or the previous call.

        Returns:
            ``(probabilities (1, K) float32, next state)``.
        """
        raise NotImplementedError


class SlidingWindowStep(StreamStep):
    """The last L frames as the state; no-action until L frames have been seen, then
    :meth:`score` of the window ``(1, L, D, D, C)`` each frame (batch 1)."""

    manifest: manifest_lib.Manifest
    window_dtype = np.float32

    def _no_action(self) -> np.ndarray:
        no_action = np.zeros((1, self.manifest.num_classes), np.float32)
        no_action[0, -1] = 1.0
        return no_action

    def initial_state(self):
        return np.zeros((1,) + tuple(self.manifest.window_shape), self.window_dtype), 0

    def score(self, window: np.ndarray) -> np.ndarray:
        """``(1, K)`` float32 probabilities of one full window."""
        raise NotImplementedError

    def step(self, frame, state):
        window, seen = state
        window = np.concatenate([window[:, 1:], frame[:, np.newaxis]], axis=1)
        seen += 1
        if seen < self.manifest.seq_len:
            return self.no_action, (window, seen)
        return self.score(window), (window, seen)


class WindowStreamStep(SlidingWindowStep):
    """A window model behind the stream interface: the state holds the last L
    frames; until L frames have been seen the output is no-action.

    It gives the same probabilities as the window runner's online mode, one model
    call per frame (batch 1); streaming models proper carry a compact state
    instead of the frames.
    """

    def __init__(self, model, manifest: manifest_lib.Manifest):
        self.manifest = manifest
        self.call = tf.function(lambda window: model(window, training=False),
                                input_signature=[tf.TensorSpec(
                                    (1,) + tuple(manifest.window_shape), tf.float32)])
        self.no_action = self._no_action()

    def score(self, window):
        return self.call(window).numpy()


class StatefulRunnerStep(StreamStep):
    """A runner that keeps its own state behind the stream interface.

    The runner needs ``reset()`` (back to the state before frame 0), ``state``
    (the current state), ``set_state(state)`` and ``step(frames (1, D, D, C)
    float32) -> (1, K)`` probabilities, as ``coreLib.models.stream_runner.StreamRunner``
    has them on the stream branch. The state handed back is the runner's own, so
    in a run front to back ``set_state`` is only called when a caller passes in
    another state than the last one returned.

    Args:
        runner: the stateful runner (batch size 1).
    """

    def __init__(self, runner):
        self.runner = runner

    def initial_state(self):
        self.runner.reset()
        return self.runner.state

    def step(self, frame, state):
        if state is not self.runner.state:
            self.runner.set_state(state)
        probabilities = self.runner.step(frame)
        return probabilities, self.runner.state


class ExportedStreamStep(StreamStep):
    """The ``stream_step`` of an exported model (SavedModel or
    ``<MODEL_NAME>_stream.tflite``): its states are arrays handed in and out.

    The exported graph scales the pixels itself, so it takes frames in the
    stored dtype (``stored_pixels``), not scaled ones.
    """

    stored_pixels = True

    def __init__(self, model: exported_model.ExportedModel):
        self.model = model

    def initial_state(self):
        return self.model.initial_state(1)

    def step(self, frame, state):
        return self.model.stream_step(frame, state)


def stream_step_builder(model_name: str) -> Optional[Callable[..., StreamStep]]:
    """``builder(model, manifest)`` -> the :class:`StreamStep` of a streaming model:
    its registry record's ``stream_runner`` (``coreLib.models.MODEL_RECORDS``)
    behind :class:`StatefulRunnerStep`. None for every other model: online and
    offline, its windows run through a WindowRunner."""
    record = models.MODEL_RECORDS.get(model_name)
    if record is None or record.stream_runner is None:
        return None
    return lambda model, manifest: StatefulRunnerStep(record.stream_runner(model))



def stream_probabilities(chunks: Iterable[np.ndarray], stream: StreamStep, dtype: str,
                         bar=None) -> np.ndarray:
    """A streaming model run one frame at a time, its state carried across frames.

    Args:
        chunks: frames in order, ``(T, D, D, C)`` stored dtype.
        stream: the model's :class:`StreamStep` (frames scaled as the models'
            input, or as stored when its ``stored_pixels`` is True).
        dtype: the stored pixel dtype (for the models' input scaling).
        bar: a progress report (coreLib.progress) to advance by frames.

    Returns:
        ``(N, K)`` float32, row t computed from frames ``0 .. t`` only.
    """
    state = stream.initial_state()
    rows = []
    for chunk in chunks:
        scaled = chunk if stream.stored_pixels else scale_stored(chunk, dtype)
        for frame in scaled:
            probabilities, state = stream.step(frame[np.newaxis], state)
            rows.append(np.asarray(probabilities, np.float32).reshape(-1))
        if bar is not None:
            bar.update(len(chunk))
    return np.stack(rows) if rows else np.zeros((0, 0), np.float32)


class WindowRunnerStep(SlidingWindowStep):
    """A window runner (Keras or exported window model) behind the stream
    interface for a live run: the state holds the last L stored frames; until L
    frames have been seen the output is no-action (as ``--mode online`` gives the
    frames before the first full window).

    Args:
        runner: a :class:`coreLib.inference.window_runners.WindowRunner`.
        manifest: window shape and classes.
    """

    stored_pixels = True

    def __init__(self, runner, manifest: manifest_lib.Manifest):
        self.runner, self.manifest = runner, manifest
        # Stored pixels: the window keeps the manifest's record dtype.
        self.window_dtype = np.dtype(manifest.dtype)
        self.no_action = self._no_action()

    def score(self, window):
        items = self.runner.frame_items(window[0])
        return self.runner.windows(items[np.newaxis])


def scale_stored(pixels: np.ndarray, dtype: str) -> np.ndarray:
    """Stored pixels to the models' float32 input, in numpy: the same numbers as
    :func:`coreLib.preprocessing.records.scale_pixels` (``min(x, scale) / scale``
    in float32), without a TensorFlow call per frame."""
    if dtype == "float32":
        return np.asarray(pixels, np.float32)
    scale = np.float32(records.PIXEL_SCALE[dtype])
    return np.minimum(np.asarray(pixels, np.float32), scale) / scale
