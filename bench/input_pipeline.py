#!/usr/bin/env python3
"""Benchmark: the input pipeline alone, against the 2019 tool's, on the same windows.

Generated colour windows (L=6, 64x64x3) are written twice to local shards of 512
records (then cached by the OS):
  new:      window records (uint8 pixels), read by coreLib.training.pipeline as train.py reads
            Train: interleave, shuffle, batch, one batched parse, online augmentation
            (one of the 32 rotation/flip variants per window), scaling, one-hot,
            prefetch;
  original: the 2019 records (float32 ``feats`` in [0, 1] + ``label``), read as the
            notebooks did: TFRecordDataset -> map(parse_single_example) -> one-hot
            -> batch, no prefetch and no augmentation (its copies were stored
            pre-augmented).
For reference it also times the new pipeline with augmentation by the
ImageProjectiveTransformV3 kernel (augment.transform_windows, then scaling) and
without augmentation (the Eval path).

Rates are sequences per second over ``--batches`` batches after a warm-up, measured
round-robin ``--repeats`` times; medians are reported, with the CPU time this
process spent per sequence (all its threads), which depends far less on what else
runs on the machine. Other load changes the rates a lot, so only figures from one
run are compared. Writes
bench/results/input_pipeline.json.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import bench_common  # bench/ is on sys.path when a script here runs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from coreLib.cli import import_tensorflow_quietly  # noqa: E402

tf = import_tensorflow_quietly()

import numpy as np  # noqa: E402

from coreLib.preprocessing import augment, records  # noqa: E402
from coreLib.training import batch_parsing, online_augment, pipeline  # noqa: E402

SEQ_LEN, IMAGE_DIM, CHANNELS, NUM_CLASSES = 6, 64, 3, 17
RECORDS_PER_SHARD = 512  # as the 2019 tool wrote them



def draw_variants(batch_index, batch_size, seed: int):
    """The (rotation, flip) pairs of :func:`online_augment.draw_variant_ids`.

    Returns:
        ``(rotations, flips)``: ``(B,)`` int32 degrees from ``augment.ROTATIONS``
        and ``(B,)`` int32 flip ids 0-3.
    """
    variant = online_augment.draw_variant_ids(batch_index, batch_size, seed)
    rotations = tf.gather(tf.constant(augment.ROTATIONS, tf.int32),
                          variant // len(augment.FLIPS))
    return rotations, variant % len(augment.FLIPS)

def generate_windows(count: int, seed: int = 0) -> np.ndarray:
    """``(count, L, D, D, C)`` uint8: smooth moving gradients with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:IMAGE_DIM, 0:IMAGE_DIM]
    windows = np.empty((count, SEQ_LEN, IMAGE_DIM, IMAGE_DIM, CHANNELS), np.uint8)
    for index in range(count):
        for frame in range(SEQ_LEN):
            base = (xx * (1 + index % 5) + yy * 3 + 9 * frame + index) % 256
            noise = rng.integers(0, 32, (IMAGE_DIM, IMAGE_DIM, CHANNELS))
            windows[index, frame] = np.clip(base[..., None] + noise, 0, 255)
    return windows


def write_shards(folder: str, prefix: str, windows, labels, serialize) -> list:
    paths = []
    for shard, begin in enumerate(range(0, len(windows), RECORDS_PER_SHARD)):
        path = os.path.join(folder, f"{prefix}_{shard}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for index in range(begin, min(begin + RECORDS_PER_SHARD, len(windows))):
                writer.write(serialize(windows[index], int(labels[index])))
        paths.append(path)
    return paths


def new_dataset(paths, batch_size: int, augment_online: bool = True):
    config = pipeline.PipelineConfig(batch_size=batch_size, training=True, seed=0,
                                     augment=augment_online)
    return pipeline.make_dataset_from_files(paths, SEQ_LEN, IMAGE_DIM, CHANNELS,
                                            NUM_CLASSES, config)


def kernel_dataset(paths, batch_size: int):
    """The new pipeline's shape, augmenting with the projective-transform kernel."""
    def parse(index, serialized):
        parsed = records.parse_window_batch(serialized, SEQ_LEN, IMAGE_DIM, CHANNELS,
                                            "uint8")
        rotations, flips = draw_variants(index, tf.shape(serialized)[0], 0)
        pixels = augment.transform_windows(parsed[records.PIXELS_KEY], rotations, flips)
        return (records.scale_pixels(pixels, "uint8"),
                batch_parsing.one_hot_labels(parsed[records.LABEL_KEY], NUM_CLASSES))

    dataset = tf.data.Dataset.from_tensor_slices(paths).interleave(
        tf.data.TFRecordDataset, cycle_length=4, num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False)
    dataset = dataset.shuffle(pipeline.DEFAULT_SHUFFLE_BUFFER, seed=1).repeat()
    dataset = dataset.batch(batch_size, drop_remainder=True).enumerate()
    return dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=False).prefetch(tf.data.AUTOTUNE)


def original_dataset(paths, batch_size: int):
    """The 2019 notebooks' reader: one record at a time, no prefetch."""
    features = records.legacy_features(SEQ_LEN, IMAGE_DIM, CHANNELS)

    def parse(serialized):
        example = tf.io.parse_single_example(serialized, features)
        pixels = tf.reshape(example[records.LEGACY_FEATS_KEY],
                            [SEQ_LEN, IMAGE_DIM, IMAGE_DIM, CHANNELS])
        return pixels, example[records.LABEL_KEY]

    def one_hot(pixels, label):
        return pixels, tf.one_hot(label, NUM_CLASSES)

    dataset = tf.data.TFRecordDataset(paths).repeat().map(parse).map(one_hot)
    return dataset.batch(batch_size)


def measure(iterator, batches: int, batch_size: int):
    """(sequences per second, CPU milliseconds of this process per sequence)."""
    began, cpu_began = time.perf_counter(), time.process_time()
    for _ in range(batches):
        pixels, _ = next(iterator)
    # Touch the last batch so asynchronous work is finished.
    float(pixels[0, 0, 0, 0, 0])
    sequences = batches * batch_size
    return (sequences / (time.perf_counter() - began),
            1000.0 * (time.process_time() - cpu_began) / sequences)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=3072,
                        help="generated windows (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=128,
                        help="batch size (default %(default)s)")
    parser.add_argument("--batches", type=int, default=24,
                        help="batches timed per measurement (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=6,
                        help="batches read before timing (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="round-robin measurements; medians reported "
                             "(default %(default)s)")
    parser.add_argument("--output", default=os.path.join(REPO_ROOT, "bench", "results",
                                                         "input_pipeline.json"),
                        help="where to write the figures (default %(default)s)")
    args = parser.parse_args()

    windows = generate_windows(args.windows)
    labels = np.arange(args.windows) % NUM_CLASSES
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-input-") as folder:
        new_paths = write_shards(folder, "window", windows, labels,
                                 lambda window, label: records.serialize_window(
                                     window, label, "LN", "asl-blue", 0))
        old_paths = write_shards(folder, "legacy", windows, labels,
                                 lambda window, label: records.serialize_legacy(
                                     window.astype(np.float32) / 255.0, label))
        bytes_new = sum(os.path.getsize(path) for path in new_paths) / args.windows
        bytes_old = sum(os.path.getsize(path) for path in old_paths) / args.windows
        pipelines = {
            "new (online augmentation)": new_dataset(new_paths, args.batch_size),
            "original (no augmentation)": original_dataset(old_paths, args.batch_size),
            "new, kernel augmentation (reference)": kernel_dataset(new_paths,
                                                                   args.batch_size),
            "new, no augmentation (Eval path)": new_dataset(new_paths, args.batch_size,
                                                            augment_online=False),
        }
        iterators = {}
        for name, dataset in pipelines.items():
            iterators[name] = iter(dataset)
            for _ in range(args.warmup):
                next(iterators[name])
        rates = {name: [] for name in pipelines}
        cpu_ms = {name: [] for name in pipelines}
        for _ in range(args.repeats):
            for name, iterator in iterators.items():
                rate, cpu = measure(iterator, args.batches, args.batch_size)
                rates[name].append(rate)
                cpu_ms[name].append(cpu)
    load_after = os.getloadavg()

    medians = {name: statistics.median(values) for name, values in rates.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu_ms.items()}
    new_rate = medians["new (online augmentation)"]
    old_rate = medians["original (no augmentation)"]
    results = {
        "cpu_count": os.cpu_count(),
        "load_average_1min_before_after": [load_before[0], load_after[0]],
        "windows": args.windows, "batch_size": args.batch_size,
        "window_shape": [SEQ_LEN, IMAGE_DIM, IMAGE_DIM, CHANNELS],
        "batches_per_measurement": args.batches, "repeats": args.repeats,
        "sequences_per_second": {name: [round(value, 1) for value in values]
                                 for name, values in rates.items()},
        "median_sequences_per_second": {name: round(value, 1)
                                        for name, value in medians.items()},
        "median_cpu_ms_per_sequence": {name: round(value, 3)
                                       for name, value in cpu_medians.items()},
        "bytes_per_sequence": {"new": round(bytes_new, 1), "original": round(bytes_old, 1)},
        "bytes_ratio_original_over_new": round(bytes_old / bytes_new, 3),
        "rate_ratio_new_over_original": round(new_rate / old_rate, 3),
        "target_augmented_sequences_per_second": 2000,
        "target_met": new_rate >= 2000,
        "target_bytes_ratio": 4.0,
        "bytes_target_met": bytes_old / bytes_new >= 4.0,
    }
    print(f"{'pipeline':40s} {'median seq/s':>12s} {'CPU ms/seq':>10s}   runs (seq/s)")
    for name, values in rates.items():
        runs = " ".join(f"{value:.0f}" for value in values)
        print(f"{name:40s} {medians[name]:12.0f} {cpu_medians[name]:10.3f}   {runs}")
    print(f"bytes read per sequence: new {bytes_new:.0f}, original {bytes_old:.0f} "
          f"({bytes_old / bytes_new:.3f}x fewer)")
    print(f"load average (1 min) before/after: {load_before[0]:.2f} / {load_after[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    bench_common.write_results(args.output, results)


if __name__ == "__main__":
    main()
