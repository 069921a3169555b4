"""Shared fixtures. TensorFlow's start-up chatter is silenced once for the session."""

import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from coreLib.cli import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()


@pytest.fixture(scope="session")
def repo_root() -> str:
    """Absolute path of the repository (to run its scripts)."""
    return REPO_ROOT


# The local GCS fixtures (tests/gcs_fixture.py), registered once for the session.
from gcs_fixture import gcs_bucket, local_gcs  # noqa: E402,F401
