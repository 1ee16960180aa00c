"""Shared fixtures: the real public data folder beside the checkout, and small synthetic inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("MEDFACE_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real public files); the test skips when it is absent."""
    folder = shared_data_dir()
    if not folder.is_dir():
        pytest.skip(f"real test data folder {folder} is absent (set MEDFACE_SHARED_DATA)")
    return folder


@pytest.fixture
def repo_root() -> Path:
    return REPO
