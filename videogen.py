#!/usr/bin/env python3
"""videogen.py JSON_PATH MAX_LEN: labelled videos of score.py's video_sec JSON.

Each frame gets a band with GROUND_TRUTH (yellow) and PREDICTION (green when
right, red when wrong); videos of at most MAX_LEN frames are written as
<json name>_<k>.avi (MJPG) next to the JSON.
"""

from coreLib.cli import make_parser, positive_float, positive_int, run_main
# OpenCV only: TensorFlow is loaded (quietly, by coreLib.storage) only for gs:// paths.
from coreLib.evaluation import video


def parse_args(argv):
    parser = make_parser("videogen.py", __doc__)
    parser.add_argument("json_path", metavar="JSON_PATH",
                        help="Results/video_sec_<model>.json written by score.py")
    parser.add_argument("max_len", metavar="MAX_LEN", type=positive_int,
                        help="frames per video at most (an integer >= 1)")
    parser.add_argument("--fps", type=positive_float, default=10.0,
                        help="frames per second of the videos")
    parser.add_argument("--modality", choices=video.VIDEO_MODALITIES, default="color",
                        help="frames to show; depth and confi are drawn with a colour map")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    config = video.VideoConfig(json_path=args.json_path, max_len=args.max_len,
                               fps=args.fps, modality=args.modality)
    written = video.write_videos(config)
    print(f"Wrote {len(written)} video(s): {', '.join(written)}")
    return 0


if __name__ == "__main__":
    run_main(main)
