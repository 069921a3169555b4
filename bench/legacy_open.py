#!/usr/bin/env python3
"""Benchmark: opening a 1.0.4 DataSet folder (no dataset.json) before training.

Writes ``--shards`` Train shards of ``--records`` 2019 records (float32 ``feats`` of
L=6 x 64x64x3, ``label``) to a temporary folder, then times, median of
``--repeats``:
  open:  coreLib.preprocessing.legacy_records.load_legacy_manifest, what train.py and debug.py
         CHECK run first: the first record of every shard, record counts from the
         file sizes;
  read:  counting the same records by reading them (TFRecordDataset), what a
         count without the file-size rule would cost.
The OS caches the files after writing, so "read" is a lower bound for a disk or a
bucket. Writes bench/results/legacy_open.json (``--output``).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import bench_common  # noqa: E402  (bench/ is on sys.path when a script here runs)

from coreLib.cli import import_tensorflow_quietly  # noqa: E402

tf = import_tensorflow_quietly()

import numpy as np  # noqa: E402

from coreLib.preprocessing import legacy_records, records  # noqa: E402

SEQ_LEN = 6


def write_folder(root: str, shards: int, per_shard: int) -> str:
    rng = np.random.default_rng(0)
    feats = rng.random((SEQ_LEN, 64, 64, 3), dtype=np.float32)
    folder = os.path.join(root, "DataSet", "TFRECORD", "Train")
    os.makedirs(folder)
    for shard in range(shards):
        with tf.io.TFRecordWriter(os.path.join(folder, f"Train_{shard}.tfrecord")) as writer:
            for index in range(per_shard):
                writer.write(records.serialize_legacy(feats, index % 17))
    return os.path.dirname(os.path.dirname(folder))


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--records", type=int, default=128, help="records per shard")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=os.path.join(REPO_ROOT, "bench", "results",
                                                         "legacy_open.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        dataset_dir = write_folder(root, args.shards, args.records)
        files = sorted(tf.io.gfile.glob(os.path.join(dataset_dir, "TFRECORD/Train/*")))
        manifest = legacy_records.load_legacy_manifest(dataset_dir)
        counted = sum(1 for _ in tf.data.TFRecordDataset(files))
        assert manifest.splits["Train"].num_records == counted == args.shards * args.records
        result = {
            "shards": args.shards, "records_per_shard": args.records,
            "megabytes": round(sum(os.path.getsize(path) for path in files) / 1e6, 1),
            "open_seconds": median_seconds(
                lambda: legacy_records.load_legacy_manifest(dataset_dir), args.repeats),
            "read_count_seconds": median_seconds(
                lambda: sum(1 for _ in tf.data.TFRecordDataset(files)), args.repeats),
        }
    print(json.dumps(result, indent=1))
    bench_common.write_results(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
