"""Resume state of main.py: what a killed run left behind, reused or cleared.

A run writes ``DataSet/.preprocess-state.json`` with its run key
(:meth:`coreLib.preprocessing.plan.Plan.run_key`) before its first shard, and
removes it after ``dataset.json``. Shards on disk are trusted only when the state
file holds this run's key; otherwise the outputs of the earlier run (other
arguments, or of unknown origin) are removed first. The decoding caches of killed
runs with other arguments are removed too.
"""

import json
import os
import shutil
from typing import Optional

from coreLib import storage
from coreLib.data import manifest
from coreLib.preprocessing.decode_pool import CACHE_PREFIX

STATE_NAME = ".preprocess-state.json"


def _remove(path: str) -> None:
    """Removes a file if it exists."""
    if storage.exists(path):
        storage.remove(path)


def _clear_outputs(dataset_dir: str) -> None:
    """Removes the outputs of an earlier run with other arguments (or of unknown origin)."""
    _remove(manifest.manifest_path(dataset_dir))
    for split in manifest.RECORD_SPLITS:
        folder = storage.join(dataset_dir, manifest.TFRECORD_FOLDER, split)
        for name in storage.listdir(folder):
            if name.startswith(f"{split}_") and name.endswith(".tfrecord"):
                storage.remove(storage.join(folder, name))
    for name in storage.listdir(dataset_dir):
        if name.startswith("mode:") and name.endswith(".json"):
            storage.remove(storage.join(dataset_dir, name))


def _read_state(path: str) -> Optional[str]:
    """The run key of a state file (None: none, or unreadable)."""
    if not storage.exists(path):
        return None
    try:
        return json.loads(storage.read_bytes(path).decode("utf-8")).get("run_key")
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None


def prepare_dataset_dir(dataset_dir: str, run_key: str) -> str:
    """Creates ``DataSet/`` and its shard folders, sweeps temporaries, and clears
    the outputs unless the state file holds ``run_key``; returns the state file."""
    folders = [dataset_dir] + [storage.join(dataset_dir, manifest.TFRECORD_FOLDER, split)
                               for split in manifest.RECORD_SPLITS]
    for folder in folders:
        storage.makedirs(folder)
        storage.remove_temporaries(folder)
    state_path = storage.join(dataset_dir, STATE_NAME)
    if _read_state(state_path) != run_key:
        # Shards on disk are only trusted when the state file says they were
        # written with these arguments.
        _clear_outputs(dataset_dir)
        storage.write_json_atomic(state_path, {"run_key": run_key})
    else:
        _remove(manifest.manifest_path(dataset_dir))
    return state_path


def finish(state_path: str) -> None:
    """Removes the state file once ``dataset.json`` is written."""
    _remove(state_path)


def remove_stale_caches(folder: str) -> None:
    """Removes the decoding caches of killed runs with other arguments beside
    this run's ``folder``."""
    parent = os.path.dirname(folder)
    for name in os.listdir(parent):
        if name.startswith(CACHE_PREFIX) and os.path.join(parent, name) != folder:
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
