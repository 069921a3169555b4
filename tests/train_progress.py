"""What a train.py run has saved and logged so far, read from its MODEL_DIR.

The kill tests watch these to SIGKILL a run at a chosen moment, and check after a
resume which steps the new process trained.
"""

import glob
import os
import re

from coreLib.cli import import_tensorflow_quietly

tf = import_tensorflow_quietly()

_TEMP_CHECKPOINT = re.compile(r"ckpt-(\d+)_temp")


def saved_steps(model_dir):
    """Global steps of the checkpoints the state file lists (what a resume sees)."""
    latest = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
    if latest is None:
        return []
    return [int(path.rsplit("-", 1)[1]) for path in latest.all_model_checkpoint_paths]


def latest_step(model_dir):
    """The step a resumed run would start from (0: no checkpoint yet)."""
    return max(saved_steps(model_dir), default=0)


def checkpoint_writing(model_dir):
    """True while a checkpoint after the latest one is being written (its
    ``ckpt-<step>_temp`` folder exists; a killed write leaves an older one behind)."""
    latest = latest_step(model_dir)
    for path in glob.glob(os.path.join(model_dir, "checkpoints", "ckpt-*_temp*")):
        match = _TEMP_CHECKPOINT.match(os.path.basename(path))
        if match and int(match.group(1)) > latest:
            return True
    return False


def logged_steps(model_dir, pid):
    """Global steps of the ``step_loss`` summaries written by process ``pid``."""
    steps = []
    for path in glob.glob(os.path.join(model_dir, "logs", "train", f"events.*.{pid}.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "step_loss":
                    steps.append(event.step)
    return sorted(steps)
