"""A streaming model's LiteRT stream step, converted from train.py's weights once
and kept beside them.

detect.py online (and a live run) from ``<M>.weights.h5`` would otherwise run the
Keras stream step, which is bound by dispatching its ~220 small graph ops per
frame (~4 ms); the LiteRT file needs ~0.1 ms. The conversion is export.py's own
(:func:`coreLib.export.export_model.export`, float32, with its parity check), run
once into ``<weights folder>/.litert-<weights stem>-<key>/`` (an OUT_DIR), where
the key hashes the weights file, the run config and the TensorFlow version: new
weights get a new folder, and the folders of older keys are removed.
"""

import hashlib
import os
import shutil
from typing import Callable, Optional

from coreLib import storage
from coreLib.data import manifest as manifest_lib
from coreLib.errors import ActrecogError
from coreLib.export import export_model
from coreLib.inference import exported_model

CACHE_PREFIX = ".litert-"
KEY_CHARS = 16
# Parity windows of the conversion's own check (export.py's default is 64).
CACHE_PARITY_WINDOWS = 8


def cache_key(weights_path: str) -> str:
    """Hash of the weights file, its run config and the TensorFlow version."""
    digest = hashlib.sha256()
    digest.update(storage.sha256_of(weights_path).encode())
    run_config = storage.join(os.path.dirname(weights_path) or ".",
                              manifest_lib.RUN_CONFIG_NAME)
    if storage.exists(run_config):
        digest.update(storage.read_bytes(run_config))
    digest.update(storage.tf.__version__.encode())
    return digest.hexdigest()[:KEY_CHARS]


def cache_dir(weights_path: str) -> str:
    """``<folder>/.litert-<stem>-<key>``."""
    folder = os.path.dirname(os.path.abspath(weights_path))
    stem = os.path.basename(weights_path).split(".")[0]
    return os.path.join(folder, f"{CACHE_PREFIX}{stem}-{cache_key(weights_path)}")


def _remove_stale(current: str) -> None:
    folder, name = os.path.split(current)
    prefix = name[:-KEY_CHARS]
    for other in os.listdir(folder):
        if other.startswith(prefix) and other != name:
            shutil.rmtree(os.path.join(folder, other), ignore_errors=True)


def cached_stream_model(model_name: str, weights_path: str,
                        log: Callable[[str], None] = lambda line: None
                        ) -> Optional[exported_model.ExportedModel]:
    """The LiteRT stream step of a streaming model's weights, converted on first
    use; None when it cannot be had (a remote or read-only weights folder, a
    model without a stream mode, a conversion that fails its parity check) -
    then the caller runs the Keras step (``log`` says why).

    Raises:
        ActrecogError: the weights do not fit the model (as loading them would).
    """
    if storage.is_remote(weights_path):
        log(f"{weights_path}: remote weights run on the Keras stream step (no LiteRT cache)")
        return None
    target = cache_dir(weights_path)
    stream_file = os.path.join(target, export_model.litert_file_name(
        model_name, export_model.config_lib.FLOAT32_FORMAT, stream=True))
    json_file = os.path.join(target, exported_model.EXPORT_JSON_NAME)
    if not (os.path.exists(json_file) and os.path.exists(stream_file)):
        log(f"converting {os.path.basename(weights_path)}'s stream step to LiteRT once "
            f"(cached in {target})")
        config = export_model.ExportConfig(model_name, weights_path, target,
                                           formats=(export_model.config_lib.FLOAT32_FORMAT,),
                                           parity_windows=CACHE_PARITY_WINDOWS)
        try:
            export_model.export(config)
        except export_model.ParityError as error:
            log(f"LiteRT conversion failed its parity check ({error}); running Keras")
            shutil.rmtree(target, ignore_errors=True)
            return None
        except ActrecogError as error:
            if "not writable" in str(error):
                log(f"{os.path.dirname(target)}: not writable; running the Keras stream step")
                return None
            raise
        if not os.path.exists(stream_file):     # no stream mode: nothing to cache
            shutil.rmtree(target, ignore_errors=True)
            return None
        _remove_stale(target)
    return exported_model.load_exported(stream_file, num_threads=1)
