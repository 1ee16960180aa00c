"""`phenotype gallery-add`: new labelled cases in a model's gallery, without retraining.

The logic, :func:`grow_gallery`, embeds the cases and returns the grown gallery without writing
anything; the command saves it into the package (atomically) and reports what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from medface.data import Result
from medface.errors import InputError

from .dataset import read_dataset
from .gallery import Gallery, load_gallery, save_gallery
from .prepare import prepare_dataset


@dataclass
class GalleryGrowth:
    """A gallery grown by the usable photos of a data set: the new gallery, the photo counts per
    condition before, how many were added and which photos the quality gate refused (and why)."""

    gallery: Gallery
    before: dict[str, int]
    added: int
    refused: list[dict] = field(default_factory=list)

    @property
    def new_conditions(self) -> list[str]:
        return sorted(set(self.gallery.counts()) - set(self.before))

    def table(self) -> list[dict]:
        """Photos per condition after the addition, and how many of them are new."""
        return [{"condition": c, "photos": n, "added": n - self.before.get(c, 0)}
                for c, n in self.gallery.counts().items()]


def grow_gallery(model, data, *, device: str = "auto") -> GalleryGrowth:
    """Embed the usable photos of ``data`` with the package's network and append them to its
    gallery (in memory; :func:`gallery.save_gallery` writes it)."""
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
    grown = gallery.add(emb, [ds.records[i].image_id for i in idx], [ds.records[i].subject for i in idx],
                        [ds.records[i].label for i in idx], ds.hashes(idx))
    return GalleryGrowth(grown, gallery.counts(), len(idx), refused)


def gallery_add(model, data, device: str = "auto") -> Result:
    """CLI entry of `phenotype gallery-add`: the grown gallery replaces the package's."""
    growth = grow_gallery(model, data, device=device)
    save_gallery(growth.gallery, model)
    result = Result(command="phenotype.gallery-add",
                    summary={"added": growth.added, "refused": len(growth.refused),
                             "gallery_photos": len(growth.gallery),
                             "new_conditions": ", ".join(growth.new_conditions) or "none"},
                    tables={"gallery": growth.table()})
    if growth.refused:
        result.tables["refused photos"] = growth.refused
        result.warnings.append(f"{len(growth.refused)} photo(s) were refused by the quality gate and not added")
    return result
