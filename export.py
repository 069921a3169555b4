#!/usr/bin/env python3
"""export.py MODEL_NAME MODEL_PATH OUT_DIR: a trained model as SavedModel and LiteRT files.

Writes OUT_DIR/saved_model/, <MODEL_NAME>.tflite (float32), <MODEL_NAME>_fp16.tflite
(float16 weights), <MODEL_NAME>_dynamic.tflite (dynamic-range int8 weights),
<MODEL_NAME>_int8.tflite (full integer, calibrated on the DataSet's Train windows),
the stream step's _stream.tflite and _int8_stream.tflite (models with one) and
export.json (classes, window shape, modality, pixel dtype, files with sizes and
sha256, parity and Test accuracy per file). OUT_DIR is replaced as a whole. Exits 1
when a float32 format differs from the Keras model by more than its tolerance
(SavedModel 1e-5, LiteRT 1e-4) or a quantised file is below its targets (top-1
agreement 99 %, int8 98 % and Test accuracy within 1 point; --allow-below-target
keeps it).
"""

import sys

from coreLib.cli import (add_model_name_argument, import_tensorflow_quietly, make_parser,
                         positive_int, run_main)

import_tensorflow_quietly()  # before anything else imports TensorFlow

from coreLib.export import export_model  # noqa: E402

EXIT_PARITY_FAILED = 1


def parse_args(argv):
    parser = make_parser("export.py", __doc__)
    add_model_name_argument(parser)
    parser.add_argument("model_path", metavar="MODEL_PATH",
                        help="weights from train.py (<model>.weights.h5, window and classes "
                             "from its MODEL_DIR's run_config.json) or a full .keras model")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the models into")
    parser.add_argument("--formats", default=",".join(export_model.FORMAT_NAMES),
                        help="comma-separated subset of "
                             f"{', '.join(export_model.FORMAT_NAMES)} (default: all)")
    parser.add_argument("--manifest", default=None,
                        help="DataSet folder holding dataset.json (default: MODEL_PATH's "
                             "run_config.json); its Test JSON gives the parity windows")
    parser.add_argument("--parity-json", default=None,
                        help="Test JSON whose windows the parity checks use (default: the "
                             "manifest's Test JSON, else seeded random windows)")
    parser.add_argument("--parity-windows", type=positive_int,
                        default=export_model.config_lib.DEFAULT_PARITY_WINDOWS,
                        help="windows the parity checks use at most")
    parser.add_argument("--calibration", default=None, metavar="DATASET_DIR",
                        help="DataSet whose Train (else Eval) windows calibrate the int8 "
                             "files (default: the DataSet the model was trained on)")
    parser.add_argument("--calibration-windows", type=positive_int,
                        default=export_model.config_lib.DEFAULT_CALIBRATION_WINDOWS,
                        help="windows the int8 calibration uses")
    parser.add_argument("--allow-below-target", action="store_true",
                        help="keep quantised files below their targets (still reported)")
    parser.add_argument("--window-stream", action="store_true",
                        help="also export a stream_step keeping the last L-1 frames as its "
                             "state (for a model without a stream mode of its own)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    config = export_model.ExportConfig(
        model_name=args.model_name, model_path=args.model_path, out_dir=args.out_dir,
        manifest_dir=args.manifest, formats=export_model.parse_formats(args.formats),
        parity_json=args.parity_json, parity_windows=args.parity_windows,
        window_stream=args.window_stream, calibration_dir=args.calibration,
        calibration_windows=args.calibration_windows,
        allow_below_target=args.allow_below_target)
    try:
        result = export_model.export(config, log=lambda line: print(line, flush=True))
    except export_model.ParityError as error:
        sys.stderr.write(f"export.py: parity failed: {' '.join(str(error).split())}\n")
        return EXIT_PARITY_FAILED
    except export_model.BelowTargetError as error:
        for line in error.lines:
            sys.stderr.write(f"export.py: below target: {line}\n")
        sys.stderr.write("export.py: nothing written (--allow-below-target keeps such "
                         "files)\n")
        return EXIT_PARITY_FAILED
    print("\n".join(export_model.summary_lines(result)))
    for line in result.below_target:
        print(f"BELOW TARGET (kept: --allow-below-target): {line}")
    return 0


if __name__ == "__main__":
    run_main(main)
