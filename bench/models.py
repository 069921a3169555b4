"""The models side by side on the same (6, 64, 64, 3) windows: size, cost and speed.

For each model: parameters, FLOP per window (coreLib.models.model_info.model_flops),
training windows/s (the project's compiled train loop, trainer.make_step_loops,
default strategy, fed one in-memory batch), scoring ms per window (one compiled
inference call on a batch, after a warm-up call of the same shape), and for
CausalMobileNet the online cost per frame with one and with two CPU threads - each
thread count in its own process, since TensorFlow fixes its thread pools when it
starts: the stream step (StreamRunner: one compiled call per frame) and beside it,
on the same frames in the same run, ``--online-runner window`` (the window model on
the last L frames, batch 1, as a live run calls it): medians and their ratio.

ConvNet3D costs ~0.1-0.25 s per window on a 2-core CPU, so it is scored and
trained on smaller batches (its cost per window hardly depends on the batch: it
is compute bound); the batch sizes used are in the JSON.

    python bench/models.py [--output bench/results/models.json]
    python bench/models.py --stream-only --threads 1      # one stream figure
    python bench/models.py --models CausalMobileNet --output bench/results/online_runner.json
"""

import argparse
import json
import os
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import bench_common  # noqa: E402

SEQ_LEN, IMAGE_DIM, CHANNELS, NUM_CLASSES = 6, 64, 3, 17
# model -> (scoring batch, training batch, timed training steps)
PLAN = {"ConvNet3D": (8, 4, 1), "LRCN": (64, 16, 4), "CausalMobileNet": (64, 16, 4)}
STREAM_MODEL = "CausalMobileNet"


def make_windows(count: int, seed: int = 0) -> np.ndarray:
    """``(count, 6, 64, 64, 3)`` float32 in [0, 1]: random pixels (the cost of these
    models does not depend on the values)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, SEQ_LEN, IMAGE_DIM, IMAGE_DIM, CHANNELS),
                        dtype=np.uint8).astype(np.float32) / 255.0


def score_seconds_per_window(tf, model, windows: np.ndarray, repeats: int) -> float:
    """Best of ``repeats`` compiled inference calls on ``windows``, per window."""
    run = tf.function(lambda batch: model(batch, training=False))
    batch = tf.constant(windows)
    run(batch).numpy()                                   # trace + warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(batch).numpy()
        best = min(best, time.perf_counter() - start)
    return best / len(windows)


def train_windows_per_second(tf, model, windows: np.ndarray, batch_size: int,
                             steps: int) -> float:
    """Windows/s of the project's train loop on one repeated in-memory batch."""
    from coreLib.training import optimizer as optimizer_lib
    from coreLib.training import trainer

    strategy = tf.distribute.get_strategy()
    optimizer = optimizer_lib.make_optimizer(1e-3)
    optimizer.build(model.trainable_variables)
    train_loop, _ = trainer.make_step_loops(strategy, model, optimizer, batch_size)
    labels = tf.one_hot(np.arange(batch_size) % NUM_CLASSES, NUM_CLASSES)
    dataset = tf.data.Dataset.from_tensors(
        (tf.constant(windows[:batch_size]), labels)).repeat()
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    train_loop(iterator, tf.constant(1))                 # trace + warm-up
    start = time.perf_counter()
    train_loop(iterator, tf.constant(steps))["loss_sum"].numpy()
    return steps * batch_size / (time.perf_counter() - start)


def stream_milliseconds_per_frame(threads: int, frames: int) -> dict:
    """Online cost per frame of CausalMobileNet in this process, with ``threads``
    threads, both runners side by side: the stream step (StreamRunner: one compiled
    call per frame) and ``--online-runner window`` as a live run has it (the window
    model on the last L frames, batch 1: stream_steps.WindowRunnerStep). Each frame
    goes through both, one after the other, so load hits them alike; medians of the
    per-frame times and their ratio."""
    from coreLib.cli import import_tensorflow_quietly

    tf = import_tensorflow_quietly()
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from coreLib import models
    from coreLib.data import manifest as manifest_lib
    from coreLib.inference import stream_steps, window_runners
    from coreLib.models.stream_runner import StreamRunner

    tf.keras.utils.set_random_seed(0)
    model = models.build_model(STREAM_MODEL, SEQ_LEN, IMAGE_DIM, CHANNELS, NUM_CLASSES)
    classes = tuple(f"class{index}" for index in range(NUM_CLASSES - 1)) + (
        manifest_lib.NO_ACTION,)
    manifest = manifest_lib.Manifest(classes, SEQ_LEN, IMAGE_DIM, CHANNELS, "color",
                                     "uint8", False, {}, "")
    steps = {"stream": stream_steps.StatefulRunnerStep(StreamRunner(model, batch_size=1)),
             "window": stream_steps.WindowRunnerStep(
                 window_runners.make_window_runner(STREAM_MODEL, model, manifest), manifest)}
    stored = np.round(make_windows(1 + frames // SEQ_LEN, seed=1).reshape(
        -1, IMAGE_DIM, IMAGE_DIM, CHANNELS)[:frames] * 255).astype(np.uint8)
    inputs = {"stream": stream_steps.scale_stored(stored, "uint8"), "window": stored}
    states = {name: step.initial_state() for name, step in steps.items()}
    for index in range(10 + SEQ_LEN):                    # trace + warm-up
        for name, step in steps.items():
            _, states[name] = step.step(inputs[name][index][None], states[name])
    states = {name: step.initial_state() for name, step in steps.items()}
    # CPU seconds of this process too: on a shared machine the wall clock also
    # counts the time other processes held the cores.
    wall = {name: [] for name in steps}
    cpu = {name: 0.0 for name in steps}
    for index in range(frames):
        for name, step in steps.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            _, states[name] = step.step(inputs[name][index][None], states[name])
            wall[name].append(time.perf_counter() - start)
            cpu[name] += time.process_time() - cpu_start
    # The window runner's first L-1 frames run no model (no full window yet).
    scored = {"stream": wall["stream"], "window": wall["window"][SEQ_LEN - 1:]}
    median = {name: 1000 * float(np.median(times)) for name, times in scored.items()}
    return {"threads": threads, "frames": frames,
            "ms_per_frame": 1000 * sum(wall["stream"]) / frames,
            "cpu_ms_per_frame": 1000 * cpu["stream"] / frames,
            "stream_ms_per_frame_p50": median["stream"],
            "window_ms_per_frame": 1000 * sum(scored["window"]) / len(scored["window"]),
            "window_cpu_ms_per_frame": 1000 * cpu["window"] / len(scored["window"]),
            "window_ms_per_frame_p50": median["window"],
            "window_to_stream_p50": median["window"] / median["stream"],
            "load_average_1min": os.getloadavg()[0]}


def stream_in_subprocess(threads: int, frames: int) -> dict:
    completed = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--stream-only", "--threads",
         str(threads), "--frames", str(frames)], capture_output=True, text=True,
        check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(PLAN), choices=list(PLAN))
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed scoring calls per model (best reported)")
    parser.add_argument("--frames", type=int, default=300, help="stream frames timed")
    parser.add_argument("--stream-only", action="store_true",
                        help="print one stream figure as JSON (used by the main run)")
    parser.add_argument("--threads", type=int, default=1, help="with --stream-only")
    parser.add_argument("--output", default=os.path.join(REPO_ROOT, "bench", "results",
                                                         "models.json"))
    args = parser.parse_args()
    if args.stream_only:
        print(json.dumps(stream_milliseconds_per_frame(args.threads, args.frames)))
        return

    from coreLib.cli import import_tensorflow_quietly

    tf = import_tensorflow_quietly()
    from coreLib import models
    from coreLib.models import model_info

    windows = make_windows(max(PLAN[name][0] for name in args.models))
    results = {"cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
               "num_classes": NUM_CLASSES,
               "window_shape": [SEQ_LEN, IMAGE_DIM, IMAGE_DIM, CHANNELS], "models": {}}
    for name in args.models:
        score_batch, train_batch, train_steps = PLAN[name]
        tf.keras.utils.set_random_seed(0)
        model = models.build_model(name, SEQ_LEN, IMAGE_DIM, CHANNELS, NUM_CLASSES)
        row = {"parameters": int(model.count_params()),
               "flop_per_window": model_info.model_flops(model),
               "score_batch": score_batch, "train_batch": train_batch,
               "train_steps": train_steps}
        row["score_ms_per_window"] = 1000 * score_seconds_per_window(
            tf, model, windows[:score_batch], args.repeats)
        row["train_windows_per_second"] = train_windows_per_second(
            tf, model, windows, train_batch, train_steps)
        if name == STREAM_MODEL:
            row["stream"] = [stream_in_subprocess(threads, args.frames)
                             for threads in (1, 2)]
        results["models"][name] = row
        print(f"{name}: {json.dumps(row)}", flush=True)

    print(f"\n{'model':<16} {'params':>11} {'MFLOP/window':>13} {'train win/s':>12} "
          f"{'score ms/win':>13} {'stream ms/frame (1 / 2 threads)':>40}")
    for name, row in results["models"].items():
        stream = " / ".join(f"{entry['ms_per_frame']:.2f} (CPU {entry['cpu_ms_per_frame']:.2f})"
                            for entry in row.get("stream", []))
        print(f"{name:<16} {row['parameters']:>11,} {row['flop_per_window'] / 1e6:>13.1f} "
              f"{row['train_windows_per_second']:>12.1f} {row['score_ms_per_window']:>13.2f} "
              f"{stream or '-':>40}")
    for entry in results["models"].get(STREAM_MODEL, {}).get("stream", []):
        print(f"{STREAM_MODEL} online, {entry['threads']} thread(s), median ms per frame: "
              f"stream step {entry['stream_ms_per_frame_p50']:.2f}, window runner "
              f"{entry['window_ms_per_frame_p50']:.2f} "
              f"({entry['window_to_stream_p50']:.1f}x)")
    rows = results["models"]
    if "ConvNet3D" in rows and STREAM_MODEL in rows:
        results["score_speedup_vs_convnet3d"] = (rows["ConvNet3D"]["score_ms_per_window"]
                                                 / rows[STREAM_MODEL]["score_ms_per_window"])
        print(f"{STREAM_MODEL} scores {results['score_speedup_vs_convnet3d']:.0f}x faster "
              f"per window than ConvNet3D")
    if "LRCN" in rows and STREAM_MODEL in rows:
        results["score_speedup_vs_lrcn"] = (rows["LRCN"]["score_ms_per_window"]
                                            / rows[STREAM_MODEL]["score_ms_per_window"])
        print(f"{STREAM_MODEL} scores {results['score_speedup_vs_lrcn']:.1f}x faster "
              f"per window than LRCN")
    bench_common.write_results(args.output, results)


if __name__ == "__main__":
    main()
