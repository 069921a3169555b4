"""Training sequences/s per model: fed from the TFRecords vs from one in-memory batch.

Both feeds go through the very same compiled loop (trainer.make_step_loops, default
strategy) on the same model; rounds of the two feeds alternate so that load from
other processes hits both alike. The pipeline's cost is
``1 - records_rate / memory_rate`` (target: under 5%). Medians over the rounds.

    python bench/train_step.py [--rounds 5] [--batch-size 8] [--out bench/results/train_step.json]
"""

import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_common  # noqa: E402

from coreLib.cli import (import_tensorflow_quietly, make_parser,  # noqa: E402
                         positive_int, run_main)

tf = import_tensorflow_quietly()

import numpy as np  # noqa: E402

# (model, image_dim, steps per round): small enough for a 2-core CPU; LRCN needs >= 43.
MODELS = (("DUMMY", 32, 20), ("LRCN", 48, 8), ("ConvNet3D", 32, 2))
SEQ_LEN = 6
CHANNELS = 3
NUM_CLASSES = 17
RECORDS_PER_SHARD = 128
NUM_SHARDS = 4


def write_dataset(folder: str, image_dim: int):
    """A DataSet folder of random uint8 windows (the real record format)."""
    from coreLib.data import manifest as manifest_lib
    from coreLib import storage
    from coreLib.preprocessing import records

    rng = np.random.default_rng(0)
    classes = tuple(f"action-{index}" for index in range(NUM_CLASSES - 1)) + (
        manifest_lib.NO_ACTION,)
    splits = {}
    for split, num_shards in (("Train", NUM_SHARDS), ("Eval", 1)):
        os.makedirs(os.path.join(folder, manifest_lib.TFRECORD_FOLDER, split), exist_ok=True)
        shards = []
        for shard_index in range(num_shards):
            relative = manifest_lib.shard_name(split, shard_index)
            path = os.path.join(folder, relative)
            with tf.io.TFRecordWriter(path) as writer:
                for index in range(RECORDS_PER_SHARD):
                    pixels = rng.integers(0, 256, (SEQ_LEN, image_dim, image_dim, CHANNELS),
                                          dtype=np.uint8)
                    writer.write(records.serialize_window(pixels, index % NUM_CLASSES,
                                                          "LN", classes[0], index))
            shards.append(manifest_lib.ShardInfo(relative, RECORDS_PER_SHARD,
                                                 storage.sha256_of(path)))
        count = num_shards * RECORDS_PER_SHARD
        splits[split] = manifest_lib.SplitInfo(split, f"{split}.json", 1, count, ("LN",),
                                               tuple(shards), {})
    manifest = manifest_lib.Manifest(classes, SEQ_LEN, image_dim, CHANNELS, "color",
                                     "uint8", False, splits, "bench")
    manifest_lib.write_manifest(folder, manifest)
    return manifest


def bench_model(model_name: str, image_dim: int, steps: int, batch_size: int, rounds: int,
                work_dir: str) -> dict:
    import keras

    from coreLib import models
    from coreLib.training import trainer
    from coreLib.training import optimizer as optimizer_lib

    folder = os.path.join(work_dir, f"DataSet{image_dim}")
    if not os.path.exists(folder):
        write_dataset(folder, image_dim)
    from coreLib.data import manifest as manifest_lib
    manifest = manifest_lib.load_manifest(folder)
    config = trainer.TrainConfig(dataset_dir=folder, model_name=model_name,
                                  model_dir=os.path.join(work_dir, "unused"),
                                  batch_size=batch_size)
    strategy = tf.distribute.get_strategy()
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = models.build_model(model_name, SEQ_LEN, image_dim, CHANNELS, NUM_CLASSES)
        optimizer = optimizer_lib.make_optimizer(1e-4)
        optimizer.build(model.trainable_variables)
    train_loop, _ = trainer.make_step_loops(strategy, model, optimizer, batch_size)
    records_dataset = trainer.make_train_dataset(config, manifest, epoch=0,
                                                  steps_per_epoch=10 ** 9)
    one_batch = next(iter(records_dataset))
    memory_dataset = tf.data.Dataset.from_tensors(one_batch).repeat()
    feeds = {"records": iter(strategy.experimental_distribute_dataset(records_dataset)),
             "memory": iter(strategy.experimental_distribute_dataset(memory_dataset))}
    rates = {name: [] for name in feeds}
    for name, iterator in feeds.items():      # trace and warm up both
        float(train_loop(iterator, tf.constant(1))["loss_sum"])
    for _ in range(rounds):
        for name, iterator in feeds.items():
            started = time.perf_counter()
            float(train_loop(iterator, tf.constant(steps))["loss_sum"])
            rates[name].append(steps * batch_size / (time.perf_counter() - started))
    records_rate = statistics.median(rates["records"])
    memory_rate = statistics.median(rates["memory"])
    return {"model": model_name, "window_shape": [SEQ_LEN, image_dim, image_dim, CHANNELS],
            "batch_size": batch_size, "steps_per_round": steps, "rounds": rounds,
            "records_sequences_per_second": records_rate,
            "memory_sequences_per_second": memory_rate,
            "pipeline_cost": 1.0 - records_rate / memory_rate,
            "records_rates": rates["records"], "memory_rates": rates["memory"]}


def main(argv=None) -> int:
    parser = make_parser("train_step.py", __doc__.strip().splitlines()[0])
    parser.add_argument("--rounds", type=positive_int, default=5,
                        help="alternating timing rounds per feed (medians reported)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="batch size")
    parser.add_argument("--models", default=",".join(name for name, _, _ in MODELS),
                        help="comma-separated models to time")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(os.path.abspath(
        __file__)), "results", "train_step.json"), help="JSON file for the figures")
    args = parser.parse_args(argv)
    gpus = tf.config.list_logical_devices("GPU")
    device = gpus[0].name if gpus else f"CPU ({os.cpu_count()} cores), no accelerator"
    wanted = args.models.split(",")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-train-step-") as work_dir:
        for model_name, image_dim, steps in MODELS:
            if model_name in wanted:
                results.append(bench_model(model_name, image_dim, steps, args.batch_size,
                                           args.rounds, work_dir))
    print(f"device: {device}")
    print(f"{'model':<10} {'window':<16} {'records seq/s':>14} {'memory seq/s':>13} "
          f"{'pipeline cost':>14}")
    for row in results:
        window = "x".join(str(size) for size in row["window_shape"])
        print(f"{row['model']:<10} {window:<16} {row['records_sequences_per_second']:>14.1f} "
              f"{row['memory_sequences_per_second']:>13.1f} {row['pipeline_cost']:>13.1%}")
    bench_common.write_results(args.output, {"device": device, "tensorflow": tf.__version__,
                                     "target_pipeline_cost": 0.05, "results": results})
    return 0


if __name__ == "__main__":
    run_main(main)
