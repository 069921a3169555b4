"""Runners for a model file: a stream step online when the model streams, else
a window runner (:func:`load_runner`)."""

from coreLib.data import manifest as manifest_lib
from coreLib.errors import ActrecogError
from coreLib.inference import exported_model, model_loading
from coreLib.inference.stream_steps import ExportedStreamStep, stream_step_builder
from coreLib.inference.window_runners import WindowRunner, make_window_runner


def load_exported_runner(model_name: str, model_path: str, manifest: manifest_lib.Manifest,
                         mode: str):
    """:func:`load_runner` for an export.py model (SavedModel folder, OUT_DIR or
    ``.tflite`` file): its stream step online when it has one, else its window
    model.

    Raises:
        ActrecogError: an exported model of another name, classes or window, or
            a stream-only file asked for offline mode.
    """
    # Online a stream step runs one frame per call: one LiteRT thread is quicker
    # than two that synchronise on every small op.
    model = exported_model.load_exported(model_path, num_threads=1 if mode == "online" else None)
    exported_model.check_matches(model, model_name, manifest.classes,
                                 manifest.window_shape, manifest.dtype)
    if mode == "online" and model.has_stream_step:
        return model, "stream", ExportedStreamStep(model)
    if not model.has_window_model:
        raise ActrecogError(f"{model_path}: holds only the stream step; offline "
                            f"mode needs the window model ({model_name}.tflite or "
                            f"the SavedModel), or use --mode online")
    return model, "window", WindowRunner(exported_model.make_scoring_forward(model, False))


def load_runner(model_name: str, model_path: str, manifest: manifest_lib.Manifest, mode: str):
    """The model and how it runs: ``(model, "stream", StreamStep)`` for a
    streaming model online, else ``(model, "window", WindowRunner)``; exported
    models through :func:`load_exported_runner`.

    Args:
        model_name: the model's builder name (``CausalMobileNet``, ...).
        model_path: weights, a ``.keras`` model or an export.py model.
        manifest: window shape, dtype and classes (:mod:`coreLib.inference.model_spec`).
        mode: ``offline`` or ``online``.
    """
    if exported_model.is_exported_path(model_path):
        return load_exported_runner(model_name, model_path, manifest, mode)
    model = model_loading.load_model(model_name, model_path, manifest)
    builder = stream_step_builder(model_name)
    if builder is not None and mode == "online":
        return model, "stream", builder(model, manifest)
    return model, "window", make_window_runner(model_name, model, manifest)
