#!/usr/bin/env python3
"""Benchmark: score.py's scoring against the 2019 tool's method, side by side.

Both methods score the same generated Test windows with the same (randomly
initialised) weights:
  original: per window, decode its L frames again (cv2.imread, RGB, INTER_AREA
            resize, /255) and call model.predict on a batch of one;
  score.py: coreLib.inference.forward.predict_windows (each frame decoded once by threads
            a batch ahead of the model, one compiled call per batch).
The original method is timed on a sample of windows and extrapolated to the whole
set (median seconds per window x windows). Writes bench/results/score.json.

A roofline beside the figures: the model's arithmetic per window
(coreLib.models.model_info.model_flops) over this CPU's nominal float32 peak (cores x
clock from /proc/cpuinfo x 32 FLOP per cycle: two 256-bit FMA pipes, AVX2) is the
least time any method can spend per window, and the original's time over that
floor the largest speed-up any scorer can reach here. A 2048^3 tf.linalg.matmul
(median of several) is printed beside it as the rate a tuned kernel reaches.
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

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from coreLib import models  # noqa: E402
from coreLib.data import manifest as manifest_lib
from coreLib.evaluation import scoring
from coreLib.data import window_lists
from coreLib.inference import forward
from coreLib.models import model_info

SEQ_LEN, IMAGE_DIM, CHANNELS, NUM_CLASSES = 6, 64, 3, 17
FRAME_SIZE = (320, 240)  # (width, height) of the generated colour frames


def generate_test_set(root: str, num_sequences: int, frames_per_sequence: int):
    """Writes smooth-with-noise colour frames (PNG) and returns (manifest, windows)."""
    rng = np.random.default_rng(0)
    width, height = FRAME_SIZE
    yy, xx = np.mgrid[0:height, 0:width]
    classes = tuple(f"action-{k}" for k in range(NUM_CLASSES - 1)) + (manifest_lib.NO_ACTION,)
    windows = []
    for sequence in range(num_sequences):
        folder = os.path.join(root, "Test", "subject", f"action-{sequence}")
        os.makedirs(folder)
        for index in range(frames_per_sequence):
            base = (xx * (1 + sequence) + yy * 2 + 7 * index) % 256
            noise = rng.integers(0, 24, (height, width, 3))
            image = np.clip(base[..., None] + noise, 0, 255).astype(np.uint8)
            cv2.imwrite(os.path.join(folder, f"color_{index}.png"), image)
        for stop in range(SEQ_LEN - 1, frames_per_sequence):
            windows.append(window_lists.ListedWindow(folder, stop - SEQ_LEN + 1, stop,
                                              int(rng.integers(NUM_CLASSES))))
    test = manifest_lib.SplitInfo("Test", "test.json", num_sequences, len(windows),
                                  ("subject",))
    manifest = manifest_lib.Manifest(classes, SEQ_LEN, IMAGE_DIM, CHANNELS, "color",
                                     "uint8", False, {"Test": test}, root)
    return manifest, windows


def original_window(window: window_lists.ListedWindow) -> np.ndarray:
    """The 2019 way: every frame of the window read and decoded again."""
    stack = []
    for index in range(window.start, window.stop + 1):
        image = cv2.imread(os.path.join(window.path, f"color_{index}.png"))
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        image = cv2.resize(image, (IMAGE_DIM, IMAGE_DIM), interpolation=cv2.INTER_AREA)
        stack.append(image.astype(np.float32) / 255.0)
    return np.stack(stack)[np.newaxis]


def time_original(model, windows, sample: int):
    """Median seconds per window, and the sample's predictions."""
    model.predict(original_window(windows[0]), verbose=0)  # build predict's function
    step = max(1, len(windows) // sample)
    chosen = list(range(0, len(windows), step))[:sample]
    seconds, predictions = [], {}
    for number in chosen:
        began = time.perf_counter()
        output = model.predict(original_window(windows[number]), verbose=0)
        seconds.append(time.perf_counter() - began)
        predictions[number] = output[0]
    return statistics.median(seconds), predictions


def cpu_matmul_gflops(repeats: int = 7, size: int = 2048) -> float:
    """This CPU's float32 rate: median GFLOP/s of a size^3 matrix product."""
    a = tf.random.stateless_normal((size, size), seed=(1, 2))
    b = tf.random.stateless_normal((size, size), seed=(3, 4))
    product = tf.function(tf.linalg.matmul)
    product(a, b).numpy()  # trace and warm up
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        product(a, b).numpy()
        seconds.append(time.perf_counter() - began)
    return 2 * size ** 3 / statistics.median(seconds) / 1e9


# Two 256-bit FMA pipes per core: 2 x 8 float32 lanes x 2 FLOP (multiply + add).
AVX2_FLOP_PER_CYCLE = 32


def nominal_peak_gflops():
    """cores x nominal clock x 32 FLOP/cycle, or None off Linux/x86 with AVX2+FMA."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return None
    clocks = [float(line.split(":")[1]) for line in text.splitlines()
              if line.startswith("cpu MHz")]
    flags = next((line.split(":")[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    if not clocks or "avx2" not in flags or "fma" not in flags:
        return None
    cores = len(os.sched_getaffinity(0))
    return cores * max(clocks) / 1000 * AVX2_FLOP_PER_CYCLE


def time_new(model, manifest, windows, batch_size: int, repeats: int, jit_compile: bool):
    """Median seconds of score.py's method, the warm-up's seconds, probabilities."""
    # Warm-up on one batch: traces (or XLA-compiles) the model call, as the
    # original's warm-up does; its time is reported apart.
    began = time.perf_counter()
    call = forward.make_forward(model, manifest, jit_compile=jit_compile)
    forward.predict_windows(model, windows[:batch_size], manifest, batch_size,
                            progress=False, forward=call, jit_compile=jit_compile)
    warm_up = time.perf_counter() - began
    runs, probabilities = [], None
    for _ in range(repeats):
        began = time.perf_counter()
        probabilities = forward.predict_windows(model, windows, manifest, batch_size,
                                                progress=False, forward=call,
                                                jit_compile=jit_compile)
        runs.append(time.perf_counter() - began)
    return statistics.median(runs), warm_up, probabilities


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["LRCN", "ConvNet3D"],
                        help="models to benchmark")
    parser.add_argument("--sequences", type=int, default=4, help="generated sequences")
    parser.add_argument("--frames", type=int, default=55, help="frames per sequence")
    parser.add_argument("--sample", type=int, default=12,
                        help="windows timed with the original method")
    parser.add_argument("--batch-size", type=int, default=scoring.ScoreConfig.batch_size,
                        help="score.py batch size (score.py's default)")
    parser.add_argument("--jit", choices=("auto", "on", "off"), default="auto",
                        help="XLA for score.py's model call; auto: as score.py decides "
                             f"(on from {forward.JIT_MIN_WINDOWS} windows)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed runs of score.py's method (median reported)")
    parser.add_argument("--output", default=os.path.join(REPO_ROOT, "bench", "results",
                                                         "score.json"),
                        help="where to write the figures")
    args = parser.parse_args()

    results = {"cpu_count": os.cpu_count(), "frame_size": FRAME_SIZE,
               "window_shape": [SEQ_LEN, IMAGE_DIM, IMAGE_DIM, CHANNELS],
               "num_classes": NUM_CLASSES, "batch_size": args.batch_size, "models": {}}
    with tempfile.TemporaryDirectory() as root:
        manifest, windows = generate_test_set(root, args.sequences, args.frames)
        results["num_windows"] = len(windows)
        jit_compile = {"on": True, "off": False,
                       "auto": len(windows) >= forward.JIT_MIN_WINDOWS}[args.jit]
        results["jit_compile"] = jit_compile
        results["cpu_matmul_gflops"] = cpu_matmul_gflops()
        results["cpu_nominal_peak_gflops"] = peak = nominal_peak_gflops()
        for name in args.models:
            tf.keras.utils.set_random_seed(0)
            model = models.build_model(name, SEQ_LEN, IMAGE_DIM, CHANNELS, NUM_CLASSES)
            per_window, sample_outputs = time_original(model, windows, args.sample)
            new_total, warm_up, probabilities = time_new(model, manifest, windows,
                                                         args.batch_size, args.repeats,
                                                         jit_compile)
            agree = max(float(np.abs(probabilities[number] - output).max())
                        for number, output in sample_outputs.items())
            original_total = per_window * len(windows)
            flops = model_info.model_flops(model)
            floor = flops / (peak * 1e9) if peak else None
            results["models"][name] = {
                "original_seconds_per_window_median": per_window,
                "original_seconds_extrapolated": original_total,
                "original_sample_windows": len(sample_outputs),
                "new_seconds_median": new_total,
                "new_warm_up_seconds": warm_up,
                "new_seconds_per_window": new_total / len(windows),
                "speedup": original_total / new_total,
                "max_abs_probability_difference": agree,
                "gflop_per_window": flops / 1e9,
                "compute_floor_seconds_per_window": floor,
                "new_gflops": flops / 1e9 / (new_total / len(windows)),
                "ceiling_speedup": per_window / floor if floor else None,
            }
    print(f"score: {results['num_windows']} windows of {tuple(results['window_shape'])}, "
          f"{NUM_CLASSES} classes, {FRAME_SIZE[0]}x{FRAME_SIZE[1]} PNG frames, "
          f"{os.cpu_count()} CPUs, batch {args.batch_size}, "
          f"XLA {'on' if results['jit_compile'] else 'off'}")
    print(f"{'model':<10} {'original ms/window':>19} {'score.py ms/window':>19} "
          f"{'speedup':>8} {'max |dp|':>9} {'warm-up s':>10}")
    for name, row in results["models"].items():
        print(f"{name:<10} {row['original_seconds_per_window_median'] * 1000:>19.1f} "
              f"{row['new_seconds_per_window'] * 1000:>19.1f} {row['speedup']:>7.1f}x "
              f"{row['max_abs_probability_difference']:>9.1e} "
              f"{row['new_warm_up_seconds']:>10.1f}")
    peak = results["cpu_nominal_peak_gflops"]
    print(f"roofline: nominal float32 peak "
          + (f"{peak:.0f} GFLOP/s" if peak else "unknown (no AVX2/FMA clock found)")
          + f"; a 2048^3 matmul runs at {results['cpu_matmul_gflops']:.0f} GFLOP/s")
    if peak:
        print(f"{'model':<10} {'GFLOP/window':>13} {'floor ms/window':>16} "
              f"{'score.py GFLOP/s':>17} {'of peak':>8} {'largest speedup':>16}")
        for name, row in results["models"].items():
            print(f"{name:<10} {row['gflop_per_window']:>13.2f} "
                  f"{row['compute_floor_seconds_per_window'] * 1000:>16.1f} "
                  f"{row['new_gflops']:>17.0f} {100 * row['new_gflops'] / peak:>7.0f}% "
                  f"{row['ceiling_speedup']:>15.2f}x")
    bench_common.write_results(args.output, results)


if __name__ == "__main__":
    main()
