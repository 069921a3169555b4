#!/usr/bin/env python3
"""main.py SRC DEST: turns a BII-layout dataset into windows, JSON lists and TFRecords.

Reads SRC/Train and SRC/Test (<subject>/<action>.xml label files and
<subject>/<action>/ frame folders) and writes DEST/DataSet/: the JSON lists
mode:{Train,Eval,Test}_numOfSeqences:<n>_minSeqLen:<L>.json, the shards
TFRECORD/{Train,Eval}/<split>_<k>.tfrecord and the manifest dataset.json.
A killed run started again with the same arguments reuses its finished work.
"""

import os
import sys

# Only the light CLI helpers at module level: the decoding worker processes
# (multiprocessing "spawn") import this file again and must not load TensorFlow.
from coreLib.cli import (import_tensorflow_quietly, make_parser, name_list, positive_int,
                         run_main)


def _subject_list(text: str):
    return tuple(name.strip() for name in text.split(",") if name.strip())


def parse_args(argv):
    parser = make_parser("main.py", __doc__)
    parser.add_argument("src_path", help="dataset folder holding Train/ and Test/")
    parser.add_argument("dest_path", help="output folder (local path or gs:// URI); the "
                                          "results go to DEST/DataSet/")
    parser.add_argument("--seq-len", type=positive_int, default=None,
                        help="frames per window L (default: the shortest labelled "
                             "interval over all label files)")
    parser.add_argument("--image-dim", type=positive_int, default=64,
                        help="side of the stored square frames, in pixels")
    parser.add_argument("--modality", choices=("color", "depth", "confi"), default="color",
                        help="which frames to store")
    parser.add_argument("--frames", choices=("full", "hand"), default=None,
                        help="full: whole frames resized to the side (1.0.4's); hand: a "
                             "square of 150 mm around the hand, found in each depth frame "
                             "and followed causally (score.py, detect.py and export.py "
                             "read this from the manifest and do the same) (default: hand "
                             "for depth and confi frames; full for colour frames and with "
                             "--offline-augment)")
    parser.add_argument("--hand-side-mm", type=float, default=None,
                        help="with --frames hand: side of the square around the hand, in "
                             "millimetres at the hand's depth (default: 150)")
    parser.add_argument("--hand-smoothing", type=float, default=None,
                        help="with --frames hand: weight of the newest frame in the box's "
                             "exponential average, in (0, 1] (default: 0.4)")
    parser.add_argument("--hand-path", choices=("none", "motion"), default=None,
                        help="with --frames hand: what the frames carry of the hand's path "
                             "besides the crop - none, or motion: its step since the "
                             "previous frame (x, y, depth) as three more channels per frame "
                             "(default: motion)")
    parser.add_argument("--eval-subjects", type=_subject_list, default=("LN",),
                        help="comma-separated Train subjects whose windows form the Eval "
                             "split ('' for none)")
    parser.add_argument("--batch-size", type=positive_int, default=128,
                        help="the Train list is cut to a multiple of it")
    parser.add_argument("--shard-size", type=positive_int, default=512,
                        help="windows per TFRecord shard")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for the kept no-action windows and the Train order")
    parser.add_argument("--offline-augment", action="store_true",
                        help="store 32 rotated/flipped copies of every Train window, as "
                             "the 2019 tool did (default: augment at training time)")
    parser.add_argument("--clip-intervals", action="store_true",
                        help="clip label intervals that run past the last frame, with a "
                             "warning, instead of failing")
    parser.add_argument("--actions", type=name_list, default=None, metavar="NAME,...",
                        help="the only action names allowed, comma-separated (default: "
                             "any, with a warning for names outside BII's 16 and for "
                             "names only some subjects have)")
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                        help="processes decoding frames")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"argument --seed: {args.seed} must be >= 0")
    if args.frames is None:
        # Hand-centred frames with the hand's motion for depth and confi frames:
        # at real size whole 32x32 frames lose the fingers (the decision and its
        # figures: docs/hand-frames.md, 'The default'); colour frames and the
        # stored augmented copies stay 1.0.4's whole frames.
        args.frames = ("hand" if args.modality in ("depth", "confi") and not args.offline_augment
                       else "full")
    for name in ("hand_side_mm", "hand_smoothing", "hand_path"):
        if getattr(args, name) is not None and args.frames != "hand":
            parser.error(f"argument --{name.replace('_', '-')}: only with --frames hand")
    if args.hand_side_mm is not None and not 20 <= args.hand_side_mm <= 2000:
        parser.error(f"argument --hand-side-mm: {args.hand_side_mm} is not within 20..2000")
    if args.hand_smoothing is not None and not 0 < args.hand_smoothing <= 1:
        parser.error(f"argument --hand-smoothing: {args.hand_smoothing} is not in (0, 1]")
    if args.frames == "hand" and args.offline_augment:
        parser.error("argument --frames: hand cannot be stored with --offline-augment "
                     "(its 32 copies are 1.0.4's full frames)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import_tensorflow_quietly()  # before anything else imports TensorFlow
    from coreLib.data import hand_crop
    from coreLib.preprocessing import preprocess

    config = preprocess.PreprocessConfig(
        src=args.src_path, dest=args.dest_path, seq_len=args.seq_len,
        image_dim=args.image_dim, modality=args.modality,
        eval_subjects=args.eval_subjects, batch_size=args.batch_size,
        shard_size=args.shard_size, seed=args.seed,
        offline_augment=args.offline_augment, clip_intervals=args.clip_intervals,
        workers=args.workers, frames=args.frames, actions=args.actions,
        hand_crop=hand_crop.HandCropConfig(**{
            field: value for field, value in (("side_mm", args.hand_side_mm),
                                              ("smoothing", args.hand_smoothing),
                                              ("path", args.hand_path or "motion"))
            if value is not None}))
    summary = preprocess.run_preprocessing(
        config, warn=lambda message: sys.stderr.write(f"main.py: warning: {message}\n"))
    print(summary.line())
    print(summary.classes_line())
    return 0


if __name__ == "__main__":
    run_main(main)
