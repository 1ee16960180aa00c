"""`phenotype gallery-add`: new labelled cases in a model's gallery, without retraining."""

from __future__ import annotations

from pathlib import Path

from medface.data import Result
from medface.errors import InputError

from .dataset import read_dataset
from .gallery import load_gallery, save_gallery
from .prepare import prepare_dataset


def gallery_add(model, data, device: str = "auto") -> Result:
    from medface.runtime import read_card

    from .train import embed_crops

    model = Path(model)
    card = read_card(model)
    gallery = load_gallery(model)
    gallery.check_model({"name": card.name, "version": card.version, "sha256": card.sha256})
    ds = read_dataset(data)
    prep = prepare_dataset(ds, cache=False)
    idx = [i for i in range(len(ds)) if prep.usable[i]]
    refused = [{"image_id": ds.records[i].image_id, "reason": prep.reasons[i]} for i in range(len(ds))
               if not prep.usable[i]]
    if not idx:
        raise InputError(f"none of the {len(ds)} photos passed the quality gate", path=ds.root)
    emb = embed_crops(model, prep.crops[idx], device=device)["embedding"]
    before = gallery.counts()
    grown = gallery.add(emb, [ds.records[i].image_id for i in idx], [ds.records[i].subject for i in idx],
                        [ds.records[i].label for i in idx])
    save_gallery(grown, model)
    after = grown.counts()
    new = sorted(set(after) - set(before))
    result = Result(command="phenotype.gallery-add",
                    summary={"added": len(idx), "refused": len(refused), "gallery_photos": len(grown),
                             "new_conditions": ", ".join(new) or "none"},
                    tables={"gallery": [{"condition": c, "photos": n, "added": n - before.get(c, 0)}
                                        for c, n in after.items()]})
    if refused:
        result.tables["refused photos"] = refused
        result.warnings.append(f"{len(refused)} photo(s) were refused by the quality gate and not added")
    return result
