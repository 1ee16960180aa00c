"""Fixtures of the forensic tests."""

from __future__ import annotations

import pytest
from medface_forensic.shape_model import save_model
from medface_forensic.train import train_phantom_model


@pytest.fixture(scope="session")
def small_model(tmp_path_factory):
    """A small phantom-trained model folder (30 subjects, reduced vertex subsets), trained once."""
    folder = tmp_path_factory.mktemp("model")
    save_model(train_phantom_model(30, seed=5, sizes={"cranium": 1500, "mandible": 400, "face": 3000}), folder)
    return folder
