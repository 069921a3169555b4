"""main.py's outputs stay byte-identical to the fingerprints taken before the regrouping.

Only the JSON list names changed on purpose: 1.0.4 named each list by its number of
entries (``mode:Test_numOfSeqences:21785_minSeqLen:6.json`` holds 21,785 windows),
and the fingerprints were taken when the number was the sequence count. The names
are mapped through the window counts stored with the fingerprints.
"""

import json
import re

import pytest

import output_fingerprint

with open(output_fingerprint.FINGERPRINT_PATH) as _handle:
    FINGERPRINTS = json.load(_handle)

_OLD_NAME = re.compile(r"^mode:(\w+)_numOfSeqences:\d+_minSeqLen:(\d+)\.json$")


def renamed(old_name: str, window_counts: dict) -> str:
    """The name main.py gives today to a list the old code named ``old_name``."""
    match = _OLD_NAME.match(old_name)
    if not match:
        return old_name
    split, seq_len = match.groups()
    return f"mode:{split}_numOfSeqences:{window_counts[split]}_minSeqLen:{seq_len}.json"


@pytest.mark.parametrize("name", sorted(output_fingerprint.CONFIGURATIONS))
def test_outputs_match_the_stored_fingerprints(name, tmp_path):
    stored = FINGERPRINTS[name]
    dataset_dir, src = output_fingerprint.run_configuration(name, str(tmp_path))
    expected = {renamed(path, stored["window_counts"]): digest
                for path, digest in stored["files"].items()}
    assert output_fingerprint.output_digests(dataset_dir, src) == expected
    with open(f"{dataset_dir}/dataset.json") as handle:
        manifest = json.load(handle)
    for split, info in manifest["splits"].items():
        assert info["num_windows"] == stored["window_counts"][split]
        assert info["json_name"] == renamed(
            f"mode:{split}_numOfSeqences:0_minSeqLen:{manifest['seq_len']}.json",
            stored["window_counts"])


def test_json_names_count_entries_with_offline_augment_too():
    # Train 36 windows x 32 variants; Eval and Test are never augmented.
    counts = FINGERPRINTS["depth_offline_augment"]["window_counts"]
    assert counts == {"Train": 36 * 32, "Eval": 20, "Test": 13}
    names = {renamed(path, counts) for path in FINGERPRINTS["depth_offline_augment"]["files"]}
    assert {"mode:Train_numOfSeqences:1152_minSeqLen:4.json",
            "mode:Eval_numOfSeqences:20_minSeqLen:4.json",
            "mode:Test_numOfSeqences:13_minSeqLen:4.json"} <= names
