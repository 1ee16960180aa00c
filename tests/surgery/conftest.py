"""The sample head's files as the surgery tests read them (one module-scoped copy per test module)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medface.io import read_landmarks, read_mesh

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


@pytest.fixture(scope="module")
def landmarks() -> dict:
    """The sample head's landmarks, ``{id: (3,) array}`` in LPS mm."""
    return read_landmarks(SAMPLE / "landmarks.mrk.json").to_dict()


@pytest.fixture(scope="module")
def skull():
    return read_mesh(SAMPLE / "skull.ply")


@pytest.fixture(scope="module")
def mandible():
    return read_mesh(SAMPLE / "mandible.ply")


@pytest.fixture(scope="module")
def bones(skull, mandible) -> dict:
    """The plan's bone names: ``cranium`` (the skull mesh) and ``mandible``."""
    return {"cranium": skull, "mandible": mandible}
