#!/usr/bin/env python3
"""export.py MODEL_NAME MODEL_PATH OUT_DIR: a trained model as SavedModel and LiteRT files.

Writes OUT_DIR/saved_model/, <MODEL_NAME>.tflite (float32), <MODEL_NAME>_fp16.tflite
(float16 weights), <MODEL_NAME>_dynamic.tflite (dynamic-range int8 weights) and
export.json (classes, window shape, modality, pixel dtype, files with sizes and
sha256, parity figures). Every model takes windows in the stored pixel dtype and
scales them inside, as training did. Exits 1 when a float32 format differs from
the Keras model by more than its tolerance (SavedModel 1e-5, LiteRT 1e-4).
"""

import sys

from coreLib.cli import import_tensorflow_quietly, make_parser, positive_int, run_main

import_tensorflow_quietly()  # before anything else imports TensorFlow

from coreLib.export import export_model  # noqa: E402

EXIT_PARITY_FAILED = 1


def parse_args(argv):
    parser = make_parser("export.py", __doc__)
    parser.add_argument("model_name", metavar="MODEL_NAME",
                        help="model to build: CausalMobileNet, ConvNet3D, LRCN or DUMMY")
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
                        default=export_model.DEFAULT_PARITY_WINDOWS,
                        help="windows the parity checks use at most")
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
        window_stream=args.window_stream)
    try:
        result = export_model.export(config, log=lambda line: print(line, flush=True))
    except export_model.ParityError as error:
        sys.stderr.write(f"export.py: parity failed: {' '.join(str(error).split())}\n")
        return EXIT_PARITY_FAILED
    print("\n".join(export_model.summary_lines(result)))
    return 0


if __name__ == "__main__":
    run_main(main)
