"""The whole suite against gs:// (the local GCS of tests/gcs_emulator.py).

main.py writes its DataSet into a bucket, byte-identical to a local run; debug.py
checks it there; train.py reads the shards from the bucket and keeps checkpoints,
weights, history and summaries there, is killed mid-epoch and resumes from the
bucket; score.py loads the weights from the bucket; and a bucket that goes away
mid-run ends train.py with one clear line while the last checkpoint stays usable.

The scripts run as forked real processes of a zygote that itself runs inside the
emulator's namespaces (tests/tool_runner.py); the bucket's contents are checked
through the emulator's API, independently of TensorFlow.
"""

import json
import os
import signal
import time

import pytest

from file_trees import tree_paths
from tiny_dataset import write_tiny_source
from tool_runner import REPO_ROOT, ToolRunner

pytestmark = [pytest.mark.gcs, pytest.mark.slow]

MAIN_OPTIONS = ["--image-dim", 8, "--batch-size", 2, "--shard-size", 3, "--workers", 1]
BATCH_SIZE = 2


@pytest.fixture(scope="module")
def gcs_runner(local_gcs, tmp_path_factory):
    with ToolRunner(str(tmp_path_factory.mktemp("gcs-runs")), launch=local_gcs.popen) as zygote:
        yield zygote


@pytest.fixture(scope="module")
def bucket(local_gcs):
    return local_gcs.create_bucket()


@pytest.fixture(scope="module")
def datasets(gcs_runner, local_gcs, bucket, tmp_path_factory):
    """main.py run twice on the same SRC: into a local folder and into the bucket."""
    root = tmp_path_factory.mktemp("gcs-e2e")
    src = write_tiny_source(str(root / "SRC"))
    for dest in (str(root / "local"), f"gs://{bucket}/out"):
        completed = gcs_runner.run("main.py", [src, dest, *MAIN_OPTIONS])
        assert completed.returncode == 0, completed.stderr[-2000:] + local_gcs.read_log()[-2000:]
    return {"local": str(root / "local" / "DataSet"), "remote": f"gs://{bucket}/out/DataSet",
            "root": str(root)}


def local_files(folder):
    return tree_paths(folder)


def test_main_into_bucket_is_byte_identical(local_gcs, bucket, datasets):
    local = local_files(datasets["local"])
    names = [name for name in local_gcs.list_objects(bucket, "out/DataSet/")
             if not name.endswith("/")]
    remote = {name[len("out/DataSet/"):]: name for name in names}
    assert sorted(remote) == sorted(local)
    assert not [name for name in remote if ".tmp-" in name]
    for relative, path in local.items():
        with open(path, "rb") as handle:
            assert local_gcs.read_object(bucket, remote[relative]) == handle.read(), relative
    manifest = json.loads(local_gcs.read_object(bucket, "out/DataSet/dataset.json"))
    shards = [shard for split in manifest["splits"].values() for shard in split["shards"]]
    assert len(shards) >= 4 and all(len(shard["sha256"]) == 64 for shard in shards)


def test_debug_check_on_the_bucket(gcs_runner, datasets):
    if not os.path.exists(os.path.join(REPO_ROOT, "debug.py")):
        pytest.skip("debug.py not written yet")
    completed = gcs_runner.run("debug.py", [datasets["remote"], "CHECK"])
    assert completed.returncode == 0, completed.stderr[-2000:]


def checkpoint_steps(local_gcs, bucket, prefix):
    """Global steps of the finished checkpoints the bucket's state file lists."""
    try:
        state = local_gcs.read_object(bucket, f"{prefix}/checkpoints/checkpoint").decode()
    except RuntimeError:
        return []
    return [int(line.split("ckpt-")[1].rstrip('"'))
            for line in state.splitlines() if line.startswith("all_model_checkpoint_paths")]


def wait_then(gcs_runner, child, condition, action, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert not gcs_runner.finished(child), "the run ended before its kill point"
        if condition():
            action()
            return
        time.sleep(0.05)
    raise TimeoutError("kill point never reached")


def test_train_in_bucket_killed_and_resumed_then_scored(gcs_runner, local_gcs, bucket,
                                                        datasets):
    manifest = json.loads(local_gcs.read_object(bucket, "out/DataSet/dataset.json"))
    steps_per_epoch = manifest["splits"]["Train"]["num_windows"] // BATCH_SIZE
    model_dir = f"gs://{bucket}/model"
    args = [datasets["remote"], "DUMMY", model_dir, "--epochs", 2, "--batch-size", BATCH_SIZE,
            "--steps-per-loop", 1, "--checkpoint-every", 3, "--quiet"]

    child = gcs_runner.spawn("train.py", args)
    wait_then(gcs_runner, child,
              lambda: max(checkpoint_steps(local_gcs, bucket, "model"), default=0)
              > steps_per_epoch,
              lambda: os.kill(child.pid, signal.SIGKILL))
    assert gcs_runner.wait(child).returncode == -signal.SIGKILL
    resume_step = max(checkpoint_steps(local_gcs, bucket, "model"))
    assert steps_per_epoch < resume_step < 2 * steps_per_epoch

    completed = gcs_runner.run("train.py", args)
    assert completed.returncode == 0, completed.stderr[-2000:] + local_gcs.read_log()[-2000:]
    history = json.loads(local_gcs.read_object(bucket, "model/history.json"))
    assert [entry["epoch"] for entry in history] == [1, 2]
    assert max(checkpoint_steps(local_gcs, bucket, "model")) == 2 * steps_per_epoch
    names = local_gcs.list_objects(bucket, "model/")
    for name in ("model/DUMMY.weights.h5", "model/DUMMY_final.weights.h5",
                 "model/DUMMY_history.png", "model/run_config.json"):
        assert name in names
    assert any(name.startswith("model/logs/train/events.") for name in names)
    assert not [name for name in names if ".tmp-" in name]

    test_json = os.path.join(datasets["local"], manifest["splits"]["Test"]["json_name"])
    completed = gcs_runner.run("score.py", ["DUMMY", f"{model_dir}/DUMMY.weights.h5", test_json])
    assert completed.returncode == 0, completed.stderr[-2000:]
    results = json.load(open(os.path.join(datasets["local"], "Results",
                                          "video_sec_DUMMY.json")))
    assert len(results) == manifest["splits"]["Test"]["num_windows"]


def test_bucket_outage_is_one_line_and_checkpoint_survives(gcs_runner, local_gcs, bucket,
                                                            datasets):
    manifest = json.loads(local_gcs.read_object(bucket, "out/DataSet/dataset.json"))
    steps_per_epoch = manifest["splits"]["Train"]["num_windows"] // BATCH_SIZE
    args = [datasets["remote"], "DUMMY", f"gs://{bucket}/outage", "--epochs", 2,
            "--batch-size", BATCH_SIZE, "--steps-per-loop", 1, "--checkpoint-every", 3,
            "--quiet"]
    child = gcs_runner.spawn("train.py", args)
    try:
        wait_then(gcs_runner, child,
                  lambda: max(checkpoint_steps(local_gcs, bucket, "outage"), default=0) >= 3,
                  lambda: local_gcs.set_serving(False))
        completed = gcs_runner.wait(child, timeout=240)
    finally:
        local_gcs.set_serving(True)
    lines = completed.stderr_lines()
    assert completed.returncode != 0
    one_clear_line = (completed.returncode == 2 and len(lines) == 1
                      and "Traceback" not in completed.stderr
                      and lines[0].startswith("train.py: error: ") and "gs://" in lines[0])

    # The last checkpoint written before the outage is intact: a new run resumes
    # from it and finishes with every epoch exactly once.
    saved = max(checkpoint_steps(local_gcs, bucket, "outage"))
    assert saved >= 3
    completed = gcs_runner.run("train.py", args)
    assert completed.returncode == 0, completed.stderr[-2000:]
    history = json.loads(local_gcs.read_object(bucket, "outage/history.json"))
    assert [entry["epoch"] for entry in history] == [1, 2]
    assert max(checkpoint_steps(local_gcs, bucket, "outage")) == 2 * steps_per_epoch
    assert one_clear_line, completed.stderr[-2000:]
