"""Shared pieces of the thin entry scripts.

The entry scripts (``main.py``, ``train.py``, ``debug.py``, ``score.py``, ``export.py``,
``detect.py``, ``videogen.py``) parse their arguments with
:class:`OneLineArgumentParser` (the arguments several share added by the
``add_..._argument`` functions) and run their body through :func:`run_main`, so that
every bad input ends the same way: exit code 2 and a single line
``<prog>: error: <what>`` on stderr, never a traceback.
"""

import argparse
import os
import sys
from typing import Callable, Optional, Sequence

from coreLib.errors import ActrecogError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
# The registry's names (coreLib.models.MODEL_NAMES) as the scripts' help names them;
# spelled here so that --help does not import Keras (tests/test_readme.py checks that
# every script's help names every model).
MODEL_NAMES_TEXT = "CausalMobileNet (the streaming model), ConvNet3D, LRCN or DUMMY"


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (argparse prints usage too)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


class DefaultsHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows each option's default once and keeps the description's line breaks.

    Unlike argparse.ArgumentDefaultsHelpFormatter it adds nothing where the help
    text already explains its default, or for on/off flags and None defaults
    (which would print the misleading "(default: None)"/"(default: False)").
    """

    def _get_help_string(self, action):
        help_text = action.help or ""
        default = action.default
        if ("default" in help_text or default in (None, argparse.SUPPRESS)
                or isinstance(default, bool) or not action.option_strings):
            return help_text
        if isinstance(default, (tuple, list)):
            shown = ",".join(str(item) for item in default) or "''"
        else:
            shown = str(default) if default != "" else "''"
        return f"{help_text} (default: {shown.replace('%', '%%')})"


def make_parser(prog: str, description: str) -> OneLineArgumentParser:
    """Returns the parser every script starts from."""
    return OneLineArgumentParser(prog=prog, description=description,
                                 formatter_class=DefaultsHelpFormatter)


def _bounded_number(text: str, convert, kind: str, accept, requirement: str):
    """Converts an argument and checks its range, with argparse's error type."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
    if not accept(value):
        raise argparse.ArgumentTypeError(f"{text!r} {requirement}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _bounded_number(text, int, "an integer", lambda value: value >= 1,
                           "must be a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _bounded_number(text, int, "an integer", lambda value: value >= 0,
                           "must be >= 0")


def non_negative_float(text: str) -> float:
    """argparse type: a finite float >= 0."""
    return _bounded_number(text, float, "a number", lambda value: 0 <= value < float("inf"),
                           "must be >= 0 and finite")


def positive_float(text: str) -> float:
    """argparse type: a float > 0."""
    return _bounded_number(text, float, "a number", lambda value: value > 0,
                           "must be > 0")


def open_unit_float(text: str) -> float:
    """argparse type: a float strictly between 0 and 1."""
    return _bounded_number(text, float, "a number", lambda value: 0 < value < 1,
                           "must be between 0 and 1 (exclusive)")


def unit_fraction(text: str) -> float:
    """argparse type: a float in [0, 1)."""
    return _bounded_number(text, float, "a number", lambda value: 0 <= value < 1,
                           "must be >= 0 and below 1")


def name_list(text: str) -> tuple:
    """argparse type: comma-separated names, e.g. ``a,b,no-action``."""
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty name")
    return names


def add_model_name_argument(parser: argparse.ArgumentParser) -> None:
    """The MODEL_NAME positional of train.py, score.py, export.py and detect.py
    (``args.model_name``; the registry in :mod:`coreLib.models` checks it)."""
    parser.add_argument("model_name", metavar="MODEL_NAME",
                        help=f"model to build: {MODEL_NAMES_TEXT}")


def add_legacy_classes_argument(parser: argparse.ArgumentParser) -> None:
    """``--legacy-classes`` of train.py and debug.py (``args.legacy_classes``)."""
    parser.add_argument("--legacy-classes", type=name_list, default=None,
                        metavar="NAME,...",
                        help="1.0.4 records only: the 17 class names in label order, "
                             "comma-separated (default: the order of 1.0.4's scorer, "
                             "ui-screenTap first, no-action last)")


def import_tensorflow_quietly():
    """Imports TensorFlow with its start-up chatter kept off stderr.

    TensorFlow's C++ runtime prints CUDA-probe and CPU-feature lines on import and
    on the first device initialisation, before ``TF_CPP_MIN_LOG_LEVEL`` is read.
    Bad input must produce exactly one line on stderr, so file descriptor 2 is
    pointed at /dev/null for the import and the device probe only.

    Returns:
        The ``tensorflow`` module.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf
        tf.get_logger().setLevel("ERROR")
        tf.config.list_physical_devices()
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)
    return tf


def run_main(main: Callable[[Optional[Sequence[str]]], int],
             argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> None:
    """Runs a script body and exits with its code, one line per known error.

    Args:
        main: the script body; takes argv, returns an exit code (0 on success).
        argv: arguments (None = sys.argv[1:]).
        prog: name used in error messages (default: the script file name).
    """
    prog = prog or os.path.basename(sys.argv[0])
    try:
        code = main(argv)
    except ActrecogError as error:
        message = " ".join(str(error).split())  # one line, whatever it contained
        sys.stderr.write(f"{prog}: error: {message}\n")
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code or 0)
