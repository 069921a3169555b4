"""The interface of an exported model (stored-dtype windows or frames in,
probabilities out) and its SavedModel runner."""

from typing import Sequence, Tuple

import numpy as np

from coreLib import storage
from coreLib.errors import ActrecogError
from coreLib.inference.export_info import (
    FRAME_INPUT_NAME, PROBABILITIES_NAME, SERVING_SIGNATURE, STREAM_SIGNATURE,
    WINDOW_INPUT_NAME, ExportInfo, new_state_name, state_input_name)

tf = storage.tf


class ExportedModel:
    """An exported model: stored-dtype windows in, probabilities out.

    Attributes:
        path: what was loaded.
        info: its :class:`ExportInfo`.
        kind: ``saved_model`` or ``litert``.
    """

    kind = ""

    def __init__(self, path: str, info: ExportInfo):
        self.path = path
        self.info = info

    @property
    def has_window_model(self) -> bool:
        """False for a stream-only file (``<MODEL_NAME>_stream.tflite``)."""
        return True

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Class probabilities of a batch of windows.

        Args:
            windows: ``(B, L, D, D, C)`` in the stored dtype (``info.dtype``).

        Returns:
            ``(B, num_classes)`` float32.

        Raises:
            ActrecogError: windows of another shape or dtype.
        """
        windows = self._checked(windows, (None,) + self.info.window_shape, "windows")
        return np.asarray(self._run_windows(windows), np.float32)

    @property
    def has_stream_step(self) -> bool:
        return False

    def initial_state(self, batch_size: int = 1) -> Tuple[np.ndarray, ...]:
        """Zero states of the stream step for ``batch_size`` streams."""
        return tuple(np.zeros((batch_size,) + shape, np.float32)
                     for shape in self.info.state_shapes)

    def stream_step(self, frames_in: np.ndarray, states: Sequence[np.ndarray]
                    ) -> Tuple[np.ndarray, Tuple[np.ndarray, ...]]:
        """One stream step: a frame per stream and the states in.

        Args:
            frames_in: ``(B, D, D, C)`` in the stored dtype.
            states: as from :meth:`initial_state` or the previous step.

        Returns:
            ``(probabilities (B, K) float32, new states)``.

        Raises:
            ActrecogError: the model has no stream step, or bad shapes.
        """
        if not self.has_stream_step:
            raise ActrecogError(f"{self.path}: the exported model has no "
                                f"{STREAM_SIGNATURE} (no stream mode)")
        frames_in = self._checked(frames_in, (None,) + self.info.window_shape[1:], "frames")
        if getattr(self, "_state_dtypes", None) is None:
            self._state_dtypes = tuple(state.dtype for state in self.initial_state(1))
        states = tuple(np.asarray(state, dtype) for state, dtype in zip(states,
                                                                       self._state_dtypes))
        if len(states) != len(self.info.state_shapes):
            raise ActrecogError(f"{self.path}: {STREAM_SIGNATURE} takes "
                                f"{len(self.info.state_shapes)} states, got {len(states)}")
        return self._run_stream(frames_in, states)

    def _checked(self, array, shape, what: str) -> np.ndarray:
        array = np.asarray(array)
        if array.dtype != np.dtype(self.info.dtype):
            raise ActrecogError(f"{self.path}: {what} must be {self.info.dtype} (the stored "
                                f"pixels), got {array.dtype}")
        if array.ndim != len(shape) or any(
                want is not None and got != want for got, want in zip(array.shape, shape)):
            raise ActrecogError(f"{self.path}: {what} of shape {array.shape}, expected "
                                f"(B,) + {tuple(shape[1:])}")
        return np.ascontiguousarray(array)

    def _run_windows(self, windows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _run_stream(self, frames_in, states):
        raise NotImplementedError


class SavedModelRunner(ExportedModel):
    """A SavedModel folder run through ``tf.saved_model.load``."""

    kind = "saved_model"

    def __init__(self, path: str, info: ExportInfo):
        super().__init__(path, info)
        try:
            self._loaded = tf.saved_model.load(path)
        except (OSError, ValueError, tf.errors.OpError) as error:
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ActrecogError(f"{path}: not a loadable SavedModel ({first_line})") from None
        signatures = self._loaded.signatures
        if SERVING_SIGNATURE not in signatures:
            raise ActrecogError(f"{path}: SavedModel without a {SERVING_SIGNATURE} signature")
        self._serve = signatures[SERVING_SIGNATURE]
        self._stream = signatures.get(STREAM_SIGNATURE)

    @property
    def has_stream_step(self) -> bool:
        return self._stream is not None and bool(self.info.state_shapes)

    def _run_windows(self, windows):
        return self._serve(**{WINDOW_INPUT_NAME: tf.constant(windows)})[
            PROBABILITIES_NAME].numpy()

    def _run_stream(self, frames_in, states):
        inputs = {FRAME_INPUT_NAME: tf.constant(frames_in)}
        inputs.update({state_input_name(i): tf.constant(state)
                       for i, state in enumerate(states)})
        outputs = self._stream(**inputs)
        return (outputs[PROBABILITIES_NAME].numpy(),
                tuple(outputs[new_state_name(i)].numpy() for i in range(len(states))))
