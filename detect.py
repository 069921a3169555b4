#!/usr/bin/env python3
"""detect.py MODEL_NAME MODEL_PATH SOURCE: finds and labels hand actions in long sequences.

SOURCE is one sequence folder, a split folder (SRC/Test, SRC/TestDetection,
SRC/Train/<subject>: every sequence below it), a video file, or a live stream:
- (raw frames on standard input, --raw-format), cam:N or /dev/videoN (a camera).
Writes per sequence <name>.segments.json, <name>.frames.csv and
timeline_<name>.png, and summary.json (with --video also <name>.avi) into --out;
prints a table per sequence and overall, and last the frame accuracy and F1@25.
Online, --events writes each start and end of an action the moment it is decided.
A live run ends at the end of the stream or on Ctrl-C/SIGTERM, writing the
outputs for the frames seen.
"""

import argparse
import sys

from coreLib.cli import (add_model_name_argument, import_tensorflow_quietly, make_parser,
                         non_negative_int, positive_float, positive_int, run_main,
                         unit_fraction)

import_tensorflow_quietly()  # before anything else imports TensorFlow

from coreLib.data import frames  # noqa: E402
from coreLib.detection import config as detect_config, driver, outputs  # noqa: E402


def parse_args(argv):
    parser = make_parser("detect.py", __doc__)
    add_model_name_argument(parser)
    parser.add_argument("model_path", metavar="MODEL_PATH",
                        help="weights from train.py (<model>.weights.h5, with its "
                             "run_config.json beside it), a full .keras model, or an "
                             "export.py model (.tflite file, SavedModel folder or "
                             "OUT_DIR; online, unless --online-runner window, its "
                             "stream step when it has one)")
    parser.add_argument("source", metavar="SOURCE",
                        help="a sequence folder, a split folder, a video file, - (raw "
                             "frames on standard input, see --raw-format), cam:N or "
                             "/dev/videoN (a camera)")
    parser.add_argument("--out", default=detect_config.DEFAULT_OUT_DIR,
                        help="output folder, outside the dataset (default: "
                             "./detections)")
    parser.add_argument("--events", default=None, metavar="PATH",
                        help="online: one JSON line per start/end of an action, written "
                             "the moment it is decided (- for standard output; the "
                             "table then goes to standard error)")
    parser.add_argument("--raw-format", default=None, metavar="FMT:WxH",
                        help="SOURCE -: the raw frames' layout, FMT one of gray16le "
                             "(depth/confi models), gray8, bgr24, rgb24 (colour "
                             "models), e.g. gray16le:320x240")
    parser.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None,
                        help="live sources: when frames come faster than they are "
                             "labelled, drop the oldest waiting ones (counted) instead "
                             "of making the producer wait (default: on for cameras, "
                             "off for standard input)")
    parser.add_argument("--mode", choices=detect_config.MODES, default=None,
                        help="offline: frame t from the windows around it; online: "
                             "causal, frames <= t only (default: online for a video "
                             "file, else offline)")
    parser.add_argument("--smooth", type=positive_int, default=1,
                        help="frames of the moving average of the probabilities "
                             "(causal in online mode)")
    parser.add_argument("--min-frames", type=positive_int, default=1,
                        help="frames a new action must last before the label switches")
    parser.add_argument("--hysteresis", type=unit_fraction, default=0.0,
                        help="probability margin a new class needs over the current one")
    parser.add_argument("--delay", type=non_negative_int, default=None,
                        help="online only: label frame t when frame t+DELAY has "
                             "arrived, from the outputs at t..t+DELAY; the latency "
                             "counts it (default: the window length L - 1; 0: frame t "
                             "at once)")
    parser.add_argument("--stream-runtime", choices=("litert", "keras"), default="litert",
                        help="online, a streaming model's weights: litert converts its "
                             "stream step to LiteRT once (cached beside the weights, "
                             "about 30x faster per frame); keras runs the Keras step")
    parser.add_argument("--online-runner", choices=detect_config.ONLINE_RUNNERS,
                        default="stream",
                        help="online, a streaming model: stream runs its stream step "
                             "(one frame's arithmetic per frame); window runs its window "
                             "model on the last L frames at every frame (about L times "
                             "the arithmetic; at --delay L-1 exactly the offline "
                             "probabilities, L-1 frames later). Window models run "
                             "windows either way")
    parser.add_argument("--manifest", default=None,
                        help="DataSet folder whose dataset.json gives window shape, "
                             "classes and modality (default: run_config.json beside "
                             "MODEL_PATH)")
    parser.add_argument("--modality", choices=tuple(frames.MODALITIES), default=None,
                        help="frames to read when the run config does not say "
                             "(default: color for 3-channel models)")
    parser.add_argument("--batch-size", type=positive_int, default=32,
                        help="windows per model call")
    parser.add_argument("--workers", type=positive_int, default=2,
                        help="threads decoding frames")
    parser.add_argument("--video", action="store_true",
                        help="also write a labelled video <name>.avi per sequence")
    parser.add_argument("--fps", type=positive_float, default=15.0,
                        help="frames per second of the labelled videos, and of a "
                             "source without timestamps (events' time_s = frame / FPS)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    config = detect_config.DetectConfig(
        model_name=args.model_name, model_path=args.model_path, source=args.source,
        out_dir=args.out, mode=args.mode, manifest_dir=args.manifest,
        modality=args.modality, smooth=args.smooth, min_frames=args.min_frames,
        hysteresis=args.hysteresis, delay=args.delay,
        batch_size=args.batch_size, workers=args.workers,
        video=args.video, fps=args.fps, progress=not args.no_progress,
        events=args.events, raw_format=args.raw_format, realtime=args.realtime,
        stream_runtime=args.stream_runtime, online_runner=args.online_runner)
    result = driver.detect(config)
    for warning in result.summary.get("warnings", ()):
        sys.stderr.write(f"detect.py: warning: {warning}\n")
    table = sys.stderr if args.events == "-" else sys.stdout
    print("\n".join(outputs.summary_lines(result)), file=table)
    return 0


if __name__ == "__main__":
    run_main(main)
