"""pytest fixtures for the local GCS (see tests/gcs_emulator.py).

``local_gcs`` is one emulator for the whole session; ``gcs_bucket`` gives each test
a fresh, empty bucket in it. Where the machine cannot host the emulator (no root,
no namespaces) the tests that use them skip with the reason; with the environment
variable ACTRECOG_REQUIRE_GCS=1 (CI) they fail instead, so they cannot silently
stop running.
"""

import os

import pytest

import gcs_emulator


@pytest.fixture(scope="session")
def local_gcs():
    """A running :class:`gcs_emulator.LocalGcs`."""
    reason = gcs_emulator.unavailable_reason()
    if reason:
        if os.environ.get(gcs_emulator.REQUIRE_ENV, "") not in ("", "0"):
            pytest.fail(f"{gcs_emulator.REQUIRE_ENV} is set but {reason}")
        pytest.skip(reason)
    with gcs_emulator.LocalGcs() as gcs:
        yield gcs


@pytest.fixture
def gcs_bucket(local_gcs) -> str:
    """The name of a new, empty bucket (created through the emulator's API)."""
    return local_gcs.create_bucket()
