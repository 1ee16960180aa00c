"""Model packages: save/load round trip, determinism, and refusal of unsafe or broken packages."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from medface.errors import ModelError
from medface.runtime import ModelCard, build_network, load_package, prepare_model, save_package, verify_package
from medface.runtime.package import ARCHITECTURES

ARGS = {"in_channels": 3, "num_classes": 4, "width": 4, "embedding_dim": 8, "depth": 2}


def make_card(**changes) -> ModelCard:
    fields = dict(
        name="test-smallcnn", version="0.1.0", architecture={"name": "medface.SmallCNN", "args": dict(ARGS)},
        inputs={"image": {"type": "image", "format": "RGB", "num_channels": 3, "spatial_shape": [16, 16],
                          "dtype": "float32", "value_range": [0, 1]}},
        outputs={"logits": {"type": "logits", "num_channels": 4, "dtype": "float32"}},
        labels=["a", "b", "c", "d"], preprocessing={"resize": [16, 16]},
        training_data="synthetic: random weights, no training data", metrics={},
        intended_use="unit tests only", limitations="random weights; meaningless outputs", licence="Apache-2.0",
        created="2024-01-01T00:00:00Z")
    fields.update(changes)
    return ModelCard(**fields)


def make_model(seed: int = 0):
    torch.manual_seed(seed)
    model = build_network("medface.SmallCNN", ARGS)
    # non-trivial batch-norm statistics so that buffers matter in the round trip
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.fixture
def package(tmp_path):
    model = make_model()
    folder = save_package(model, make_card(), tmp_path / "pkg")
    return model, folder


def test_round_trip_gives_identical_outputs(package):
    model, folder = package
    loaded = load_package(folder, device="cpu")
    assert loaded.device == torch.device("cpu") and not loaded.model.training
    assert loaded.card.name == "test-smallcnn" and loaded.card.labels == ["a", "b", "c", "d"]
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    reference = prepare_model(model, "cpu")
    with torch.no_grad():
        assert torch.equal(loaded.model(x), reference(x))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key].contiguous(), value.contiguous()), key
    assert verify_package(folder) == []


def test_card_records_sha256_and_framework(package):
    _, folder = package
    import hashlib

    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    assert card["sha256"] == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert card["framework"]["torch"] and card["card_version"] == "1"
    assert card["architecture"] == {"name": "medface.SmallCNN", "args": ARGS}


def test_saving_twice_is_byte_identical(tmp_path):
    model = make_model()
    a = save_package(model, make_card(), tmp_path / "a")
    b = save_package(make_model(), make_card().to_dict(), tmp_path / "b")
    for name in ("model.safetensors", "card.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert sorted(p.name for p in a.iterdir()) == ["card.json", "model.safetensors"]  # no temp files left


def test_different_weights_give_different_sha(tmp_path):
    a = save_package(make_model(0), make_card(), tmp_path / "a")
    b = save_package(make_model(1), make_card(), tmp_path / "b")
    assert json.loads((a / "card.json").read_text(encoding="utf-8"))["sha256"] != json.loads((b / "card.json").read_text(encoding="utf-8"))["sha256"]


def test_tampered_weights_refused_before_deserialising(package, monkeypatch):
    _, folder = package
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01  # flip one bit of one weight
    weights.write_bytes(bytes(data))

    import safetensors.torch

    def forbidden(*a, **k):
        raise AssertionError("weights were deserialised before the sha256 check")

    monkeypatch.setattr(safetensors.torch, "load", forbidden)
    monkeypatch.setattr(safetensors.torch, "load_file", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    with pytest.raises(ModelError, match="sha256") as info:
        load_package(folder, device="cpu")
    assert "tampered or corrupt" in str(info.value) and "expected" in str(info.value)
    assert any("sha256" in p for p in verify_package(folder))


def test_unknown_architecture_refused(tmp_path, package):
    _, folder = package
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    card["architecture"]["name"] = "os.system"
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="unknown architecture 'os.system'") as info:
        load_package(folder, device="cpu")
    assert "medface.SmallCNN" in str(info.value)  # lists the known ones
    assert any("unknown architecture" in p for p in verify_package(folder))
    with pytest.raises(ModelError, match="unknown architecture"):
        save_package(make_model(), make_card(architecture={"name": "nope", "args": {}}), tmp_path / "x")


def test_pickle_weights_refused(tmp_path, package):
    _, folder = package
    card = (folder / "card.json").read_text(encoding="utf-8")
    bad = tmp_path / "pickled"
    bad.mkdir()
    (bad / "card.json").write_text(card)
    with open(bad / "model.pt", "wb") as fh:
        pickle.dump({"weight": [1.0, 2.0]}, fh)
    with pytest.raises(ModelError, match="refusing pickle") as info:
        load_package(bad, device="cpu")
    assert "model.pt" in str(info.value)
    # a pickle beside valid safetensors is refused too: the package must be unambiguous
    (folder / "extra.pth").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ModelError, match="refusing pickle"):
        load_package(folder, device="cpu")


def test_missing_weights_refused(package):
    _, folder = package
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="model.safetensors is missing"):
        load_package(folder, device="cpu")


def test_card_missing_keys_listed(package):
    _, folder = package
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    for key in ("licence", "intended_use", "labels"):
        del card[key]
    del card["architecture"]["args"]
    card["inputs"]["image"]["num_channels"] = "three"
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError) as info:
        load_package(folder, device="cpu")
    message = str(info.value)
    for key in ("'licence'", "'intended_use'", "'labels'", "'architecture.args'", "inputs.image.num_channels"):
        assert key in message, key
    assert len(info.value.problems) == 5
    with pytest.raises(ModelError, match="missing key 'name'"):
        ModelCard.from_dict({k: v for k, v in make_card().to_dict().items() if k != "name"})


def test_card_unknown_key_and_bad_json(package):
    _, folder = package
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    card["licnese"] = "typo"
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="unknown key 'licnese'"):
        load_package(folder, device="cpu")
    (folder / "card.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_package(folder, device="cpu")


def test_state_dict_mismatch_lists_keys(package):
    _, folder = package
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    card["architecture"]["args"]["depth"] = 3  # the package holds a depth-2 network
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="features.8.weight"):
        load_package(folder, device="cpu")
    card["architecture"]["args"] = {**ARGS, "width": 8}  # same keys, other shapes
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="do not fit"):
        load_package(folder, device="cpu")


def test_bad_architecture_args(tmp_path):
    with pytest.raises(ModelError, match="rejected its args") as info:
        build_network("medface.SmallCNN", {"in_channels": 3, "colour": "blue"})
    assert "colour" in str(info.value)
    with pytest.raises(ModelError, match="pretrained"):
        build_network("monai.DenseNet121", {"spatial_dims": 2, "in_channels": 3, "out_channels": 2,
                                            "pretrained": True})


def test_allow_list_has_monai_networks():
    for name in ("monai.DenseNet121", "monai.EfficientNetBN", "monai.ResNet", "monai.resnet18", "monai.UNet",
                 "monai.BasicUNet", "monai.Classifier", "monai.Regressor", "medface.SmallCNN"):
        assert name in ARCHITECTURES, name
    net = build_network("monai.resnet18", {"n_input_channels": 3, "num_classes": 2})
    assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 2)  # spatial_dims defaults to 2
    net = build_network("monai.Classifier", {"in_shape": [1, 16, 16], "classes": 3, "channels": [4, 8],
                                             "strides": [2, 2]})
    assert net(torch.zeros(2, 1, 16, 16)).shape == (2, 3)


def test_docs_example_card_is_valid():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "runtime.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- example-card -->\s*```json\n(.*?)```", text, re.S).group(1)
    card = ModelCard.from_dict(json.loads(block))
    assert card.architecture["name"] in ARCHITECTURES and card.is_synthetic
    build_network(card.architecture["name"], card.architecture["args"])
