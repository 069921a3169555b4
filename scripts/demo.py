"""`make demo`: the whole pyACTRECOG job on a generated BII-layout dataset.

Runs the real command-line tools one after the other, as a user would type them:

    python -m coreLib.synthetic DATA ...     (skipped when DATA is already complete)
    python main.py DATA OUT ...
    python debug.py OUT/DataSet CHECK
    python train.py OUT/DataSet ConvNet3D OUT/model ...
    python score.py ConvNet3D OUT/model/ConvNet3D.weights.h5 OUT/DataSet/mode:Test_...json
    python videogen.py OUT/DataSet/Results/video_sec_ConvNet3D.json ...
    python export.py ConvNet3D OUT/model/ConvNet3D.weights.h5 OUT/export --formats float32
    python score.py ConvNet3D OUT/export/ConvNet3D.tflite OUT/DataSet/mode:Test_...json

and prints a summary. DEMO_DIR (default demo_output/) holds everything: DATA is
reused by the next run, OUT is started afresh each time.

Why smaller than the paper's setting: a 2-core CPU trains the full ConvNet3D (53 M
parameters at this input size) at about twelve windows per second, so the demo uses
windows of 4 depth frames of 16x16 pixels instead of 6 colour frames of 64x64, hands
drawn 1.5x larger (so that finger poses survive the resize to 16x16), short
sequences, and 280 steps of 16 windows without online augmentation, with the Adam
step falling from 2e-4 to 0 (cosine) and BatchNorm momentum 0.9 (its moving
statistics must settle within those few steps). Depth, the dataset's own modality,
shows the hand as the nearest thing whatever the skin tone and background; in colour
one test subject's hand is as bright as the wall behind it. The layer structure is
the real ConvNet3D; only the input is smaller.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_NAME = "ConvNet3D"

# The demo's dataset: all 18 subjects and 16 actions, short sequences.
SYNTHETIC_ARGS = ["--size", "160x120", "--frames-per-sequence", "48",
                  "--test-frames-per-sequence", "36", "--reps", "2", "--max-len", "18",
                  "--min-gap", "3", "--max-gap", "6", "--hand-scale", "1.5", "--seed", "0"]
MAIN_ARGS = ["--image-dim", "16", "--seq-len", "4", "--modality", "depth",
             "--batch-size", "32"]
TRAIN_ARGS = ["--epochs", "2", "--steps-per-epoch", "140", "--batch-size", "16",
              "--lr", "2e-4", "--lr-schedule", "cosine", "--bn-momentum", "0.9",
              "--no-augment"]
VIDEO_MAX_LEN = "400"
DATA_COMPLETE_STAMP = ".demo-data-complete"


def run(step: str, command: list, log_path: str) -> float:
    """Runs one tool, echoing its output to the terminal and a log; returns seconds."""
    print(f"\n=== {step}: {' '.join(command)}", flush=True)
    started = time.time()
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n=== {step}: {' '.join(command)}\n")
        log.flush()
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            sys.stdout.write(line)
            log.write(line)
        process.wait()
    if process.returncode != 0:
        print(f"demo: {step} failed with exit code {process.returncode} "
              f"(log: {log_path})", file=sys.stderr)
        sys.exit(process.returncode)
    return time.time() - started


def _read_text(path: str) -> str:
    """The file's text, or "" when it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def main() -> int:
    demo_dir = os.path.abspath(os.environ.get("DEMO_DIR", "demo_output"))
    data_dir = os.path.join(demo_dir, "bii_synthetic")
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
    wanted_stamp = " ".join(SYNTHETIC_ARGS) + "\n"
    if _read_text(stamp_path) == wanted_stamp:
        print(f"demo: reusing the generated dataset in {data_dir}")
        seconds["generate"] = 0.0
    else:
        seconds["generate"] = run(
            "generate", [python, "-m", "coreLib.synthetic", data_dir, "--overwrite"]
            + SYNTHETIC_ARGS, log_path)
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
    with open(metrics_path, encoding="utf-8") as handle:
        metrics = json.load(handle)
    # The float32 LiteRT file must score the same; its run rewrites the Results.
    export_dir = os.path.join(out_dir, "export")
    seconds["export"] = run("export", [python, "export.py", MODEL_NAME, weights, export_dir,
                                       "--formats", "float32", "--manifest", dataset_dir],
                            log_path)
    litert_file = os.path.join(export_dir, f"{MODEL_NAME}.tflite")
    seconds["score_litert"] = run("score LiteRT", [python, "score.py", MODEL_NAME,
                                                   litert_file, test_json], log_path)
    with open(metrics_path, encoding="utf-8") as handle:
        litert_metrics = json.load(handle)

    with open(os.path.join(dataset_dir, "dataset.json"), encoding="utf-8") as handle:
        manifest = json.load(handle)
    videos = sorted(glob.glob(os.path.join(glob.escape(results_dir), "*.avi")))
    splits = manifest["splits"]
    summary = [
        "",
        "=== pyACTRECOG demo summary",
        "windows: " + ", ".join(f"{name} {splits[name]['num_windows']}"
                                for name in ("Train", "Eval", "Test") if name in splits),
        f"window: {manifest['seq_len']} frames of {manifest['image_dim']}x"
        f"{manifest['image_dim']}x{manifest['channels']} ({manifest['modality']}), "
        f"{len(manifest['classes'])} classes",
        f"training time: {seconds['train']:.0f} s ({MODEL_NAME})",
        f"test accuracy (micro F1, unseen test subjects): "
        f"{100 * metrics['micro_f1']:.1f} %",
        f"test accuracy of the float32 LiteRT file: {100 * litert_metrics['micro_f1']:.1f} %",
        f"weights: {weights}",
        f"LiteRT model: {litert_file}",
        f"metrics: {os.path.join(results_dir, f'metrics_{MODEL_NAME}.json')}",
        f"confusion matrix: {os.path.join(results_dir, f'confusion_{MODEL_NAME}.png')}",
        "videos: " + ", ".join(videos),
        f"total: {time.time() - started:.0f} s (" + ", ".join(
            f"{step} {value:.0f} s" for step, value in seconds.items()) + ")",
    ]
    print("\n".join(summary))
    with open(log_path, "a", encoding="utf-8") as log:
        log.write("\n".join(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
