"""The training loop: learns a toy task, is seeded, resumes exactly, stops early, and fails clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medface.errors import InputError, ModelError, ParameterError
from medface.runtime import training as training_module
from medface.runtime.training import TrainConfig, accuracy, train

ARCH = {"name": "medface.SmallCNN", "args": {"in_channels": 1, "num_classes": 2, "width": 8, "embedding_dim": 16}}
TRAINING_DATA = "synthetic: 64 bright-square vs dark-square 16x16 images with Gaussian noise (seed 1)"


def squares(n: int, seed: int, channels: int = 1):
    """Class 1: a bright 6x6 square on noise; class 0: a dark one. Balanced, at random places."""
    rng = np.random.default_rng(seed)
    data = []
    for i in range(n):
        label = i % 2
        img = rng.normal(0.0, 0.3, size=(channels, 16, 16)).astype(np.float32)
        r, c = rng.integers(0, 10, size=2)
        img[:, r:r + 6, c:c + 6] += 1.0 if label else -1.0
        data.append((torch.from_numpy(img), label))
    return data


TRAIN, VAL = squares(64, 1), squares(32, 2)


def card(**extra):
    doc = {"name": "toy-squares", "version": "0.1.0", "inputs": {"image": {"type": "image", "num_channels": 1, "spatial_shape": [16, 16]}},
           "outputs": {"logits": {"type": "probabilities", "num_channels": 2}}, "labels": ["dark", "bright"], "preprocessing": {},
           "training_data": TRAINING_DATA, "metrics": {}, "intended_use": "tests only",
           "limitations": "synthetic toy task", "licence": "Apache-2.0"}
    doc.update(extra)
    return doc


def cfg(**kw):
    base = dict(epochs=3, batch_size=16, lr=1e-2, weight_decay=0.0, seed=0, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_learns_toy_task_and_writes_a_loadable_package(tmp_path, capsys):
    from medface.runtime.package import load_package

    res = train(ARCH, TRAIN, VAL, metrics={"accuracy": accuracy}, config=cfg(epochs=6, monitor="accuracy"),
                card=card(), out=tmp_path / "pkg")
    assert [r["epoch"] for r in res.history] == list(range(1, 7))
    assert all({"train_loss", "val_loss", "accuracy", "lr"} <= r.keys() for r in res.history)
    assert res.best_value >= 0.9 and res.history[res.best_epoch - 1]["accuracy"] == res.best_value
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert not res.stopped_early
    assert capsys.readouterr().err == ""  # no progress bar off a terminal

    loaded = load_package(res.package_path, device="cpu")
    doc = json.loads((res.package_path / "card.json").read_text(encoding="utf-8"))
    assert doc["training_data"] == TRAINING_DATA
    assert doc["architecture"] == ARCH
    m = doc["metrics"]
    assert m["monitor"] == "accuracy" and m["best_epoch"] == res.best_epoch
    assert m["best"]["accuracy"] == pytest.approx(res.best_value)
    assert m["final"]["epoch"] == 6 and m["final"]["val_loss"] == pytest.approx(res.history[-1]["val_loss"])
    # the package holds the restored best weights: it reproduces the best epoch's accuracy
    model = getattr(loaded, "model", loaded)
    model.eval()
    x = torch.stack([x for x, _ in VAL])
    y = torch.tensor([y for _, y in VAL])
    with torch.no_grad():
        assert accuracy(model(x), y) == pytest.approx(res.best_value)


def test_same_seed_same_weights_other_seed_other_weights():
    a = train(ARCH, TRAIN, VAL, config=cfg(epochs=2, seed=3)).model.state_dict()
    b = train(ARCH, TRAIN, VAL, config=cfg(epochs=2, seed=3)).model.state_dict()
    c = train(ARCH, TRAIN, VAL, config=cfg(epochs=2, seed=4)).model.state_dict()
    assert same_weights(a, b)
    assert not same_weights(a, c)


def test_resume_equals_uninterrupted_run(tmp_path):
    full = train(ARCH, TRAIN, VAL, config=cfg(epochs=4))
    first = train(ARCH, TRAIN, VAL, config=cfg(epochs=2, checkpoint_dir=tmp_path / "ck"))
    assert len(first.history) == 2
    assert json.loads((tmp_path / "ck" / "state.json").read_text(encoding="utf-8"))["epoch"] == 2
    rest = train(ARCH, TRAIN, VAL, config=cfg(epochs=4, checkpoint_dir=tmp_path / "ck"), resume=True)
    assert [r["epoch"] for r in rest.history] == [1, 2, 3, 4]
    assert [r["val_loss"] for r in rest.history] == [r["val_loss"] for r in full.history]
    assert same_weights(rest.model.state_dict(), full.model.state_dict())
    assert rest.best_epoch == full.best_epoch and rest.best_value == full.best_value


def test_resume_after_a_crash_with_cosine_schedule_and_clipping(tmp_path):
    calls = {"n": 0}

    def crashing_accuracy(out, y):
        calls["n"] += 1
        if calls["n"] == 3:  # dies during epoch 3's validation: the last checkpoint is epoch 2's
            raise KeyboardInterrupt
        return accuracy(out, y)

    def net():  # dropout makes the result depend on torch's RNG being reseeded each epoch
        from medface.runtime.networks import build_network

        torch.manual_seed(5)
        return torch.nn.Sequential(torch.nn.Dropout(0.2), build_network(ARCH["name"], ARCH["args"]))

    kw = dict(epochs=4, scheduler="cosine", max_grad_norm=1.0, patience=3)
    full = train(net(), TRAIN, VAL, metrics={"accuracy": accuracy}, config=cfg(**kw))
    with pytest.raises(KeyboardInterrupt):
        train(net(), TRAIN, VAL, metrics={"accuracy": crashing_accuracy}, config=cfg(checkpoint_dir=tmp_path, **kw))
    assert json.loads((tmp_path / "state.json").read_text(encoding="utf-8"))["epoch"] == 2
    rest = train(net(), TRAIN, VAL, metrics={"accuracy": accuracy}, config=cfg(checkpoint_dir=tmp_path, **kw),
                 resume=True)
    strip = [{k: v for k, v in r.items() if k != "time_s"} for r in full.history]
    assert [{k: v for k, v in r.items() if k != "time_s"} for r in rest.history] == strip
    assert same_weights(rest.model.state_dict(), full.model.state_dict())


def test_resume_refuses_other_settings_or_missing_checkpoint(tmp_path):
    with pytest.raises(InputError, match="no checkpoint"):
        train(ARCH, TRAIN, VAL, config=cfg(checkpoint_dir=tmp_path / "none"), resume=True)
    train(ARCH, TRAIN, VAL, config=cfg(epochs=1, checkpoint_dir=tmp_path))
    with pytest.raises(ModelError, match="other settings"):
        train(ARCH, TRAIN, VAL, config=cfg(epochs=2, lr=0.5, checkpoint_dir=tmp_path), resume=True)


def test_early_stopping_when_monitor_cannot_improve_restores_best(tmp_path):
    res = train(ARCH, TRAIN, VAL, config=cfg(epochs=6, lr=0.0, patience=1, checkpoint_dir=tmp_path))
    assert res.stopped_early
    assert len(res.history) == 2 and res.best_epoch == 1
    from safetensors.torch import load_file

    assert same_weights({k: v for k, v in res.model.state_dict().items()}, load_file(str(tmp_path / "best.safetensors")))


def test_best_weights_are_restored_not_the_last():
    # at lr=0.3 the validation loss wanders; the returned model must be the best epoch's, not the last
    res = train(ARCH, TRAIN, VAL, config=cfg(epochs=5, lr=0.3))
    assert res.best_epoch < len(res.history)
    x = torch.stack([x for x, _ in VAL])
    y = torch.tensor([y for _, y in VAL])
    with torch.no_grad():
        val_loss = float(torch.nn.functional.cross_entropy(res.model.eval()(x), y))
    assert val_loss == pytest.approx(res.best_value, rel=1e-5)
    assert val_loss != pytest.approx(res.history[-1]["val_loss"], rel=1e-5)


def test_nan_loss_names_epoch_and_suggests_lower_lr():
    def nan_loss(out, y):
        return torch.nn.functional.cross_entropy(out, y) * float("nan")

    with pytest.raises(ModelError, match=r"epoch 1, step 1.*lower the learning rate"):
        train(ARCH, TRAIN, VAL, loss=nan_loss, config=cfg())


def test_clear_errors_for_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="training set is empty"):
        train(ARCH, [], VAL, config=cfg())
    with pytest.raises(InputError, match=r"inputs \(16, 3, 16, 16\).*targets \(16,\)"):
        train(ARCH, squares(32, 0, channels=3), None, config=cfg())
    with pytest.raises(ModelError, match="architecture"):
        from medface.runtime.networks import build_network

        train(build_network(ARCH["name"], ARCH["args"]), TRAIN, VAL, config=cfg(), card=card(), out=tmp_path / "p")
    with pytest.raises(ParameterError, match="monitor"):
        train(ARCH, TRAIN, VAL, config=cfg(monitor="f1"))
    with pytest.raises(ParameterError, match="mode"):
        TrainConfig(mode="up")


def test_module_with_architecture_in_card_and_no_validation_set(tmp_path):
    from medface.runtime.networks import build_network

    torch.manual_seed(0)
    net = build_network(ARCH["name"], ARCH["args"])
    res = train(net, TRAIN, None, config=cfg(epochs=1), card=card(architecture=ARCH), out=tmp_path / "p")
    assert res.model is net and "val_loss" not in res.history[0]
    assert json.loads((res.package_path / "card.json").read_text(encoding="utf-8"))["metrics"]["monitor"] == "train_loss"


def test_progress_bar_only_when_enabled(monkeypatch, capsys):
    monkeypatch.setattr(training_module, "progress_enabled", lambda: True)
    train(ARCH, TRAIN[:16], None, config=cfg(epochs=1))
    assert "training" in capsys.readouterr().err


def test_on_epoch_reports_each_epoch_row_as_it_ends():
    seen = []
    res = train(ARCH, TRAIN, VAL, config=cfg(epochs=3), on_epoch=seen.append)
    assert [r["epoch"] for r in seen] == [1, 2, 3]
    assert seen == res.history
    assert all({"train_loss", "val_loss", "lr", "time_s"} <= set(r) for r in seen)
