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
DEMO_WEIGHTS_SHA256 = "162f4498e383893287a3469d3034068c19fbee0a929a7b329e64a4d8ae59c3d4"
#: sha256 of the content of models/phantom-demo/card.json (medface.runtime.card_content_sha256)
DEMO_CARD_SHA256 = "38cc4167baf0000c5d10ba1c37a5c6784fdd947a8183fc77f24c4c37ef34ba1d"

pin_package(DEMO_MODEL_DIR, weights_sha256=DEMO_WEIGHTS_SHA256, card_sha256=DEMO_CARD_SHA256,
            owner="medface-phenotype (medface_phenotype/model_hashes.py)")


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    from medface.runtime import package_hashes

    for key, value in package_hashes(DEMO_MODEL_DIR).items():
        print(f"{key}: {value}")
