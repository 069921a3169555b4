#!/usr/bin/env python3
"""Benchmark: detect.py's frames per second over one long sequence, per model and
mode, beside the naive method.

Every method labels every frame of the same generated PNG sequence with the same
(randomly initialised) weights:
  naive:          per frame t, the window ending at t, its L frames read and
                  decoded again (cv2.imread, RGB, INTER_AREA resize, scaling)
                  and one traced model call on a batch of one. Timed on a sample
                  of frames and extrapolated (median seconds per frame);
  window offline: coreLib.detection: frames decoded once by inference.frame_reader's threads,
                  windows cut in memory, batches of windows per model call (LRCN:
                  each frame's convolutional features computed once, the LSTM
                  head per window), each frame the mean of the windows covering it;
  window online:  the same, each frame labelled by the window ending at it;
  stream online:  the stream-step runner, one frame per call with its state:
                  CausalMobileNet through its StreamRunner (what detect.py runs
                  online); for the window models stream_steps.WindowStreamStep (the
                  window model on the last L frames, one call per frame), which
                  measures the runner, not a streaming architecture;
  with --litert (models with a stream mode): the model exported by export.py
  (float32 LiteRT), detect.py given the .tflite files: stream online through
  CausalMobileNet_stream.tflite, and the naive method again with the window
  .tflite, so that each runtime is compared with itself as well.
Times are end to end from PNG files (decode, resize, model, smoothing, labels),
without writing outputs. Writes bench/results/detect.json.
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

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from coreLib import models  # noqa: E402
from coreLib.data import manifest as manifest_lib
from coreLib.detection import config as detect_config, driver, sources  # noqa: E402
from coreLib.inference import exported_model, stream_steps, window_runners  # noqa: E402

SEQ_LEN, IMAGE_DIM, CHANNELS, NUM_CLASSES = 6, 64, 3, 17
FRAME_SIZE = (320, 240)  # (width, height) of the generated colour frames


def generate_sequence(folder: str, num_frames: int) -> None:
    """Smooth-with-noise colour frames, as bench/score.py generates them."""
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    width, height = FRAME_SIZE
    yy, xx = np.mgrid[0:height, 0:width]
    for index in range(num_frames):
        base = (xx + yy * 2 + 7 * index) % 256
        noise = rng.integers(0, 24, (height, width, 3))
        image = np.clip(base[..., None] + noise, 0, 255).astype(np.uint8)
        cv2.imwrite(os.path.join(folder, f"color_{index}.png"), image)


def keras_window_call(model):
    """The naive method's model call: a float32 window in [0, 1], traced once."""
    call = tf.function(lambda window: model(window, training=False),
                       input_signature=[tf.TensorSpec((1, SEQ_LEN, IMAGE_DIM, IMAGE_DIM,
                                                       CHANNELS), tf.float32)])
    return lambda window: call(window.astype(np.float32) / 255.0).numpy()


def naive_seconds_per_frame(predict, folder: str, num_frames: int, sample: int) -> float:
    """Median seconds per frame of the naive method over a sample of frames.

    Args:
        predict: ``(1, L, D, D, C)`` uint8 window -> probabilities (scaling its own).
    """
    def window_ending_at(stop):
        stack = []
        for index in range(stop - SEQ_LEN + 1, stop + 1):
            image = cv2.imread(os.path.join(folder, f"color_{index}.png"))
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            stack.append(cv2.resize(image, (IMAGE_DIM, IMAGE_DIM),
                                    interpolation=cv2.INTER_AREA))
        return np.stack(stack)[np.newaxis]

    predict(window_ending_at(SEQ_LEN - 1))   # trace / allocate before timing
    step = max(1, (num_frames - SEQ_LEN) // sample)
    seconds = []
    for stop in range(SEQ_LEN - 1, num_frames, step)[:sample]:
        began = time.perf_counter()
        predict(window_ending_at(stop))
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds)


def export_litert(model, manifest, folder: str):
    """export.py's float32 LiteRT files of a model: (window file, stream file)."""
    from coreLib.export import export_model

    os.makedirs(folder)
    weights = os.path.join(folder, f"{model.name}.weights.h5")
    model.save_weights(weights)
    with open(os.path.join(folder, "run_config.json"), "w") as handle:
        json.dump({"model_name": model.name, "window_shape": list(manifest.window_shape),
                   "num_classes": manifest.num_classes, "classes": list(manifest.classes),
                   "modality": manifest.modality, "dtype": manifest.dtype}, handle)
    out_dir = os.path.join(folder, "export")
    export_model.export(export_model.ExportConfig(model.name, weights, out_dir,
                                                  formats=("float32",), parity_windows=4))
    return (os.path.join(out_dir, export_model.litert_file_name(model.name, "float32")),
            os.path.join(out_dir, export_model.litert_file_name(model.name, "float32", stream=True)))


def time_detection(sequence, manifest, kind, runner, mode, config, repeats: int):
    """Median seconds of detect_sequence, and frames decoded in the last run."""
    runs, decoded = [], 0
    for _ in range(repeats):
        began = time.perf_counter()
        result = driver.detect_sequence(sequence, manifest, kind, runner, mode, config)
        runs.append(time.perf_counter() - began)
        decoded = result.decoded_frames
    return statistics.median(runs), decoded


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["DUMMY", "LRCN", "CausalMobileNet"],
                        help="models to benchmark")
    parser.add_argument("--frames", type=int, default=1000, help="frames in the sequence")
    parser.add_argument("--sample", type=int, default=60,
                        help="frames timed with the naive method")
    parser.add_argument("--batch-size", type=int, default=detect_config.DetectConfig.batch_size,
                        help="windows per model call (detect.py's default)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="timed runs of each detection mode (median reported)")
    parser.add_argument("--litert", action="store_true",
                        help="also the float32 LiteRT export of models with a stream "
                             "mode (stream online and naive, through the .tflite files)")
    parser.add_argument("--output", default=os.path.join(REPO_ROOT, "bench", "results",
                                                         "detect.json"),
                        help="where to write the figures")
    args = parser.parse_args()

    classes = tuple(f"action-{k}" for k in range(NUM_CLASSES - 1)) + (manifest_lib.NO_ACTION,)
    manifest = manifest_lib.Manifest(classes, SEQ_LEN, IMAGE_DIM, CHANNELS, "color", "uint8",
                                     False, {}, "")
    results = {"cpu_count": os.cpu_count(), "frame_size": FRAME_SIZE,
               "num_frames": args.frames, "batch_size": args.batch_size,
               "window_shape": list(manifest.window_shape), "num_classes": NUM_CLASSES,
               "models": {}}
    with tempfile.TemporaryDirectory() as root:
        folder = os.path.join(root, "long")
        generate_sequence(folder, args.frames)
        sequence = sources.SequenceSource("long", folder, False, args.frames)
        warm_up = sources.SequenceSource("warm", folder, False, 2 * args.batch_size)
        config = detect_config.DetectConfig("bench", "unused", folder, progress=False,
                                            batch_size=args.batch_size)
        for name in args.models:
            tf.keras.utils.set_random_seed(0)
            model = models.build_model(name, SEQ_LEN, IMAGE_DIM, CHANNELS, NUM_CLASSES)
            window_runner = window_runners.make_window_runner(name, model, manifest)
            builder = stream_steps.stream_step_builder(name)
            stream = (builder(model, manifest) if builder
                      else stream_steps.WindowStreamStep(model, manifest))
            naive = naive_seconds_per_frame(keras_window_call(model), folder, args.frames,
                                            args.sample)
            row = {"naive_frames_per_second": 1.0 / naive, "naive_sample_frames": args.sample,
                   "stream_step": type(stream).__name__}
            runs = [("window_offline", "window", window_runner, "offline"),
                    ("window_online", "window", window_runner, "online"),
                    ("stream_online", "stream", stream, "online")]
            if args.litert and builder:
                window_file, stream_file = export_litert(model, manifest,
                                                         os.path.join(root, name))
                window_litert = exported_model.load_exported(window_file)
                naive_litert = naive_seconds_per_frame(window_litert.predict, folder,
                                                       args.frames, args.sample)
                row["naive_litert_frames_per_second"] = 1.0 / naive_litert
                runs.append(("litert_stream_online", "stream", stream_steps.ExportedStreamStep(
                    exported_model.load_exported(stream_file)), "online"))
            for label, kind, runner, mode in runs:
                driver.detect_sequence(warm_up, manifest, kind, runner, mode, config)
                seconds, decoded = time_detection(sequence, manifest, kind, runner, mode,
                                                  config, args.repeats)
                if decoded != args.frames:
                    raise SystemExit(f"{label}: {decoded} frames decoded, not {args.frames}")
                fps = args.frames / seconds
                row[label] = {"seconds": seconds, "frames_per_second": fps,
                              "decoded_frames": decoded,
                              "speedup_over_naive": fps * naive}
                if label.startswith("litert"):
                    row[label]["speedup_over_naive_litert"] = fps * naive_litert
            results["models"][name] = row
    print(f"detect: {args.frames} PNG frames of {FRAME_SIZE[0]}x{FRAME_SIZE[1]}, windows "
          f"{tuple(manifest.window_shape)}, {NUM_CLASSES} classes, {os.cpu_count()} CPUs, "
          f"batch {args.batch_size}; frames/s (x naive)")
    modes = ("window_offline", "window_online", "stream_online")
    print(f"{'model':<8} {'naive':>8} " + " ".join(f"{mode:>22}" for mode in modes))
    for name, row in results["models"].items():
        cells = [f"{row[mode]['frames_per_second']:>12.1f} ({row[mode]['speedup_over_naive']:>5.1f}x)"
                 for mode in modes]
        print(f"{name:<8} {row['naive_frames_per_second']:>8.1f} "
              + " ".join(f"{cell:>22}" for cell in cells))
        if "litert_stream_online" in row:
            litert = row["litert_stream_online"]
            print(f"{name} LiteRT float32: stream online {litert['frames_per_second']:.1f} "
                  f"frames/s = {litert['speedup_over_naive']:.1f}x the naive method (Keras), "
                  f"{litert['speedup_over_naive_litert']:.1f}x the naive method with the "
                  f"window .tflite ({row['naive_litert_frames_per_second']:.1f} frames/s)")
    bench_common.write_results(args.output, results)


if __name__ == "__main__":
    main()
