"""Runners for a model file: a stream step online when the model streams (unless
its window model is asked for), else a window runner (:func:`load_runner`)."""

from coreLib.data import manifest as manifest_lib
from coreLib.errors import ActrecogError
from coreLib.inference import exported_model, model_loading
from coreLib.inference.stream_steps import ExportedStreamStep, stream_step_builder
from coreLib.inference.window_runners import WindowRunner, make_window_runner


def load_exported_runner(model_name: str, model_path: str, manifest: manifest_lib.Manifest,
                         mode: str, online_runner: str = "stream"):
    """:func:`load_runner` for an export.py model (SavedModel folder, OUT_DIR or
    ``.tflite`` file): online its stream step when it has one and
    ``online_runner`` is ``stream``, else its window model.

    Raises:
        ActrecogError: an exported model of another name, classes or window, or
            a stream-only file asked for offline mode or the window runner.
    """
    # Online a stream step runs one frame per call: one LiteRT thread is quicker
    # than two that synchronise on every small op.
    model = exported_model.load_exported(model_path, num_threads=1 if mode == "online" else None)
    exported_model.check_matches(model, model_name, manifest.classes,
                                 manifest.window_shape, manifest.dtype)
    if mode == "online" and model.has_stream_step and online_runner == "stream":
        return model, "stream", ExportedStreamStep(model)
    if not model.has_window_model:
        if mode == "online":
            raise ActrecogError(f"{model_path}: holds only the stream step; "
                                f"--online-runner window needs the window model "
                                f"({model_name}.tflite or the SavedModel)")
        raise ActrecogError(f"{model_path}: holds only the stream step; offline "
                            f"mode needs the window model ({model_name}.tflite or "
                            f"the SavedModel), or use --mode online")
    return model, "window", WindowRunner(exported_model.make_scoring_forward(model, False))


def load_runner(model_name: str, model_path: str, manifest: manifest_lib.Manifest, mode: str,
                online_runner: str = "stream"):
    """The model and how it runs: ``(model, "stream", StreamStep)`` for a
    streaming model online with ``online_runner`` ``stream``, else
    ``(model, "window", WindowRunner)``; exported models through
    :func:`load_exported_runner`.

    Args:
        model_name: the model's builder name (``CausalMobileNet``, ...).
        model_path: weights, a ``.keras`` model or an export.py model.
        manifest: window shape, dtype and classes (:mod:`coreLib.inference.model_spec`).
        mode: ``offline`` or ``online``.
        online_runner: online, a streaming model: ``stream`` (its stream step,
            one frame at a time with its state) or ``window`` (its window model
            on the window ending at each frame, as a window model runs online).
            Models without a stream step run windows either way.

    Raises:
        ValueError: an unknown ``online_runner``.
    """
    if online_runner not in ("stream", "window"):
        raise ValueError(f"online_runner must be stream or window, got {online_runner!r}")
    if exported_model.is_exported_path(model_path):
        return load_exported_runner(model_name, model_path, manifest, mode, online_runner)
    model = model_loading.load_model(model_name, model_path, manifest)
    builder = stream_step_builder(model_name)
    if builder is not None and mode == "online" and online_runner == "stream":
        return model, "stream", builder(model, manifest)
    return model, "window", make_window_runner(model_name, model, manifest)
