"""Checks a DataSet folder, or smoke-runs a model on it.

    python debug.py TFRECORD_DIR CHECK
    python debug.py TFRECORD_DIR CausalMobileNet|ConvNet3D|LRCN|DUMMY [--steps N] [--batch-size B]

TFRECORD_DIR (1.0.4's name; DATASET_DIR in train.py) is the DataSet folder (or gs://
URI) holding dataset.json, or a folder of 1.0.4 records (DataSet with TFRECORD/Train,
or the TFRECORD folder itself).
CHECK reads every record of every split, validates it against the manifest and the
shard sha256s, prints the counts per split and class and writes check_<split>.png.
A model name runs the real training loop (default strategy) for a few steps on
Train, then an Eval pass, and prints the losses.
"""

import shutil
import tempfile

from coreLib import storage
from coreLib.cli import (MODEL_NAMES_TEXT, add_legacy_classes_argument,
                         import_tensorflow_quietly, make_parser, positive_int, run_main)
from coreLib.errors import ActrecogError

CHECK_FLAG = "CHECK"


def build_parser():
    parser = make_parser("debug.py", __doc__.strip().splitlines()[0])
    parser.add_argument("dataset_dir", metavar="TFRECORD_DIR",
                        help="the DataSet folder or gs:// URI holding dataset.json, or "
                             "1.0.4 records")
    parser.add_argument("exec_flag", metavar="EXEC_FLAG",
                        help=f"CHECK, or a model name: {MODEL_NAMES_TEXT}")
    parser.add_argument("--out", default=None,
                        help="CHECK: folder for check_<split>.png (default: TFRECORD_DIR)")
    parser.add_argument("--no-sha256", dest="verify_sha256", action="store_false",
                        help="CHECK: skip hashing the shards")
    add_legacy_classes_argument(parser)
    parser.add_argument("--steps", type=positive_int, default=5,
                        help="model smoke run: Train steps per epoch")
    parser.add_argument("--epochs", type=positive_int, default=2,
                        help="model smoke run: epochs (the original ran 2)")
    parser.add_argument("--eval-steps", type=positive_int, default=5,
                        help="model smoke run: Eval batches per pass")
    parser.add_argument("--batch-size", type=positive_int, default=2,
                        help="model smoke run: batch size (the original used 2)")
    parser.add_argument("--lr", type=float, default=1e-4,
                        help="model smoke run: Adam learning rate")
    parser.add_argument("--model-dir", default=None,
                        help="model smoke run: keep its outputs here (default: a "
                             "temporary folder, deleted afterwards)")
    return parser


def run_check(args) -> int:
    from coreLib.preprocessing import checks, legacy_records

    loaded = legacy_records.load_manifest_or_legacy(args.dataset_dir, args.legacy_classes,
                                                    note=print)
    reports = checks.check_dataset(args.dataset_dir, verify_sha256=args.verify_sha256,
                                   manifest=loaded)
    out_dir = args.out or args.dataset_dir
    storage.check_writable(out_dir)
    for split, report in reports.items():
        per_class = ", ".join(f"{name} {count}" for name, count in report.class_counts.items())
        print(f"{split}: {report.num_records} records in {report.num_shards} shards, "
              f"window {loaded.window_shape} {loaded.dtype}; per class: {per_class}")
        path = storage.join(out_dir, checks.montage_name(split))
        storage.write_bytes_atomic(path, checks.montage_png(report, loaded))
        print(f"{split}: montage of {len(report.samples)} windows: {path}")
    print(f"CHECK passed: {sum(r.num_records for r in reports.values())} records")
    return 0


def run_smoke(args) -> int:
    from coreLib.training import trainer

    model_dir = args.model_dir or tempfile.mkdtemp(prefix="actrecog-debug-")
    try:
        config = trainer.TrainConfig(
            dataset_dir=args.dataset_dir, model_name=args.exec_flag, model_dir=model_dir,
            epochs=args.epochs, batch_size=args.batch_size, steps_per_epoch=args.steps,
            steps_per_loop=1, eval_steps=args.eval_steps, lr=args.lr,
            legacy_classes=args.legacy_classes)
        history = trainer.train(config, progress=True)
    finally:
        if args.model_dir is None:
            shutil.rmtree(model_dir, ignore_errors=True)
    first, last = history[0], history[-1]
    line = (f"{args.exec_flag} smoke run: train loss {first['train_loss']:.4f} -> "
            f"{last['train_loss']:.4f}")
    if last["eval_loss"] is not None:   # None: a 1.0.4 folder without Eval
        line += f", eval loss {first['eval_loss']:.4f} -> {last['eval_loss']:.4f}"
    print(line)
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import_tensorflow_quietly()
    if args.exec_flag == CHECK_FLAG:
        return run_check(args)
    from coreLib import models

    if args.exec_flag not in models.MODEL_NAMES:
        raise ActrecogError(f"EXEC_FLAG {args.exec_flag!r} is neither {CHECK_FLAG} nor a "
                            f"model name ({', '.join(models.MODEL_NAMES)})")
    return run_smoke(args)


if __name__ == "__main__":
    run_main(main)
