"""A ``.tflite`` file run by the ``ai-edge-litert`` interpreter, full-integer files
included: their runner scales and quantises the stored pixels with the input's own
scale and zero point, dequantises the output and keeps the stream state in the
file's int8 (requantised only where an output's scale differs from its input's).
"""

import contextlib
import os
import sys
from typing import Optional, Tuple

import numpy as np

from coreLib import storage
from coreLib.data import frames as frames_lib
from coreLib.errors import ActrecogError
from coreLib.inference.export_info import (
    FRAME_INPUT_NAME, PROBABILITIES_NAME, SERVING_SIGNATURE, STREAM_SIGNATURE,
    WINDOW_INPUT_NAME, ExportInfo, new_state_name, state_input_name)
from coreLib.inference.exported_runner import ExportedModel
from coreLib.inference.quantization import dequantize, quantize


@contextlib.contextmanager
def _quiet_stderr():
    """Points file descriptor 2 at /dev/null (the LiteRT runtime's C++ chatter)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def litert_interpreter(model_content: bytes = None, model_path: str = None,
                       num_threads: Optional[int] = None):
    """An ``ai_edge_litert`` interpreter for a ``.tflite`` (bytes or local path).

    Args:
        num_threads: CPU threads (None: the cores this process may use).
    """
    from ai_edge_litert.interpreter import Interpreter

    if num_threads is None:
        num_threads = len(os.sched_getaffinity(0))
    return Interpreter(model_path=model_path, model_content=model_content,
                       num_threads=num_threads)


class LiteRTRunner(ExportedModel):
    """A ``.tflite`` file run by the LiteRT interpreter (batch resized per call).

    A file holds one signature: ``serving_default`` (window models) or
    ``stream_step`` (``<MODEL_NAME>_stream.tflite``).
    """

    kind = "litert"

    def __init__(self, path: str, info: ExportInfo, num_threads: Optional[int] = None):
        super().__init__(path, info)
        try:
            self.interpreter = litert_interpreter(storage.read_bytes(path),
                                                  num_threads=num_threads)
        except (ValueError, RuntimeError) as error:
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ActrecogError(f"{path}: not a runnable LiteRT model ({first_line})") from None
        signatures = self.interpreter.get_signature_list()
        self._serve = (self.interpreter.get_signature_runner(SERVING_SIGNATURE)
                       if SERVING_SIGNATURE in signatures else None)
        self._stream = (self.interpreter.get_signature_runner(STREAM_SIGNATURE)
                        if STREAM_SIGNATURE in signatures else None)
        if self._serve is None and self._stream is None:
            raise ActrecogError(f"{path}: LiteRT model without a {SERVING_SIGNATURE} or "
                                f"{STREAM_SIGNATURE} signature")
        runner = self._serve if self._serve is not None else self._stream
        self.input_details = runner.get_input_details()
        self.output_details = runner.get_output_details()
        pixel_input = WINDOW_INPUT_NAME if self._serve is not None else FRAME_INPUT_NAME
        self.integer = self.input_details[pixel_input]["dtype"] == np.int8
        # The runtime announces its CPU delegate on stderr at the first allocation;
        # allocating once here, quietly, keeps the scripts' stderr to one line.
        with _quiet_stderr():
            if self._serve is not None:
                self._run_windows(np.zeros((1,) + info.window_shape, info.dtype))
            elif info.state_shapes:
                self._run_stream(np.zeros((1,) + info.window_shape[1:], info.dtype),
                                 self.initial_state(1))

    @property
    def has_window_model(self) -> bool:
        return self._serve is not None

    @property
    def has_stream_step(self) -> bool:
        return self._stream is not None and bool(self.info.state_shapes)

    def initial_state(self, batch_size: int = 1) -> Tuple[np.ndarray, ...]:
        """Zero states in the file's own shapes and dtype (int8: its zero point)."""
        if self._stream is None:
            return super().initial_state(batch_size)
        states = []
        for index in range(len(self.info.state_shapes)):
            detail = self.input_details[state_input_name(index)]
            scale, zero_point = detail["quantization"]
            states.append(np.full((batch_size,) + tuple(detail["shape"][1:]),
                                  zero_point if self.integer else 0, detail["dtype"]))
        return tuple(states)

    def _pixels_in(self, pixels: np.ndarray, name: str) -> np.ndarray:
        """Stored pixels as the file takes them: as they are, or (int8 files)
        scaled like the other files' graphs and quantised with the input's own
        scale and zero point."""
        if not self.integer:
            return pixels
        scale = np.float32(frames_lib.MODEL_INPUT_SCALE[self.info.dtype])
        scaled = np.minimum(pixels.astype(np.float32), scale) / scale
        return quantize(scaled, self.input_details[name])

    def _probabilities_out(self, values: np.ndarray) -> np.ndarray:
        if not self.integer:
            return values.copy()   # the runner's buffers are reused by the next call
        return dequantize(values, self.output_details[PROBABILITIES_NAME])

    def _run_windows(self, windows):
        if self._serve is None:
            raise ActrecogError(f"{self.path}: holds only the {STREAM_SIGNATURE}; "
                                f"windows go to the window model's .tflite")
        outputs = self._serve(**{WINDOW_INPUT_NAME: self._pixels_in(windows,
                                                                    WINDOW_INPUT_NAME)})
        return self._probabilities_out(outputs[PROBABILITIES_NAME])

    def _run_stream(self, frames_in, states):
        inputs = {FRAME_INPUT_NAME: self._pixels_in(frames_in, FRAME_INPUT_NAME)}
        inputs.update({state_input_name(i): np.ascontiguousarray(state)
                       for i, state in enumerate(states)})
        outputs = self._stream(**inputs)
        if getattr(self, "_requantized", None) is None:
            # Which new states come out with other (scale, zero point) than their
            # input takes: decided once, from the file's details.
            self._requantized = tuple(
                self.integer and self.output_details[new_state_name(index)]["quantization"]
                != self.input_details[state_input_name(index)]["quantization"]
                for index in range(len(states)))
        new_states = []
        for index in range(len(states)):
            value = outputs[new_state_name(index)]
            if self._requantized[index]:
                value = quantize(dequantize(value, self.output_details[new_state_name(index)]),
                                 self.input_details[state_input_name(index)])
            new_states.append(value.copy())
        return self._probabilities_out(outputs[PROBABILITIES_NAME]), tuple(new_states)
