"""Shared test helpers: where the real components are, and how a missing one is treated."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests import models

REPO = Path(__file__).resolve().parent.parent
# Where `make test` puts the checked model (tests/models.py), from ../shared/models or its source.
SPHINX_MODEL = Path(os.environ.get("PALLAY_TEST_SPHINX_MODEL")
                    or models.cache_dir() / models.SPHINX_ES.name)
SPHINX_MISSING = (f"Spanish PocketSphinx model missing at {SPHINX_MODEL}: `make test` gets it "
                  "(from MODELS=../shared/models or its official source)")
IN_CI = os.environ.get("CI") == "true"


def require(condition: bool, reason: str) -> None:
    """Skip on a laptop that lacks a real component; under CI=true a missing component fails."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required component missing in CI: {reason}")
    pytest.skip(reason)


def require_program(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed (make install-test installs it)")
    return path


# The kiosk's sound card and library (fixtures: sound_card, kiosk_library, kiosk_data).
from tests.kiosk_harness import kiosk_data, kiosk_library, sound_card  # noqa: F401
