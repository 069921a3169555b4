"""Property test: the dataset reader either succeeds consistently or says why.

Hypothesis writes random label-file contents (well-formed intervals, broken
values, random XML and random bytes) and random damage to a frame folder of a
tiny BII-layout dataset, then runs main.py's reading phase (coreLib.preprocessing.preprocess
discovery, labels, windows) and decodes every frame. The outcome must be either
windows that agree with the label rule, or the project's ActrecogError - never
any other exception.
"""

import os
import shutil
import tempfile

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from coreLib.data import frames, manifest
from coreLib.preprocessing import preprocess
from coreLib.errors import ActrecogError

# (split, subject, action, frames)
SEQUENCES = (("Train", "alpha", "wave", 9), ("Train", "alpha", "tap", 8),
             ("Train", "beta", "wave", 7), ("Test", "gamma", "tap", 8))
GOOD_INTERVALS = {("alpha", "wave"): [(1, 4)], ("alpha", "tap"): [(0, 3), (5, 3)],
                  ("beta", "wave"): [(2, 5)], ("gamma", "tap"): [(3, 4)]}
FRAME_SIZE = (6, 5)  # (H, W)
MODALITY_SHAPES = {"color": (np.uint8, 3), "depth": (np.uint16, 1), "confi": (np.uint16, 1)}


def label_xml(items) -> str:
    """A FileStorage label file; ``items`` are (pos text, len text) pairs."""
    body = "".join(f"  <_>\n    <pos>{pos}</pos>\n    <len>{length}</len></_>\n"
                   for pos, length in items)
    return f'<?xml version="1.0"?>\n<opencv_storage>\n<label>\n{body}</label>\n</opencv_storage>\n'


def frame_image(modality: str, index: int, dtype=None, channels=None) -> np.ndarray:
    default_dtype, default_channels = MODALITY_SHAPES[modality]
    dtype, channels = dtype or default_dtype, channels or default_channels
    image = np.full(FRAME_SIZE + (channels,), 10 * index + 1, dtype)
    return image[:, :, 0] if channels == 1 else image


def write_clean_dataset(root: str) -> None:
    for split, subject, action, count in SEQUENCES:
        folder = os.path.join(root, split, subject, action)
        os.makedirs(folder)
        for index in range(count):
            for modality in MODALITY_SHAPES:
                cv2.imwrite(os.path.join(folder, f"{modality}_{index}.png"),
                            frame_image(modality, index))
        with open(os.path.join(root, split, subject, action + ".xml"), "w") as handle:
            handle.write(label_xml(GOOD_INTERVALS[(subject, action)]))


@pytest.fixture(scope="module")
def clean_dataset():
    with tempfile.TemporaryDirectory() as root:
        write_clean_dataset(root)
        yield root


integer_text = st.one_of(st.integers(-3, 14).map(str),
                         st.sampled_from(["", " 4 ", "2.5", "x", "1e2", "+3", "0x4"]))
label_contents = st.one_of(
    # Intervals inside every sequence (7+ frames); out-of-range ones come as text.
    st.lists(st.tuples(st.integers(0, 4), st.integers(1, 3)), min_size=1, max_size=3)
    .map(lambda items: ("intervals", items)),
    st.lists(st.tuples(integer_text, integer_text), min_size=0, max_size=3)
    .map(lambda items: ("text", items)),
    st.sampled_from(["<opencv_storage><label><_><pos>1</pos></_></label></opencv_storage>",
                     "<opencv_storage><_><_><pos>1</pos><len>2</len></_></_></opencv_storage>",
                     "<opencv_storage><label>", "", "not xml at all"])
    .map(lambda text: ("raw", text)),
    st.binary(max_size=40).map(lambda data: ("bytes", data)),
)
frame_damage = st.sampled_from([
    "none", "none", "none", "none", "none", "none", "delete-middle", "delete-first", "delete-last", "stray-after-gap",
    "garbage-bytes", "truncated-png", "empty-file", "color-16bit", "color-1channel",
    "depth-8bit", "other-size", "unrelated-file", "delete-label", "empty-folder-no-label",
    "delete-folder",
])


def apply_damage(root: str, damage: str, sequence_index: int, modality: str) -> None:
    split, subject, action, count = SEQUENCES[sequence_index]
    folder = os.path.join(root, split, subject, action)
    middle = os.path.join(folder, f"{modality}_{count // 2}.png")
    if damage == "delete-middle":
        os.remove(middle)
    elif damage == "delete-first":
        os.remove(os.path.join(folder, f"{modality}_0.png"))
    elif damage == "delete-last":
        os.remove(os.path.join(folder, f"{modality}_{count - 1}.png"))
    elif damage == "stray-after-gap":
        shutil.copy(middle, os.path.join(folder, f"{modality}_{count + 3}.png"))
    elif damage == "garbage-bytes":
        with open(middle, "wb") as handle:
            handle.write(b"\x89PNG not really" * 3)
    elif damage == "truncated-png":
        with open(middle, "rb") as handle:
            data = handle.read()
        with open(middle, "wb") as handle:
            handle.write(data[:len(data) // 2])
    elif damage == "empty-file":
        open(middle, "wb").close()
    elif damage == "color-16bit":
        cv2.imwrite(middle, frame_image(modality, 1, np.uint16, 3))
    elif damage == "color-1channel":
        cv2.imwrite(middle, frame_image(modality, 1, np.uint8, 1))
    elif damage == "depth-8bit":
        cv2.imwrite(middle, frame_image(modality, 1, np.uint8, 1))
    elif damage == "other-size":
        image = frame_image(modality, 1)
        cv2.imwrite(middle, np.concatenate([image, image], axis=0))
    elif damage == "unrelated-file":
        with open(os.path.join(folder, "notes.txt"), "w") as handle:
            handle.write("ignored")
    elif damage == "delete-label":
        os.remove(os.path.join(root, split, subject, action + ".xml"))
    elif damage == "empty-folder-no-label":
        os.makedirs(os.path.join(root, split, subject, "extra"))
    elif damage == "delete-folder":
        shutil.rmtree(folder)


def window_labels_by_rule(sequence, seq_len: int, action_label: int, no_action: int):
    """The original's rule, written plainly: >= floor(L/2) labelled frames."""
    labelled = [any(i.pos <= frame < i.pos + i.len for i in sequence.intervals)
                for frame in range(sequence.num_frames)]
    return [action_label if sum(labelled[start:start + seq_len]) >= seq_len // 2
            else no_action for start in range(sequence.num_frames - seq_len + 1)]


def check_plan(plan, expected_intervals) -> None:
    """Every window lies inside its sequence and has the label the rule gives."""
    classes = plan.classes
    assert classes[-1] == manifest.NO_ACTION
    assert list(classes[:-1]) == sorted({s.action for s in plan.sequences
                                         if s.source_split == "Train"})
    seq_len = plan.seq_len
    assert seq_len == min(s.shortest_len for s in plan.sequences)
    for sequence in plan.sequences:
        assert sequence.num_frames >= seq_len
        for interval in sequence.intervals:
            assert 0 <= interval.pos and interval.pos + interval.len <= sequence.num_frames
        key = (sequence.subject, sequence.action)
        if key in expected_intervals:
            assert [(i.pos, i.len) for i in sequence.intervals] == expected_intervals[key]
    for split, window_list in plan.windows.items():
        for number in range(len(window_list)):
            sequence = plan.sequences[int(window_list.sequence[number])]
            start = int(window_list.start[number])
            assert 0 <= start and start + seq_len <= sequence.num_frames
            rule = window_labels_by_rule(sequence, seq_len, classes.index(sequence.action),
                                         len(classes) - 1)
            assert int(window_list.label[number]) == rule[start]
    for split in ("Eval", "Test"):
        expected = sum(plan.sequences[i].num_frames - seq_len + 1
                       for i in plan.split_sequences[split])
        assert len(plan.windows[split]) == expected
        assert not plan.windows[split].variant.any()


def read_every_frame(plan, modality: str) -> int:
    decoded = 0
    for sequence in plan.sequences:
        for index in range(sequence.num_frames):
            image = frames.read_frame(sequence.path, modality, index)
            dtype, channels = MODALITY_SHAPES[modality]
            assert image.dtype == dtype and image.ndim == 3 and image.shape[2] == channels
            decoded += 1
    return decoded


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(content=label_contents, label_target=st.integers(0, len(SEQUENCES) - 1),
       damage=frame_damage, damage_target=st.integers(0, len(SEQUENCES) - 1),
       modality=st.sampled_from(sorted(MODALITY_SHAPES)))
def test_reader_succeeds_consistently_or_raises_actrecog_error(
        clean_dataset, content, label_target, damage, damage_target, modality):
    with tempfile.TemporaryDirectory() as work:
        root = os.path.join(work, "SRC")
        shutil.copytree(clean_dataset, root)
        split, subject, action, _ = SEQUENCES[label_target]
        kind, value = content
        data = (value if kind == "bytes" else
                label_xml(value) if kind in ("intervals", "text") else value)
        with open(os.path.join(root, split, subject, action + ".xml"),
                  "wb" if kind == "bytes" else "w") as handle:
            handle.write(data)
        apply_damage(root, damage, damage_target, modality)

        expected = dict(GOOD_INTERVALS)
        if kind == "intervals":
            expected[(subject, action)] = list(value)
        else:
            expected.pop((subject, action))
        config = preprocess.PreprocessConfig(src=root, dest=os.path.join(work, "out"),
                                             modality=modality, eval_subjects=("beta",),
                                             batch_size=1, workers=1)
        try:
            plan = preprocess.make_plan(config)
            check_plan(plan, expected)
            assert read_every_frame(plan, modality) == sum(
                s.num_frames for s in plan.sequences)
            event("read: windows")
        except ActrecogError as error:
            event("read: ActrecogError")
            message = str(error)
            assert message and "\n" not in message.strip()
        # A clean run with a good label file must not fail.
        if kind == "intervals" and damage in ("none", "unrelated-file") and all(
                pos + length <= SEQUENCES[label_target][3] for pos, length in value):
            plan = preprocess.make_plan(config)
            check_plan(plan, expected)
