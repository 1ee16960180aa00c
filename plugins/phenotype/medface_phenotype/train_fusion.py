"""`phenotype train-fusion`: fit the face + terms fusion (:mod:`.fusion`) on simulated patients.

The package's gallery must hold syndromes (disease ids: ``gallery-add`` of a
``phantom-data --syndromes`` set). The data set holds *other* patients of those syndromes (its
subjects must not be in the gallery). Each patient becomes a :class:`.fusion.FusionCase`: its
photos' renormalised mean embedding matched against the gallery (the face's similarity to every
gallery syndrome) and HPO terms simulated from its syndrome's annotations
(:func:`.simulated_patients.simulate_patient`: frequencies, imprecision, noise) ranked against
the catalogue. The fusion is evaluated on held-out patients (repeated within-syndrome halvings)
against the face alone and the terms alone, then fitted on all patients and saved as
``fusion.json`` in the package, which ``screen --hpo`` then uses. The terms are simulated
independently of the drawn face (a simplification: a real clinician's facial terms follow the
face).
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from medface.data import Result
from medface.errors import InputError

from . import fusion as FU
from . import hpo_annotations as HA
from .syndromes import DISEASE_ID, genes_of_labels

LIMIT = ("Trained and measured on simulated patients only: phantom faces whose syndromes are drawn as landmark "
         "shifts and terms simulated from the annotations. Its weights say how the phantom's face and simulated "
         "notes combine, not how a clinic's do.")


def _subject_seed(seed: int, subject: str) -> list[int]:
    return [int(seed), int.from_bytes(hashlib.sha256(subject.encode("utf-8")).digest()[:4], "little")]


def patient_embeddings(model, data, *, device: str = "auto") -> tuple[dict, dict, list[dict]]:
    """Per subject of the data set: its renormalised mean embedding and its label (one label per
    subject, as a gallery's patient entry); and the refused photos."""
    from .gallery_add import embed_usable_photos, patient_entries

    emb, records, hashes, refused = embed_usable_photos(model, data, device=device)
    means, _, subjects, labels, _ = patient_entries(emb, records, hashes)
    return dict(zip(subjects, means)), dict(zip(subjects, labels)), refused


def fusion_cases(model, data, *, seed: int = 0, device: str = "auto") -> tuple[list[FU.FusionCase], list[str], dict]:
    """The data set's patients as fusion cases, the candidate syndromes (the catalogue and the
    gallery's syndromes) and facts for the report."""
    from .gallery import load_gallery
    from .hpo_similarity import rank_by_terms
    from .simulated_patients import noise_pool, simulate_patient
    from .syndromes import catalogue

    gallery = load_gallery(model)
    in_gallery = sorted({lab for lab in gallery.labels if DISEASE_ID.fullmatch(lab)})
    if not in_gallery:
        raise InputError("the package's gallery holds no syndromes (disease ids): the face cannot rank syndromes",
                         hint="add a syndrome set first: medface phenotype gallery-add --model M --data SYN "
                              "(made by phantom-data --syndromes)")
    embeddings, labels, refused = patient_embeddings(model, data, device=device)
    leaked = sorted(set(labels) & set(gallery.subjects))
    if leaked:
        raise InputError(f"{len(leaked)} subject(s) of the data set are in the gallery (e.g. {leaked[0]}): their "
                         "face would match itself", hint="train the fusion on patients the gallery does not hold")
    known = HA.release_diseases()
    bad = sorted({lab for lab in labels.values() if lab not in known})
    if bad:
        raise InputError(f"label(s) not diseases of the pinned annotations: {', '.join(bad[:5])}",
                         hint="the fusion trains on syndrome sets (phantom-data --syndromes)")
    diseases = [known[s.id] for s in catalogue().syndromes]
    in_catalogue = {d.id for d in diseases}
    candidate_diseases = diseases + [known[d] for d in in_gallery if d in known and d not in in_catalogue]
    candidates = [d.id for d in candidate_diseases]
    pool = noise_pool(diseases)
    cases = []
    for subject in sorted(embeddings):
        hits = gallery.nearest(embeddings[subject], top=None)
        gestalt = {h["label"]: 1.0 - h["distance"] for h in hits if DISEASE_ID.fullmatch(h["label"])}
        patient = simulate_patient(known[labels[subject]], np.random.default_rng(_subject_seed(seed, subject)), pool)
        terms = {r.id: r.similarity for r in rank_by_terms(list(patient.terms), candidate_diseases, top=None)}
        cases.append(FU.FusionCase(labels[subject], gestalt, terms))
    facts = {"patients": len(cases), "syndromes": len(set(labels.values())), "gallery_syndromes": len(in_gallery),
             "outside_gallery": sum(c.disease_id not in in_gallery for c in cases), "refused_photos": refused}
    return cases, candidates, facts


def save_fusion(model: FU.FusionModel, folder) -> Path:
    path = Path(folder) / FU.FILE_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(model.to_dict(), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_fusion(folder) -> FU.FusionModel | None:
    """The package's fusion model, or None when it has none. Read once per version of the file
    (a batch asks for it with every photo); treat the returned model as read-only."""
    path = Path(folder) / FU.FILE_NAME
    if not path.is_file():
        return None
    st = path.stat()
    return _read_fusion(str(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _read_fusion(path: str, mtime_ns: int, size: int) -> FU.FusionModel:
    try:
        return FU.FusionModel.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{Path(path).name} is not a readable fusion model: {exc}", path=path) from None


def train_fusion(model, data, repeats: int = 5, seed: int = 0, device: str = "auto", context=None) -> Result:
    """CLI entry of `phenotype train-fusion` (see the module docstring)."""
    from medface.runtime import read_card
    from .simulated_patients import IMPRECISION, MAX_TERMS, NOISE_MEAN

    card = read_card(model)
    if context is not None:
        context.stage("embedding the patients' photos and simulating their terms")
    cases, candidates, facts = fusion_cases(model, data, seed=seed, device=device)
    if len(cases) < 4:
        raise InputError(f"{len(cases)} patients: too few to train and hold out (at least 4)", path=Path(data))
    genes = genes_of_labels(candidates)
    report = FU.repeated_evaluation(cases, candidates, genes, repeats=repeats, seed=seed)
    final = FU.fit(cases, candidates)
    final.info.update({"model": f"{card.name} {card.version}", "model_sha256": card.sha256, "seed": seed,
                       "release": HA.annotation_release(), "held_out": report["rankings"],
                       "simulation": {"max_terms": MAX_TERMS, "imprecision": IMPRECISION, "noise_mean": NOISE_MEAN},
                       "synthetic": True, **{k: v for k, v in facts.items() if k != "refused_photos"}})
    path = save_fusion(final, model)
    rows = [{"ranking": name, **{k: v["rate"] for k, v in figures.items() if isinstance(v, dict)},
             "top1_interval": f"{figures['top1']['low']}-{figures['top1']['high']}", "queries": figures["top1"]["n"]}
            for name, figures in report["rankings"].items()]
    top1 = {name: figures["top1"]["rate"] for name, figures in report["rankings"].items()}

    def gain(over):
        return None if top1["fused"] is None or top1[over] is None else round(100 * (top1["fused"] - top1[over]), 1)

    result = Result(command="phenotype.train-fusion",
                    summary={"patients": facts["patients"], "syndromes": facts["syndromes"],
                             "outside_gallery": facts["outside_gallery"],
                             "fused_top1": top1["fused"], "face_top1": top1["gestalt"], "terms_top1": top1["terms"],
                             "gain_over_face_points": gain("gestalt"),
                             "gain_over_terms_in_gallery_points": gain("terms_in_gallery"),
                             "weights": ", ".join(f"{n} {w:+.2f}" for n, w in zip(FU.FEATURES, final.coef)),
                             "saved": path.name},
                    tables={"held-out simulated patients": rows}, limits=[LIMIT])
    result.metrics["fusion"] = {"held_out": report, "final": final.to_dict()}
    if facts["refused_photos"]:
        result.tables["refused photos"] = facts["refused_photos"]
        result.warnings.append(f"{len(facts['refused_photos'])} photo(s) were refused by the quality gate")
    return result
