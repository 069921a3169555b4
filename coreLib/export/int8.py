"""The full-integer files: ``<M>_int8.tflite`` (window) and
``<M>_int8_stream.tflite`` (stream step), calibrated on real windows.

The window file is calibrated on the calibration windows as they are; the stream
step on a representative stream, as MoViNet's own quantisation tool does: every
calibration window fed frame by frame to the float32 int8 graph from the zero
state, each step's frame and the states the float model carried to it. So every
state tensor is calibrated on the values it holds in use and gets its own scale.
"""

from typing import Callable, Dict, Iterator, List, Tuple

import numpy as np

from coreLib import storage
from coreLib.data import manifest as manifest_lib
from coreLib.errors import ActrecogError
from coreLib.export import config as config_lib, litert, saved_model, tflm_ops
from coreLib.export.stream_modes import Int8Graph
from coreLib.inference import exported_model
from coreLib.preprocessing import records

tf = storage.tf


def _window_representative(scaled: np.ndarray) -> Callable[[], Iterator[dict]]:
    def windows():
        for index in range(len(scaled)):
            yield {exported_model.WINDOW_INPUT_NAME: scaled[index:index + 1]}
    return windows


def carried_states(graph: Int8Graph, scaled: np.ndarray, batch_size: int = 64
                   ) -> List[List[np.ndarray]]:
    """``[step][state] (N,) + shape`` float32: the states the float int8 graph holds
    before each of the L frames of every window (the zero state first)."""
    mode = graph.stream_mode
    steps = []
    for begin in range(0, len(scaled), batch_size):
        batch = scaled[begin:begin + batch_size]
        states = [np.zeros((len(batch),) + shape, np.float32) for shape in mode.state_shapes]
        for offset in range(batch.shape[1]):
            if len(steps) <= offset:
                steps.append([[] for _ in states])
            for index, state in enumerate(states):
                steps[offset][index].append(state)
            _, new_states = mode.step(tf.constant(batch[:, offset]),
                                      [tf.constant(state) for state in states])
            states = [np.asarray(state, np.float32) for state in new_states]
    return [[np.concatenate(parts) for parts in step] for step in steps]


def _stream_representative(graph: Int8Graph, scaled: np.ndarray
                           ) -> Callable[[], Iterator[dict]]:
    steps = carried_states(graph, scaled)

    def frames_and_states():
        for offset, states in enumerate(steps):
            for index in range(len(scaled)):
                inputs = {exported_model.FRAME_INPUT_NAME: scaled[index:index + 1, offset]}
                inputs.update({exported_model.state_input_name(number): state[index:index + 1]
                               for number, state in enumerate(states)})
                yield inputs
    return frames_and_states


def check_file(content: bytes, file_name: str) -> dict:
    """The int8 checks of one file: builtin ops only, every kernel on integer
    tensors (refused otherwise), and which ops TFLM lacks (reported).

    Returns:
        ``{"ops", "tflm_missing_ops", "arena_bytes"}``.
    """
    ops = litert.litert_op_names(content)
    litert.check_builtin_only(ops, file_name)
    litert.check_integer_only(content, file_name)
    return {"ops": ops, "tflm_missing_ops": tflm_ops.ops_outside_tflm(ops),
            "arena_bytes": litert.planned_arena_bytes(content)}


def convert_int8(config: config_lib.ExportConfig, graph: Int8Graph,
                 manifest: manifest_lib.Manifest, calibration: np.ndarray, scratch: str,
                 log: Callable[[str], None]) -> Dict[str, Tuple[bytes, dict]]:
    """Converts the int8 graph to the full-integer files.

    Args:
        calibration: ``(N, L, D, D, C)`` stored-dtype calibration windows.
        scratch: a folder for the float SavedModel the converter reads.

    Returns:
        file name -> ``(content, check_file figures)``.

    Raises:
        ActrecogError: a graph that does not convert to int8 builtin kernels.
    """
    scaled = np.asarray(records.scale_pixels(calibration, manifest.dtype), np.float32)
    folder = f"{scratch}/int8_saved_model"
    saved_model.write_checked_saved_model(config.model_path, graph.window_model, manifest,
                                          folder, graph.stream_mode, scaled_input=True)
    jobs = [(config_lib.litert_file_name(config.model_name, config_lib.INT8_FORMAT),
             exported_model.SERVING_SIGNATURE, _window_representative(scaled))]
    if graph.stream_mode is not None:
        jobs.append((config_lib.litert_file_name(config.model_name, config_lib.INT8_FORMAT,
                                                 stream=True),
                     exported_model.STREAM_SIGNATURE, _stream_representative(graph, scaled)))
    files = {}
    for file_name, signature, representative in jobs:
        log(f"converting {signature} to LiteRT int8 (calibrated on {len(scaled)} windows)")
        content = litert.convert_to_litert(folder, signature, config_lib.INT8_FORMAT,
                                           representative)
        files[file_name] = (content, check_file(content, file_name))
    return files


def stream_state_description(runner: exported_model.LiteRTRunner, names) -> list:
    """Per state of an int8 stream file: name, shape, scale and zero point."""
    states = []
    for index, name in enumerate(names):
        detail = runner.input_details[exported_model.state_input_name(index)]
        scale, zero_point = detail["quantization"]
        states.append({"name": name, "shape": [int(size) for size in detail["shape"][1:]],
                       "dtype": np.dtype(detail["dtype"]).name, "scale": float(scale),
                       "zero_point": int(zero_point)})
    return states


def check_graph_matches(graph: Int8Graph, model, windows: np.ndarray, dtype: str,
                        tolerance: float = 1e-5) -> float:
    """The float int8 graph gives the Keras model's outputs (max |diff|).

    Raises:
        ActrecogError: it does not (the rewrite would be wrong).
    """
    scaled = records.scale_pixels(windows[:32], dtype)
    diff = float(np.max(np.abs(np.asarray(graph.window_model(scaled, training=False))
                               - np.asarray(model(scaled, training=False)))))
    if diff > tolerance:
        raise ActrecogError(f"the int8 export graph differs from the model by {diff:.3g}")
    return diff
