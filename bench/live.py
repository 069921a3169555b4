"""Live detection speed (issue 20 §4): detect.py on a stream, side by side in one run.

The demo's model shape - CausalMobileNet on (6, 32, 32, 1) depth windows, 17
classes (seeded weights: speed does not depend on training) - and 320x240 depth
frames of a synthetic TestDetection sequence (coreLib.synthetic), run through the
real detect.py processes:

  raw gray16 on stdin, as fast as they come (a file on stdin):
      from train.py's weights (the LiteRT stream step cached beside them),
      from export.py's float32 <M>_stream.tflite, and from the weights with
      --stream-runtime keras (the Keras step, for comparison);
      frames/s = frames / the live run's wall time (reading, resizing, model,
      labels, events; start-up and writing the outputs not counted);
  the same frames as a PNG folder, --mode online from the weights: frames/s of
      detect (decode included) and the ratio to decoding the same frames alone
      (inference.frame_reader, the same threads);
  paced input at 30 and 120 frames/s (this script writes the frames into
      detect.py's stdin on a clock, --realtime): time from a frame's arrival to
      its events being out, p50/p99 (the fixed --delay not counted), frames
      dropped.

Writes bench/results/live.json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import bench_common  # bench/ is on sys.path when a script here runs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from coreLib.cli import import_tensorflow_quietly  # noqa: E402

tf = import_tensorflow_quietly()

import numpy as np  # noqa: E402

from coreLib.data import frames, manifest as manifest_lib  # noqa: E402
from coreLib.detection import sources  # noqa: E402
from coreLib.export import export_model, litert_cache  # noqa: E402
from coreLib.inference import model_spec  # noqa: E402
from coreLib.synthetic import detection, generator  # noqa: E402

SEQ_LEN, IMAGE_DIM, NUM_CLASSES = 6, 32, 17
WIDTH, HEIGHT = 320, 240
MODEL_NAME = "CausalMobileNet"


def write_model(folder: str) -> str:
    import keras
    from coreLib.models import streaming
    keras.utils.set_random_seed(0)
    model = streaming.build_causal_mobilenet(SEQ_LEN, IMAGE_DIM, 1, NUM_CLASSES)
    os.makedirs(folder)
    path = os.path.join(folder, f"{MODEL_NAME}.weights.h5")
    model.save_weights(path)
    # The synthetic dataset's actions: the sequence's label file names them.
    classes = list(generator.SyntheticConfig().actions) + [manifest_lib.NO_ACTION]
    assert len(classes) == NUM_CLASSES
    with open(os.path.join(folder, manifest_lib.RUN_CONFIG_NAME), "w") as handle:
        json.dump({"model_name": MODEL_NAME, "window_shape": [SEQ_LEN, IMAGE_DIM, IMAGE_DIM, 1],
                   "num_classes": NUM_CLASSES, "classes": classes, "modality": "depth",
                   "dtype": "uint16"}, handle)
    return path


def write_frames(root: str, count: int) -> str:
    """A synthetic TestDetection sequence of ``count`` 320x240 frames; its folder."""
    config = generator.SyntheticConfig(
        train_subjects=("LN",), test_subjects=("alvin",), width=WIDTH, height=HEIGHT,
        detection_sequences=1, detection_frames=count,
        detection_performances=max(1, count // 40))
    plan = detection.plan_detection(config)[0]
    detection.write_detection_sequence(root, config, plan)
    return os.path.join(root, "TestDetection", plan.name)


def detect_command(model_path: str, source: str, out: str, *options) -> list:
    return [sys.executable, os.path.join(REPO_ROOT, "detect.py"), MODEL_NAME, model_path,
            source, "--out", out, "--no-progress", *options]


def summary_of(out: str) -> dict:
    with open(os.path.join(out, "summary.json")) as handle:
        return json.load(handle)


def run_raw(model_path: str, raw_path: str, out: str, *options) -> dict:
    with open(raw_path, "rb") as stdin:
        subprocess.run(detect_command(model_path, "-", out, "--raw-format",
                                      f"gray16le:{WIDTH}x{HEIGHT}", *options),
                       stdin=stdin, check=True, stdout=subprocess.DEVNULL)
    live = summary_of(out)["live"]
    return {"frames": live["frames"], "frames_per_second":
            round(live["frames"] / live["wall_seconds"], 1)}


def run_paced(model_path: str, frame_bytes: list, fps: float, count: int, out: str) -> dict:
    """Writes ``count`` frames into detect.py's stdin at ``fps``. A 320x240 gray16
    frame (150 KB) is larger than a pipe's buffer, so the first write returns only
    once detect.py reads: the clock starts there, with no backlog."""
    process = subprocess.Popen(
        detect_command(model_path, "-", out, "--raw-format", f"gray16le:{WIDTH}x{HEIGHT}",
                       "--realtime"), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    process.stdin.write(frame_bytes[0])
    process.stdin.flush()
    began = time.perf_counter()
    for index in range(1, count):
        wait = began + index / fps - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        process.stdin.write(frame_bytes[index % len(frame_bytes)])
        process.stdin.flush()
    process.stdin.close()
    if process.wait() != 0:
        raise SystemExit(f"bench/live.py: detect.py failed at {fps} fps")
    live = summary_of(out)["live"]
    return {"frames": live["frames"], "dropped_frames": live["dropped_frames"],
            "latency_ms_p50": live["latency_ms_p50"], "latency_ms_p99": live["latency_ms_p99"],
            "latency_ms_max": live["latency_ms_max"]}


def decode_only_seconds(weights: str, folder: str, count: int, workers: int) -> float:
    """Decoding and resizing the folder's frames alone, as detect.py reads them."""
    manifest = model_spec.resolve_model_spec(weights)
    sequence = sources.SequenceSource("bench", folder, False, count)
    began = time.perf_counter()
    decoded = sum(len(chunk) for chunk in sources.png_frame_chunks(sequence, manifest, 32,
                                                                   workers))
    assert decoded == count
    return time.perf_counter() - began


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=400, help="frames rendered")
    parser.add_argument("--raw-repeats", type=int, default=5,
                        help="the raw stdin runs send the frames this many times")
    parser.add_argument("--paced-seconds", type=float, default=8.0,
                        help="length of each paced run")
    parser.add_argument("--output", default=os.path.join(REPO_ROOT, "bench", "results",
                                                         "live.json"))
    args = parser.parse_args()
    results = {"model": f"{MODEL_NAME} ({SEQ_LEN}, {IMAGE_DIM}, {IMAGE_DIM}, 1), "
                        f"{NUM_CLASSES} classes", "frame_size": f"{WIDTH}x{HEIGHT} gray16",
               "cpus": len(os.sched_getaffinity(0))}
    with tempfile.TemporaryDirectory() as root:
        weights = write_model(os.path.join(root, "model"))
        began = time.perf_counter()
        export_model.export(export_model.ExportConfig(
            MODEL_NAME, weights, os.path.join(root, "export"),
            formats=(export_model.config_lib.FLOAT32_FORMAT,)))
        results["export_seconds"] = round(time.perf_counter() - began, 1)
        began = time.perf_counter()
        litert_cache.cached_stream_model(MODEL_NAME, weights)
        results["litert_cache_conversion_seconds"] = round(time.perf_counter() - began, 1)
        stream_file = os.path.join(root, "export", f"{MODEL_NAME}_stream.tflite")
        # The sequence in a dataset folder of its own: detect.py refuses --out inside it.
        folder = write_frames(os.path.join(root, "data"), args.frames)
        frame_bytes = [frames.read_frame(folder, "depth", index).astype("<u2").tobytes()
                       for index in range(args.frames)]
        raw_path = os.path.join(root, "frames.raw")
        with open(raw_path, "wb") as handle:
            for _ in range(args.raw_repeats):
                handle.writelines(frame_bytes)
        out = lambda name: os.path.join(root, "out", name)   # noqa: E731
        results["raw_stdin"] = {
            "weights": run_raw(weights, raw_path, out("raw_weights")),
            "stream_tflite": run_raw(stream_file, raw_path, out("raw_tflite")),
            "weights_keras": run_raw(weights, raw_path, out("raw_keras"),
                                     "--stream-runtime", "keras"),
        }
        subprocess.run(detect_command(weights, folder, out("png"), "--mode", "online"),
                       check=True, stdout=subprocess.DEVNULL)
        png = summary_of(out("png"))
        decode = decode_only_seconds(weights, folder, args.frames, 2)
        results["png_online"] = {
            "frames": png["num_frames"], "frames_per_second": png["frames_per_second"],
            "decode_only_frames_per_second": round(args.frames / decode, 1),
            "ratio_to_decode_only": round(png["detect_seconds"] / decode, 2)}
        results["paced"] = {
            str(fps): run_paced(weights, frame_bytes, fps, int(fps * args.paced_seconds),
                                out(f"paced_{fps}"))
            for fps in (30, 120)}
    print(json.dumps(results, indent=1))
    bench_common.write_results(args.output, results)


if __name__ == "__main__":
    main()
