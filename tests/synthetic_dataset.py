"""Tiny, learnable DataSet folders for the training, distribution and debug tests.

Each class has its own constant intensity plus a little noise, so the classes are
separable after any rotation/flip: a model that learns must drive the loss down.
The folder holds real shards and a real ``dataset.json`` (no main.py needed).
"""

import os

import numpy as np

from coreLib.data import manifest as manifest_lib
from coreLib import storage
from coreLib.preprocessing import records

CLASSES = ("asl-blue", "ui-click", manifest_lib.NO_ACTION)


def class_window(label: int, seq_len: int, image_dim: int, channels: int,
                 rng: np.random.Generator) -> np.ndarray:
    """``(L, D, D, C)`` uint8 window of one class: level 40 + 80 * label, +-10 noise."""
    level = 40 + 80 * label
    noise = rng.integers(-10, 11, (seq_len, image_dim, image_dim, channels))
    return np.clip(level + noise, 0, 255).astype(np.uint8)


def write_dataset(dataset_dir: str, seq_len: int = 2, image_dim: int = 8,
                  channels: int = 1, train_shards=(24, 24), eval_shards=(16,),
                  seed: int = 0, classes=CLASSES) -> manifest_lib.Manifest:
    """Writes a DataSet folder with Train and Eval shards and its manifest.

    Args:
        dataset_dir: folder to create.
        seq_len, image_dim, channels: window shape ``(L, D, D, C)``.
        train_shards, eval_shards: records per shard of each split.
        seed: seeds the windows.
        classes: class names, ``no-action`` last.

    Returns:
        The manifest written.
    """
    rng = np.random.default_rng(seed)
    splits = {}
    for split, shard_sizes in (("Train", train_shards), ("Eval", eval_shards)):
        folder = os.path.join(dataset_dir, manifest_lib.TFRECORD_FOLDER, split)
        os.makedirs(folder, exist_ok=True)
        shards, counts, index = [], {name: 0 for name in classes}, 0
        for shard_index, size in enumerate(shard_sizes):
            relative = manifest_lib.shard_name(split, shard_index)
            path = os.path.join(dataset_dir, relative)
            with open(path, "wb"):
                pass
            with storage.tf.io.TFRecordWriter(path) as writer:
                for _ in range(size):
                    label = index % len(classes)
                    counts[classes[label]] += 1
                    pixels = class_window(label, seq_len, image_dim, channels, rng)
                    writer.write(records.serialize_window(pixels, label, "LN",
                                                          classes[label], index))
                    index += 1
            shards.append(manifest_lib.ShardInfo(relative, size, storage.sha256_of(path)))
        splits[split] = manifest_lib.SplitInfo(
            split, manifest_lib.split_json_name(split, 1, seq_len), 1, index, ("LN",),
            tuple(shards), counts)
    manifest = manifest_lib.Manifest(tuple(classes), seq_len, image_dim, channels,
                                     "depth" if channels == 1 else "color", "uint8", False,
                                     splits, "synthetic")
    manifest_lib.write_manifest(dataset_dir, manifest)
    return manifest
