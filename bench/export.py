#!/usr/bin/env python3
"""Benchmark: export.py's files side by side, per model, in one run.

Per file: bytes, the arena LiteRT plans (peak bytes of live activation tensors
for one batch-1 call, from the interpreter's tensor details: the weights are not
in it), ms per window at batch 1 and at batch 64 (median of several calls;
LiteRT files through ai-edge-litert with --threads threads), top-1 agreement
with Keras, max probability difference and Test accuracy (micro F1) on the
parity windows. Stream files (a model's own stream step, or --window-stream's
window buffer) are timed per frame on one core: float32 and int8 side by side.

Targets printed beside the figures: the dynamic-range file at most 30 % of the
float32 file (ConvNet3D), the int8 stream file at most 160 KB and its planned
activations at most 256 KB (a Cortex-M7's SRAM) at 32x32 depth, the int8 stream
step not slower than the float32 one.

--model-path W exports a trained model (W's run_config.json gives the window,
its DataSet the parity and calibration windows): the accuracy figures mean
something only then. Without it, models are built with seeded random weights and
the int8 files calibrated on random windows (size and speed only). The default
run is short (DUMMY at 6x64x64x3 with its stream step, ConvNet3D at 4x16x16x3).
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

from coreLib import models  # noqa: E402
from coreLib.data import manifest as manifest_lib  # noqa: E402
from coreLib.export import config as config_lib, export_model, litert  # noqa: E402
from coreLib.inference import exported_model  # noqa: E402

NUM_CLASSES = 17
DYNAMIC_SIZE_TARGET = 0.30
INT8_STREAM_BYTES_TARGET = 160 * 1024
INT8_ARENA_TARGET = 256 * 1024
LARGE_BATCH = 64
DEFAULT_SHAPES = {"DUMMY": (6, 64), "ConvNet3D": (4, 16), "LRCN": (4, 48),
                  "CausalMobileNet": (6, 64)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="DUMMY,ConvNet3D",
                        help="comma-separated model names (random weights)")
    parser.add_argument("--model-path", default=None,
                        help="a trained model's weights (its run_config.json beside) "
                             "instead of --models")
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
    parser.add_argument("--output", default=os.path.join(REPO_ROOT, "bench", "results",
                                                         "export.json"))
    return parser.parse_args(argv)


def median_ms(call, repeats: int, per: int = 1) -> float:
    """Median over ``repeats`` calls (after one warm-up) of ms per ``per`` items."""
    call()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000 / per


def random_model(name: str, args, work_dir: str) -> str:
    """Seeded random weights and a run_config.json; returns the weights' path."""
    import keras
    seq_len, image_dim = DEFAULT_SHAPES.get(name, (4, 48))
    seq_len, image_dim = args.seq_len or seq_len, args.image_dim or image_dim
    keras.utils.set_random_seed(0)
    model = models.build_model(name, seq_len, image_dim, args.channels, NUM_CLASSES)
    model_dir = os.path.join(work_dir, name)
    os.makedirs(model_dir)
    weights = os.path.join(model_dir, f"{name}.weights.h5")
    model.save_weights(weights)
    classes = [f"action-{k}" for k in range(NUM_CLASSES - 1)] + [manifest_lib.NO_ACTION]
    with open(os.path.join(model_dir, "run_config.json"), "w") as handle:
        json.dump({"model_name": name, "window_shape": [seq_len, image_dim, image_dim,
                                                        args.channels],
                   "num_classes": NUM_CLASSES, "classes": classes,
                   "modality": "color" if args.channels == 3 else "depth",
                   "dtype": "uint8" if args.channels == 3 else "uint16"}, handle)
    return weights


def file_row(path: str, description: dict, runner, windows: dict, args) -> dict:
    """Bytes, planned arena, ms per window or per frame, parity of one file."""
    name = os.path.basename(path)
    content = open(path, "rb").read()
    row = {"bytes": len(content), "arena_bytes": litert.planned_arena_bytes(content)}
    if runner.has_window_model:
        for label, batch in windows.items():
            row[f"ms_per_window_{label}"] = round(median_ms(
                lambda: runner.predict(batch), args.repeats, len(batch)), 4)
    else:
        one = exported_model.load_exported(path, num_threads=1)
        states = one.initial_state(1)
        frame = windows["batch1"][:, 0]

        def step():
            nonlocal states
            _, states = one.stream_step(frame, states)

        row["ms_per_frame_1_core"] = round(median_ms(step, args.repeats * 40), 4)
    for key in ("litert_float32", "litert_fp16", "litert_dynamic", "litert_int8",
                "stream_litert", "stream_litert_int8"):
        if config_lib.parity_key(*_format_of(name)) == key and key in description["parity"]:
            figures = description["parity"][key]
            row.update({field: figures[field] for field in (
                "top1_agreement", "max_abs_diff", "accuracy", "reference_accuracy")
                if figures.get(field) is not None})
    return row


def _format_of(file_name: str):
    stem = file_name[:-len(".tflite")]
    stream = stem.endswith("_stream")
    stem = stem[:-len("_stream")] if stream else stem
    for format_name in ("fp16", "dynamic", "int8"):
        if stem.endswith(f"_{format_name}"):
            return format_name, stream
    return "float32", stream


def bench_model(name: str, weights: str, args, work_dir: str) -> dict:
    out_dir = os.path.join(work_dir, f"{name}_export")
    began = time.perf_counter()
    result = export_model.export(export_model.ExportConfig(
        name, weights, out_dir, parity_windows=args.parity_windows,
        formats=("float32", "fp16", "dynamic", "int8"), random_calibration=True,
        window_stream=name in args.window_stream.split(","), allow_below_target=True))
    export_seconds = time.perf_counter() - began
    description = result.description
    shape = tuple(description["window_shape"])
    dtype = description["dtype"]
    rng = np.random.default_rng(1)
    top = int(np.iinfo(dtype).max) + 1
    windows = {"batch1": rng.integers(0, top, (1,) + shape).astype(dtype),
               f"batch{LARGE_BATCH}": rng.integers(0, top, (LARGE_BATCH,) + shape
                                                   ).astype(dtype)}
    files = {}
    for file_name in sorted(description["files"]):
        if not file_name.endswith(".tflite"):
            continue
        path = os.path.join(out_dir, file_name)
        runner = exported_model.load_exported(path, num_threads=args.threads)
        files[file_name] = row = file_row(path, description, runner, windows, args)
        timing = (f"{row['ms_per_frame_1_core']:8.3f} ms/frame (1 core)"
                  if "ms_per_frame_1_core" in row else
                  f"{row['ms_per_window_batch1']:8.3f} ms/window b1")
        print(f"{name:15s} {file_name:36s} {row['bytes']:>10} B  arena "
              f"{row['arena_bytes']:>9} B  {timing}  top-1 "
              f"{row.get('top1_agreement', 1.0) * 100:5.1f}%"
              + (f"  Test {100 * row['accuracy']:.1f}% (Keras {100 * row['reference_accuracy']:.1f}%)"
                 if "accuracy" in row else ""))
    entry = {"window_shape": list(shape), "export_seconds": round(export_seconds, 1),
             "parity_windows": description["parity"]["windows"],
             "calibration": description.get("int8", {}).get("calibration"),
             "files": files, "targets": _targets(name, files)}
    for line in entry["targets"]:
        print(f"{name}: {line}")
    return entry


def _targets(name: str, files: dict) -> list:
    lines = []
    get = lambda suffix: files.get(f"{name}{suffix}.tflite")  # noqa: E731
    if get("_dynamic") and get(""):
        lines.append(f"dynamic-range file {100 * get('_dynamic')['bytes'] / get('')['bytes']:.1f}"
                     f"% of float32 (target <= {100 * DYNAMIC_SIZE_TARGET:.0f}% for ConvNet3D)")
    stream, int8_stream = get("_stream"), get("_int8_stream")
    if int8_stream:
        lines.append(f"int8 stream file {int8_stream['bytes'] / 1024:.1f} KB (target <= "
                     f"{INT8_STREAM_BYTES_TARGET // 1024} KB), planned arena "
                     f"{int8_stream['arena_bytes'] / 1024:.1f} KB (target <= "
                     f"{INT8_ARENA_TARGET // 1024} KB)")
    if stream and int8_stream:
        ratio = int8_stream["ms_per_frame_1_core"] / stream["ms_per_frame_1_core"]
        lines.append(f"int8 stream step {int8_stream['ms_per_frame_1_core']:.3f} ms against "
                     f"float32 {stream['ms_per_frame_1_core']:.3f} ms per frame on one core "
                     f"(ratio {ratio:.2f}; target <= 1)")
    return lines


def main(argv=None) -> int:
    args = parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    results = {"threads": args.threads, "repeats": args.repeats,
               "cpu_count": os.cpu_count(), "models": {},
               "targets": {"convnet3d_dynamic_to_float32_size_max": DYNAMIC_SIZE_TARGET,
                           "int8_stream_bytes_max": INT8_STREAM_BYTES_TARGET,
                           "int8_arena_bytes_max": INT8_ARENA_TARGET}}
    with tempfile.TemporaryDirectory() as work_dir:
        if args.model_path:
            with open(os.path.join(os.path.dirname(args.model_path) or ".",
                                   "run_config.json")) as handle:
                name = json.load(handle)["model_name"]
            results["models"][name] = bench_model(name, args.model_path, args, work_dir)
            results["model_path"] = os.path.abspath(args.model_path)
        else:
            for name in args.models.split(","):
                results["models"][name] = bench_model(
                    name, random_model(name, args, work_dir), args, work_dir)
    bench_common.write_results(args.output, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
