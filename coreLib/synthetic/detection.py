"""The synthetic ``TestDetection/`` split: long sequences of several actions.

The published archive has a third split for detection (finding where each
action starts and ends in a long recording): 10 sequences of 9 subjects, 19,537
frames. The generator writes the same kind of split in both families::

    DEST/TestDetection/<name>.xml                   label file, one item per performance
    DEST/TestDetection/<name>/depth_<i>.png         as in Train/ and Test/
    DEST/TestDetection/<name>/confi_<i>.png
    DEST/TestDetection/<name>/color_<i>.png

Each sequence is one unseen subject (never a Train or Test subject) performing
several actions, consecutive ones different (when there are two actions or more),
separated by no-action gaps. Its label items name their action
(:func:`coreLib.data.labels.label_file_xml` with ``(pos, len, action)`` items), read
back by :func:`coreLib.data.labels.read_action_label_file`.

A sequence's subject is its name without trailing digits (``dale0`` and ``dale1``
are one person, as in the published split); ``alvin_test`` and ``xiaowei_test``
are subjects of their own here, so detection is measured on people no model has
seen. main.py reads ``Train/`` and ``Test/`` only and never this split.

Deterministic like the rest: a sequence draws from generators seeded by (seed,
name) only.
"""

import os
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from coreLib.data import labels
from coreLib.synthetic.config import (DETECTION_PERFORMANCES_RANGE, DETECTION_SPLIT,
                                      FULL_SIZE_DETECTION_FRAMES,
                                      FULL_SIZE_DETECTION_PERFORMANCES, SyntheticConfig,
                                      detection_subject)
from coreLib.synthetic.families import family_of
from coreLib.synthetic.plans import apportion, fit_total
from coreLib.synthetic.randomness import seeded_rng, subject
from coreLib.synthetic.writing import write_frames


def full_size_detection_plan() -> Tuple[Tuple[str, int, int], ...]:
    """``(name, frames, performances)`` of the published split's 10 sequences.

    Every sequence gets the range's minimum (10) and the remaining 39 of the 139
    performances go to the sequences in proportion to their frames, so each holds
    10 to 20 and the longer ones more.
    """
    low, high = DETECTION_PERFORMANCES_RANGE
    frames = [count for _, count in FULL_SIZE_DETECTION_FRAMES]
    extra = apportion(FULL_SIZE_DETECTION_PERFORMANCES - low * len(frames), frames)
    plan = tuple((name, count, low + more)
                 for (name, count), more in zip(FULL_SIZE_DETECTION_FRAMES, extra))
    assert all(low <= performances <= high for _, _, performances in plan)
    return plan


@dataclass(frozen=True)


class DetectionPlan:
    """One TestDetection sequence to write.

    Attributes:
        name: the sequence's folder and label file name.
        subject: who performs (see :func:`detection_subject`).
        num_frames: N, frames 0..N-1.
        intervals: ``(pos, len)`` of each performance, ascending, never touching.
        actions: the action of each performance (same order).
    """
    name: str
    subject: str
    num_frames: int
    intervals: Tuple[Tuple[int, int], ...]
    actions: Tuple[str, ...]

    @property
    def label_items(self) -> Tuple[Tuple[int, int, str], ...]:
        """``(pos, len, action)`` per performance: what the label file holds."""
        return tuple((pos, length, action)
                     for (pos, length), action in zip(self.intervals, self.actions))


def _action_order(actions: Sequence[str], count: int,
                  rng: np.random.Generator) -> List[str]:
    """``count`` actions: shuffled rounds through all of them, so that a sequence
    covers as many as it can, and never the same action twice in a row."""
    order: List[str] = []
    while len(order) < count:
        round_ = [actions[index] for index in rng.permutation(len(actions))]
        if order and len(round_) > 1 and round_[0] == order[-1]:
            round_[0], round_[1] = round_[1], round_[0]
        order.extend(round_)
    return order[:count]


def plan_detection_sequence(config: SyntheticConfig, name: str, num_frames: int,
                            performances: int) -> DetectionPlan:
    """Draws the actions and where the performances of one sequence lie.

    Performance lengths follow the Train/Test rule (the family's length of the
    action, the subject's speed, +-25 %) within ``[min_len, max_len]``; the gaps
    take the remaining frames in random shares, each at least ``min_gap``.

    Args:
        config: the dataset settings.
        name: the sequence.
        num_frames: N, exactly.
        performances: how many.

    Returns:
        The plan.
    """
    rng = seeded_rng(config.seed, "detection-plan", name)
    subject_name = detection_subject(name)
    actions = _action_order(config.actions, performances, rng)
    person = subject(config.seed, subject_name)
    mean_len = (config.min_len + config.max_len) / 2
    length_factor = family_of(config).length_factor
    factors = np.array([length_factor(action) for action in actions])
    drawn = mean_len * factors * person.speed * rng.uniform(0.75, 1.25, performances)
    lengths = np.clip(np.rint(drawn), config.min_len, config.max_len).astype(np.int64)
    room = num_frames - (performances + 1) * config.min_gap
    if lengths.sum() > room:
        # Too long for the frame count: shrink them, keep minimum gaps.
        scaled = np.maximum(np.rint(lengths * room / lengths.sum()), config.min_len)
        lengths = fit_total(scaled.astype(np.int64), np.full(performances, config.min_len),
                            np.zeros(performances, bool), room, rng)
    spare = num_frames - int(lengths.sum())
    shares = rng.uniform(0.3, 1.7, performances + 1)
    gaps = np.maximum(np.rint(shares * spare / shares.sum()), config.min_gap)
    gaps = fit_total(gaps.astype(np.int64), np.full(performances + 1, config.min_gap),
                     np.zeros(performances + 1, bool), spare, rng)
    intervals = []
    position = int(gaps[0])
    for length, gap in zip(lengths, gaps[1:]):
        intervals.append((position, int(length)))
        position += int(length) + int(gap)
    assert position == num_frames
    return DetectionPlan(name, subject_name, num_frames, tuple(intervals), tuple(actions))


def plan_detection(config: SyntheticConfig) -> List[DetectionPlan]:
    """Plans of every TestDetection sequence of a config, in its order."""
    return [plan_detection_sequence(config, name, frames, performances)
            for name, frames, performances in config.detection_entries()]


def render_detection_sequence(config: SyntheticConfig, plan: DetectionPlan):
    """Yields ``(depth, confi, color)`` per frame of one sequence, as
    :func:`coreLib.synthetic.writing.render_sequence`."""
    rng = seeded_rng(config.seed, "frames", DETECTION_SPLIT, plan.name)
    return family_of(config).render_frames(config, plan.subject, plan.num_frames,
                                           plan.intervals, plan.actions, rng)


def write_detection_sequence(dest: str, config: SyntheticConfig,
                             plan: DetectionPlan) -> int:
    """Renders and writes one sequence under ``dest/TestDetection``; the label file
    comes last. Returns the number of frames."""
    split_dir = os.path.join(dest, DETECTION_SPLIT)
    write_frames(os.path.join(split_dir, plan.name),
                 render_detection_sequence(config, plan))
    labels.write_label_file(os.path.join(split_dir, f"{plan.name}.xml"), plan.label_items)
    return plan.num_frames
