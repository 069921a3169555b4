"""Fingerprints of main.py's outputs on the hand-made dataset of tiny_dataset.py.

``tests/data/main_outputs.json`` holds, for each configuration below, the sha256 of
every file main.py wrote (dataset.json apart) as the code of 2026-12-01 wrote them,
before coreLib was regrouped into stages and before the JSON lists were named by
their window count. test_output_stability.py runs main.py again and compares.
Regenerate (only when an output is meant to change) with
``python tests/output_fingerprint.py``.
"""

import hashlib
import json
import os
import sys
import tempfile

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TESTS_DIR)
import file_trees  # noqa: E402  (beside this file, also when run as a script)
FINGERPRINT_PATH = os.path.join(TESTS_DIR, "data", "main_outputs.json")

# name -> main.py arguments after SRC DEST
CONFIGURATIONS = {
    "color": ["--image-dim", "8", "--batch-size", "4", "--shard-size", "8",
              "--workers", "1"],
    "depth_offline_augment": ["--image-dim", "6", "--modality", "depth",
                              "--batch-size", "8", "--shard-size", "64",
                              "--offline-augment", "--workers", "1"],
}


def output_digests(dataset_dir: str, src: str) -> dict:
    """``{relative path: sha256}`` of every file under DataSet/ but the manifest.

    The JSON lists name the sequence folders by absolute path: the SRC prefix is
    replaced by ``SRC`` before hashing, so the digests do not depend on the folder
    the test ran in.
    """
    src_text = json.dumps(src)[1:-1].encode()
    digests = {}
    for relative, data in file_trees.tree_bytes(dataset_dir).items():
        relative = relative.replace(os.sep, "/")
        if relative == "dataset.json":
            continue
        if relative.endswith(".json"):
            data = data.replace(src_text, b"SRC")
        digests[relative] = hashlib.sha256(data).hexdigest()
    return dict(sorted(digests.items()))


def run_configuration(name: str, root: str):
    """Writes the tiny dataset and runs main.py on it.

    Returns:
        ``(DataSet folder, SRC folder)``.
    """
    sys.path.insert(0, TESTS_DIR)
    import tiny_dataset
    import main as main_script

    src = tiny_dataset.make_dataset(os.path.join(root, "src"))
    dest = os.path.join(root, "out")
    if main_script.main([src, dest] + CONFIGURATIONS[name]) != 0:
        raise RuntimeError(f"main.py failed on configuration {name}")
    return os.path.join(dest, "DataSet"), src


def main() -> None:
    fingerprints = {}
    for name in CONFIGURATIONS:
        with tempfile.TemporaryDirectory() as root:
            dataset_dir, src = run_configuration(name, root)
            with open(os.path.join(dataset_dir, "dataset.json")) as handle:
                manifest = json.load(handle)
            fingerprints[name] = {
                "files": output_digests(dataset_dir, src),
                "window_counts": {split: info["num_windows"]
                                  for split, info in manifest["splits"].items()},
            }
    with open(FINGERPRINT_PATH, "w") as handle:
        json.dump(fingerprints, handle, indent=1, sort_keys=True)
        handle.write("\n")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(TESTS_DIR))
    main()
