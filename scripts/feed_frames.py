#!/usr/bin/env python3
"""feed_frames.py SEQUENCE_DIR: writes a recorded sequence's frames to standard
output as raw frames, paced like a camera - a producer for ``detect.py ... -``.

    python scripts/feed_frames.py DATA/TestDetection/alvin_test --fps 30 \\
        | python detect.py CausalMobileNet model.weights.h5 - \\
              --raw-format gray16le:160x120 --events -

Depth and confi frames go out as gray16le, colour frames as rgb24 (the
--raw-format to give detect.py is printed on standard error first). --fps 0
sends as fast as the reader takes them. --hold-last waits for a line on
standard input before the last frame (tests use it to see that events come
before the stream ends).
"""

import argparse
import os
import re
import sys
import time

import cv2
import numpy as np

PIXEL_FORMATS = {"depth": "gray16le", "confi": "gray16le", "color": "rgb24"}


def frame_files(folder: str, modality: str) -> list:
    pattern = re.compile(rf"^{modality}_(\d+)\.png$")
    found = sorted((int(match.group(1)), name) for name in os.listdir(folder)
                   for match in [pattern.match(name)] if match)
    return [os.path.join(folder, name) for _, name in found]


def raw_bytes(path: str, modality: str) -> bytes:
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SystemExit(f"feed_frames.py: {path}: not a readable PNG")
    if modality == "color":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    else:
        image = image.astype("<u2")
    return np.ascontiguousarray(image).tobytes()


def main() -> int:
    parser = argparse.ArgumentParser(prog="feed_frames.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sequence_dir")
    parser.add_argument("--modality", choices=sorted(PIXEL_FORMATS), default="depth")
    parser.add_argument("--fps", type=float, default=30.0,
                        help="frames per second (0: as fast as they are taken)")
    parser.add_argument("--frames", type=int, default=0, help="send at most this many")
    parser.add_argument("--hold-last", action="store_true",
                        help="wait for a line on standard input before the last frame")
    parser.add_argument("--hold-after", type=int, default=0,
                        help="after this many frames, wait for a line on standard input")
    args = parser.parse_args()
    files = frame_files(args.sequence_dir, args.modality)
    if args.frames:
        files = files[:args.frames]
    if not files:
        raise SystemExit(f"feed_frames.py: {args.sequence_dir}: no {args.modality} frames")
    frames = [raw_bytes(path, args.modality) for path in files]
    height, width = cv2.imread(files[0], cv2.IMREAD_UNCHANGED).shape[:2]
    print(f"feed_frames.py: {len(frames)} frames, --raw-format "
          f"{PIXEL_FORMATS[args.modality]}:{width}x{height}", file=sys.stderr, flush=True)
    out = sys.stdout.buffer
    due = None      # when the next frame is due; like a camera, never a catch-up burst
    for index, data in enumerate(frames):
        if (args.hold_last and index == len(frames) - 1) or (
                args.hold_after and index == args.hold_after):
            sys.stdin.readline()
        if args.fps > 0 and due is not None:
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        try:
            out.write(data)
            out.flush()
        except BrokenPipeError:
            return 0
        if args.fps > 0:
            # The reader may have held the frame back (a pipe's back-pressure):
            # the next one is due a period after the later of the two.
            now, period = time.perf_counter(), 1 / args.fps
            held_back = due is None or now > due + period / 2
            due = now + period if held_back else due + period
    return 0


if __name__ == "__main__":
    sys.exit(main())
