"""Distribution and interruption, on this CPU.

- MirroredStrategy over 2 logical CPU devices and the default strategy reach the
  same weights after the same batches. Tolerance: atol 1e-5 on every weight. The
  two runs differ only in float32 rounding (two half-batch gradient sums all-reduced
  vs one full-batch sum), and Adam normalises every step, so a rounding-level
  gradient difference moves a weight by rounding-level amounts, well below 1e-5
  after these 12 steps (measured: about 1e-7).
- MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 end with
  identical weights (exact) that match the default strategy (same tolerance); only
  the chief writes into its MODEL_DIR, and the other worker's scratch checkpoints
  are deleted.
- SIGKILL during training, then the same command again: the run resumes at its
  last checkpoint and ends with the uninterrupted run's weights and history
  (exact: deterministic ops, seeded shuffling and augmentation).
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from train_progress import latest_step
from weight_files import h5_arrays

# Minutes of training and killed processes: outside `make test-fast`.
pytestmark = pytest.mark.slow

TOLERANCE = 1e-5
EPOCHS = 2
BATCH_SIZE = 8


def _config(dataset_dir, model_dir, **overrides):
    values = dict(dataset_dir=dataset_dir, model_name="DUMMY", model_dir=model_dir,
                  epochs=EPOCHS, batch_size=BATCH_SIZE, lr=1e-2, steps_per_loop=4,
                  seed=5, deterministic=True)
    values.update(overrides)
    return values


def _driver(repo_root, spec, env=None, background=False):
    command = [sys.executable, os.path.join(repo_root, "tests", "training_driver.py"),
               json.dumps(spec)]
    environment = {**os.environ, **(env or {})}
    if background:
        return subprocess.Popen(command, env=environment, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    completed = subprocess.run(command, env=environment, capture_output=True, text=True,
                               timeout=240)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def _weights(path):
    with np.load(path) as data:
        arrays = [data[f"arr_{index}"] for index in range(len(data.files) - 3)]
        return arrays, json.loads(str(data["history"])), int(data["num_replicas"])


@pytest.fixture(scope="module")
def reference(repo_root, dataset_dir, tmp_path_factory):
    """Default and mirrored (2 logical CPUs) runs, in one process."""
    folder = tmp_path_factory.mktemp("reference")
    runs = []
    for name in ("default", "mirrored"):
        runs.append({"config": _config(dataset_dir, str(folder / name), strategy=name),
                     "weights": str(folder / f"{name}.npz")})
    _driver(repo_root, {"logical_cpus": 2, "runs": runs})
    return {name: _weights(str(folder / f"{name}.npz")) for name in ("default", "mirrored")}


def test_mirrored_over_two_cpus_matches_the_default_strategy(reference):
    default, default_history, default_replicas = reference["default"]
    mirrored, mirrored_history, mirrored_replicas = reference["mirrored"]
    assert (default_replicas, mirrored_replicas) == (1, 2)
    assert len(default) == len(mirrored) == 4
    for left, right in zip(default, mirrored):
        np.testing.assert_allclose(left, right, rtol=0, atol=TOLERANCE)
    # Same batches: the same losses and accuracies, per epoch.
    for left, right in zip(default_history, mirrored_history):
        assert left["train_accuracy"] == right["train_accuracy"]
        assert left["train_loss"] == pytest.approx(right["train_loss"], abs=1e-5)
        assert left["eval_loss"] == pytest.approx(right["eval_loss"], abs=1e-5)
    # It did train: the weights moved from their seeded start.
    assert default_history[-1]["train_loss"] < default_history[0]["train_loss"]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def test_two_workers_end_with_identical_weights_and_only_the_chief_writes(
        repo_root, dataset_dir, reference, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    processes = []
    for index in range(2):
        scratch = tmp_path / f"tmp{index}"
        scratch.mkdir()
        spec = {"runs": [{"config": _config(dataset_dir, str(tmp_path / f"model{index}"),
                                            strategy="multiworker"),
                          "weights": str(tmp_path / f"worker{index}.npz")}]}
        env = {"TF_CONFIG": json.dumps({"cluster": cluster,
                                        "task": {"type": "worker", "index": index}}),
               "TMPDIR": str(scratch)}
        processes.append(_driver(repo_root, spec, env=env, background=True))
    for process in processes:
        try:
            _, stderr = process.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise
        assert process.returncode == 0, stderr[-3000:]
    chief, chief_history, replicas = _weights(str(tmp_path / "worker0.npz"))
    other, other_history, _ = _weights(str(tmp_path / "worker1.npz"))
    assert replicas == 2
    for left, right in zip(chief, other):
        np.testing.assert_array_equal(left, right)
    timing = ("seconds", "sequences_per_second")
    assert ([{key: value for key, value in entry.items() if key not in timing}
             for entry in chief_history] ==
            [{key: value for key, value in entry.items() if key not in timing}
             for entry in other_history])
    # Two workers of one replica each = one global batch split in two: the default run.
    for left, right in zip(chief, reference["default"][0]):
        np.testing.assert_allclose(left, right, rtol=0, atol=TOLERANCE)
    chief_files = sorted(os.listdir(tmp_path / "model0"))
    assert {"checkpoints", "history.json", "run_config.json", "DUMMY.weights.h5",
            "DUMMY_final.weights.h5"} <= set(chief_files)
    assert any(name.endswith(".index") for name in os.listdir(tmp_path / "model0" /
                                                             "checkpoints"))
    assert not os.path.exists(tmp_path / "model1")        # the other worker wrote nothing
    assert not [name for name in os.listdir(tmp_path / "tmp1") if "actrecog" in name]


def test_sigkill_then_restart_resumes_and_matches_the_uninterrupted_run(
        script_runner, dataset_dir, reference, tmp_path):
    model_dir = str(tmp_path / "model")
    args = [dataset_dir, "DUMMY", model_dir, "--epochs", EPOCHS, "--batch-size", BATCH_SIZE,
            "--lr", "0.01", "--seed", "5", "--deterministic", "--steps-per-loop", "1",
            "--checkpoint-every", "2", "--quiet"]
    # Kill once a mid-epoch checkpoint of the first epoch exists (step 2 or 4 of 6).
    child = script_runner.spawn("train.py", args)
    assert script_runner.kill_when(child, lambda: latest_step(model_dir) >= 2), \
        "training ended before it could be interrupted"
    killed_at = latest_step(model_dir)
    assert 2 <= killed_at < EPOCHS * 6
    assert not os.path.exists(os.path.join(model_dir, "DUMMY_final.weights.h5"))
    completed = script_runner.run("train.py", args)
    assert completed.returncode == 0, completed.stderr[-3000:]
    history = json.load(open(os.path.join(model_dir, "history.json")))
    reference_weights, reference_history, _ = reference["default"]
    assert [entry["epoch"] for entry in history] == list(range(1, EPOCHS + 1))
    for entry, expected in zip(history, reference_history):
        for key in ("train_loss", "train_accuracy", "eval_loss", "eval_accuracy"):
            assert entry[key] == expected[key], (key, entry, expected)
    final = h5_arrays(os.path.join(model_dir, "DUMMY_final.weights.h5"))
    stored = sorted(final.values(), key=lambda array: (array.shape, float(array.sum())))
    expected = sorted(reference_weights, key=lambda array: (array.shape, float(array.sum())))
    for left, right in zip(stored, expected):
        np.testing.assert_array_equal(left, right)
