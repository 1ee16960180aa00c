"""Figures embedded in a report: a PNG or JPEG file read into a ``data:`` URI, or a placeholder
that says why it could not be (with a warning for the JSON twin)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from .formatting import label

_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


@dataclass(frozen=True)
class FigureView:
    """What the template draws for one figure: the image (``uri``) or the ``problem``."""

    name: str
    caption: str
    uri: str = ""
    problem: str = ""
    href: str = ""  # a face picture linked, not embedded (docs/privacy.md)

    @property
    def alt(self) -> str:
        return self.caption or self.name

    @property
    def shown_caption(self) -> str:
        """An embedded figure always has a caption (its name); a placeholder only a given one."""
        return self.caption or ("" if self.problem else label(self.name))

    @property
    def link_text(self) -> str:
        return self.href.rsplit("/", 1)[-1]


def resolve(path, folder: Path) -> Path:
    """A figure or output path as given, or, when relative and absent, beside the report."""
    p = Path(path).expanduser()
    if not p.is_absolute() and not p.exists() and (folder / p).exists():
        return folder / p
    return p


def _read_image(path, folder: Path) -> tuple[bytes, str, str]:
    """``(data, mime, problem)``: the file's bytes and type, or why it cannot be embedded."""
    if path is None or str(path) == "":
        return b"", "", "no file was given"
    try:
        data = resolve(path, folder).read_bytes()
    except FileNotFoundError:
        return b"", "", f"file not found: {os.fspath(path)}"
    except IsADirectoryError:
        return b"", "", f"is a folder, not an image: {os.fspath(path)}"
    except OSError as exc:
        return b"", "", f"cannot be read ({exc.strerror or exc}): {os.fspath(path)}"
    mime = next((m for magic, m in _IMAGE_MAGIC if data.startswith(magic)), "")
    return data, mime, "" if mime else f"not a PNG or JPEG image: {os.fspath(path)}"


def embed(name: str, path, caption: str, folder: Path, warnings: list[str]) -> tuple[FigureView, dict]:
    """The figure's view for the page and its record for ``report.json``; a figure that cannot be
    embedded becomes a placeholder and adds a warning."""
    record = {"name": name, "path": None if path is None else os.fspath(path), "caption": caption,
              "embedded": False}
    data, mime, problem = _read_image(path, folder)
    if problem:
        warnings.append(f"figure '{name}' is missing from the report: {problem}")
        return FigureView(name, caption, problem=problem), record
    record["embedded"] = True
    record["bytes"] = len(data)
    uri = f"data:{mime};base64," + base64.b64encode(data).decode("ascii")
    return FigureView(name, caption, uri=uri), record


def relative_link(path, folder: Path) -> str:
    """``path`` as a link relative to the report ``folder``. A relative path is taken as relative
    to the folder when it exists there or does not exist from the working folder either."""
    target = Path(os.fspath(path)).expanduser()
    if not target.is_absolute() and ((folder / target).exists() or not target.exists()):
        return target.as_posix()
    absolute = target if target.is_absolute() else Path.cwd() / target
    try:
        return Path(os.path.relpath(absolute, folder.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return absolute.resolve().as_uri()


def link(name: str, path, caption: str, folder: Path) -> tuple[FigureView, dict]:
    """A figure shown as a link to its file instead of embedded (a face picture, unless the run
    asked for ``--embed-images``)."""
    href = relative_link(path, folder) if path is not None and str(path) else ""
    record = {"name": name, "path": None if path is None else os.fspath(path), "caption": caption,
              "embedded": False, "linked": True}
    if not href:
        return FigureView(name, caption, problem="no file was given"), record
    return FigureView(name, caption, href=href), record
