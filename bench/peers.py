#!/usr/bin/env python3
"""CausalMobileNet against MoViNet-A0-Stream, both trained from scratch the same way.

For each DataSet (by default the demo's two synthetic families, generated and
preprocessed as scripts/demo.py does: 6-frame windows of 32x32 depth):

1. each model is trained with train.py's recipe (batch 32, Adam, warm-up + cosine,
   the run-length BatchNorm momentum, online rotations from the same TFRecords
   through coreLib.training.pipeline, an Eval pass after each of --epochs epochs,
   the best weights by Eval loss) for --steps steps, once per peak step size of
   --lrs (MoViNet-A0: --movinet-lrs when given); each model's peak step is the one
   with the best Eval accuracy (Eval: a held-out subject; Test is never looked at
   for a choice);
2. equal steps: both models' chosen runs, scored on the Test windows (micro F1);
3. equal seconds: MoViNet-A0 trained again with its chosen step size for as many
   steps as fit in the seconds CausalMobileNet's chosen run took (seconds per step
   from each run's steady epochs, tracing left out), then scored on Test;
4. size and cost: parameters, MFLOP per window (2 x the multiply-adds of the
   convolutions and dense layers in each model's float32 LiteRT window graph; the
   same count of the stream graph gives MFLOP per frame), training windows/s
   (steady epochs), and the per-frame stream cost of both float32 LiteRT stream
   files, timed in one process, one thread, alternating between the two.

CausalMobileNet runs here, in the project's environment (train.py, score.py,
export.py). MoViNet-A0-Stream is the TensorFlow Model Garden's own code, which
needs TensorFlow 2.20 and tf-keras: it runs in .venv-peers (made by `make
bench-peers` from bench/requirements-peers.txt) through bench/peers_movinet.py,
reading the same TFRecords and the same Test pixels (decoded once here).

    make bench-peers                                    # both families, the JSON
    python bench/peers.py [DATASET_DIR ...] --steps N --output JSON

Writes bench/results/peers.json (or --output).
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
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, os.path.join(REPO_ROOT, "scripts"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import accuracy  # noqa: E402  (the demo's datasets, the project's tools in a log)
import bench_common  # noqa: E402
import demo  # noqa: E402

CMN = "CausalMobileNet"
MOVINET = "MoViNet-A0-Stream"
PEERS_PYTHON = os.path.join(REPO_ROOT, ".venv-peers", "bin", "python")
MOVINET_SCRIPT = os.path.join(REPO_ROOT, "bench", "peers_movinet.py")
DEFAULT_LRS = (2e-3, 6e-3)
TEST_NPZ = "test_windows.npz"


def log_line(text: str) -> None:
    print(text, flush=True)


def run_json(command: list, log_path: str) -> dict:
    """Runs a command (output to the log) whose last stdout line is JSON."""
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n=== {' '.join(command)}\n")
        log.flush()
        completed = subprocess.run(command, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                   stderr=log, text=True)
        log.write(completed.stdout)
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed ({completed.returncode}); "
                         f"see {log_path}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def dump_test_windows(dataset_dir: str, path: str) -> int:
    """The Test windows as score.py feeds them, float32 in [0, 1], with labels."""
    from coreLib.data import manifest as manifest_lib
    from coreLib.evaluation import scoring
    from coreLib.inference import frame_reader
    from coreLib.preprocessing import records

    manifest = manifest_lib.load_manifest(dataset_dir)
    windows = scoring.load_test_windows(test_json(dataset_dir), manifest)
    pixels = np.zeros((len(windows),) + tuple(manifest.window_shape), np.float32)
    for numbers, stored, _, _ in frame_reader.iterate_batches(windows, manifest, 256):
        pixels[numbers] = records.scale_pixels(stored, manifest.dtype).numpy()
    labels = np.array([window.label for window in windows], np.int64)
    np.savez(path, pixels=pixels, labels=labels)
    return len(windows)


def test_json(dataset_dir: str) -> str:
    (path,) = glob.glob(os.path.join(glob.escape(dataset_dir), "mode:Test_*.json"))
    return path


def steady_seconds_per_step(history: list) -> float:
    """Seconds per step over the epochs after the first (tracing falls in it)."""
    steady = history[1:] or history
    return sum(entry["seconds"] for entry in steady) / sum(entry["steps"] for entry in steady)


def best_eval(history: list) -> dict:
    """The epoch whose weights the run keeps (the lowest Eval loss)."""
    return min(history, key=lambda entry: entry["eval_loss"])


def train_cmn(dataset_dir: str, steps: int, epochs: int, lr: float, model_dir: str,
              log_path: str) -> dict:
    """train.py with its defaults, --steps split over --epochs, peak step ``lr``."""
    # train.py resumes a folder it finished: a rerun with the same --work-dir
    # reuses the run (its history and weights are those of the finished run).
    accuracy.run_tool([sys.executable, "train.py", dataset_dir, CMN, model_dir, "--quiet",
                       "--epochs", str(epochs), "--steps-per-epoch", str(steps // epochs),
                       "--lr", str(lr)], log_path)
    with open(os.path.join(model_dir, "history.json"), encoding="utf-8") as handle:
        history = [{"epoch": entry["epoch"], "steps": steps // epochs,
                    "seconds": float(entry["seconds"]), "eval_loss": entry["eval_loss"],
                    "eval_accuracy": entry["eval_accuracy"]} for entry in json.load(handle)]
    return {"lr": lr, "steps": steps, "history": history, "model_dir": model_dir}


def score_cmn(dataset_dir: str, run: dict, log_path: str) -> dict:
    weights = os.path.join(run["model_dir"], f"{CMN}.weights.h5")
    accuracy.run_tool([sys.executable, "score.py", CMN, weights, test_json(dataset_dir)],
                       log_path)
    with open(os.path.join(dataset_dir, "Results", f"metrics_{CMN}.json"),
              encoding="utf-8") as handle:
        metrics = json.load(handle)
    return {"test_micro_f1": metrics["micro_f1"], "test_macro_f1": metrics["macro_f1"]}


def train_movinet(dataset_dir: str, steps: int, epochs: int, lr: float, out_dir: str,
                  log_path: str) -> dict:
    finished = os.path.join(out_dir, "movinet_run.json")
    if os.path.exists(finished):   # a rerun with the same --work-dir reuses it
        with open(finished, encoding="utf-8") as handle:
            result = json.load(handle)
        if result["steps"] == steps and result["lr"] == lr:
            return {"lr": lr, "steps": steps, "history": result["history"],
                    "model_dir": out_dir, "parameters": result["parameters"]}
    shutil.rmtree(out_dir, ignore_errors=True)
    result = run_json([PEERS_PYTHON, MOVINET_SCRIPT, "train", dataset_dir, out_dir,
                       "--steps", str(steps), "--epochs", str(epochs), "--lr", str(lr)],
                      log_path)
    return {"lr": lr, "steps": steps, "history": result["history"], "model_dir": out_dir,
            "parameters": result["parameters"]}


def score_movinet(run: dict, npz_path: str, log_path: str) -> dict:
    return run_json([PEERS_PYTHON, MOVINET_SCRIPT, "score", run["model_dir"], npz_path],
                    log_path)


def choose_on_eval(runs: list) -> dict:
    """The run whose kept weights have the best Eval accuracy (then lowest Eval loss)."""
    return max(runs, key=lambda run: (best_eval(run["history"])["eval_accuracy"],
                                      -best_eval(run["history"])["eval_loss"]))


def shown_path(path: str) -> str:
    """A path for the results JSON that names no machine's folders: relative to the
    repository when inside it, otherwise its last two parts (a DataSet folder:
    main.py's DEST name and ``DataSet``) after ``<elsewhere>``."""
    absolute = os.path.abspath(path)
    if absolute.startswith(REPO_ROOT + os.sep):
        return os.path.relpath(absolute, REPO_ROOT)
    parent, name = os.path.split(absolute)
    return os.path.join("<elsewhere>", os.path.basename(parent), name)


def summary_of(run: dict) -> dict:
    """What the JSON keeps of one training run."""
    kept = best_eval(run["history"])
    per_step = steady_seconds_per_step(run["history"])
    return {"lr": run["lr"], "steps": run["steps"], "eval_accuracy": kept["eval_accuracy"],
            "eval_loss": kept["eval_loss"], "kept_epoch": kept["epoch"],
            "seconds_per_step": per_step, "train_seconds": per_step * run["steps"],
            "train_windows_per_second": demo_batch() / per_step}


def demo_batch() -> int:
    return 32   # train.py's --batch-size default, the recipe's batch


def compare_family(dataset_dir: str, args, work_dir: str, log_path: str) -> dict:
    """Both models on one DataSet: Eval-chosen step sizes, equal steps, equal seconds."""
    name = os.path.basename(os.path.dirname(os.path.abspath(dataset_dir)))
    npz_path = os.path.join(work_dir, f"{name}_{TEST_NPZ}")
    num_test = dump_test_windows(dataset_dir, npz_path)
    steps = args.steps - args.steps % args.epochs
    cmn_runs, movinet_runs = [], []
    for lr in args.lrs:
        cmn_runs.append(train_cmn(dataset_dir, steps, args.epochs, lr,
                                  os.path.join(work_dir, f"{name}_cmn_{steps}_{lr:g}"), log_path))
        log_line(f"{name} {CMN} lr {lr:g}: {json.dumps(summary_of(cmn_runs[-1]))}")
    for lr in args.movinet_lrs or args.lrs:
        movinet_runs.append(train_movinet(dataset_dir, steps, args.epochs, lr,
                                          os.path.join(work_dir, f"{name}_movinet_{steps}_{lr:g}"),
                                          log_path))
        log_line(f"{name} {MOVINET} lr {lr:g}: {json.dumps(summary_of(movinet_runs[-1]))}")
    cmn, movinet = choose_on_eval(cmn_runs), choose_on_eval(movinet_runs)
    rows = {CMN: {"equal_steps": {**summary_of(cmn), **score_cmn(dataset_dir, cmn, log_path)}},
            MOVINET: {"equal_steps": {**summary_of(movinet),
                                      **score_movinet(movinet, npz_path, log_path)}}}
    rows[CMN]["equal_seconds"] = rows[CMN]["equal_steps"]   # the budget's own run
    budget = rows[CMN]["equal_steps"]["train_seconds"]
    movinet_per_step = rows[MOVINET]["equal_steps"]["seconds_per_step"]
    seconds_steps = max(args.epochs, int(budget / movinet_per_step))
    seconds_steps -= seconds_steps % args.epochs
    if seconds_steps == steps:
        timed = movinet
    else:
        timed = train_movinet(dataset_dir, seconds_steps, args.epochs, movinet["lr"],
                              os.path.join(work_dir, f"{name}_movinet_{seconds_steps}_{movinet['lr']:g}"), log_path)
    rows[MOVINET]["equal_seconds"] = {**summary_of(timed),
                                      **score_movinet(timed, npz_path, log_path)}
    for model, row in rows.items():
        log_line(f"{name} {model}: {json.dumps(row)}")
    return {"dataset_dir": shown_path(dataset_dir), "test_windows": num_test,
            "budget_seconds": budget, "models": rows,
            "lr_grid": {CMN: [summary_of(run) for run in cmn_runs],
                        MOVINET: [summary_of(run) for run in movinet_runs]},
            "stream_sources": {CMN: shown_path(cmn["model_dir"]),
                               MOVINET: shown_path(movinet["model_dir"])}}


def litert_multiply_adds(interpreter) -> int:
    """Multiply-adds of one invocation: convolutions and dense layers (as
    coreLib.models.model_info counts a Keras model), from the graph's tensor shapes."""
    shapes = {detail["index"]: tuple(int(size) for size in detail["shape"])
              for detail in interpreter.get_tensor_details()}
    total = 0
    for op in interpreter._get_ops_details():   # noqa: SLF001 (the op list is not public)
        kind = op["op_name"]
        if kind not in ("CONV_2D", "DEPTHWISE_CONV_2D", "CONV_3D", "FULLY_CONNECTED"):
            continue
        output = shapes[op["outputs"][0]]
        kernel = shapes[op["inputs"][1]]
        if kind == "CONV_2D":            # kernel (O, kh, kw, I)
            per_output = int(np.prod(kernel[1:]))
        elif kind == "DEPTHWISE_CONV_2D":  # kernel (1, kh, kw, O)
            per_output = kernel[1] * kernel[2]
        elif kind == "CONV_3D":          # kernel (kd, kh, kw, I, O)
            per_output = int(np.prod(kernel[:4]))
        else:                            # kernel (O, I)
            per_output = kernel[1]
        total += int(np.prod(output)) * int(per_output)
    return total


class StreamTimer:
    """One LiteRT stream_step file on one thread, its states fed back each frame."""

    def __init__(self, path: str, frames: np.ndarray):
        from coreLib.inference import exported_model

        self.interpreter = exported_model.litert_interpreter(model_path=path, num_threads=1)
        self.runner = self.interpreter.get_signature_runner("stream_step")
        details = self.runner.get_input_details()
        frame_detail = details["frame"]
        shape = tuple(frame_detail["shape"])
        self.frames = frames.astype(frame_detail["dtype"]).reshape((-1,) + shape)
        self.state_names = sorted((name for name in details if name != "frame"),
                                  key=lambda name: int(name.rsplit("_", 1)[1]))
        self.states = [np.zeros(details[name]["shape"], details[name]["dtype"])
                       for name in self.state_names]
        self.position = 0

    def step(self) -> None:
        frame = self.frames[self.position % len(self.frames)]
        self.position += 1
        outputs = self.runner(frame=frame, **dict(zip(self.state_names, self.states)))
        self.states = [outputs[f"new_{name}"].copy() for name in self.state_names]

    def block_milliseconds(self, frames: int) -> float:
        began = time.perf_counter()
        for _ in range(frames):
            self.step()
        return 1000.0 * (time.perf_counter() - began) / frames


def time_streams(paths: dict, image_shape, rounds: int, block: int) -> dict:
    """Per-frame cost of each stream file, one thread, blocks alternating between them."""
    rng = np.random.default_rng(0)
    frames = rng.random((64,) + tuple(image_shape), np.float32)
    timers = {name: StreamTimer(path, frames) for name, path in paths.items()}
    for name, timer in timers.items():
        if np.issubdtype(timer.frames.dtype, np.integer):   # stored depth: 0..4095
            timer.frames = (frames * 4095).astype(timer.frames.dtype).reshape(timer.frames.shape)
        timer.block_milliseconds(10)                          # warm-up
    blocks = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            blocks[name].append(timer.block_milliseconds(block))
    return {name: {"ms_per_frame_median": float(np.median(values)),
                   "ms_per_frame_blocks": values,
                   "stream_multiply_adds_per_frame": counted_multiply_adds(paths[name],
                                                                           "stream_step"),
                   "state_values": int(sum(state.size for state in timers[name].states)),
                   "tflite_bytes": os.path.getsize(paths[name])}
            for name, values in blocks.items()}


def export_streams(family: dict, dataset_dir: str, work_dir: str, log_path: str) -> dict:
    """Both chosen models' float32 LiteRT stream files; returns their paths and checks."""
    cmn_dir = family["stream_sources"][CMN]
    export_dir = os.path.join(work_dir, "cmn_export")
    shutil.rmtree(export_dir, ignore_errors=True)
    accuracy.run_tool([sys.executable, "export.py", CMN,
                       os.path.join(cmn_dir, f"{CMN}.weights.h5"), export_dir,
                       "--formats", "float32", "--manifest", dataset_dir], log_path)
    movinet_path = os.path.join(work_dir, "movinet_stream.tflite")
    check = run_json([PEERS_PYTHON, MOVINET_SCRIPT, "export", family["stream_sources"][MOVINET],
                      movinet_path], log_path)
    return {"paths": {CMN: os.path.join(export_dir, f"{CMN}_stream.tflite"),
                      MOVINET: movinet_path},
            "window_paths": {CMN: os.path.join(export_dir, f"{CMN}.tflite"),
                             MOVINET: check["window_tflite"]},
            "movinet_export": check}


def counted_multiply_adds(path: str, signature: str) -> int:
    """Multiply-adds of one call (batch 1, zero inputs) of a LiteRT file's signature.

    Run without the XNNPACK delegate: the tensors inside delegated nodes keep the
    shapes they were converted with (a folded batch-times-frames dimension reads
    as 1), while the builtin kernels resize every tensor they touch.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(
        model_path=path, num_threads=1,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    runner = interpreter.get_signature_runner(signature)
    runner(**{name: np.zeros((1,) + tuple(int(size) for size in detail["shape"][1:]),
                             detail["dtype"])
              for name, detail in runner.get_input_details().items()})
    return litert_multiply_adds(interpreter)


def cmn_size(dataset_dir: str) -> dict:
    """CausalMobileNet's parameters and model_info's FLOP count at the DataSet's shape."""
    from coreLib import models
    from coreLib.data import manifest as manifest_lib
    from coreLib.models import model_info

    manifest = manifest_lib.load_manifest(dataset_dir)
    model = models.build_model(CMN, manifest.seq_len, manifest.image_dim, manifest.channels,
                               manifest.num_classes)
    return {"parameters": int(model.count_params()),
            "model_info_flop_per_window": int(model_info.model_flops(model))}


def cost_rows(dataset_dir: str, family: dict, args, work_dir: str, log_path: str) -> dict:
    """Parameters, MFLOP per window and stream ms per frame of both models."""
    from coreLib.data import manifest as manifest_lib

    manifest = manifest_lib.load_manifest(dataset_dir)
    exported = export_streams(family, dataset_dir, work_dir, log_path)
    timing = time_streams(exported["paths"], manifest.window_shape[1:], args.rounds,
                          args.block)
    parameters = {CMN: cmn_size(dataset_dir)["parameters"],
                  MOVINET: exported["movinet_export"]["parameters"]}
    rows = {}
    for model, row in timing.items():
        rows[model] = {**row, "parameters": parameters[model],
                       "mflop_per_window": 2 * counted_multiply_adds(
                           exported["window_paths"][model], "serving_default") / 1e6,
                       "stream_mflop_per_frame": 2 * row["stream_multiply_adds_per_frame"]
                       / 1e6}
    rows[CMN]["model_info_flop_per_window"] = cmn_size(dataset_dir)["model_info_flop_per_window"]
    rows[MOVINET]["stream_vs_window_max_abs"] = exported["movinet_export"][
        "stream_vs_window_max_abs"]
    ratio = rows[CMN]["ms_per_frame_median"] / rows[MOVINET]["ms_per_frame_median"]
    log_line(f"stream ms/frame (one thread): {CMN} {rows[CMN]['ms_per_frame_median']:.3f}, "
             f"{MOVINET} {rows[MOVINET]['ms_per_frame_median']:.3f} (ratio {ratio:.3f})")
    return {"window_shape": list(manifest.window_shape), "models": rows,
            "stream_cost_ratio_cmn_to_movinet": ratio}


def table_lines(results: dict) -> list:
    """The README table: one row per model, Test accuracy per family."""
    names = list(results["families"])
    header = ("| model | params | MFLOP/window | stream ms/frame (1 thread) | "
              "train windows/s | " + " | ".join(
                  f"{name}: Test % at equal steps / equal seconds" for name in names) + " |")
    lines = [header, "|" + "---|" * (5 + len(names))]
    cost = results["cost"]["models"]
    for model in (CMN, MOVINET):
        first = results["families"][names[0]]["models"][model]["equal_steps"]
        cells = [model, f"{cost[model]['parameters']:,}",
                 f"{cost[model]['mflop_per_window']:.1f}",
                 f"{cost[model]['ms_per_frame_median']:.2f}",
                 f"{first['train_windows_per_second']:.0f}"]
        for name in names:
            row = results["families"][name]["models"][model]
            cells.append(f"{100 * row['equal_steps']['test_micro_f1']:.1f} / "
                         f"{100 * row['equal_seconds']['test_micro_f1']:.1f} "
                         f"({row['equal_seconds']['steps']} steps)")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_dirs", nargs="*", metavar="DATASET_DIR",
                        help="DataSet folders from main.py (default: the demo's two "
                             "synthetic families, generated in the work folder)")
    parser.add_argument("--families", nargs="+", default=list(demo.STYLES),
                        choices=demo.STYLES, help="without DATASET_DIR: which families")
    parser.add_argument("--steps", type=int, default=600,
                        help="training steps of each run (a multiple of --epochs)")
    parser.add_argument("--epochs", type=int, default=4, help="Eval passes per run")
    parser.add_argument("--lrs", type=float, nargs="+", default=list(DEFAULT_LRS),
                        help="peak step sizes each model chooses from on Eval")
    parser.add_argument("--movinet-lrs", type=float, nargs="+", default=None,
                        help="MoViNet-A0's own grid when it differs (default: --lrs)")
    parser.add_argument("--rounds", type=int, default=10,
                        help="timed blocks per stream file (alternating)")
    parser.add_argument("--block", type=int, default=50, help="frames per timed block")
    parser.add_argument("--work-dir", default=None,
                        help="keep datasets and models here (default: a temporary folder)")
    parser.add_argument("--output", default=os.path.join(REPO_ROOT, "bench", "results",
                                                         "peers.json"))
    args = parser.parse_args()
    if args.steps < args.epochs:
        parser.error("--steps must be at least --epochs")
    if not os.path.exists(PEERS_PYTHON):
        parser.error(f"{PEERS_PYTHON} is missing: run `make bench-peers` (it creates "
                     f".venv-peers from bench/requirements-peers.txt)")
    return args


def main():
    args = parse_args()
    results = {"cpu_count": os.cpu_count(), "load_average_1min_start": os.getloadavg()[0],
               "steps": args.steps - args.steps % args.epochs, "epochs": args.epochs,
               "lrs": args.lrs, "movinet_lrs": args.movinet_lrs or args.lrs,
               "batch_size": demo_batch(), "families": {}}
    with tempfile.TemporaryDirectory() as scratch:
        work_dir = os.path.abspath(args.work_dir or scratch)
        os.makedirs(work_dir, exist_ok=True)
        log_path = os.path.join(work_dir, "peers.log")
        dataset_dirs = args.dataset_dirs or [
            accuracy.prepare_family(style, work_dir, log_path) for style in args.families]
        names = [os.path.basename(os.path.dirname(os.path.abspath(path)))
                 for path in dataset_dirs]
        for name, dataset_dir in zip(names, dataset_dirs):
            results["families"][name] = compare_family(dataset_dir, args, work_dir, log_path)
        results["cost"] = cost_rows(dataset_dirs[0], results["families"][names[0]], args,
                                    work_dir, log_path)
    results["load_average_1min_end"] = os.getloadavg()[0]
    print("\n".join(table_lines(results)))
    bench_common.write_results(args.output, results)


if __name__ == "__main__":
    main()
