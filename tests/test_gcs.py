"""TensorFlow's own gs:// filesystem against the local GCS (tests/gcs_emulator.py).

Each test runs its TensorFlow work in one subprocess (inside the emulator's
namespaces), which prints what it observed as JSON; the test checks that and reads
the objects back through the emulator's API, independently of TensorFlow.
"""

import hashlib
import inspect
import io
import json
import os
import tempfile

import pytest

import gcs_emulator
from coreLib.cli import import_tensorflow_quietly

tf = import_tensorflow_quietly()

# Subprocesses against the emulator: outside `make test-fast`.
pytestmark = pytest.mark.slow

RECORD_SIZES = (0, 1, 5000, 70000, 3)


def payload(size, seed):
    """Deterministic random bytes, rebuilt identically inside the subprocesses."""
    import numpy as np
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


PAYLOAD_CODE = f"{inspect.getsource(payload)}\nRECORD_SIZES = {RECORD_SIZES!r}\n"

FILE_OPERATIONS = PAYLOAD_CODE + """
import json, sys
import tensorflow as tf
gfile = tf.io.gfile
root = sys.argv[1]
seen = {}

blob = payload(300_000, 1)
with gfile.GFile(root + "/blob.bin", "wb") as handle:
    handle.write(blob[:1000])
    handle.write(blob[1000:])
with gfile.GFile(root + "/blob.bin", "rb") as handle:
    seen["blob_roundtrip"] = handle.read() == blob
with gfile.GFile(root + "/blob.bin", "rb") as handle:
    handle.seek(123_456)
    seen["blob_ranged"] = handle.read(1000) == blob[123_456:124_456]
seen["blob_size"] = gfile.stat(root + "/blob.bin").length

for shard in range(2):
    with tf.io.TFRecordWriter(root + f"/data/shard-{shard}.tfrecord") as writer:
        for index, size in enumerate(RECORD_SIZES):
            writer.write(payload(size, 100 * shard + index))
seen["glob"] = sorted(gfile.glob(root + "/data/*.tfrecord"))
records = tf.data.TFRecordDataset(seen["glob"])
seen["records_equal"] = [record.numpy() == payload(RECORD_SIZES[i % 5], 100 * (i // 5) + i % 5)
                         for i, record in enumerate(records)]

gfile.makedirs(root + "/tree/a/b")
gfile.makedirs(root + "/tree/a/b")  # a second time is fine, as locally
with gfile.GFile(root + "/tree/a/b/leaf.txt", "w") as handle:
    handle.write("leaf")
with gfile.GFile(root + "/tree/top.txt", "w") as handle:
    handle.write("top")
seen["isdir_tree"] = gfile.isdir(root + "/tree/a/b")
seen["listdir_tree"] = sorted(gfile.listdir(root + "/tree"))
seen["listdir_root"] = sorted(gfile.listdir(root))

gfile.copy(root + "/blob.bin", root + "/copy.bin")
gfile.rename(root + "/copy.bin", root + "/renamed.bin")
seen["renamed_exists"] = gfile.exists(root + "/renamed.bin")
seen["copy_gone"] = not gfile.exists(root + "/copy.bin")
gfile.copy(root + "/tree/top.txt", root + "/renamed.bin", overwrite=True)
gfile.remove(root + "/renamed.bin")
seen["removed_gone"] = not gfile.exists(root + "/renamed.bin")
gfile.rmtree(root + "/tree")
seen["rmtree_gone"] = not gfile.exists(root + "/tree/a/b/leaf.txt")
try:
    gfile.GFile(root + "/missing.bin", "rb").read()
    seen["missing"] = "read"
except tf.errors.NotFoundError:
    seen["missing"] = "NotFoundError"
print(json.dumps(seen))
"""

CHECKPOINTS = """
import json, sys
import tensorflow as tf

root = sys.argv[1]
seen = {}
weights = tf.Variable(tf.reshape(tf.range(12, dtype=tf.float32), (3, 4)))
step = tf.Variable(0, dtype=tf.int64)
checkpoint = tf.train.Checkpoint(weights=weights, step=step)
manager = tf.train.CheckpointManager(checkpoint, root + "/ckpt", max_to_keep=2)
for number in range(1, 5):
    step.assign(number)
    weights.assign_add(tf.ones((3, 4)))
    manager.save(checkpoint_number=number)
seen["latest"] = manager.latest_checkpoint
seen["kept"] = list(manager.checkpoints)
saved_path = checkpoint.write(root + "/single/state")
weights.assign(tf.zeros((3, 4)))
step.assign(-1)
checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
seen["restored_weights"] = weights.numpy().tolist()
seen["restored_step"] = int(step.numpy())
fresh = tf.train.Checkpoint(weights=tf.Variable(tf.zeros((3, 4))),
                            step=tf.Variable(0, dtype=tf.int64))
fresh.read(saved_path).assert_existing_objects_matched()
seen["single_step"] = int(fresh.step.numpy())
print(json.dumps(seen))
"""


def run_json(local_gcs, code, *args):
    completed = local_gcs.python(code, *args, timeout=240)
    assert completed.returncode == 0, completed.stderr[-3000:] + local_gcs.read_log()[-2000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def local_tfrecord_bytes(records):
    """The exact bytes TFRecordWriter gives these records in a local file."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "shard.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for record in records:
                writer.write(record)
        with open(path, "rb") as handle:
            return handle.read()


@pytest.mark.gcs
def test_file_operations_through_gs(local_gcs, gcs_bucket):
    root = f"gs://{gcs_bucket}/run"
    seen = run_json(local_gcs, FILE_OPERATIONS, root)

    blob = payload(300_000, 1)
    assert seen["blob_roundtrip"] and seen["blob_ranged"]
    assert seen["blob_size"] == 300_000
    shards = [f"{root}/data/shard-{shard}.tfrecord" for shard in range(2)]
    assert seen["glob"] == shards
    assert seen["records_equal"] == [True] * 10
    assert seen["isdir_tree"] is True
    assert seen["listdir_tree"] == ["a/", "top.txt"]
    assert seen["listdir_root"] == ["blob.bin", "data/", "tree/"]
    assert seen["renamed_exists"] and seen["copy_gone"] and seen["removed_gone"]
    assert seen["rmtree_gone"] is True
    assert seen["missing"] == "NotFoundError"

    # What the bucket holds, read through the emulator's API, not TensorFlow.
    names = local_gcs.list_objects(gcs_bucket)
    assert [name for name in names if not name.endswith("/")] == [
        "run/blob.bin", "run/data/shard-0.tfrecord", "run/data/shard-1.tfrecord"]
    assert not any(name.startswith("run/tree") for name in names)
    assert local_gcs.read_object(gcs_bucket, "run/blob.bin") == blob
    for shard in range(2):
        expected = local_tfrecord_bytes(
            [payload(size, 100 * shard + index) for index, size in enumerate(RECORD_SIZES)])
        stored = local_gcs.read_object(gcs_bucket, f"run/data/shard-{shard}.tfrecord")
        assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(expected).hexdigest()


@pytest.mark.gcs
def test_checkpoints_through_gs(local_gcs, gcs_bucket):
    root = f"gs://{gcs_bucket}"
    seen = run_json(local_gcs, CHECKPOINTS, root)

    assert seen["kept"] == [f"{root}/ckpt/ckpt-3", f"{root}/ckpt/ckpt-4"]
    assert seen["latest"] == f"{root}/ckpt/ckpt-4"
    assert seen["restored_step"] == 4
    assert seen["restored_weights"] == [[float(4 * row + column + 4) for column in range(4)]
                                        for row in range(3)]
    assert seen["single_step"] == 4

    names = local_gcs.list_objects(gcs_bucket, "ckpt/")
    prefixes = sorted({name.split(".")[0] for name in names if name.startswith("ckpt/ckpt-")})
    assert prefixes == ["ckpt/ckpt-3", "ckpt/ckpt-4"]  # 1 and 2 pruned from the bucket
    state = local_gcs.read_object(gcs_bucket, "ckpt/checkpoint").decode()
    assert 'model_checkpoint_path: "ckpt-4"' in state
    assert not [name for name in names if ".tmp" in name or "_temp" in name]


class _FakeHandler:
    """Just the two attributes the body reader uses: headers and rfile."""

    def __init__(self, headers, body):
        self.headers = headers
        self.rfile = io.BytesIO(body)


def test_chunked_body_wins_over_content_length():
    """TF sends chunk framing together with a Content-Length of the payload."""
    data = payload(5000, 7)
    framed = (b"%x;ext=1\r\n" % 4096 + data[:4096] + b"\r\n"
              + b"%x\r\n" % 904 + data[4096:] + b"\r\n" + b"0\r\nTrailer: x\r\n\r\n")
    handler = _FakeHandler({"Transfer-Encoding": "chunked",
                            "Content-Length": str(len(data))}, framed + b"NEXT")
    assert gcs_emulator._read_body(handler) == data
    assert handler.rfile.read() == b"NEXT"  # nothing past the body consumed
    assert gcs_emulator._read_body(_FakeHandler({"Content-Length": "3"}, b"abcdef")) == b"abc"
    assert gcs_emulator._read_body(_FakeHandler({}, b"")) is None
