"""``python -m coreLib.synthetic DEST``: writes a synthetic BII-layout dataset."""

import argparse
import os
from typing import Tuple

from coreLib.cli import make_parser, non_negative_int, positive_int, run_main
from coreLib.errors import ActrecogError
from coreLib.synthetic.config import (ACTIONS, FULL_SIZE_REPS, HAND_SIZES,
                                      MAX_DETECTION_SEQUENCES, SIZE_MIN, STYLES,
                                      TEST_SUBJECTS, TRAIN_SUBJECTS, SyntheticConfig)
from coreLib.synthetic.full_size import full_size_config
from coreLib.synthetic.generator import generate_dataset


def _parse_size(text: str) -> Tuple[int, int]:
    """``WIDTHxHEIGHT`` as ``(width, height)``, both sides at least SIZE_MIN."""
    parts = text.lower().split("x")
    try:
        width, height = (int(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT") from None
    if width < SIZE_MIN or height < SIZE_MIN:
        raise argparse.ArgumentTypeError(f"{text!r}: both sides must be >= {SIZE_MIN}")
    return width, height


def _names(text: str) -> Tuple[str, ...]:
    """A comma- or space-separated list of names ('' for none)."""
    return tuple(name for name in text.replace(",", " ").split() if name)

def _add_length_options(parser) -> None:
    """The performances and gaps of a sequence, and fixed frame counts."""
    parser.add_argument("--reps", type=positive_int, default=None,
                        help=f"performances of the action per sequence; when not "
                             f"given {SyntheticConfig.reps}, or {FULL_SIZE_REPS} with "
                             "--full-size")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of every random choice")
    parser.add_argument("--min-len", type=positive_int, default=SyntheticConfig.min_len,
                        help="shortest performance in frames (exactly one "
                             "performance has this length)")
    parser.add_argument("--max-len", type=positive_int, default=SyntheticConfig.max_len,
                        help="longest performance in frames")
    parser.add_argument("--min-gap", type=positive_int, default=SyntheticConfig.min_gap,
                        help="fewest no-action frames around each performance")
    parser.add_argument("--max-gap", type=positive_int, default=SyntheticConfig.max_gap,
                        help="most no-action frames drawn for a gap")
    parser.add_argument("--frames-per-sequence", type=positive_int, default=None,
                        help="exact frames of every Train sequence (default: drawn "
                             "from the performance and gap lengths)")
    parser.add_argument("--test-frames-per-sequence", type=positive_int, default=None,
                        help="exact frames of every Test sequence (default: as "
                             "--frames-per-sequence)")


def _add_look_options(parser) -> None:
    """How the hands are drawn: size, camera model, family."""
    parser.add_argument("--hand-scale", type=float, default=SyntheticConfig.hand_scale,
                        help="draw every hand this much larger (0.25 to 4), as if "
                             "closer to the camera")
    parser.add_argument("--hand-size", choices=HAND_SIZES, default=SyntheticConfig.hand_size,
                        help="large: hands drawn larger than life (1.0.x); real: a "
                             "head-worn camera model, hands at arm's length (430-530 mm), "
                             "40-60 pixels of a 320x240 frame, anywhere in the middle "
                             "of the view")
    parser.add_argument("--style", choices=STYLES, default=SyntheticConfig.style,
                        help="pose: each action its own hand pose and motion; "
                             "trajectory: one hand shape, each action its own motion")


def _add_detection_options(parser) -> None:
    """The TestDetection sequences and the published size."""
    parser.add_argument("--detection-sequences", type=non_negative_int,
                        default=SyntheticConfig.detection_sequences,
                        help=f"long TestDetection sequences of unseen subjects, each "
                             f"with performances of different actions (0 to "
                             f"{MAX_DETECTION_SEQUENCES}; 0: no TestDetection/)")
    parser.add_argument("--detection-frames", type=positive_int,
                        default=SyntheticConfig.detection_frames,
                        help="frames of each TestDetection sequence")
    parser.add_argument("--detection-performances", type=positive_int,
                        default=SyntheticConfig.detection_performances,
                        help="performances in each TestDetection sequence")
    parser.add_argument("--full-size", action="store_true",
                        help="the size of the published dataset: all 18 subjects "
                             "and 16 actions, 134,665 frames, and TestDetection's 10 "
                             "sequences of 19,537 frames (only --size, --seed, "
                             "--reps, --style apply; --detection-sequences 0 leaves "
                             "TestDetection out)")


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m coreLib.synthetic``."""
    parser = make_parser(
        "python -m coreLib.synthetic",
        "Writes a synthetic hand-action dataset in the BII layout:\n"
        "DEST/{Train,Test}/<subject>/<action>.xml and "
        "<action>/{depth,confi,color}_<i>.png,\n"
        "DEST/TestDetection/<name>.xml and <name>/{depth,confi,color}_<i>.png.")
    parser.add_argument("dest", help="folder to write Train/, Test/ and TestDetection/ into")
    parser.add_argument("--train-subjects", type=_names, default=" ".join(TRAIN_SUBJECTS),
                        help="Train subject names, comma or space separated "
                             "('' for none)")
    parser.add_argument("--test-subjects", type=_names, default=" ".join(TEST_SUBJECTS),
                        help="Test subject names, comma or space separated "
                             "('' for none)")
    parser.add_argument("--actions", type=_names, default=" ".join(ACTIONS),
                        help="action names, comma or space separated")
    parser.add_argument("--size", type=_parse_size, default="320x240",
                        help="frame size WIDTHxHEIGHT")
    _add_length_options(parser)
    _add_look_options(parser)
    _add_detection_options(parser)
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                        help="processes rendering sequences in parallel")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace DEST/Train and DEST/Test if they exist")
    return parser


def main(argv=None) -> int:
    """The command line: parse, build the config, generate, print a summary."""
    args = build_parser().parse_args(argv)
    width, height = args.size
    try:
        if args.full_size:
            config = full_size_config(seed=args.seed, width=width, height=height,
                                      reps=args.reps or FULL_SIZE_REPS, style=args.style,
                                      detection=args.detection_sequences > 0)
        else:
            config = SyntheticConfig(
                train_subjects=args.train_subjects, test_subjects=args.test_subjects,
                actions=args.actions, width=width, height=height,
                reps=args.reps or SyntheticConfig.reps,
                seed=args.seed, min_len=args.min_len, max_len=args.max_len,
                min_gap=args.min_gap, max_gap=args.max_gap,
                frames_per_sequence=args.frames_per_sequence,
                test_frames_per_sequence=args.test_frames_per_sequence,
                hand_scale=args.hand_scale, style=args.style, hand_size=args.hand_size,
                detection_sequences=args.detection_sequences,
                detection_frames=args.detection_frames,
                detection_performances=args.detection_performances)
    except ValueError as error:
        raise ActrecogError(str(error)) from None
    summary = generate_dataset(args.dest, config, workers=args.workers,
                               progress=True, overwrite=args.overwrite)
    parts = [f"{split} {counts['sequences']} sequences / {counts['frames']} frames"
             for split, counts in summary["splits"].items()]
    print(f"synthetic: {args.dest}: {', '.join(parts)}; {width}x{height}; {args.style}; "
          f"shortest performance {summary['min_len']} frames; {summary['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    run_main(main, prog="python -m coreLib.synthetic")
