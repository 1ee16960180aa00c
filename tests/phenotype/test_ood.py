"""The out-of-distribution gate: new photos like the training ones pass, others are flagged, and
screening withholds probabilities for flagged faces."""

from __future__ import annotations

import numpy as np
import pytest

from medface.errors import InputError
from medface_phenotype.ood import fit_gate, load_gate, save_gate

SIZES = (4, 8)


def _features(rng, n, shift=0.0, scale=1.0):
    base = rng.normal(size=(n, sum(SIZES)))
    base[:, :4] = base[:, :4] * scale + shift  # stage 1: texture-like channels
    return base


def test_gate_passes_new_samples_of_the_training_distribution_and_flags_shifted_ones():
    rng = np.random.default_rng(0)
    gate = fit_gate(_features(rng, 400), _features(rng, 200), SIZES, quantile=0.99)
    fresh = gate.in_distribution(_features(rng, 1000))
    assert fresh.mean() >= 0.95, f"only {fresh.mean():.1%} of fresh in-distribution samples pass"
    shifted = gate.in_distribution(_features(rng, 200, shift=4.0))
    assert shifted.mean() <= 0.05, "a shift in one stage alone must be caught"
    wider = gate.in_distribution(_features(rng, 200, scale=4.0))
    assert wider.mean() <= 0.2


def test_gate_round_trips_and_refuses_tampered_files(tmp_path):
    rng = np.random.default_rng(1)
    gate = fit_gate(_features(rng, 100), _features(rng, 50), SIZES)
    digest = save_gate(gate, tmp_path)
    again = load_gate(tmp_path, digest)
    x = _features(rng, 20)
    assert np.allclose(again.score(x), gate.score(x)) and again.threshold == gate.threshold
    data = bytearray((tmp_path / "ood.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "ood.safetensors").write_bytes(bytes(data))
    with pytest.raises(InputError, match="does not match"):
        load_gate(tmp_path, digest)
    assert load_gate(tmp_path / "nowhere") is None


def test_gate_refuses_features_of_another_network():
    rng = np.random.default_rng(2)
    gate = fit_gate(_features(rng, 50), _features(rng, 20), SIZES)
    with pytest.raises(InputError, match="another network"):
        gate.score(np.zeros((1, 7)))


@pytest.mark.parametrize("name", ["astronaut.png", "grace_hopper.jpg"])
def test_real_portraits_are_off_distribution_for_the_phantom_model_and_get_no_probability(shared_data, name):
    import medface

    result = medface.run("phenotype.screen", image=shared_data / "faces" / name)
    assert result.summary["screened"] and result.summary["distribution"] == "off-distribution"
    assert result.summary["syndromic_score"] is None
    rows = result.tables["conditions"]
    assert rows and all(row["probability"] is None for row in rows)  # similarity only
    assert any(w.startswith("off-distribution") for w in result.warnings)
