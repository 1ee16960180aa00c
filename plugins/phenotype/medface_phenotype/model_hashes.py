"""The expected hashes of the model package this plugin ships, pinned with its code.

``models/phantom-demo`` carries the sha256 of its weights in its card, but that only shows the
weights are intact: whoever replaces ``model.safetensors`` can rewrite ``card.json`` to match.
The values here travel with the plugin's code instead, so :func:`medface.runtime.load_package`
(and ``verify_package``) refuse the bundled folder unless its weights *and* its card (the
architecture and its args, labels, screening settings: the card's whole content) are the ones
shipped. The gallery beside them is not pinned: ``phenotype gallery-add`` grows it on purpose,
and it is tied to these weights by their sha256 (:meth:`.gallery.Gallery.check_model`).

A model rebuilt on purpose needs new values here; print them with ::

    python -m medface_phenotype.model_hashes

Importing this module pins the package (:mod:`.model` imports it, so the pin is in place before
the demo model's architecture can be built).
"""

from __future__ import annotations

from pathlib import Path

from medface.runtime import pin_package

DEMO_MODEL_DIR = Path(__file__).parent / "models" / "phantom-demo"

#: sha256 of models/phantom-demo/model.safetensors
DEMO_WEIGHTS_SHA256 = "04d012a503d6e41f9e4e4467537048c4664137c184cb9d60e1bd1d9518930e1d"
#: sha256 of the content of models/phantom-demo/card.json (medface.runtime.card_content_sha256)
DEMO_CARD_SHA256 = "d0c7346cfbe89eef3e15352011347e78c54e41123dca11f8f0f530f7056467d5"

pin_package(DEMO_MODEL_DIR, weights_sha256=DEMO_WEIGHTS_SHA256, card_sha256=DEMO_CARD_SHA256,
            owner="medface-phenotype (medface_phenotype/model_hashes.py)")


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    from medface.runtime import package_hashes

    for key, value in package_hashes(DEMO_MODEL_DIR).items():
        print(f"{key}: {value}")
