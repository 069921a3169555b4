#!/usr/bin/env python3
"""Benchmark: main.py's preprocessing against raw decoding and the 2019 method.

On a synthetic dataset the size of the published one (coreLib.synthetic's
full-size config: 288 sequences, 134,665 frames; built once and cached under
bench/.cache/), measured side by side in one run:
  raw decode: read and decode every colour frame main.py decodes (Train and Test)
              with cv2, over the same number of worker processes - the floor;
  main.py:    the whole run as a user starts it (python main.py SRC DEST
              --workers W), wall time including start-up, and its peak memory:
              the largest single process (getrusage RUSAGE_CHILDREN ru_maxrss of a
              wrapper) and the whole process tree (RSS polled from /proc);
  original:   the 2019 per-window method - for every window and each of its 32
              augmented copies, decode its L frames again, resize, rotate, flip,
              float32 ``feats`` record - timed on a sample of windows and
              extrapolated to the windows the original writes for this dataset,
              assuming it scaled perfectly over the same workers.
Targets (issue 2): main.py within 1.3x of raw decode, peak RSS under 1.5 GiB,
at least 100x faster than the original method. Prints a table and writes
bench/results/preprocess.json. ``--quick`` uses a small dataset (a fast check of
the script; its ratios are dominated by start-up).
"""

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import cv2
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_common  # noqa: E402

CACHE_DIR = os.path.join(REPO_ROOT, "bench", ".cache")
RESULTS_PATH = os.path.join(REPO_ROOT, "bench", "results", "preprocess.json")
GIB = 1 << 30
TARGET_RAW_RATIO = 1.3
TARGET_PEAK_RSS_GIB = 1.5
TARGET_SPEEDUP = 100.0

# Runs main.py and reports the largest resident size of any process it waited
# for (main.py and its workers), in KiB, as the last line of stdout.
_WRAPPER = ("import json, resource, subprocess, sys\n"
            "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
            "print(json.dumps({'code': code, 'maxrss_kib': "
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))\n")


def dataset_config(quick: bool):
    from coreLib.synthetic import generator
    # main.py reads Train/ and Test/ only: no TestDetection split to generate.
    if not quick:
        return generator.full_size_config(detection=False)
    return generator.SyntheticConfig(
        train_subjects=("LN", "chi", "marc", "yizhou"), test_subjects=("alvin",),
        actions=generator.ACTIONS[:4], reps=3, frames_per_sequence=90,
        test_frames_per_sequence=80, detection_sequences=0)


def ensure_dataset(quick: bool, workers: int) -> str:
    """The cached synthetic dataset (generated on first use); returns SRC."""
    from coreLib.synthetic import generator
    config = dataset_config(quick)
    root = os.path.join(CACHE_DIR, "bii-quick" if quick else "bii-full")
    src, marker = os.path.join(root, "src"), os.path.join(root, "complete.json")
    if os.path.exists(marker):
        with open(marker) as handle:
            if json.load(handle).get("config") == repr(config) and os.path.isdir(src):
                return src
    shutil.rmtree(root, ignore_errors=True)
    partial = os.path.join(root, "src.partial")
    print(f"generating the {'quick' if quick else 'full-size'} synthetic dataset in {root} "
          f"(once)...", flush=True)
    summary = generator.generate_dataset(partial, config, workers=workers, progress=True)
    os.rename(partial, src)
    with open(marker, "w") as handle:
        json.dump({"config": repr(config), "summary": summary}, handle, indent=1)
    return src


def colour_sequences(src: str):
    """(sequence folder, frame count) of every sequence, Train and Test, sorted."""
    found = []
    for split in ("Train", "Test"):
        for subject in sorted(os.listdir(os.path.join(src, split))):
            subject_dir = os.path.join(src, split, subject)
            for action in sorted(os.listdir(subject_dir)):
                folder = os.path.join(subject_dir, action)
                if os.path.isdir(folder):
                    count = sum(1 for name in os.listdir(folder) if name.startswith("color_"))
                    found.append((folder, count))
    return found


def _decode_sequence(task) -> int:
    folder, count = task
    for index in range(count):
        with open(os.path.join(folder, f"color_{index}.png"), "rb") as handle:
            data = handle.read()
        if cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) is None:
            raise RuntimeError(f"{folder}: frame {index} did not decode")
    return count


def _init_decoder():
    cv2.setNumThreads(1)


def raw_decode_seconds(sequences, workers: int) -> float:
    """Read + decode every frame once over ``workers`` spawned processes (the floor)."""
    started = time.perf_counter()
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_decoder) as pool:
        total = sum(pool.imap_unordered(_decode_sequence, sequences, chunksize=1))
    assert total == sum(count for _, count in sequences)
    return time.perf_counter() - started


def read_files(sequences) -> None:
    """Reads every colour frame once, so every timed run finds them in the page cache."""
    for folder, count in sequences:
        for index in range(count):
            with open(os.path.join(folder, f"color_{index}.png"), "rb") as handle:
                handle.read()


def _process_tree_rss(root_pid: int) -> int:
    """Summed resident bytes of root_pid's descendants (not root_pid itself)."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                parents[int(name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    descendants, frontier = set(), {root_pid}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        descendants |= frontier
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for pid in descendants:
        try:
            with open(f"/proc/{pid}/statm") as handle:
                total += int(handle.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total


def run_main_py(src: str, dest: str, workers: int, extra=()) -> dict:
    """Runs main.py in a fresh process; wall seconds and peak memory."""
    command = [sys.executable, "-c", _WRAPPER, sys.executable,
               os.path.join(REPO_ROOT, "main.py"), src, dest, "--workers", str(workers)]
    command += list(extra)
    peak_tree = [0]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)

    def poll():
        while process.poll() is None:
            peak_tree[0] = max(peak_tree[0], _process_tree_rss(process.pid))
            time.sleep(0.1)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    out, err = process.communicate()
    seconds = time.perf_counter() - started
    poller.join()
    report = json.loads(out.strip().splitlines()[-1])
    if report["code"] != 0:
        raise RuntimeError(f"main.py failed ({report['code']}): {err.strip()[-2000:]}")
    return {"seconds": seconds, "peak_process_rss_bytes": report["maxrss_kib"] * 1024,
            "peak_tree_rss_bytes": peak_tree[0]}


def original_method(entries, seq_len: int, image_dim: int, augmented: bool,
                    folder: str) -> float:
    """Seconds per written record of the 2019 per-window method, on sample windows.

    Every record decodes its L frames again (cv2.imread), resizes them, rotates
    and flips them (augmented), scales to float32 [0, 1] and writes a ``feats``
    record, as the original did.
    """
    from coreLib import storage
    from coreLib.preprocessing import augment, records
    tf = storage.tf
    variants = augment.variants() if augmented else [(0, 0)]
    flip_codes = {1: 1, 2: 0, 3: -1}  # left-right, up-down, both (cv2.flip codes)
    centre = ((image_dim - 1) / 2.0, (image_dim - 1) / 2.0)
    written = 0
    started = time.perf_counter()
    with tf.io.TFRecordWriter(os.path.join(folder, "original.tfrecord")) as writer:
        for entry in entries:
            for rotation, flip in variants:
                stack = []
                for index in range(entry["start"], entry["stop"] + 1):
                    image = cv2.imread(os.path.join(entry["path"], f"color_{index}.png"))
                    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
                    image = cv2.resize(image, (image_dim, image_dim),
                                       interpolation=cv2.INTER_AREA)
                    if rotation:
                        matrix = cv2.getRotationMatrix2D(centre, rotation, 1.0)
                        image = cv2.warpAffine(image, matrix, (image_dim, image_dim))
                    if flip:
                        image = cv2.flip(image, flip_codes[flip])
                    stack.append(image)
                feats = np.stack(stack).astype(np.float32) / 255.0
                writer.write(records.serialize_legacy(feats, 0))
                written += 1
    return (time.perf_counter() - started) / written


def original_record_count(src: str) -> int:
    """Train records the 2019 tool writes for SRC: every Train window x 32 copies,
    no-action cut to action // classes, cut to a multiple of 128 (Eval was then
    moved out of these by hand, so all Train subjects count)."""
    from coreLib.preprocessing import preprocess
    plan = preprocess.make_plan(preprocess.PreprocessConfig(
        src=src, dest=tempfile.gettempdir(), eval_subjects=(), offline_augment=True,
        workers=1))
    return len(plan.windows["Train"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small dataset, fast check")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes for main.py and for raw decoding")
    parser.add_argument("--sample-windows", type=int, default=12,
                        help="windows timed with the original method (x32 copies)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="raw-decode runs (median; default 3 quick, 2 full)")
    parser.add_argument("--output", default=RESULTS_PATH, help="JSON file for the figures")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 2)

    src = ensure_dataset(args.quick, args.workers)
    sequences = colour_sequences(src)
    num_frames = sum(count for _, count in sequences)
    print(f"dataset: {src}: {len(sequences)} sequences, {num_frames} frames; "
          f"workers {args.workers}; {os.cpu_count()} CPUs", flush=True)
    read_files(sequences)

    work = tempfile.mkdtemp(prefix="preprocess-bench-", dir=CACHE_DIR)
    try:
        # Raw decode before and after main.py, so a change in machine load during
        # the run shows up in both.
        raw = [raw_decode_seconds(sequences, args.workers)]
        dest = os.path.join(work, "dest")
        main_run = run_main_py(src, dest, args.workers)
        raw += [raw_decode_seconds(sequences, args.workers) for _ in range(repeats - 1)]
        raw_seconds = statistics.median(raw)

        from coreLib.data import manifest as manifest_lib
        dataset_dir = os.path.join(dest, "DataSet")
        manifest = manifest_lib.load_manifest(dataset_dir)
        with open(os.path.join(dataset_dir, manifest.splits["Train"].json_name)) as handle:
            train_entries = json.load(handle)
        rng = np.random.default_rng(0)
        sample = [train_entries[i] for i in
                  rng.choice(len(train_entries), size=min(args.sample_windows,
                                                          len(train_entries)),
                             replace=False)]
        seconds_per_copy = original_method(sample, manifest.seq_len, manifest.image_dim,
                                           True, work)
        seconds_per_window = original_method(sample, manifest.seq_len, manifest.image_dim,
                                             False, work)
        original_records = original_record_count(src)
        records_written = sum(manifest.splits[s].num_windows for s in ("Train", "Eval"))
        shard_bytes = sum(os.path.getsize(os.path.join(dataset_dir, shard.path))
                          for s in ("Train", "Eval") for shard in manifest.splits[s].shards)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    original_seconds = original_records * seconds_per_copy / args.workers
    unaugmented_seconds = records_written * seconds_per_window / args.workers
    main_seconds = main_run["seconds"]
    results = {
        "dataset": {"quick": args.quick, "sequences": len(sequences), "frames": num_frames},
        "cpus": os.cpu_count(), "workers": args.workers,
        "raw_decode_seconds": raw, "raw_decode_median_seconds": raw_seconds,
        "main_seconds": main_seconds,
        "main_over_raw_decode": main_seconds / raw_seconds,
        "peak_process_rss_gib": main_run["peak_process_rss_bytes"] / GIB,
        "peak_tree_rss_gib": main_run["peak_tree_rss_bytes"] / GIB,
        "records_written": records_written, "shard_bytes": shard_bytes,
        "windows": {split: manifest.splits[split].num_windows for split in manifest.splits},
        "original": {
            "sample_windows": len(sample),
            "seconds_per_augmented_record": seconds_per_copy,
            "records": original_records,
            "estimated_seconds": original_seconds,
            "bytes_per_record": manifest.seq_len * manifest.image_dim ** 2 * 3 * 4,
            "seconds_per_unaugmented_record": seconds_per_window,
            "estimated_seconds_same_windows_unaugmented": unaugmented_seconds,
        },
        "speedup_over_original": original_seconds / main_seconds,
        "speedup_over_original_same_windows": unaugmented_seconds / main_seconds,
        "targets": {
            "main_over_raw_decode_max": TARGET_RAW_RATIO,
            "peak_rss_gib_max": TARGET_PEAK_RSS_GIB,
            "speedup_min": TARGET_SPEEDUP,
        },
    }
    results["targets_met"] = {
        "main_over_raw_decode": results["main_over_raw_decode"] <= TARGET_RAW_RATIO,
        "peak_process_rss": results["peak_process_rss_gib"] < TARGET_PEAK_RSS_GIB,
        "peak_tree_rss": results["peak_tree_rss_gib"] < TARGET_PEAK_RSS_GIB,
        "speedup_over_original": results["speedup_over_original"] >= TARGET_SPEEDUP,
    }
    bench_common.write_results(args.output, results)

    met = results["targets_met"]
    rows = [
        ("dataset", f"{len(sequences)} sequences, {num_frames} frames"
                    f"{' (quick)' if args.quick else ''}", ""),
        ("workers / CPUs", f"{args.workers} / {os.cpu_count()}", ""),
        ("raw decode (median)", f"{raw_seconds:.1f} s  (runs: "
                                f"{', '.join(f'{s:.1f}' for s in raw)})", ""),
        ("main.py wall", f"{main_seconds:.1f} s  ({records_written} records, "
                         f"{shard_bytes / 1e9:.2f} GB)", ""),
        ("main.py / raw decode", f"{results['main_over_raw_decode']:.2f}x",
         f"target <= {TARGET_RAW_RATIO}x: {'met' if met['main_over_raw_decode'] else 'MISSED'}"),
        ("peak RSS, largest process", f"{results['peak_process_rss_gib']:.2f} GiB",
         f"target < {TARGET_PEAK_RSS_GIB} GiB: "
         f"{'met' if met['peak_process_rss'] else 'MISSED'}"),
        ("peak RSS, process tree", f"{results['peak_tree_rss_gib']:.2f} GiB",
         f"{'met' if met['peak_tree_rss'] else 'over'} (sum over main.py + workers)"),
        ("original, per record", f"{seconds_per_copy * 1e3:.1f} ms  (sample "
                                 f"{len(sample)} windows x 32)", ""),
        ("original, estimated", f"{original_seconds:.0f} s for {original_records} records",
         ""),
        ("speed-up over original", f"{results['speedup_over_original']:.0f}x",
         f"target >= {TARGET_SPEEDUP:.0f}x: "
         f"{'met' if met['speedup_over_original'] else 'MISSED'}"),
        ("  same windows, no augment", f"{results['speedup_over_original_same_windows']:.1f}x",
         "original method on main.py's own records"),
    ]
    width = max(len(row[0]) for row in rows)
    value_width = max(len(row[1]) for row in rows)
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
