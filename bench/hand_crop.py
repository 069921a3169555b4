#!/usr/bin/env python3
"""Hand-centred against full frames, on hands of real size (issue 24).

For each synthetic family (``pose``, ``trajectory``) the demo's dataset is
generated with real-size hands (``--hand-size real``: 40-60 pixel hands, at
320x240 as the camera gives them), and for each frame setting - ``hand-motion:32``
(main.py --frames hand --hand-path motion --image-dim 32: the crop and the hand's
motion channels), ``hand:32`` (--hand-path none: the crop alone), ``full:32``,
``full:64`` - main.py
stores 6-frame depth windows, train.py trains CausalMobileNet with its defaults in
the demo's budget (4 epochs of 300 steps), score.py scores the Test windows (three
unseen subjects) and detect.py runs offline and online on TestDetection. With
``--large``, the demo's own large-hand datasets (160x120, --hand-scale 1.5) are
run too, for the settings given by ``--large-frames`` (default ``hand-motion:32
hand:32 full:32``).

    python bench/hand_crop.py [--families pose trajectory]
                              [--frames hand-motion:32 hand:32 full:32 full:64]
                              [--large] [--work-dir DIR] [--output FILE]
                              [--montage info/hand_frames.png]

Writes bench/results/hand_crop.json (default): per family and setting the Eval
accuracy (subject LN, held out of training: settings are decided on it) and the
Test accuracy (three unseen subjects: confirms), macro F1, training seconds and
detection F1@25 offline / online; and,
with ``--montage``, a picture of the same Test windows full-frame and hand-centred.
"""

import argparse
import glob
import json
import os
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, os.path.join(REPO_ROOT, "scripts"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import accuracy  # noqa: E402  (bench/accuracy.py: run_tool, train_and_score)
import bench_common  # noqa: E402
import demo  # noqa: E402  (scripts/demo.py: the demo's data and training arguments)

MODEL = demo.MODEL_NAME


def _without(arguments: list, flag: str) -> list:
    """``arguments`` without ``flag`` and its value."""
    if flag not in arguments:
        return list(arguments)
    at = arguments.index(flag)
    return arguments[:at] + arguments[at + 2:]


# The demo's dataset, with real-size hands at the camera's 320x240.
REAL_ARGS = (_without(_without(demo.SYNTHETIC_ARGS, "--hand-scale"), "--size")
             + ["--size", "320x240", "--hand-size", "real"])
DATASETS = {"real": REAL_ARGS, "large": list(demo.SYNTHETIC_ARGS)}


# main.py's arguments per frame setting.
FRAME_ARGS = {"full": ["--frames", "full"],
              "hand": ["--frames", "hand", "--hand-path", "none"],
              "hand-motion": ["--frames", "hand", "--hand-path", "motion"]}


def parse_setting(text: str):
    """``hand:32`` -> ("hand", 32)."""
    frames, _, side = text.partition(":")
    if frames not in FRAME_ARGS or not side.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not FRAMES:SIDE with FRAMES one of "
                                         f"{', '.join(FRAME_ARGS)}")
    return frames, int(side)


def generate(kind: str, style: str, work_dir: str, log_path: str) -> str:
    """The dataset of one kind (real or large hands) and family, made once."""
    data_dir = os.path.join(work_dir, f"{kind}_{style}")
    stamp = os.path.join(data_dir, ".complete")
    wanted = " ".join(DATASETS[kind] + ["--style", style])
    if not os.path.exists(stamp) or open(stamp, encoding="utf-8").read() != wanted:
        accuracy.run_tool([sys.executable, "-m", "coreLib.synthetic", data_dir, "--overwrite"]
                          + DATASETS[kind] + ["--style", style], log_path)
        with open(stamp, "w", encoding="utf-8") as handle:
            handle.write(wanted)
    return data_dir


def preprocess(data_dir: str, out_dir: str, frames: str, side: int, log_path: str) -> str:
    """main.py with the demo's arguments at this setting; returns the DataSet folder."""
    dataset_dir = os.path.join(out_dir, "DataSet")
    if not os.path.exists(os.path.join(dataset_dir, "dataset.json")):
        arguments = (_without(demo.MAIN_ARGS, "--image-dim") + ["--image-dim", str(side)]
                     + FRAME_ARGS[frames])
        accuracy.run_tool([sys.executable, "main.py", data_dir, out_dir] + arguments,
                          log_path)
    return dataset_dir


def eval_accuracy(dataset_dir: str, model_dir: str, log_path: str) -> dict:
    """score.py with the same weights on the Eval windows (main.py's default
    --eval-subjects: LN, a Train subject held out of training): the split settings
    are decided on; Test (three unseen subjects) confirms them."""
    (eval_json,) = glob.glob(os.path.join(glob.escape(dataset_dir), "mode:Eval_*.json"))
    weights = os.path.join(model_dir, f"{MODEL}.weights.h5")
    accuracy.run_tool([sys.executable, "score.py", MODEL, weights, eval_json], log_path)
    with open(os.path.join(dataset_dir, "Results", f"metrics_{MODEL}.json"),
              encoding="utf-8") as handle:
        metrics = json.load(handle)
    return {"eval_accuracy": 100.0 * metrics["micro_f1"],
            "eval_macro_f1": 100.0 * metrics["macro_f1"]}


def detect(model_dir: str, data_dir: str, out_dir: str, log_path: str) -> dict:
    """detect.py offline and online on TestDetection: overall F1@25 and frame accuracy."""
    weights = os.path.join(model_dir, f"{MODEL}.weights.h5")
    found = {}
    for mode in demo.DETECT_MODES:
        target = os.path.join(out_dir, f"detections_{mode}")
        accuracy.run_tool([sys.executable, "detect.py", MODEL, weights,
                           os.path.join(data_dir, "TestDetection"), "--out", target,
                           "--mode", mode, "--no-progress"], log_path)
        with open(os.path.join(target, "summary.json"), encoding="utf-8") as handle:
            overall = json.load(handle)["overall"]
        found[mode] = {"f1@25": overall["f1@25"], "frame_accuracy": overall["frame_accuracy"]}
    return found


def run_setting(kind: str, style: str, setting, work_dir: str, log_path: str,
                with_detection: bool) -> dict:
    frames, side = setting
    data_dir = generate(kind, style, work_dir, log_path)
    out_dir = os.path.join(work_dir, f"out_{kind}_{style}_{frames}{side}")
    began = time.time()
    dataset_dir = preprocess(data_dir, out_dir, frames, side, log_path)
    main_seconds = time.time() - began
    model_dir = os.path.join(out_dir, "model")
    row = accuracy.train_and_score(dataset_dir, MODEL, accuracy.DEMO_EPOCHS,
                                   accuracy.DEMO_STEPS_PER_EPOCH, model_dir, log_path)
    row.update(eval_accuracy(dataset_dir, model_dir, log_path))
    row["main_seconds"] = main_seconds
    if with_detection:
        row["detection"] = detect(model_dir, data_dir, out_dir, log_path)
    line = (f"{kind} {style} {frames}:{side}: Eval {row['eval_accuracy']:.1f} %, "
            f"Test {row['test_accuracy']:.1f} % ({row['train_seconds']:.0f} s training)")
    if with_detection:
        line += ", F1@25 offline {:.1f} / online {:.1f}".format(
            row["detection"]["offline"]["f1@25"], row["detection"]["online"]["f1@25"])
    print(line, flush=True)
    return row


def write_montage(work_dir: str, log_path: str, path: str) -> None:
    """Full-frame and hand-centred 32x32 windows of the same Test frames: per
    action two rows of six frames (full above, hand-centred below)."""
    import cv2
    import numpy as np
    from coreLib.data import labels, manifest as manifest_lib
    from coreLib.detection import sources
    from coreLib.evaluation import video
    data_dir = generate("real", "pose", work_dir, log_path)
    specs = {frames: manifest_lib.load_manifest(preprocess(
        data_dir, os.path.join(work_dir, f"out_real_pose_{frames}32"), frames, 32, log_path))
        for frames in ("full", "hand")}
    rows = []
    for action in ("asl-green", "asl-scissors", "ui-click", "ui-swipe"):
        folder = os.path.join(data_dir, "Test", "alvin", action)
        first = labels.read_label_file(folder + ".xml")[0].pos
        for frames, spec in specs.items():
            source = sources.SequenceSource(action, folder, False, 36)
            pixels = np.concatenate(list(sources.png_frame_chunks(source, spec, 36, 1)))
            tiles = [np.pad(cv2.resize(video.colour_map_depth(frame), (96, 96),
                                       interpolation=cv2.INTER_NEAREST),
                            ((2, 2), (2, 2), (0, 0)), constant_values=255)
                     for frame in pixels[first + 2:first + 8]]
            rows.append(np.concatenate(tiles, 1))
        rows.append(np.full((8,) + rows[-1].shape[1:], 255, np.uint8))
    cv2.imwrite(path, np.concatenate(rows, 0))
    print(f"montage: {path}", flush=True)


def tracker_cost(work_dir: str, log_path: str, rounds: int = 3) -> dict:
    """Milliseconds per frame, side by side on the first real-size TestDetection
    sequence (320x240 depth): decoding the PNG, resizing the whole frame to 32x32,
    and the hand tracker's push plus the model frame at 32x32 (the crop and the
    motion channels) (medians of ``rounds``)."""
    import numpy as np
    from coreLib.data import frames, hand_crop
    data_dir = generate("real", "pose", work_dir, log_path)
    root = os.path.join(data_dir, "TestDetection")
    folder = os.path.join(root, sorted(name for name in os.listdir(root)
                                       if os.path.isdir(os.path.join(root, name)))[0])
    count = frames.count_frames(folder, "depth")
    paths = [frames.frame_path(folder, "depth", index) for index in range(count)]
    data = [frames.read_frame_bytes(path) for path in paths]
    timings = {"decode": [], "resize_full": [], "track_and_crop": []}
    for _ in range(rounds):
        began = time.perf_counter()
        decoded = [frames.decode_frame(blob, "depth") for blob in data]
        timings["decode"].append(time.perf_counter() - began)
        began = time.perf_counter()
        for frame in decoded:
            frames.resize_frame(frame, 32)
        timings["resize_full"].append(time.perf_counter() - began)
        began = time.perf_counter()
        config = hand_crop.HandCropConfig(path=hand_crop.PATH_MOTION)
        tracker = hand_crop.HandTracker(config)
        for frame in decoded:
            hand_crop.model_frame(frame, tracker.push(frame), frame.shape, 32, config)
        timings["track_and_crop"].append(time.perf_counter() - began)
    cost = {name: 1000.0 * float(np.median(values)) / count for name, values in timings.items()}
    cost["frames"] = count
    cost["track_over_decode"] = cost["track_and_crop"] / cost["decode"]
    print("ms per frame: decode {decode:.3f}, whole-frame resize {resize_full:.3f}, "
          "track + crop {track_and_crop:.3f} ({track_over_decode:.2f}x the decode)"
          .format(**cost), flush=True)
    return cost


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=list(demo.STYLES),
                        choices=demo.STYLES)
    parser.add_argument("--frames", nargs="+", type=parse_setting,
                        default=[("hand-motion", 32), ("hand", 32), ("full", 32),
                                 ("full", 64)],
                        help="settings on the real-size families, FRAMES:SIDE")
    parser.add_argument("--large", action="store_true",
                        help="also the demo's large-hand datasets")
    parser.add_argument("--large-frames", nargs="+", type=parse_setting,
                        default=[("hand-motion", 32), ("hand", 32), ("full", 32)])
    parser.add_argument("--detect", choices=("hand", "all", "none"), default="hand",
                        help="which real-size settings detect.py runs on (default: the "
                             "hand-centred ones)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the rows already in --output and run only the others")
    parser.add_argument("--montage", default=None, help="write the montage picture here")
    parser.add_argument("--tracker-cost", action="store_true",
                        help="also time the tracker against decoding, per frame")
    parser.add_argument("--work-dir", default=None,
                        help="keep datasets and models here (default: a temporary folder)")
    parser.add_argument("--output", default=os.path.join(REPO_ROOT, "bench", "results",
                                                         "hand_crop.json"))
    args = parser.parse_args()
    results = {"model": MODEL, "budget": " ".join(demo.TRAIN_ARGS),
               "real_dataset": " ".join(REAL_ARGS), "cpu_count": os.cpu_count(),
               "load_average_1min_start": os.getloadavg()[0], "rows": []}
    if args.resume and os.path.exists(args.output):
        with open(args.output, encoding="utf-8") as handle:
            kept = json.load(handle)
        results["rows"] = kept["rows"]
        if "tracker_cost_ms" in kept:
            results["tracker_cost_ms"] = kept["tracker_cost_ms"]
    done = {(row["hands"], row["family"], row["frames"]) for row in results["rows"]}
    with tempfile.TemporaryDirectory() as scratch:
        work_dir = os.path.abspath(args.work_dir or scratch)
        os.makedirs(work_dir, exist_ok=True)
        log_path = os.path.join(work_dir, "hand_crop.log")
        if args.montage:
            write_montage(work_dir, log_path, args.montage)
        if args.tracker_cost:
            results["tracker_cost_ms"] = tracker_cost(work_dir, log_path)
            bench_common.write_results(args.output, results)
        # Setting by setting, both families each: a cut-short run still compares.
        plan = [("real", style, setting) for setting in args.frames for style in args.families]
        if args.large:
            plan += [("large", style, setting) for setting in args.large_frames
                     for style in args.families]
        for kind, style, setting in plan:
            if (kind, style, f"{setting[0]}:{setting[1]}") in done:
                continue
            detecting = kind == "real" and (args.detect == "all" or (
                args.detect == "hand" and setting[0].startswith("hand")))
            row = run_setting(kind, style, setting, work_dir, log_path, detecting)
            results["rows"].append({"hands": kind, "family": style,
                                    "frames": f"{setting[0]}:{setting[1]}", **row})
            bench_common.write_results(args.output, results)
    results["load_average_1min_end"] = os.getloadavg()[0]
    bench_common.write_results(args.output, results)


if __name__ == "__main__":
    main()
