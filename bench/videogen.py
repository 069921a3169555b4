#!/usr/bin/env python3
"""Benchmark: videogen.py against the 2019 tool's JPEG round trip, side by side.

Same video_sec JSON of 320x240 colour frames for both:
  original: per frame PIL load, pad to a square, TrueType labels drawn in the
            padding, JPEG saved to a folder; then every JPEG re-read and written
            to an uncompressed AVI at 1 fps;
  videogen: coreLib.evaluation.video.write_videos (frames straight into an MJPG encoder).
Reports the median milliseconds per frame over the repeats and bytes per frame of
the videos. Writes bench/results/videogen.json.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import bench_common  # bench/ is on sys.path when a script here runs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from coreLib.cli import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from coreLib.evaluation import video  # noqa: E402

FRAME_SIZE = (320, 240)
FONT_CANDIDATES = ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf")


def generate_video_sec(root: str, count: int) -> str:
    rng = np.random.default_rng(0)
    width, height = FRAME_SIZE
    yy, xx = np.mgrid[0:height, 0:width]
    folder = os.path.join(root, "seq")
    os.makedirs(folder)
    entries = []
    for index in range(count):
        base = (xx + 2 * yy + 5 * index) % 256
        image = np.clip(base[..., None] + rng.integers(0, 24, (height, width, 3)), 0, 255)
        path = os.path.join(folder, f"color_{index}.png")
        cv2.imwrite(path, image.astype(np.uint8))
        truth = ("asl-blue", "ui-doubleclick", "no-action")[index % 3]
        prediction = truth if index % 4 else "asl-scissors"
        entries.append({"path": path, "truth": truth, "prediction": prediction,
                        "score": 0.5})
    json_path = os.path.join(root, "video_sec_LRCN.json")
    with open(json_path, "w") as handle:
        json.dump(entries, handle)
    return json_path


def load_font(size: int):
    for name in FONT_CANDIDATES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def original_videos(json_path: str, max_len: int, work_dir: str):
    """The 2019 tool's pipeline (with its label swap and overwrite bugs fixed)."""
    entries = json.load(open(json_path))
    jpeg_dir = os.path.join(work_dir, "jpeg")
    os.makedirs(jpeg_dir)
    font = load_font(14)
    for index, entry in enumerate(entries):
        image = Image.open(entry["path"]).convert("RGB")
        side = max(image.size)
        square = Image.new("RGB", (side, side))
        square.paste(image, (0, 0))
        draw = ImageDraw.Draw(square)
        right = entry["truth"] == entry["prediction"]
        draw.text((5, image.size[1] + 5), f"GROUND_TRUTH: {entry['truth']}",
                  font=font, fill=(255, 255, 0))
        draw.text((5, image.size[1] + 30), f"PREDICTION: {entry['prediction']}",
                  font=font, fill=(0, 255, 0) if right else (255, 0, 0))
        square.save(os.path.join(jpeg_dir, f"{index}.jpg"), "JPEG")
    written = []
    for chunk, begin in enumerate(range(0, len(entries), max_len)):
        path = os.path.join(work_dir, f"original_{chunk}.avi")
        writer = None
        for index in range(begin, min(begin + max_len, len(entries))):
            frame = cv2.imread(os.path.join(jpeg_dir, f"{index}.jpg"))
            if writer is None:
                writer = cv2.VideoWriter(path, 0, 1.0, (frame.shape[1], frame.shape[0]))
            writer.write(frame)
        writer.release()
        written.append(path)
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--frames", type=int, default=300, help="entries in the JSON")
    parser.add_argument("--max-len", type=int, default=100, help="frames per video")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (median)")
    parser.add_argument("--output", default=os.path.join(REPO_ROOT, "bench", "results",
                                                         "videogen.json"),
                        help="where to write the figures")
    args = parser.parse_args()

    original_ms, new_ms, original_bytes, new_bytes = [], [], 0, 0
    with tempfile.TemporaryDirectory() as root:
        json_path = generate_video_sec(root, args.frames)
        for repeat in range(args.repeats):
            work_dir = os.path.join(root, f"original_{repeat}")
            os.makedirs(work_dir)
            began = time.perf_counter()
            files = original_videos(json_path, args.max_len, work_dir)
            original_ms.append((time.perf_counter() - began) * 1000 / args.frames)
            original_bytes = sum(os.path.getsize(path) for path in files)

            began = time.perf_counter()
            files = video.write_videos(video.VideoConfig(json_path, args.max_len,
                                                         progress=False))
            new_ms.append((time.perf_counter() - began) * 1000 / args.frames)
            new_bytes = sum(os.path.getsize(path) for path in files)
    results = {
        "frames": args.frames, "frame_size": FRAME_SIZE, "max_len": args.max_len,
        "repeats": args.repeats, "cpu_count": os.cpu_count(),
        "original_ms_per_frame_median": statistics.median(original_ms),
        "videogen_ms_per_frame_median": statistics.median(new_ms),
        "original_kib_per_frame": original_bytes / 1024 / args.frames,
        "videogen_kib_per_frame": new_bytes / 1024 / args.frames,
    }
    results["speedup"] = (results["original_ms_per_frame_median"]
                          / results["videogen_ms_per_frame_median"])
    results["size_ratio"] = original_bytes / new_bytes
    print(f"videogen: {args.frames} frames of {FRAME_SIZE[0]}x{FRAME_SIZE[1]}, "
          f"median of {args.repeats} runs, {os.cpu_count()} CPUs")
    print(f"{'method':<10} {'ms/frame':>9} {'KiB/frame':>10}")
    print(f"{'original':<10} {results['original_ms_per_frame_median']:>9.2f} "
          f"{results['original_kib_per_frame']:>10.1f}")
    print(f"{'videogen':<10} {results['videogen_ms_per_frame_median']:>9.2f} "
          f"{results['videogen_kib_per_frame']:>10.1f}")
    print(f"speedup {results['speedup']:.1f}x, files {results['size_ratio']:.1f}x smaller")
    bench_common.write_results(args.output, results)


if __name__ == "__main__":
    main()
