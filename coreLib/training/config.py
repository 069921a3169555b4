"""What one training run does: :class:`TrainConfig`, train.py's recipe defaults,
the split names and the per-epoch seed.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

from coreLib import models
from coreLib.preprocessing import augment, legacy_records
from coreLib.training import optimizer as optimizer_lib
from coreLib.training import strategy as strategy_lib
from coreLib.errors import ActrecogError

# train.py's recipe (README "Training recipe"): what the measurements on both
# synthetic families support.
DEFAULT_LR_SCHEDULE = "warmup-cosine"
DEFAULT_AUGMENT = "rotate"
DEFAULT_ZOOM_JITTER = 0.0
DEFAULT_COLOR_JITTER = 0.0
# Label smoothing is off by default: 0.1 gained a point of trajectory Eval window
# accuracy but lost 7-9 points of online detection frame accuracy on the same
# held-out subject's sequences (docs/training.md, "Label smoothing and detection").
DEFAULT_LABEL_SMOOTHING = 0.0
DEFAULT_MIXUP = 0.0
BN_MOMENTUM_RANGE = (0.9, 0.99)

TRAIN_SPLIT = "Train"
EVAL_SPLIT = "Eval"


def epoch_seed(seed: int, epoch: int) -> int:
    """The Train shuffle/augmentation seed of one epoch (0-based).

    Each epoch gets its own order, and a resumed run rebuilds exactly the same one.
    """
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + 17) % (2 ** 31 - 1)


@dataclass(frozen=True)
class TrainConfig:
    """What one training run does.

    Attributes:
        dataset_dir: the ``DataSet`` folder or URI holding ``dataset.json``.
        model_name: ``ConvNet3D``, ``LRCN`` or ``DUMMY``.
        model_dir: output folder or URI (checkpoints, weights, history, logs).
        strategy: ``default``, ``mirrored``, ``multiworker`` or ``tpu``.
        tpu: TPU name for ``tpu`` (empty: the local/Colab TPU).
        epochs: epochs to reach in total (a resumed run continues up to it).
        batch_size: GLOBAL batch size, split over the replicas.
        steps_per_epoch: Train steps per epoch; None = one pass over Train.
        steps_per_loop: steps run inside one host call (``tf.function`` loop).
        lr: peak Adam step size; None = the model's (``models.DEFAULT_LEARNING_RATES``).
        lr_schedule: one of ``optimizer.LR_SCHEDULES``: ``constant``, ``cosine``
            (from ``lr`` to 0 over all the epochs' steps) or ``warmup-cosine`` (the
            default: linear warm-up over the first 5 %, then cosine to 0).
        mixed_precision: bfloat16 on TPU/CPU, float16 with loss scaling on GPU.
        checkpoint_every: also checkpoint every this many steps (0 = epoch ends only).
        shuffle_buffer: Train shuffle buffer, in windows.
        seed: seeds weights, shuffling and augmentation.
        eval: run an Eval pass after every epoch.
        eval_steps: Eval batches per pass; None = one pass over Eval.
        deterministic: each step compiled by XLA: bit-identical weights for the same
            config, resumed or not (see :mod:`coreLib.training.determinism`).
        augment: online augmentation of Train, a key of ``augment.AUGMENT_MODES``
            (``none``, ``rotate``, ``rotate-lr``, ``all``; True = ``all``, False =
            ``none``); records stored already augmented are never augmented again.
        bn_momentum: momentum of the models' BatchNorm moving statistics; None =
            from the run's length (:meth:`bn_momentum_for`).
        color_jitter: photometric jitter strength of Train windows (0 = off; see
            ``online_augment.jitter_windows``).
        zoom_jitter: geometric jitter strength of Train windows (zoom and shift;
            0 = off; see ``online_augment.zoom_windows``).
        label_smoothing: the Train loss's targets are ``(1 - s) * one-hot + s / K``
            (0 = off); Eval's loss (which picks the best weights) is never smoothed.
        mixup: Beta parameter of mixup across subjects of Train windows (0 = off;
            see ``online_augment.mixup_windows``).
        legacy_classes: class order of a 1.0.4 folder's records (no dataset.json);
            None = ``legacy_records.LEGACY_CLASSES``.
    """
    dataset_dir: str
    model_name: str
    model_dir: str
    strategy: str = strategy_lib.DEFAULT
    tpu: str = ""
    epochs: int = 5
    batch_size: int = 32
    steps_per_epoch: Optional[int] = None
    steps_per_loop: int = 10
    lr: Optional[float] = None
    lr_schedule: str = DEFAULT_LR_SCHEDULE
    mixed_precision: bool = False
    checkpoint_every: int = 0
    shuffle_buffer: int = 1024
    seed: int = 0
    eval: bool = True
    eval_steps: Optional[int] = None
    deterministic: bool = False
    augment: str = DEFAULT_AUGMENT
    bn_momentum: Optional[float] = None
    color_jitter: float = DEFAULT_COLOR_JITTER
    zoom_jitter: float = DEFAULT_ZOOM_JITTER
    label_smoothing: float = DEFAULT_LABEL_SMOOTHING
    mixup: float = DEFAULT_MIXUP
    legacy_classes: Optional[Tuple[str, ...]] = None

    def __post_init__(self):
        models.get_model_builder(self.model_name)
        if self.legacy_classes is not None:
            legacy_records.check_classes(self.legacy_classes)
        if self.strategy not in strategy_lib.STRATEGY_NAMES:
            raise ActrecogError(f"unknown strategy {self.strategy!r}; valid names: "
                                f"{', '.join(strategy_lib.STRATEGY_NAMES)}")
        for name in ("epochs", "batch_size", "steps_per_loop", "shuffle_buffer"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.steps_per_epoch is not None and (
                not isinstance(self.steps_per_epoch, int) or self.steps_per_epoch < 1):
            raise ValueError(f"steps_per_epoch must be a positive integer or None, "
                             f"got {self.steps_per_epoch!r}")
        if self.eval_steps is not None and (
                not isinstance(self.eval_steps, int) or self.eval_steps < 1):
            raise ValueError(f"eval_steps must be a positive integer or None, "
                             f"got {self.eval_steps!r}")
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every!r}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        object.__setattr__(self, "augment", augment.check_augment_mode(self.augment))
        if self.lr_schedule not in optimizer_lib.LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of "
                             f"{', '.join(optimizer_lib.LR_SCHEDULES)}, "
                             f"got {self.lr_schedule!r}")
        for name in ("color_jitter", "zoom_jitter", "label_smoothing"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if not 0 <= self.mixup < float("inf"):
            raise ValueError(f"mixup must be >= 0 and finite, got {self.mixup!r}")
        if self.bn_momentum is not None and not 0 < self.bn_momentum < 1:
            raise ValueError(f"bn_momentum must be between 0 and 1, got {self.bn_momentum!r}")

    @property
    def peak_lr(self) -> float:
        """``lr``, or the model's default (``models.DEFAULT_LEARNING_RATES``)."""
        return self.lr if self.lr is not None else models.DEFAULT_LEARNING_RATES[
            self.model_name]

    def bn_momentum_for(self, total_steps: int) -> float:
        """``bn_momentum``, or the run-length default: ``1 - 20 / total_steps`` within
        [0.9, 0.99]. The moving statistics then average over the last ~5 % of the run
        (the weights they describe change little over that span); Keras' fixed 0.99
        averages over ~100 steps, which in a run of a few hundred steps still holds
        the statistics of much earlier weights and collapses Eval predictions."""
        if self.bn_momentum is not None:
            return self.bn_momentum
        return min(BN_MOMENTUM_RANGE[1], max(BN_MOMENTUM_RANGE[0],
                                             1.0 - 20.0 / max(1, total_steps)))
