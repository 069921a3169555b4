#!/usr/bin/env python3
"""Benchmark: export.py's formats side by side, per model, in one run.

For each model (seeded random weights, exported by coreLib.export.export_model with
every format): file size, ms per window at batch 1 and at batch 64 (median of
several calls; the Keras model as score.py runs it, the SavedModel through
tf.saved_model.load, LiteRT files through ai-edge-litert with --threads
threads), top-1 agreement with Keras and max probability difference on the
parity windows. The dynamic-range file's size over the float32 file's is
printed beside the 30 % target (ConvNet3D: its Dense layers hold most of its
weights). With --window-stream the stream step (the window-buffer stream mode,
one core) is timed per frame too. Writes bench/results/export.json.

The default run is short (DUMMY at 6x64x64x3 with its stream step, ConvNet3D at
4x16x16x3); --models CausalMobileNet times the streaming model's own stream step
at 6x64x64x3; --models ConvNet3D,LRCN --seq-len 6 --image-dim 64 runs the
original shapes (ConvNet3D's float32 file is then ~380 MB, several minutes).
"""

import argparse
import json
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

from coreLib.data import manifest as manifest_lib  # noqa: E402
from coreLib.export import export_model
from coreLib.inference import exported_model
from coreLib import models  # noqa: E402
from coreLib.preprocessing import records

NUM_CLASSES = 17
DYNAMIC_SIZE_TARGET = 0.30
STREAM_TARGET_MS = 2.0
LARGE_BATCH = 64


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="DUMMY,ConvNet3D",
                        help="comma-separated model names")
    parser.add_argument("--seq-len", type=int, default=None,
                        help="frames per window (default: 6 for DUMMY, 4 for the others)")
    parser.add_argument("--image-dim", type=int, default=None,
                        help="frame side (default: 64 for DUMMY, 16 for ConvNet3D, 48 "
                             "for LRCN)")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per model")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure")
    parser.add_argument("--parity-windows", type=int, default=64)
    parser.add_argument("--window-stream", default="DUMMY",
                        help="models that also get the window-buffer stream step")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "bench", "results",
                                                      "export.json"))
    return parser.parse_args(argv)


DEFAULT_SHAPES = {"DUMMY": (6, 64), "ConvNet3D": (4, 16), "LRCN": (4, 48),
                  "CausalMobileNet": (6, 64)}


def median_ms_per_window(call, windows: np.ndarray, repeats: int) -> float:
    """Median over ``repeats`` calls (after one warm-up) of ms per window."""
    call(windows)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        call(windows)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000 / len(windows)


def bench_model(name: str, args, work_dir: str) -> dict:
    seq_len, image_dim = DEFAULT_SHAPES.get(name, (4, 48))
    seq_len, image_dim = args.seq_len or seq_len, args.image_dim or image_dim
    import keras
    keras.utils.set_random_seed(0)
    model = models.build_model(name, seq_len, image_dim, args.channels, NUM_CLASSES)
    model_dir = os.path.join(work_dir, name)
    os.makedirs(model_dir)
    weights = os.path.join(model_dir, f"{name}.weights.h5")
    model.save_weights(weights)
    classes = [f"action-{k}" for k in range(NUM_CLASSES - 1)] + [manifest_lib.NO_ACTION]
    modality = "color" if args.channels == 3 else "depth"
    dtype = "uint8" if args.channels == 3 else "uint16"
    with open(os.path.join(model_dir, "run_config.json"), "w") as handle:
        json.dump({"model_name": name, "window_shape": [seq_len, image_dim, image_dim,
                                                        args.channels],
                   "num_classes": NUM_CLASSES, "classes": classes, "modality": modality,
                   "dtype": dtype}, handle)
    out_dir = os.path.join(work_dir, f"{name}_export")
    began = time.perf_counter()
    with_stream = name in args.window_stream.split(",")
    result = export_model.export(export_model.ExportConfig(
        name, weights, out_dir, parity_windows=args.parity_windows,
        window_stream=with_stream))
    export_seconds = time.perf_counter() - began
    description = result.description
    shape = (seq_len, image_dim, image_dim, args.channels)
    rng = np.random.default_rng(1)
    top = int(np.iinfo(dtype).max) + 1
    small = rng.integers(0, top, (1,) + shape).astype(dtype)
    large = rng.integers(0, top, (LARGE_BATCH,) + shape).astype(dtype)

    forward = tf.function(lambda batch: model(records.scale_pixels(batch, dtype),
                                              training=False))
    runners = {"keras": lambda windows: forward(tf.constant(windows)).numpy(),
               "saved_model": exported_model.load_exported(
                   os.path.join(out_dir, "saved_model")).predict}
    for format_name in export_model.LITERT_FORMATS:
        path = os.path.join(out_dir, export_model.litert_file_name(name, format_name))
        runners[format_name] = exported_model.load_exported(
            path, num_threads=args.threads).predict
    parity_keys = {"saved_model": "saved_model", "float32": "litert_float32",
                   "fp16": "litert_fp16", "dynamic": "litert_dynamic"}
    files = {"saved_model": "saved_model", "float32": f"{name}.tflite",
             "fp16": f"{name}_fp16.tflite", "dynamic": f"{name}_dynamic.tflite"}
    formats = {}
    for format_name, call in runners.items():
        row = {"ms_per_window_batch1": round(median_ms_per_window(call, small,
                                                                  args.repeats), 3),
               f"ms_per_window_batch{LARGE_BATCH}": round(
                   median_ms_per_window(call, large, max(2, args.repeats // 2)), 3)}
        if format_name in files:
            row["bytes"] = description["files"][files[format_name]]["bytes"]
            parity = description["parity"][parity_keys[format_name]]
            row["top1_agreement"] = parity["top1_agreement"]
            row["max_abs_diff"] = parity["max_abs_diff"]
        formats[format_name] = row
        print(f"{name:9s} {format_name:11s} {row.get('bytes', 0):>11} B  "
              f"b1 {row['ms_per_window_batch1']:8.3f} ms  "
              f"b{LARGE_BATCH} {row[f'ms_per_window_batch{LARGE_BATCH}']:8.3f} ms/window  "
              f"top-1 {row.get('top1_agreement', 1.0) * 100:5.1f}%")
    ratio = formats["dynamic"]["bytes"] / formats["float32"]["bytes"]
    entry = {"window_shape": list(shape), "num_classes": NUM_CLASSES,
             "parameters": int(model.count_params()), "export_seconds": round(export_seconds, 1),
             "parity_windows": description["parity"]["windows"],
             "rebuilt_layers": description["rebuilt_layers"], "formats": formats,
             "dynamic_to_float32_size": round(ratio, 4)}
    print(f"{name}: dynamic-range file {ratio * 100:.1f}% of float32 "
          f"(target <= {DYNAMIC_SIZE_TARGET * 100:.0f}% for ConvNet3D)")
    if "stream" in description:
        stream = exported_model.load_exported(
            os.path.join(out_dir, export_model.litert_file_name(name, "stream")),
            num_threads=1)
        states = stream.initial_state(1)
        frame = small[:, 0]

        def step(_):
            nonlocal states
            _, states = stream.stream_step(frame, states)

        per_frame = median_ms_per_window(step, np.zeros(1), args.repeats * 20)
        entry["stream"] = {"mode": description["stream"]["mode"],
                           "litert_float32_ms_per_frame_1_core": round(per_frame, 3),
                           "bytes": description["files"][
                               export_model.litert_file_name(name, "stream")]["bytes"]}
        print(f"{name}: {description['stream']['mode']} stream step {per_frame:.3f} ms per "
              f"frame on one core (the streaming model's target: < {STREAM_TARGET_MS} ms)")
    return entry


def main(argv=None) -> int:
    args = parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    results = {"threads": args.threads, "repeats": args.repeats,
               "cpu_count": os.cpu_count(), "models": {},
               "targets": {"convnet3d_dynamic_to_float32_size_max": DYNAMIC_SIZE_TARGET,
                           "stream_ms_per_frame_max": STREAM_TARGET_MS}}
    with tempfile.TemporaryDirectory() as work_dir:
        for name in args.models.split(","):
            results["models"][name] = bench_model(name, args, work_dir)
    bench_common.write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
