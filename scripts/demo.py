"""`make demo`: the whole pyACTRECOG job on a generated BII-layout dataset.

Runs the real command-line tools one after the other, as a user would type them:

    python -m coreLib.synthetic DATA --style STYLE ...   (skipped when DATA is complete)
    python main.py DATA OUT ...
    python debug.py OUT/DataSet CHECK
    python train.py OUT/DataSet CausalMobileNet OUT/model ...
    python score.py CausalMobileNet OUT/model/CausalMobileNet.weights.h5 OUT/DataSet/mode:Test_...json
    python videogen.py OUT/DataSet/Results/video_sec_CausalMobileNet.json ...
    python export.py CausalMobileNet OUT/model/CausalMobileNet.weights.h5 OUT/export ...
    python score.py CausalMobileNet OUT/export/CausalMobileNet.tflite OUT/DataSet/mode:Test_...json
    python score.py CausalMobileNet OUT/export/CausalMobileNet_int8.tflite OUT/DataSet/mode:Test_...json
    python detect.py CausalMobileNet OUT/model/CausalMobileNet.weights.h5 DATA/TestDetection --mode online
    (and --mode offline)
    python scripts/feed_frames.py DATA/TestDetection/<first> --fps 30 \
        | python detect.py CausalMobileNet OUT/model/CausalMobileNet.weights.h5 - \
              --raw-format gray16le:160x120 --events -      (live: events as they come)

and prints a summary. DEMO_DIR (default demo_output/) holds everything: DATA is
reused by the next run, OUT is started afresh each time. DEMO_STYLE picks the
synthetic family: ``pose`` (each action its own hand pose, the default) or
``trajectory`` (one hand shape, each action its own motion).

The setting is the paper's window, 6 frames (L from the label files), of 32x32
depth crops centred on the hand with its motion channels (main.py's default for
depth frames), and the streaming model CausalMobileNet trained with
train.py's default recipe (warm-up then cosine, the run-length BatchNorm momentum,
rotations as online augmentation); only the number of steps is set, to fit the
demo's few minutes on a 2-core CPU.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_NAME = "CausalMobileNet"

# The demo's dataset: all 18 subjects and 16 actions, short sequences.
SYNTHETIC_ARGS = ["--size", "160x120", "--frames-per-sequence", "48",
                  "--test-frames-per-sequence", "36", "--reps", "2", "--max-len", "18",
                  "--min-gap", "3", "--max-gap", "6", "--hand-scale", "1.5", "--seed", "0",
                  "--detection-sequences", "2", "--detection-frames", "300",
                  "--detection-performances", "12"]
STYLES = ("pose", "trajectory")
MAIN_ARGS = ["--image-dim", "32", "--modality", "depth", "--batch-size", "32"]
# Everything else is train.py's default recipe.
TRAIN_ARGS = ["--epochs", "4", "--steps-per-epoch", "300"]
# Offline: each frame from the windows around it; online: causal, the streaming
# model frame by frame with its state, each label given L-1 frames after its frame
# (detect.py's default --delay; the latency counts it).
DETECT_MODES = ("offline", "online")
VIDEO_MAX_LEN = "400"
# The live run: a producer sends a TestDetection sequence's depth frames at this
# rate into detect.py's standard input, raw, as a camera's SDK would.
LIVE_FPS = "30"
DATA_COMPLETE_STAMP = ".demo-data-complete"


def echo_lines(lines, log) -> None:
    """Each line of a tool's output to the terminal, the moment it comes, and to the log."""
    for line in lines:
        sys.stdout.write(line)
        sys.stdout.flush()
        log.write(line)


def exit_on_failure(returncode: int, what: str, log_path: str) -> None:
    """Ends the demo with a tool's exit code when it failed."""
    if returncode != 0:
        print(f"demo: {what} failed with exit code {returncode} (log: {log_path})",
              file=sys.stderr)
        sys.exit(returncode)


def run(step: str, command: list, log_path: str) -> float:
    """Runs one tool, echoing its output to the terminal and a log; returns seconds."""
    print(f"\n=== {step}: {' '.join(command)}", flush=True)
    started = time.time()
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n=== {step}: {' '.join(command)}\n")
        log.flush()
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        echo_lines(process.stdout, log)
        process.wait()
    exit_on_failure(process.returncode, step, log_path)
    return time.time() - started


def run_live(sequence_dir: str, weights: str, out_dir: str, log_path: str) -> float:
    """The producer at LIVE_FPS piped into ``detect.py ... -`` with ``--events -``;
    each event line is shown the moment detect.py writes it. Returns seconds."""
    width, height = SYNTHETIC_ARGS[SYNTHETIC_ARGS.index("--size") + 1].split("x")
    producer_command = [sys.executable, os.path.join("scripts", "feed_frames.py"),
                        sequence_dir, "--fps", LIVE_FPS]
    detect_command = [sys.executable, "detect.py", MODEL_NAME, weights, "-",
                      "--raw-format", f"gray16le:{width}x{height}", "--events", "-",
                      "--out", out_dir, "--no-progress"]
    step = f"{' '.join(producer_command)} | {' '.join(detect_command)}"
    print(f"\n=== detect (live, {LIVE_FPS} frames/s): {step}", flush=True)
    started = time.time()
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n=== detect (live): {step}\n")
        producer = subprocess.Popen(producer_command, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)
        detect = subprocess.Popen(detect_command, cwd=REPO_ROOT, stdin=producer.stdout,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
        producer.stdout.close()
        echo_lines(detect.stdout, log)
        detect.wait()
        producer.wait()
    exit_on_failure(detect.returncode, "the live run", log_path)
    return time.time() - started


def _read_text(path: str) -> str:
    """The file's text, or "" when it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def _read_json(path: str):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _figure(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def main() -> int:
    demo_dir = os.path.abspath(os.environ.get("DEMO_DIR", "demo_output"))
    style = os.environ.get("DEMO_STYLE") or "pose"
    if style not in STYLES:
        print(f"demo: DEMO_STYLE={style!r} is not one of {', '.join(STYLES)}",
              file=sys.stderr)
        return 2
    data_dir = os.path.join(demo_dir, f"bii_synthetic_{style}")
    out_dir = os.path.join(demo_dir, "run")
    os.makedirs(demo_dir, exist_ok=True)
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    log_path = os.path.join(out_dir, "demo.log")
    python = sys.executable
    seconds = {}
    started = time.time()

    # The stamp holds the generator's arguments: a dataset made by another version
    # of the demo is made again, not reused.
    stamp_path = os.path.join(data_dir, DATA_COMPLETE_STAMP)
    synthetic_args = SYNTHETIC_ARGS + ["--style", style]
    wanted_stamp = " ".join(synthetic_args) + "\n"
    if _read_text(stamp_path) == wanted_stamp:
        print(f"demo: reusing the generated dataset in {data_dir}")
        seconds["generate"] = 0.0
    else:
        seconds["generate"] = run(
            "generate", [python, "-m", "coreLib.synthetic", data_dir, "--overwrite"]
            + synthetic_args, log_path)
        with open(stamp_path, "w", encoding="utf-8") as stamp:
            stamp.write(wanted_stamp)

    seconds["main"] = run("preprocess", [python, "main.py", data_dir, out_dir] + MAIN_ARGS,
                          log_path)
    dataset_dir = os.path.join(out_dir, "DataSet")
    seconds["check"] = run("check", [python, "debug.py", dataset_dir, "CHECK"], log_path)
    model_dir = os.path.join(out_dir, "model")
    seconds["train"] = run("train", [python, "train.py", dataset_dir, MODEL_NAME, model_dir]
                           + TRAIN_ARGS, log_path)
    weights = os.path.join(model_dir, f"{MODEL_NAME}.weights.h5")
    (test_json,) = glob.glob(os.path.join(glob.escape(dataset_dir), "mode:Test_*.json"))
    seconds["score"] = run("score", [python, "score.py", MODEL_NAME, weights, test_json],
                           log_path)
    results_dir = os.path.join(dataset_dir, "Results")
    video_json = os.path.join(results_dir, f"video_sec_{MODEL_NAME}.json")
    seconds["videogen"] = run("videogen", [python, "videogen.py", video_json, VIDEO_MAX_LEN],
                              log_path)

    metrics_path = os.path.join(results_dir, f"metrics_{MODEL_NAME}.json")
    metrics = _read_json(metrics_path)
    # The float32 LiteRT file must score the same, the full-integer int8 file
    # (calibrated on Train windows) within a point (the Results are named after each
    # file). A file below its targets is kept and reported, so the demo shows it.
    export_dir = os.path.join(out_dir, "export")
    seconds["export"] = run("export", [python, "export.py", MODEL_NAME, weights, export_dir,
                                       "--formats", "float32,int8", "--manifest", dataset_dir,
                                       "--allow-below-target"], log_path)
    litert_file = os.path.join(export_dir, f"{MODEL_NAME}.tflite")
    int8_file = os.path.join(export_dir, f"{MODEL_NAME}_int8.tflite")
    litert_metrics = {}
    for label, path in (("float32", litert_file), ("int8", int8_file)):
        seconds[f"score_{label}"] = run(f"score LiteRT {label}", [
            python, "score.py", MODEL_NAME, path, test_json], log_path)
        litert_metrics[label] = _read_json(os.path.join(
            results_dir, f"metrics_{os.path.basename(path)}.json"))
    export_description = _read_json(os.path.join(export_dir, "export.json"))
    detection = {}
    for mode in DETECT_MODES:
        detections_dir = os.path.join(out_dir, f"detections_{mode}")
        seconds[f"detect_{mode}"] = run(
            f"detect ({mode})", [python, "detect.py", MODEL_NAME, weights,
                                 os.path.join(data_dir, "TestDetection"), "--out",
                                 detections_dir, "--mode", mode, "--no-progress"], log_path)
        detection[mode] = _read_json(os.path.join(detections_dir, "summary.json"))

    live_dir = os.path.join(out_dir, "detections_live")
    sequence_dir = sorted(path for path in glob.glob(os.path.join(
        glob.escape(data_dir), "TestDetection", "*")) if os.path.isdir(path))[0]
    seconds["detect_live"] = run_live(sequence_dir, weights, live_dir, log_path)
    live = _read_json(os.path.join(live_dir, "summary.json"))["live"]

    manifest = _read_json(os.path.join(dataset_dir, "dataset.json"))
    videos = sorted(glob.glob(os.path.join(glob.escape(results_dir), "*.avi")))
    timelines = sorted(glob.glob(os.path.join(glob.escape(out_dir), "detections_*",
                                              "timeline_*.png")))
    splits = manifest["splits"]
    summary = [
        "",
        f"=== pyACTRECOG demo summary ({style} family)",
        "windows: " + ", ".join(f"{name} {splits[name]['num_windows']}"
                                for name in ("Train", "Eval", "Test") if name in splits),
        f"window: {manifest['seq_len']} frames of {manifest['image_dim']}x"
        f"{manifest['image_dim']}x{manifest['channels']} ({manifest['modality']}), "
        f"{len(manifest['classes'])} classes",
        f"training time: {seconds['train']:.0f} s ({MODEL_NAME})",
        f"test accuracy (micro F1, unseen test subjects): "
        f"{100 * metrics['micro_f1']:.1f} %",
        f"test accuracy of the float32 LiteRT file: "
        f"{100 * litert_metrics['float32']['micro_f1']:.1f} %",
        f"test accuracy of the int8 LiteRT file (full integer): "
        f"{100 * litert_metrics['int8']['micro_f1']:.1f} % ("
        + ", ".join(f"{name} {entry['bytes'] // 1024} KB"
                    for name, entry in export_description["files"].items()
                    if "int8" in name) + ")",
    ] + [
        f"detection on TestDetection ({mode}"
        + (f", labels {run['delay']} frames late" if mode == "online" else "")
        + f"): frame accuracy {run['overall']['frame_accuracy']:.1f} %, "
        f"F1@10 {run['overall']['f1@10']:.1f}, F1@25 {run['overall']['f1@25']:.1f}, "
        f"F1@50 {run['overall']['f1@50']:.1f}"
        + (f", latency {_figure(run['overall'].get('latency_frames'))} frames"
           if mode == "online" else "")
        for mode, run in detection.items()
    ] + [
        f"live ({LIVE_FPS} frames/s into detect.py -, {os.path.basename(sequence_dir)}): "
        f"{live['frames']} frames, {live['events']} events, {live['dropped_frames']} "
        f"dropped, from a frame's arrival to its events out p50 "
        f"{live['latency_ms_p50']:.2f} ms, p99 {live['latency_ms_p99']:.2f} ms",
        f"weights: {weights}",
        f"LiteRT models: {litert_file}, {int8_file}",
        f"metrics: {metrics_path}",
        f"confusion matrix: {os.path.join(results_dir, f'confusion_{MODEL_NAME}.png')}",
        "videos: " + ", ".join(videos),
        "timelines: " + ", ".join(timelines),
        f"total: {time.time() - started:.0f} s (" + ", ".join(
            f"{step} {value:.0f} s" for step, value in seconds.items()) + ")",
    ]
    print("\n".join(summary))
    with open(log_path, "a", encoding="utf-8") as log:
        log.write("\n".join(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
