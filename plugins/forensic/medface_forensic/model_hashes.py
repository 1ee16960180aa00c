"""The expected hashes of the data this plugin ships, pinned with its code.

``data/template-v<N>.json`` names the sha256 of ``template-v<N>.npz`` beside it, which shows the
meshes are intact but not that they are the shipped ones: whoever replaces the npz can rewrite
the json. The values here travel with the plugin's code, so :func:`.template.load_template`
refuses the shipped folder unless both files are exactly the ones released (the template is
what every forensic model, registration and measurement is built on).

The default skull-face model is *not* shipped: it is trained on first use into the medface
cache (:mod:`.model_cache`), from this template, so it cannot be pinned; its sha256 is recorded
in each result's provenance instead (see docs/runtime.md, "What is authenticated").

A new template version needs new values here; print them with ::

    python -m medface_forensic.model_hashes
"""

from __future__ import annotations

import hashlib
import json

#: template version -> sha256 of the npz, and of the description's content (canonical JSON)
TEMPLATE_SHA256 = {
    1: {"npz": "34666773f6326bd9aadfa706fa8988cd2d2132919c42ea035407150df1aa9c14",
        "description": "800187b2d0b9204dc16b14ab25005b0bcc7100ac5e7764e6cd38f4cd2fa03a3f"},
}


def description_sha256(info: dict) -> str:
    """sha256 of a template description's content: sorted keys, no spaces (formatting aside)."""
    text = json.dumps(info, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def template_pin_problem(version: int, info: dict, npz_sha256: str) -> str:
    """Empty when the shipped template files of ``version`` are the pinned ones, else why not."""
    pin = TEMPLATE_SHA256.get(version)
    if pin is None:
        return (f"template version {version} has no pinned hashes in medface_forensic/model_hashes.py; "
                f"add them (python -m medface_forensic.model_hashes)")
    if npz_sha256 != pin["npz"]:
        return (f"template-v{version}.npz is not the file shipped with medface-forensic (sha256 {npz_sha256}, "
                f"pinned {pin['npz']})")
    if description_sha256(info) != pin["description"]:
        return (f"template-v{version}.json is not the description shipped with medface-forensic (its landmarks, "
                f"counts or subject were changed)")
    return ""


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    from .template import DATA_DIR, TEMPLATE_VERSION, data_paths

    npz, desc = data_paths(TEMPLATE_VERSION, DATA_DIR)
    print({TEMPLATE_VERSION: {"npz": hashlib.sha256(npz.read_bytes()).hexdigest(),
                              "description": description_sha256(json.loads(desc.read_text(encoding="utf-8")))}})
