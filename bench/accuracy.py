#!/usr/bin/env python3
"""Test accuracy after the demo's training budget, per model and synthetic family.

For each family (``pose``, ``trajectory``) the demo's own dataset is generated and
preprocessed (scripts/demo.py's generator and main.py arguments: 6-frame windows
of 32x32 depth frames), then each model is trained by train.py with its defaults
and scored by score.py on the Test windows (three subjects no model saw):

  CausalMobileNet   the demo's steps (4 epochs of 300);
  every other model the same training seconds: a calibration run of two short
                    epochs gives its seconds per step (the second epoch's seconds
                    in history.json: start-up and tracing fall in the first), and
                    it then trains for as many steps as fit in the seconds
                    CausalMobileNet's epochs took in this run (at least one per
                    epoch). Eval passes are not counted on either side.

LRCN is left out by default: its stride-2 convolutions and 2x2 poolings need
frames of 43x43 or more, so it cannot take the demo's 32x32 window.

    python bench/accuracy.py [--families pose trajectory] [--models CausalMobileNet ConvNet3D]

Writes bench/results/accuracy.json.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "scripts"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_common  # noqa: E402
import demo  # noqa: E402  (scripts/demo.py: the demo's data and training arguments)

REFERENCE_MODEL = demo.MODEL_NAME
DEMO_EPOCHS = int(demo.TRAIN_ARGS[demo.TRAIN_ARGS.index("--epochs") + 1])
DEMO_STEPS_PER_EPOCH = int(demo.TRAIN_ARGS[demo.TRAIN_ARGS.index("--steps-per-epoch") + 1])


def run_tool(command: list, log_path: str) -> None:
    """Runs one of the project's tools; its output goes to the log."""
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n=== {' '.join(command)}\n")
        log.flush()
        completed = subprocess.run(command, cwd=REPO_ROOT, stdout=log,
                                   stderr=subprocess.STDOUT)
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed ({completed.returncode}); "
                         f"see {log_path}")


def prepare_family(style: str, work_dir: str, log_path: str) -> str:
    """The demo's dataset of one family, preprocessed to whole frames (the recipe
    and peer figures were measured on them; main.py's default for depth became
    hand-centred frames later, issue 24); returns the DataSet folder."""
    data_dir = os.path.join(work_dir, f"bii_{style}")
    out_dir = os.path.join(work_dir, f"out_{style}")
    dataset_dir = os.path.join(out_dir, "DataSet")
    if not os.path.exists(os.path.join(dataset_dir, "dataset.json")):
        run_tool([sys.executable, "-m", "coreLib.synthetic", data_dir, "--overwrite"]
                 + demo.SYNTHETIC_ARGS + ["--style", style], log_path)
        run_tool([sys.executable, "main.py", data_dir, out_dir] + demo.MAIN_ARGS
                 + ["--frames", "full"], log_path)
    return dataset_dir


def epoch_seconds(model_dir: str) -> list:
    """Seconds of each training epoch (history.json), without start-up or Eval."""
    with open(os.path.join(model_dir, "history.json"), encoding="utf-8") as handle:
        return [float(epoch["seconds"]) for epoch in json.load(handle)]


def train_seconds(model_dir: str) -> float:
    return sum(epoch_seconds(model_dir))


def train_and_score(dataset_dir: str, model: str, epochs: int, steps_per_epoch: int,
                    model_dir: str, log_path: str) -> dict:
    """train.py with its defaults and the given length, then score.py on Test."""
    shutil.rmtree(model_dir, ignore_errors=True)   # train.py would resume it
    began = time.time()
    run_tool([sys.executable, "train.py", dataset_dir, model, model_dir, "--quiet",
              "--epochs", str(epochs), "--steps-per-epoch", str(steps_per_epoch)], log_path)
    wall = time.time() - began
    (test_json,) = glob.glob(os.path.join(glob.escape(dataset_dir), "mode:Test_*.json"))
    weights = os.path.join(model_dir, f"{model}.weights.h5")
    run_tool([sys.executable, "score.py", model, weights, test_json], log_path)
    with open(os.path.join(dataset_dir, "Results", f"metrics_{model}.json"),
              encoding="utf-8") as handle:
        metrics = json.load(handle)
    return {"steps": epochs * steps_per_epoch, "epochs": epochs,
            "train_seconds": train_seconds(model_dir), "train_wall_seconds": wall,
            "test_accuracy": 100.0 * metrics["micro_f1"],
            "test_macro_f1": 100.0 * metrics["macro_f1"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=list(demo.STYLES),
                        choices=demo.STYLES)
    parser.add_argument("--models", nargs="+", default=[REFERENCE_MODEL, "ConvNet3D"])
    parser.add_argument("--calibration-steps", type=int, default=4,
                        help="steps per epoch of the calibration run of each other model")
    parser.add_argument("--work-dir", default=None,
                        help="keep the datasets and models here (default: a temporary "
                             "folder, removed at the end)")
    parser.add_argument("--output", default=os.path.join(REPO_ROOT, "bench", "results",
                                                         "accuracy.json"))
    args = parser.parse_args()
    if REFERENCE_MODEL not in args.models:
        parser.error(f"--models must include {REFERENCE_MODEL}: it sets the budget")
    results = {"window": "6 x 32 x 32 depth (the demo's)", "cpu_count": os.cpu_count(),
               "load_average_1min_start": os.getloadavg()[0], "families": {}}
    with tempfile.TemporaryDirectory() as scratch:
        work_dir = os.path.abspath(args.work_dir or scratch)
        os.makedirs(work_dir, exist_ok=True)
        log_path = os.path.join(work_dir, "accuracy.log")
        for style in args.families:
            dataset_dir = prepare_family(style, work_dir, log_path)
            rows = {}
            reference = train_and_score(dataset_dir, REFERENCE_MODEL, DEMO_EPOCHS,
                                        DEMO_STEPS_PER_EPOCH,
                                        os.path.join(work_dir, f"{style}_{REFERENCE_MODEL}"),
                                        log_path)
            rows[REFERENCE_MODEL] = reference
            print(f"{style} {REFERENCE_MODEL}: {reference['test_accuracy']:.1f} % after "
                  f"{reference['steps']} steps, {reference['train_seconds']:.0f} s", flush=True)
            for model in args.models:
                if model == REFERENCE_MODEL:
                    continue
                calibration_dir = os.path.join(work_dir, f"{style}_{model}_calibration")
                shutil.rmtree(calibration_dir, ignore_errors=True)
                run_tool([sys.executable, "train.py", dataset_dir, model, calibration_dir,
                          "--quiet", "--no-eval", "--epochs", "2", "--steps-per-epoch",
                          str(args.calibration_steps), "--steps-per-loop",
                          str(args.calibration_steps)], log_path)
                per_step = epoch_seconds(calibration_dir)[-1] / args.calibration_steps
                steps = int(reference["train_seconds"] / per_step)
                steps_per_epoch = max(1, steps // DEMO_EPOCHS)
                row = train_and_score(dataset_dir, model, DEMO_EPOCHS, steps_per_epoch,
                                      os.path.join(work_dir, f"{style}_{model}"), log_path)
                row["calibration_seconds_per_step"] = per_step
                rows[model] = row
                print(f"{style} {model}: {row['test_accuracy']:.1f} % after {row['steps']} "
                      f"steps, {row['train_seconds']:.0f} s ({per_step:.2f} s per step)",
                      flush=True)
            results["families"][style] = rows
    results["load_average_1min_end"] = os.getloadavg()[0]
    print(f"test accuracy after the demo's training budget ({results['window']}):")
    print(f"{'family':<11} " + " ".join(f"{model:>28}" for model in args.models))
    for style, rows in results["families"].items():
        cells = [f"{rows[m]['test_accuracy']:5.1f} % ({rows[m]['steps']:>4} steps, "
                 f"{rows[m]['train_seconds']:>4.0f} s)" for m in args.models]
        print(f"{style:<11} " + " ".join(f"{cell:>28}" for cell in cells))
    bench_common.write_results(args.output, results)


if __name__ == "__main__":
    main()
