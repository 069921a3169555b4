"""The SavedModel: ``serving_default`` and, with a stream mode, ``stream_step``."""

from typing import List, Optional

from coreLib import storage
from coreLib.data import manifest as manifest_lib
from coreLib.errors import ActrecogError
from coreLib.export.stream_modes import StreamMode
from coreLib.inference import exported_model
from coreLib.preprocessing import records

tf = storage.tf

import keras  # noqa: E402  (after the quiet TensorFlow import)

_CUDNN_OP_PREFIX = "Cudnn"


def write_saved_model(model, manifest: manifest_lib.Manifest, folder: str,
                      stream_mode: Optional[StreamMode] = None,
                      scaled_input: bool = False) -> None:
    """Writes the SavedModel: ``serving_default`` and, with a stream mode, ``stream_step``.

    Args:
        model: the (rebuilt) Keras model, ``(B, L, D, D, C)`` float32 -> ``(B, K)``.
        manifest: window shape and stored pixel dtype.
        folder: where to write (must not exist yet).
        stream_mode: see :class:`StreamMode`.
        scaled_input: the signatures take float32 pixels already scaled to the
            model's range (the int8 conversion's source: its input is quantised
            from that range) instead of the stored dtype scaled in the graph.
    """
    pixel_dtype = tf.float32 if scaled_input else tf.dtypes.as_dtype(manifest.dtype)

    def scale(pixels):
        return pixels if scaled_input else records.scale_pixels(pixels, manifest.dtype)

    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(window):
        return {exported_model.PROBABILITIES_NAME: model(scale(window), training=False)}

    archive.add_endpoint(exported_model.SERVING_SIGNATURE, serve, input_signature=[
        tf.TensorSpec((None,) + tuple(manifest.window_shape), pixel_dtype,
                      name=exported_model.WINDOW_INPUT_NAME)])
    if stream_mode is not None:
        for trackable in stream_mode.trackables:
            if trackable is not model:
                archive.track(trackable)
        state_count = len(stream_mode.state_shapes)

        def stream_step(frame, *states):
            probabilities, new_states = stream_mode.step(scale(frame), list(states))
            outputs = {exported_model.PROBABILITIES_NAME: probabilities}
            outputs.update({exported_model.new_state_name(i): new_states[i]
                            for i in range(state_count)})
            return outputs

        signature = [tf.TensorSpec((None,) + tuple(manifest.window_shape[1:]), pixel_dtype,
                                   name=exported_model.FRAME_INPUT_NAME)]
        signature += [tf.TensorSpec((None,) + tuple(shape), tf.float32,
                                    name=exported_model.state_input_name(i))
                      for i, shape in enumerate(stream_mode.state_shapes)]
        archive.add_endpoint(exported_model.STREAM_SIGNATURE, stream_step,
                             input_signature=signature)
    archive.write_out(folder, verbose=False)


def saved_model_op_types(folder: str) -> List[str]:
    """Sorted op types in a SavedModel's graph and its functions."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(storage.read_bytes(storage.join(folder, "saved_model.pb")))
    found = set()
    for graph in proto.meta_graphs:
        found.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            found.update(node.op for node in function.node_def)
    return sorted(found)


def write_checked_saved_model(model_path: str, model, manifest: manifest_lib.Manifest,
                              folder: str, stream_mode: Optional[StreamMode],
                              scaled_input: bool = False) -> None:
    """Writes the SavedModel and refuses a graph holding cuDNN-only ops.

    Raises:
        ActrecogError: naming MODEL_PATH and the ops.
    """
    write_saved_model(model, manifest, folder, stream_mode, scaled_input)
    cudnn_ops = [op for op in saved_model_op_types(folder) if op.startswith(_CUDNN_OP_PREFIX)]
    if cudnn_ops:
        raise ActrecogError(f"{model_path}: the exported graph holds cuDNN-only "
                            f"ops {', '.join(cudnn_ops)}")
