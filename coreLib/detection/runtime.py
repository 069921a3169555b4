"""Which runner detection uses for a model file, with the LiteRT stream step of
train.py's weights (:mod:`coreLib.export.litert_cache`) when the config asks for
it (``stream_runtime="litert"``, detect.py's default): online detection is as fast
from the weights as from the export."""

import sys

from coreLib import models
from coreLib.data import manifest as manifest_lib
from coreLib.detection.config import DetectConfig
from coreLib.export import litert_cache
from coreLib.inference import exported_model, model_spec, runners, stream_steps

STREAM_RUNTIMES = ("litert", "keras")


def _log(line: str) -> None:
    print(f"detect.py: {line}", file=sys.stderr, flush=True)


def checked_model_spec(config: DetectConfig) -> manifest_lib.Manifest:
    """The window shape, classes and modality of the run's model, after checking
    MODEL_NAME and MODEL_PATH (before any other input of a recorded or live run).

    Raises:
        ActrecogError: an unknown MODEL_NAME, a MODEL_PATH that is not a model file,
            or no manifest to be had for it.
    """
    models.get_model_builder(config.model_name)
    model_spec.check_model_path(config.model_path)
    return model_spec.resolve_model_spec(config.model_path, config.manifest_dir,
                                         config.modality)


def load_runner(config: DetectConfig, manifest: manifest_lib.Manifest, mode: str, log=_log):
    """``(model, kind, runner)`` as :func:`coreLib.inference.runners.load_runner`
    with ``config.online_runner``, the Keras stream step of a streaming model's
    weights replaced by its cached LiteRT one when ``config.stream_runtime`` is
    ``litert``."""
    model, kind, runner = runners.load_runner(config.model_name, config.model_path,
                                              manifest, mode, config.online_runner)
    if (kind != "stream" or config.stream_runtime != "litert"
            or exported_model.is_exported_path(config.model_path)):
        return model, kind, runner
    cached = litert_cache.cached_stream_model(config.model_name, config.model_path, log)
    if cached is None:
        return model, kind, runner
    exported_model.check_matches(cached, config.model_name, manifest.classes,
                                 manifest.window_shape, manifest.dtype)
    return cached, kind, stream_steps.ExportedStreamStep(cached)
