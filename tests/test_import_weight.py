"""The base, the data code and main.py's worker side load without TensorFlow.

Each check runs in a fresh interpreter: importing these modules (and main.py's
decoding/shard-writing workers) must not pull in TensorFlow, which costs seconds and
~700 MB per process; the stage packages below them may.
"""

import subprocess
import sys

import pytest

TF_FREE_MODULES = (
    "coreLib", "coreLib.errors", "coreLib.cli", "coreLib.storage",
    "coreLib.data", "coreLib.data.labels", "coreLib.data.frames", "coreLib.data.windows",
    "coreLib.data.manifest", "coreLib.data.record_keys",
    "coreLib.preprocessing.sequence_cache", "coreLib.preprocessing.tfrecord_io",
    "coreLib.preprocessing.shard_writer", "coreLib.preprocessing.png_check",
    "coreLib.data.window_lists", "coreLib.inference.frame_reader",
    "coreLib.inference.export_info", "coreLib.export.config", "coreLib.export.windows",
    "coreLib.synthetic.generator", "coreLib.evaluation.video", "main", "videogen",
)


def loads_tensorflow(code: str, repo_root: str) -> bool:
    result = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('tensorflow' in sys.modules)"],
        cwd=repo_root, capture_output=True, text=True, timeout=120, check=True)
    return result.stdout.strip().splitlines()[-1] == "True"


def test_modules_and_local_reads_stay_tensorflow_free(repo_root, tmp_path):
    # One interpreter, checked after each import (the first module that loads
    # TensorFlow is the one named), then real local reads through storage.
    code = f"""
import importlib, sys
for name in {TF_FREE_MODULES!r}:
    importlib.import_module(name)
    assert 'tensorflow' not in sys.modules, name + ' loads TensorFlow'
import numpy as np, cv2
from coreLib import storage
from coreLib.data import frames, labels
folder = {str(tmp_path)!r}
cv2.imwrite(folder + '/color_0.png', np.zeros((4, 5, 3), np.uint8))
open(folder + '/a.xml', 'w').write('<opencv_storage><l><_><pos>0</pos><len>1</len></_></l></opencv_storage>')
assert frames.read_frame(folder, 'color', 0).shape == (4, 5, 3)
assert frames.count_frames(folder) == 1
assert labels.read_label_file(folder + '/a.xml')[0].len == 1
storage.write_json_atomic(folder + '/x.json', {{'a': 1}})
assert storage.read_json(folder + '/x.json') == {{'a': 1}}
assert storage.remove_temporaries(folder) == 0
"""
    assert not loads_tensorflow(code, repo_root)


@pytest.mark.slow
def test_models_do_load_tensorflow(repo_root):
    # The check above is not vacuous: the model stage does pull TensorFlow in.
    assert loads_tensorflow("import coreLib.models", repo_root)
