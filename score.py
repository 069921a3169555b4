#!/usr/bin/env python3
"""score.py MODEL_NAME MODEL_PATH JSON_PATH: scores a trained model on the Test windows.

Prints the original's accuracy line, a per-class precision/recall/F1 table and
macro F1, and writes video_sec_<name>.json, metrics_<name>.json and
confusion_<name>.png into <json dir>/Results/: <name> is MODEL_NAME for Keras
weights, the file's name for an exported model (CausalMobileNet.tflite).
"""

from coreLib.cli import (add_model_name_argument, import_tensorflow_quietly, make_parser,
                         positive_int, run_main)

import_tensorflow_quietly()  # before anything else imports TensorFlow

from coreLib.evaluation import scoring  # noqa: E402


def parse_args(argv):
    parser = make_parser("score.py", __doc__)
    add_model_name_argument(parser)
    parser.add_argument("model_path", metavar="MODEL_PATH",
                        help="weights from train.py (<model>.weights.h5) or a full "
                             ".keras model (local path or gs:// URI)")
    parser.add_argument("json_path", metavar="JSON_PATH",
                        help="the Test JSON list of windows written by main.py")
    parser.add_argument("--manifest", default=None,
                        help="folder holding dataset.json (default: the JSON's folder)")
    parser.add_argument("--batch-size", type=positive_int, default=64,
                        help="windows per model call")
    parser.add_argument("--workers", type=positive_int, default=2,
                        help="threads decoding frames")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    config = scoring.ScoreConfig(model_name=args.model_name, model_path=args.model_path,
                                 json_path=args.json_path, manifest_dir=args.manifest,
                                 batch_size=args.batch_size, workers=args.workers)
    result = scoring.score(config)
    print("\n".join(scoring.summary_lines(result)))
    return 0


if __name__ == "__main__":
    run_main(main)
