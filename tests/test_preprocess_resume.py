"""A main.py run killed with SIGKILL, once while decoding and once while writing
shards, then started again: the final DEST is byte-identical to an uninterrupted
run, finished work is reused, and no temporary file survives."""

import os

import pytest

from coreLib.preprocessing import decode_pool, preprocess
from file_trees import tree_bytes
from tiny_dataset import make_dataset

# Minutes of training and killed processes: outside `make test-fast`.
pytestmark = pytest.mark.slow

# Larger frames and longer sequences than the other tests, so that each phase
# lasts long enough to be interrupted.
LAYOUT = {
    "Train": {subject: {"act-a": (30, [(3, 8), (18, 9)]), "act-b": (28, [(0, 6), (20, 8)])}
              for subject in ("LN", "ann", "bob", "cat")},
    "Test": {"zed": {"act-a": (24, [(4, 6)]), "act-b": (22, [(10, 12)])}},
}
ARGUMENTS = ["--batch-size", "2", "--shard-size", "1", "--workers", "1", "--seq-len", "4"]


def config(src, dest):
    return preprocess.PreprocessConfig(src=str(src), dest=str(dest), batch_size=2,
                                       shard_size=1, workers=1, seq_len=4)


def killed_run(runner, src, dest, ready):
    """Starts main.py on ``src`` and SIGKILLs it as soon as ready() holds."""
    child = runner.spawn("main.py", [str(src), str(dest)] + ARGUMENTS)
    assert runner.kill_when(child, ready), \
        f"main.py ended before the kill point: {runner.wait(child).stderr[-2000:]}"


def cache_files(dest):
    found = []
    for name in os.listdir(dest) if os.path.isdir(dest) else []:
        if name.startswith(decode_pool.CACHE_PREFIX):
            folder = os.path.join(dest, name)
            found += [os.path.join(folder, f) for f in os.listdir(folder)
                      if f.endswith(".raw")]
    return found


def shard_files(dest):
    folder = os.path.join(dest, "DataSet", "TFRECORD", "Train")
    return [name for name in os.listdir(folder) if name.endswith(".tfrecord")] \
        if os.path.isdir(folder) else []


@pytest.mark.slow
def test_killed_runs_resume_to_identical_bytes(tmp_path, script_runner):
    src = make_dataset(str(tmp_path / "src"), LAYOUT, width=320, height=240,
                       modalities=("color",))
    reference_dest = tmp_path / "reference"
    preprocess.run_preprocessing(config(src, reference_dest), progress=False)
    reference = tree_bytes(str(reference_dest))
    dest = str(tmp_path / "dest")

    # 1: killed while decoding, after two sequences reached the cache.
    killed_run(script_runner, src, dest, lambda: len(cache_files(dest)) >= 2)
    assert not os.path.exists(os.path.join(dest, "DataSet"))
    survivors = {path: os.stat(path).st_ino for path in cache_files(dest)}

    # 2: started again, killed while writing Train shards.
    killed_run(script_runner, src, dest, lambda: len(shard_files(dest)) >= 3)
    assert not os.path.exists(os.path.join(dest, "DataSet", "dataset.json"))
    # The first run's cache files were reused, not decoded again.
    assert {path: os.stat(path).st_ino for path in survivors} == survivors

    # 3: started again, runs to the end.
    summary = preprocess.run_preprocessing(config(src, dest), progress=False)
    assert summary.frames_decoded == 0  # every sequence came from the cache
    assert summary.shards_reused >= 3
    assert tree_bytes(dest) == reference
