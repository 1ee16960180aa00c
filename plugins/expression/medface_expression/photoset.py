"""The photos of one session: which photo shows which expression, and checks that they belong together.

The naming convention: a photo's file stem (the name without its extension), lower-cased with
spaces and hyphens read as underscores, is one of :data:`EXPRESSIONS` or one of the
:data:`ALIASES` (``Smile.jpg``, ``smile-full.png``, ``eyes_closed.jpeg``). Other files in the
folder are ignored and listed in a warning. ``rest`` is required: every movement is measured
against it.
"""

from __future__ import annotations

from pathlib import Path

from medface.data import FaceImage
from medface.errors import InputError

#: the photos of a session, in the order of the eFACE examination (Banks et al. 2015)
EXPRESSIONS = ("rest", "brow_raise", "eye_closure_gentle", "eye_closure_full", "smile", "pucker",
               "lower_lip_depression")
#: other file stems accepted for each expression
ALIASES = {
    "neutral": "rest", "repose": "rest", "resting": "rest",
    "brow": "brow_raise", "brows_raised": "brow_raise", "eyebrows_raised": "brow_raise", "forehead": "brow_raise",
    "eyes_closed_gentle": "eye_closure_gentle", "gentle_eye_closure": "eye_closure_gentle",
    "eyes_closed": "eye_closure_full", "eye_closure": "eye_closure_full", "eyes_closed_tight": "eye_closure_full",
    "full_eye_closure": "eye_closure_full",
    "smile_full": "smile", "full_smile": "smile", "big_smile": "smile",
    "kiss": "pucker", "lips_puckered": "pucker",
    "lower_lip": "lower_lip_depression", "eee": "lower_lip_depression", "show_bottom_teeth": "lower_lip_depression",
}
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg")


def expression_of(name: str) -> str | None:
    """The expression a file name stands for (``"Smile_Full.JPG"`` -> ``"smile"``), None for none."""
    stem = Path(name).stem.strip().lower().replace("-", "_").replace(" ", "_")
    if stem in EXPRESSIONS:
        return stem
    return ALIASES.get(stem)


def photos_in_folder(folder: Path) -> tuple[dict[str, Path], list[str]]:
    """``(expression -> photo path, ignored file names)`` of a session folder; two photos of one
    expression are an :class:`InputError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder.name} is not a folder of photos", path=folder,
                         hint="give --photos a folder holding rest.jpg, smile.jpg, ...")
    found: dict[str, Path] = {}
    ignored = []
    for path in sorted(folder.iterdir()):
        expression = expression_of(path.name) if path.suffix.lower() in PHOTO_SUFFIXES else None
        if expression is None:
            if not path.name.startswith(".") and path.name != "truth.json":
                ignored.append(path.name)
            continue
        if expression in found:
            raise InputError(f"two photos of '{expression}' in {folder.name}: {found[expression].name} and "
                             f"{path.name}", path=folder, hint="keep one photo per expression")
        found[expression] = path
    return found, ignored


def check_session(images: dict[str, FaceImage], allow_mixed_sizes: bool = False) -> None:
    """Refuse a session without ``rest`` or (unless allowed) with photos of different sizes."""
    if not images:
        raise InputError("no photo of a known expression was given",
                         hint=f"name the photos by expression ({', '.join(EXPRESSIONS)}; docs/expression.md)")
    if "rest" not in images:
        given = ", ".join(sorted(images))
        raise InputError(f"no 'rest' photo among the photos given ({given}): every movement is measured from "
                         "the face at rest", hint="add a photo named rest.jpg (or neutral.jpg) of the face at rest")
    sizes = {name: (img.width, img.height) for name, img in images.items()}
    if not allow_mixed_sizes and len(set(sizes.values())) > 1:
        listed = ", ".join(f"{name} {w}x{h}" for name, (w, h) in sizes.items())
        raise InputError(f"the photos are of different sizes ({listed}): photos of one session should come from "
                         "one camera at one setting", hint="use the uncropped photos of one session, or pass "
                         "--allow-mixed-sizes (each photo is scaled by its own eye distance)")
