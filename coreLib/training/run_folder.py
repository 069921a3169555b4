"""MODEL_DIR before a run: what it may hold, whether it holds this run, claiming it.

Nothing here writes until :func:`claim_model_dir`, the run's first write, made
once every check (the model's build too) has passed: a refused run creates
nothing.
"""

from coreLib import storage
from coreLib.data import manifest as manifest_lib
from coreLib.training.config import TrainConfig
from coreLib.errors import ActrecogError

tf = storage.tf

RUN_CONFIG_NAME = manifest_lib.RUN_CONFIG_NAME
CHECKPOINT_FOLDER = "checkpoints"


def run_config_of(config: TrainConfig, manifest: manifest_lib.Manifest) -> dict:
    """What must not change between a run and its resumption."""
    value = {"model_name": config.model_name,
             "window_shape": list(manifest.window_shape),
             "num_classes": manifest.num_classes,
             "classes": list(manifest.classes),
             # What export.py needs besides the shape (not compared on resume).
             "modality": manifest.modality,
             "dtype": manifest.dtype,
             # Where export.py finds the Test windows (parity) and the Train windows
             # (int8 calibration) when it is not given --manifest.
             "dataset_dir": storage.absolute(config.dataset_dir)}
    # How score.py, detect.py and export.py must turn frames into windows
    # (absent: full frames, as 1.0.x's run configs).
    value.update(manifest_lib.frame_json(manifest))
    return value


def check_not_exported_model(dataset_dir: str, model_dir: str) -> None:
    """Refuses export.py's outputs (a .tflite file, a SavedModel) as DATASET_DIR or
    MODEL_DIR: they hold no checkpoints to resume and no records to train on.

    Raises:
        ActrecogError: naming the argument.
    """
    for argument, path in (("DATASET_DIR", dataset_dir), ("MODEL_DIR", model_dir)):
        if path.endswith(".tflite") or storage.exists(storage.join(path, "saved_model.pb")):
            raise ActrecogError(f"{path}: {argument} is an exported model (export.py's "
                                f"LiteRT or SavedModel), not a folder train.py can use")


def check_model_dir(model_dir: str, wanted: dict) -> bool:
    """Compares the run MODEL_DIR holds, if any, with this run (reads only).

    A run is a checkpoint: a ``run_config.json`` without one (a run refused or
    killed before its first checkpoint) holds nothing to resume or protect, and
    this run replaces it.

    Returns:
        True when MODEL_DIR already holds a run of this model and shape.

    Raises:
        ActrecogError: MODEL_DIR holds checkpoints of another model or shape (saying
            which), or checkpoints without a ``run_config.json``.
    """
    path = storage.join(model_dir, RUN_CONFIG_NAME)
    has_checkpoint = bool(tf.train.latest_checkpoint(storage.join(model_dir,
                                                                  CHECKPOINT_FOLDER)))
    if not has_checkpoint:
        return False
    if not storage.exists(path):
        raise ActrecogError(f"{model_dir}: holds checkpoints without {RUN_CONFIG_NAME}; "
                            f"use another MODEL_DIR")
    stored = storage.read_json(path, "run configuration")
    # The class order too: scoring maps the Test JSON's names by run_config.json's.
    for key in ("model_name", "window_shape", "num_classes", "classes", "frames"):
        if stored.get(key) != wanted.get(key):
            raise ActrecogError(
                f"{model_dir}: holds checkpoints of model {stored.get('model_name')} with "
                f"window {stored.get('window_shape')} and {stored.get('num_classes')} "
                f"classes, not {wanted['model_name']} with window {wanted['window_shape']} "
                f"and {wanted['num_classes']} classes ({key} differs); use another MODEL_DIR")
    return True


def claim_model_dir(model_dir: str, run_config: dict, resuming: bool) -> None:
    """The run's first write, once every check has passed: creates MODEL_DIR, clears
    temporaries of a killed run and writes ``run_config.json`` for a new run (the
    chief only calls it).

    Args:
        model_dir: MODEL_DIR, absolute.
        run_config: :func:`run_config_of` this run.
        resuming: :func:`check_model_dir` found this run's checkpoints there.

    Raises:
        ActrecogError: MODEL_DIR cannot be created or written.
    """
    storage.check_writable(model_dir)
    storage.remove_temporaries(model_dir)
    if not resuming:
        storage.write_json_atomic(storage.join(model_dir, RUN_CONFIG_NAME), run_config)
