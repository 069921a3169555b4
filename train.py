"""Trains CausalMobileNet, ConvNet3D, LRCN or DUMMY on a preprocessed DataSet folder (local or gs://).

    python train.py DATASET_DIR MODEL_NAME MODEL_DIR [options]

Runs the same distributed custom loop on one CPU/GPU, several GPUs, several
machines (TF_CONFIG) or a TPU. Starting again with the same MODEL_DIR resumes
from its last checkpoint at the same step.
"""

from coreLib.cli import (add_legacy_classes_argument, add_model_name_argument,
                         import_tensorflow_quietly, make_parser, non_negative_float,
                         non_negative_int, open_unit_float, positive_float, positive_int,
                         run_main, unit_fraction)

# The recipe's names, spelled here too so that --help does not have to import
# TensorFlow (a test keeps them equal to coreLib.training's).
LR_SCHEDULES = ("constant", "cosine", "warmup-cosine")
DEFAULT_LR_SCHEDULE = "warmup-cosine"
AUGMENT_MODES = ("none", "rotate", "rotate-lr", "all")
DEFAULT_AUGMENT = "rotate"
DEFAULT_ZOOM_JITTER = 0.0
DEFAULT_COLOR_JITTER = 0.0
DEFAULT_LABEL_SMOOTHING = 0.0   # off: see coreLib/training/config.py
DEFAULT_MIXUP = 0.0


def build_parser():
    parser = make_parser("train.py", __doc__.strip().splitlines()[0])
    parser.add_argument("dataset_dir", metavar="DATASET_DIR",
                        help="the DataSet folder or gs:// URI holding dataset.json, or "
                             "1.0.4 records (TFRECORD/Train, TFRECORD/Eval)")
    add_model_name_argument(parser)
    parser.add_argument("model_dir", metavar="MODEL_DIR",
                        help="folder or gs:// URI for checkpoints, weights, history and "
                             "TensorBoard logs (resumed when it holds a checkpoint)")
    parser.add_argument("--strategy", default="default",
                        help="default, mirrored (all local GPUs), multiworker (TF_CONFIG) "
                             "or tpu")
    parser.add_argument("--tpu", default="",
                        help="TPU name or grpc:// address for --strategy tpu "
                             "(empty: the local/Colab TPU)")
    parser.add_argument("--epochs", type=positive_int, default=5,
                        help="epochs to reach in total (a resumed run continues up to it)")
    parser.add_argument("--batch-size", type=positive_int, default=32,
                        help="global batch size, split over the replicas")
    parser.add_argument("--steps-per-epoch", type=positive_int, default=None,
                        help="Train steps per epoch (default: one pass over Train)")
    parser.add_argument("--steps-per-loop", type=positive_int, default=10,
                        help="steps run on the device per host call")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help="peak Adam step size (default: the model's: 6e-3 "
                             "CausalMobileNet, 2e-4 ConvNet3D, 1e-3 LRCN and DUMMY)")
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=DEFAULT_LR_SCHEDULE,
                        help="constant; cosine: from --lr to 0 over all the epochs' "
                             "steps; warmup-cosine: linear warm-up over the first 5 %% "
                             "of the steps, then cosine to 0")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="bfloat16 on TPU/CPU, float16 with loss scaling on GPU")
    parser.add_argument("--checkpoint-every", type=non_negative_int, default=0,
                        help="also checkpoint every this many steps (0: at epoch ends only)")
    parser.add_argument("--shuffle-buffer", type=positive_int, default=1024,
                        help="Train shuffle buffer, in windows")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seeds the weights, the shuffling and the augmentation")
    parser.add_argument("--augment", choices=AUGMENT_MODES, default=DEFAULT_AUGMENT,
                        help="online augmentation, one variant drawn per window: none, "
                             "rotate (0-35 degrees), rotate-lr (and left-right flips), "
                             "all (and up-down flips: 1.0.4's 32 variants)")
    parser.add_argument("--no-augment", dest="augment", action="store_const",
                        const="none", help="the same as --augment none")
    parser.add_argument("--zoom-jitter", type=unit_fraction, default=DEFAULT_ZOOM_JITTER,
                        help="geometric jitter of Train windows, strength s in [0, 1): "
                             "per window zoom x U(1-s,1+s) and shift by U(-s/2,s/2) of "
                             "the frame in x and y (0: off)")
    parser.add_argument("--color-jitter", type=unit_fraction, default=DEFAULT_COLOR_JITTER,
                        help="photometric jitter of Train windows, strength s in [0, 1): "
                             "per window contrast x U(1-s,1+s), channel gains x "
                             "U(1-s/2,1+s/2), brightness + U(-s/4,s/4) (0: off)")
    parser.add_argument("--label-smoothing", type=unit_fraction,
                        default=DEFAULT_LABEL_SMOOTHING,
                        help="Train targets (1-s) x one-hot + s / classes, s in [0, 1) "
                             "(0: off; Eval's loss, which keeps the best weights, is "
                             "never smoothed)")
    parser.add_argument("--mixup", type=non_negative_float, default=DEFAULT_MIXUP,
                        metavar="ALPHA",
                        help="mixup across subjects: each Train window blended with "
                             "another subject's window of the batch (pixels and labels), "
                             "weight max(l, 1-l), l ~ Beta(ALPHA, ALPHA) (0: off)")
    parser.add_argument("--bn-momentum", type=open_unit_float, default=None,
                        help="momentum of the BatchNorm moving statistics (default: "
                             "1 - 20 / the run's steps, within 0.9 and 0.99)")
    parser.add_argument("--no-eval", dest="eval", action="store_false",
                        help="skip the Eval pass after each epoch (best weights then by "
                             "train loss)")
    parser.add_argument("--deterministic", action="store_true",
                        help="bit-identical weights for the same arguments, resumed or "
                             "not: each step compiled by XLA (a compile at the start; "
                             "steps at XLA's speed)")
    add_legacy_classes_argument(parser)
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar or per-epoch summary lines")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import_tensorflow_quietly()
    from coreLib.training import trainer

    config = trainer.TrainConfig(
        dataset_dir=args.dataset_dir, model_name=args.model_name, model_dir=args.model_dir,
        strategy=args.strategy, tpu=args.tpu, epochs=args.epochs,
        batch_size=args.batch_size, steps_per_epoch=args.steps_per_epoch,
        steps_per_loop=args.steps_per_loop, lr=args.lr,
        lr_schedule=args.lr_schedule,
        mixed_precision=args.mixed_precision, checkpoint_every=args.checkpoint_every,
        shuffle_buffer=args.shuffle_buffer, seed=args.seed, eval=args.eval,
        deterministic=args.deterministic, augment=args.augment,
        bn_momentum=args.bn_momentum, color_jitter=args.color_jitter,
        zoom_jitter=args.zoom_jitter, label_smoothing=args.label_smoothing,
        mixup=args.mixup, legacy_classes=args.legacy_classes)
    history = trainer.train(config, progress=not args.quiet)
    if history and not args.quiet:
        print(f"done: {len(history)} epochs in {args.model_dir}")
    return 0


if __name__ == "__main__":
    run_main(main)
