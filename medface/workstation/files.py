"""The workstation's data folder: the only place the app reads from and writes to.

Every path that comes from the browser is a path *relative to the data folder*; it is resolved
here and refused when it leaves the folder (``..``, an absolute path, a symbolic link that
points outside, a drive or a NUL byte). Uploads go to ``uploads/`` in the folder, with a
size limit and a sanitised file name; runs write to ``runs/<n>-<command>/``.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

DEFAULT_UPLOAD_LIMIT_MB = 512
UPLOADS = "uploads"
RUNS = "runs"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_HIDDEN = (".", "__")


@dataclass(frozen=True)
class Entry:
    """A file of the data folder as the browser sees it: a relative path and what it holds."""

    path: str  # relative, with '/'
    category: str  # volume, mesh, landmarks, image, or "" for anything else
    size: int


class DataFolder:
    """The folder given to ``medface app --data``; the app sees nothing outside it."""

    def __init__(self, root, *, upload_limit_mb: float = DEFAULT_UPLOAD_LIMIT_MB):
        root = Path(root).expanduser()
        if not root.is_dir():
            raise InputError("is not a folder; give --data an existing folder", path=root)
        self.root = root.resolve()
        if not upload_limit_mb > 0:
            raise InputError(f"the upload limit must be positive, got {upload_limit_mb} MB")
        self.upload_limit = int(upload_limit_mb * 1024 * 1024)

    def resolve(self, relative: str) -> Path:
        """The file or folder a browser path names, refused (InputError) if it lies outside."""
        text = str(relative)
        if not text or "\0" in text:
            raise InputError("an empty or malformed path was given")
        pure = Path(text.replace("\\", "/"))
        if pure.is_absolute() or pure.drive or ".." in pure.parts:
            raise InputError(f"'{text}' is not a path inside the data folder")
        path = (self.root / pure).resolve()
        if path != self.root and self.root not in path.parents:
            raise InputError(f"'{text}' leads outside the data folder")
        return path

    def relative(self, path: Path) -> str:
        """The browser path of a file inside the folder."""
        return Path(path).resolve().relative_to(self.root).as_posix()

    def existing(self, relative: str) -> Path:
        path = self.resolve(relative)
        if not path.exists():
            raise InputError(f"'{relative}' does not exist in the data folder")
        return path

    def listing(self, max_entries: int = 2000) -> list[Entry]:
        """Readable data in the folder (volumes, meshes, landmarks, images), DICOM folders as one entry."""
        from ..io import category, sniff

        entries: list[Entry] = []
        for path in self._walk():
            try:
                found = category(sniff(path))
            except Exception:  # not a format medface reads: not listed
                continue
            size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.iterdir())
            entries.append(Entry(self.relative(path), found, size))
            if len(entries) >= max_entries:
                break
        return entries

    def folders(self) -> list[str]:
        """The folder's sub-folders (for folder parameters: a model package, a data set), hidden ones
        and links that lead out of it left out."""
        found = []
        for folder, dirs, _ in os.walk(self.root, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith(_HIDDEN))
            here = Path(folder)
            if here != self.root and self._inside(here):
                found.append(self.relative(here))
        return found

    def _walk(self):
        for folder, dirs, files in os.walk(self.root, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith(_HIDDEN))
            here = Path(folder)
            if files and all(f.lower().endswith(".dcm") for f in files):
                yield here  # a DICOM series: one entry for the folder
                dirs[:] = []
                continue
            for name in sorted(files):
                path = here / name
                if not name.startswith(_HIDDEN) and self._inside(path):
                    yield path

    def _inside(self, path: Path) -> bool:
        resolved = path.resolve()
        return self.root in resolved.parents

    def save_upload(self, name: str, content: bytes) -> Path:
        """Write an uploaded file to ``uploads/`` (size-limited, sanitised name); returns its path."""
        if len(content) > self.upload_limit:
            raise InputError(f"the upload '{safe_name(name)}' is {len(content) / 2**20:.1f} MB; the limit is "
                             f"{self.upload_limit / 2**20:.0f} MB (medface app --max-upload-mb)")
        folder = self.root / UPLOADS
        folder.mkdir(exist_ok=True)
        target = _free_name(folder, safe_name(name))
        with tempfile.NamedTemporaryFile(dir=folder, delete=False, prefix=".upload-") as handle:
            handle.write(content)
        os.replace(handle.name, target)
        return target

    def run_folder(self, command_id: str) -> Path:
        """A new, empty folder for one run: ``runs/<n>-<plugin>.<command>``."""
        runs = self.root / RUNS
        runs.mkdir(exist_ok=True)
        taken = [int(p.name.split("-", 1)[0]) for p in runs.iterdir() if p.name.split("-", 1)[0].isdigit()]
        number = max(taken, default=0) + 1
        while True:
            folder = runs / f"{number:04d}-{safe_name(command_id)}"
            try:
                folder.mkdir()
                return folder
            except FileExistsError:
                number += 1


def safe_name(name: str) -> str:
    """A file name with no folder part and only letters, digits, '.', '_' and '-'."""
    base = Path(str(name).replace("\\", "/")).name
    cleaned = _SAFE_NAME.sub("_", base).lstrip(".")
    return cleaned[:120] or "upload"


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    stem, dot, suffix = name.partition(".")
    n = 1
    while target.exists():
        target = folder / f"{stem}-{n}{dot}{suffix}"
        n += 1
    return target
