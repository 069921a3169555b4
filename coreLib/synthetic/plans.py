"""Where the performances of a sequence lie: the plans of the Train and Test sequences.

Each sequence holds ``reps`` performances of its action separated by no-action
frames (also before the first and after the last one). A performance's length
follows the family's length of the action and the subject's speed; with a fixed
frame count the gaps (or, if needed, the performances) absorb the difference.
Every plan draws from its own generator seeded by (seed, split, subject, action).
"""

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from coreLib.synthetic.config import SyntheticConfig
from coreLib.synthetic.families import family_of
from coreLib.synthetic.randomness import seeded_rng, subject


@dataclass(frozen=True)


class SequencePlan:
    """One sequence to write.

    Attributes:
        split, subject, action: where it goes.
        num_frames: N, frames 0..N-1.
        intervals: ``(pos, len)`` of each performance, ascending.
    """
    split: str
    subject: str
    action: str
    num_frames: int
    intervals: Tuple[Tuple[int, int], ...]


def fit_total(values: np.ndarray, minimums: np.ndarray, fixed: np.ndarray,
              total: int, rng: np.random.Generator) -> np.ndarray:
    """Adds or removes single frames until ``values`` sums to ``total``.

    Frames are taken from or given to the entries not ``fixed`` in a random but
    deterministic order, never below their minimum.
    """
    values = values.copy()
    movable = np.flatnonzero(~fixed)
    while True:
        diff = total - int(values.sum())
        if diff == 0:
            return values
        order = movable[rng.permutation(len(movable))]
        step = 1 if diff > 0 else -1
        changed = False
        for index in order:
            if diff == 0:
                break
            if step < 0 and values[index] <= minimums[index]:
                continue
            values[index] += step
            diff -= step
            changed = True
        if not changed:  # guarded by SyntheticConfig.fewest_frames
            raise ValueError(f"cannot fit the performances into {total} frames")


def apportion(total: int, weights: Sequence[float]) -> List[int]:
    """Splits ``total`` into integers proportional to ``weights`` (largest
    remainder), summing exactly to ``total``."""
    weights = np.asarray(weights, np.float64)
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    remainders = exact - counts
    for index in np.argsort(-remainders, kind="stable")[:total - int(counts.sum())]:
        counts[index] += 1
    return [int(count) for count in counts]


def plan_sequence(config: SyntheticConfig, split: str, subject_name: str, action: str,
                  shortest: bool = False) -> SequencePlan:
    """Draws where the performances of one sequence lie.

    Args:
        config: the dataset settings.
        split, subject_name, action: the sequence.
        shortest: make the first performance exactly ``config.min_len`` long (done
            for one sequence, so the dataset's shortest interval is min_len).

    Returns:
        The plan; intervals start after a gap, end before one, never touch.
    """
    rng = seeded_rng(config.seed, "plan", split, subject_name, action)
    person = subject(config.seed, subject_name)
    mean_len = (config.min_len + config.max_len) / 2
    factor = family_of(config).length_factor(action)
    drawn = mean_len * factor * person.speed * rng.uniform(0.75, 1.25, config.reps)
    lengths = np.clip(np.rint(drawn), config.min_len, config.max_len).astype(np.int64)
    fixed_lengths = np.zeros(config.reps, bool)
    if shortest:
        lengths[0] = config.min_len
        fixed_lengths[0] = True
    gaps = rng.integers(config.min_gap, config.max_gap + 1, config.reps + 1)
    total = config.frames_of(split, subject_name, action)
    if total is not None:
        room = total - (config.reps + 1) * config.min_gap
        if lengths.sum() > room:
            # Performances too long for the frame count: shrink them, keep minimum gaps.
            scaled = np.maximum(np.rint(lengths * room / lengths.sum()), config.min_len)
            lengths = np.where(fixed_lengths, lengths, scaled).astype(np.int64)
            lengths = fit_total(lengths, np.full(config.reps, config.min_len),
                                fixed_lengths, room, rng)
            gaps = np.full(config.reps + 1, config.min_gap, np.int64)
        else:
            spare = total - int(lengths.sum())
            scaled = np.maximum(np.rint(gaps * spare / gaps.sum()), config.min_gap)
            gaps = fit_total(scaled.astype(np.int64),
                             np.full(config.reps + 1, config.min_gap),
                             np.zeros(config.reps + 1, bool), spare, rng)
    intervals = []
    position = int(gaps[0])
    for length, gap in zip(lengths, gaps[1:]):
        intervals.append((position, int(length)))
        position += int(length) + int(gap)
    return SequencePlan(split, subject_name, action, position, tuple(intervals))


def plan_dataset(config: SyntheticConfig) -> List[SequencePlan]:
    """Plans of every sequence, in generation order (the first gets the shortest
    performance)."""
    return [plan_sequence(config, split, subject_name, action, shortest=(index == 0))
            for index, (split, subject_name, action) in enumerate(config.sequences())]
