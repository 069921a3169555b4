"""A synthetic dataset the size of the published one (``--full-size``)."""

import numpy as np

from coreLib.synthetic.config import (ACTIONS, FULL_SIZE_ACTION_FRAMES_RANGE,
                                      FULL_SIZE_MAX_LEN, FULL_SIZE_REPS,
                                      FULL_SIZE_TEST_FRAMES, FULL_SIZE_TRAIN_FRAMES,
                                      TEST_SUBJECTS, TRAIN_SUBJECTS, SyntheticConfig)
from coreLib.synthetic.detection import full_size_detection_plan
from coreLib.synthetic.plans import apportion
from coreLib.synthetic.randomness import subject


def full_size_config(seed: int = 0, width: int = 320, height: int = 240,
                     reps: int = FULL_SIZE_REPS, style: str = "pose",
                     detection: bool = True) -> SyntheticConfig:
    """A dataset the size of the published one.

    288 sequences (15 train and 3 test subjects, 16 actions); 112,640 Train
    frames with per-action totals from 5,547 to 8,667, and 22,025 Test frames
    (alvin 8,239, etienne 6,119, xiaowei 7,667). Within those totals a subject's
    sequences are longer the slower the subject. With ``detection``, the
    published TestDetection split's shape: 10 sequences, 19,537 frames, 139
    performances (:func:`coreLib.synthetic.detection.full_size_detection_plan`).

    Returns:
        The config, with every sequence's frame count in ``sequence_frames``.
    """
    low, high = FULL_SIZE_ACTION_FRAMES_RANGE
    count = len(ACTIONS)
    # Per-action train totals: the published extremes, the rest spread between
    # them; a fixed interleaving so that neighbouring actions differ.
    middle = apportion(FULL_SIZE_TRAIN_FRAMES - low - high,
                       np.linspace(low, high, count)[1:-1])
    action_totals = [low] + middle + [high]
    order = [(index * 7) % count for index in range(count)]
    per_action = {ACTIONS[position]: action_totals[rank]
                  for rank, position in enumerate(order)}
    speeds = [subject(seed, name).speed for name in TRAIN_SUBJECTS]
    sequence_frames = []
    for action in ACTIONS:
        for name, frames in zip(TRAIN_SUBJECTS, apportion(per_action[action], speeds)):
            sequence_frames.append((name, action, frames))
    action_weights = [per_action[action] for action in ACTIONS]
    for name in TEST_SUBJECTS:
        counts = apportion(FULL_SIZE_TEST_FRAMES[name], action_weights)
        sequence_frames.extend((name, action, frames)
                               for action, frames in zip(ACTIONS, counts))
    return SyntheticConfig(seed=seed, width=width, height=height, reps=reps,
                           max_len=FULL_SIZE_MAX_LEN, min_gap=4, max_gap=40,
                           sequence_frames=tuple(sequence_frames), style=style,
                           detection_sequences=0,
                           detection_plan=full_size_detection_plan() if detection else ())
