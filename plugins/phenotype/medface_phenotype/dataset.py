"""Face data sets in GMDB's layout: a CSV of ``image_id, subject, label`` and a photo folder.

This is the layout of the GestaltMatcher Database's metadata (one row per photo; several photos
may belong to one subject; ``label`` names the disorder, or ``unaffected`` for controls), so a
clinic can point medface at its own photos. ``image_id`` is a file name in the photo folder, with
or without its extension. Extra columns are kept. Phantom cohorts are written in the same layout
by :func:`write_phantom_dataset`, so that training and evaluation read both the same way.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medface.errors import InputError
from medface.phantom.head import DEFAULT_AGES as PHANTOM_AGES

CSV_NAME = "metadata.csv"
IMAGE_DIR = "images"
REQUIRED_COLUMNS = ("image_id", "subject", "label")
CONTROL_LABEL = "unaffected"
_SUFFIXES = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


@dataclass
class Record:
    image_id: str
    subject: str
    label: str
    path: Path
    extra: dict = field(default_factory=dict)


@dataclass
class FaceDataset:
    root: Path
    records: list[Record]

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.records]

    @property
    def subjects(self) -> list[str]:
        return [r.subject for r in self.records]

    def conditions(self) -> list[str]:
        return sorted({r.label for r in self.records} - {CONTROL_LABEL})

    def hashes(self, idx=None) -> list[str]:
        """SHA-256 of the image files of the records at ``idx`` (all by default)."""
        from medface.data.provenance import sha256_file

        records = self.records if idx is None else [self.records[i] for i in idx]
        return [sha256_file(r.path) for r in records]


def _find_csv(path: Path) -> tuple[Path, Path]:
    """(csv file, photo folder) for a data set folder or a CSV path."""
    if path.is_dir():
        csv_path = path / CSV_NAME
        if not csv_path.is_file():
            found = sorted(path.glob("*.csv"))
            if len(found) != 1:
                raise InputError(f"no {CSV_NAME} in the data set folder" + (f" (and {len(found)} other CSV files)"
                                                                           if found else ""), path=path,
                                 hint="a data set is a folder with metadata.csv (image_id, subject, label) and "
                                      "an images/ folder")
            csv_path = found[0]
    elif path.is_file():
        csv_path = path
    else:
        raise InputError("the data set does not exist", path=path)
    images = csv_path.parent / IMAGE_DIR
    return csv_path, images if images.is_dir() else csv_path.parent


def _resolve(folder: Path, image_id: str) -> Path | None:
    p = folder / image_id
    if p.suffix in _SUFFIXES and p.is_file():
        return p
    for suffix in _SUFFIXES:
        q = folder / f"{image_id}{suffix}"
        if q.is_file():
            return q
    return None


def read_dataset(path: str | os.PathLike) -> FaceDataset:
    """Read a GMDB-layout data set; every problem (missing columns, photos, empty fields, a
    subject under two labels) is reported with its CSV line before anything is computed."""
    csv_path, images = _find_csv(Path(path))
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot be read as a CSV file: {exc}", path=csv_path) from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)} (found: {', '.join(columns) or 'none'})",
                         path=csv_path, hint="GMDB layout: image_id, subject, label")
    problems, records, seen, subject_label = [], [], set(), {}
    for line, row in enumerate(rows, start=2):
        values = {c: (row.get(c) or "").strip() for c in REQUIRED_COLUMNS}
        empty = [c for c, v in values.items() if not v]
        if empty:
            problems.append(f"line {line}: empty {', '.join(empty)}")
            continue
        if values["image_id"] in seen:
            problems.append(f"line {line}: image_id {values['image_id']!r} appears twice")
            continue
        seen.add(values["image_id"])
        other = subject_label.setdefault(values["subject"], values["label"])
        if other != values["label"]:
            problems.append(f"line {line}: subject {values['subject']!r} is labelled both {other!r} and "
                            f"{values['label']!r}")
        found = _resolve(images, values["image_id"])
        if found is None:
            problems.append(f"line {line}: no photo {values['image_id']!r} in {images}")
            continue
        extra = {k: v for k, v in row.items() if k not in REQUIRED_COLUMNS and k is not None}
        records.append(Record(values["image_id"], values["subject"], values["label"], found, extra))
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise InputError("the data set has problems:\n" + "\n".join(f"  - {p}" for p in shown), path=csv_path)
    if not records:
        raise InputError("the data set lists no photos", path=csv_path)
    return FaceDataset(csv_path.parent, records)


#: metadata.csv columns of a phantom data set (GMDB's three, then what subgroup tables need)
PHANTOM_COLUMNS = ("image_id", "subject", "label", "severity", "sex", "age", "bmi", "skin_tone", "style", "source")
#: how each image of a phantom subject is made: "photo" (render_photo: skin tone, hair, lips,
#: brows, sampled lighting and camera) or "surface" (its skin surface rendered the way
#: ``phenotype screen-mesh`` renders a 3D scan: uniform skin colour, fixed lighting)
STYLES = ("photo", "surface")
#: SD (degrees) of the yaw, pitch and roll of a surface render, about what screen-mesh's frontal
#: search leaves (it stops within 5 degrees)
SURFACE_POSE_SD_DEG = 2.5


def _image_names(subject_id: str, photos: int, surfaces: int) -> list[tuple[str, str, int]]:
    """(file name, style, index within the style) of each image of one phantom subject."""
    return ([(f"{subject_id}_{j}.png", "photo", j) for j in range(photos)]
            + [(f"{subject_id}_s{j}.png", "surface", j) for j in range(surfaces)])


def render_surface_view(head, seed: int, size: int = 384) -> np.ndarray:
    """A phantom head's skin rendered as ``phenotype screen-mesh`` renders a face surface (uniform
    skin colour, the same lights and framing), from the front with a few degrees of seeded yaw,
    pitch and roll: an (size, size, 3) uint8 array."""
    from .surface import renderer, turn

    rng = np.random.default_rng([int(seed), 7])
    yaw, pitch, roll = rng.normal(0.0, SURFACE_POSE_SD_DEG, 3)
    front, up = np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, 1.0])  # LPS: anterior, superior
    direction, up = turn(front, up, {"yaw": yaw, "pitch": pitch, "roll": roll})
    return renderer(size).render(head.skin, direction, up, size)[0]


def write_phantom_dataset(out: str | os.PathLike, *, subjects_per_condition: dict[str, int], controls: int,
                          severities=("moderate", "severe"), photos_per_subject: int = 1, seed: int = 0,
                          shard: tuple[int, int] = (0, 1), size: int = 384, surfaces_per_subject: int = 0,
                          ages: tuple[float, float] = PHANTOM_AGES) -> Path:
    """Render a phantom cohort as a GMDB-layout data set (frontal images, PNG).

    ``subjects_per_condition`` maps a condition preset to its number of subjects (GMDB's
    frequent/rare contrast is made by giving rare conditions few subjects); ``controls``
    unaffected subjects are added. Each subject gets ``photos_per_subject`` photos and
    ``surfaces_per_subject`` renders of its skin surface as screen-mesh renders a 3D scan (the
    ``style`` column says which). Subject ``k`` of a condition depends only on (seed, condition,
    k), so shards written by parallel processes (``shard=(i, n)`` writes every n-th subject)
    merge into the same data set; the CSV is written by the shard 0 after all images exist
    (call :func:`finish_phantom_dataset` when shards run separately). Ages are drawn uniformly
    from ``ages`` (years; children under 18 through the phantom's growth model).
    """
    from medface.data import FaceImage
    from medface.io import write_image
    from medface.phantom.head import make_head
    from medface.phantom.photo import render_photo

    root = Path(out)
    (root / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
    plan = _phantom_plan(subjects_per_condition, controls, severities, seed)
    index, count = shard
    for k, (label, severity, subject_seed, subject_id) in enumerate(plan):
        if k % count != index:
            continue
        names = _image_names(subject_id, photos_per_subject, surfaces_per_subject)
        if all((root / IMAGE_DIR / n).is_file() for n, _, _ in names):
            continue
        head = make_head(_plan_subject(label, severity, subject_seed, subject_id, ages))
        for name, style, j in names:
            if style == "photo":
                img = render_photo(head, view="frontal", size=(size, size), seed=subject_seed * 16 + j)
            else:
                img = FaceImage(render_surface_view(head, subject_seed * 16 + j, size))
            write_image(img, root / IMAGE_DIR / name)
    if count == 1:
        finish_phantom_dataset(root, subjects_per_condition=subjects_per_condition, controls=controls,
                               severities=severities, photos_per_subject=photos_per_subject, seed=seed,
                               surfaces_per_subject=surfaces_per_subject, ages=ages)
    return root


SYNDROME_SEVERITY = "drawn"  # the severity column of a syndrome's subjects: drawn per subject


def _plan_subject(label: str, severity: str, subject_seed: int, subject_id: str, ages=None):
    """The phantom subject of one entry of the cohort's plan (cheap: no head is built): a control,
    a condition preset's subject, or a catalogue syndrome's (its features drawn from a stream of
    their own, so the subject's normal variation is the one its seed always gives)."""
    from medface.phantom.head import sample_subject

    from . import syndromes as S

    rng = np.random.default_rng(subject_seed)
    ages = PHANTOM_AGES if ages is None else ages
    if S.is_syndrome_label(label):
        drawn = S.draw_features(S.catalogue().get(label), np.random.default_rng([subject_seed, 19]))
        return sample_subject(rng, features=drawn, subject_id=subject_id, ages=ages)
    control = label == CONTROL_LABEL
    return sample_subject(rng, condition=None if control else label,
                          severity="moderate" if control else severity, subject_id=subject_id, ages=ages)


def _phantom_plan(subjects_per_condition: dict[str, int], controls: int, severities, seed: int) -> list[tuple]:
    from medface.phantom import tables as TB

    from . import syndromes as S

    for name in subjects_per_condition:
        if S.is_syndrome_label(name):
            S.catalogue().get(name)
        else:
            TB.condition(name)  # unknown names raise with the known list
    plan = []
    groups = [(CONTROL_LABEL, int(controls))] + [(c, int(n)) for c, n in sorted(subjects_per_condition.items())]
    for label, n in groups:
        label_seed = _label_seed(label)
        for k in range(n):
            ss = np.random.SeedSequence([int(seed), label_seed, k])
            subject_seed = int(ss.generate_state(1)[0]) % (2 ** 31)
            severity = ("none" if label == CONTROL_LABEL else SYNDROME_SEVERITY if S.is_syndrome_label(label)
                        else severities[k % len(severities)])
            plan.append((label, severity, subject_seed, f"{label.replace(':', '')[:12]}-{seed}-{k:04d}"))
    return plan


def _label_seed(label: str) -> int:
    """The seed a label's subjects are drawn from. Condition presets: the name's first bytes
    (little-endian, mod 2**31: in effect its first four letters, distinct for every preset), as
    the demo model's data sets were made, so they stay reproducible. Disease ids all begin with
    "OMIM", which that rule would give one seed (every syndrome's k-th subject the same face), so
    they are seeded by a hash of the whole id."""
    from . import syndromes as S

    if S.DISEASE_ID.fullmatch(label):
        return int.from_bytes(hashlib.sha256(label.encode("utf-8")).digest()[:4], "little") % (2 ** 31)
    return int.from_bytes(label.encode("utf-8")[:8].ljust(8, b"\0"), "little") % (2 ** 31)


def finish_phantom_dataset(out, *, subjects_per_condition: dict[str, int], controls: int,
                           severities=("moderate", "severe"), photos_per_subject: int = 1, seed: int = 0,
                           surfaces_per_subject: int = 0, ages: tuple[float, float] = PHANTOM_AGES) -> Path:
    """Write metadata.csv for a phantom data set whose images exist (see write_phantom_dataset):
    one row per image with the subject's sex, age, BMI and the image's skin tone and style."""
    from medface.phantom.photo import SKIN_TONES, sampled_skin_tone

    from .surface import SURFACE_SKIN_TONE

    root = Path(out)
    plan = _phantom_plan(subjects_per_condition, controls, severities, seed)
    rows = []
    for label, severity, subject_seed, subject_id in plan:
        subject = _plan_subject(label, severity, subject_seed, subject_id, ages)
        for name, style, j in _image_names(subject_id, photos_per_subject, surfaces_per_subject):
            if not (root / IMAGE_DIR / name).is_file():
                raise InputError(f"image {name} is missing: the data set is incomplete", path=root)
            tone = sampled_skin_tone(subject_seed * 16 + j) if style == "photo" else SURFACE_SKIN_TONE
            rows.append({"image_id": name, "subject": subject_id, "label": label, "severity": severity,
                         "sex": subject.sex, "age": round(float(subject.age), 1), "bmi": round(float(subject.bmi), 1),
                         "skin_tone": SKIN_TONES[tone - 1][0], "style": style,
                         "source": "medface phantom (synthetic)"})
    tmp = root / (CSV_NAME + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(PHANTOM_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, root / CSV_NAME)
    return root
