"""Declared outputs: what a command hands back to be written, instead of writing it itself.

A command (a short adapter over plugin logic) returns a :class:`~medface.data.Result` with
domain values and a list of :class:`Output` declarations: *this mesh is the face, file
``face.ply``*. The runner writes them through ``medface.io`` (meshes, volumes, landmarks,
images, plans, tables, JSON) and ``medface.viz`` (figures) into the run's output folder, and
records each path in ``result.outputs`` (figures in ``result.figures``). Without an output
folder (``medface.run`` from a script, the workstation) nothing is written and the values stay
in memory, in ``result.data`` and in the declarations themselves.

A :class:`Figure` is a description of a panel picture (scenes, views, titles), not a drawing:
``medface.viz`` renders it, and only when it is written, so a script that asks for no output
folder never starts VTK for pictures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Callable

#: what a declared output can be; ``saveable`` is any object with ``save(path)`` (a model
#: package, a dataset folder): the object knows its own layout, the runner only says where
KINDS = ("mesh", "volume", "landmarks", "image", "plan", "table", "json", "text", "figure", "saveable")


@dataclass
class Figure:
    """A panel figure: one scene per panel (``medface.viz.Scene``), drawn by ``viz.render_panels``.

    ``scenes`` is a list of scenes or a function returning one (built only when the figure is
    written). ``views`` is one view name for every panel or one per panel.
    """

    scenes: list | Callable[[], list]
    views: str | list[str] = "frontal"
    titles: list[str] | None = None
    shape: tuple[int, int] | None = None
    size: tuple[int, int] = (360, 360)

    def build_scenes(self) -> list:
        return list(self.scenes() if callable(self.scenes) else self.scenes)


@dataclass
class Output:
    """One thing a command produced, to be written as ``filename`` under the output folder.

    ``name`` is how it is listed (``result.outputs[name]`` or ``result.figures[name]``);
    ``kind`` is one of :data:`KINDS`, guessed from the value when not given. ``figure``, for
    an image (a picture already drawn, e.g. an aligned face), also lists the written file in
    ``result.figures`` under that name, so that the report shows it. ``face``: the picture
    shows a person's face (a photo, crop, overlay or face render): the report links it instead
    of embedding it, and ``--no-face-images`` leaves it out (``docs/privacy.md``).
    """

    name: str
    filename: str
    value: Any = field(repr=False)
    kind: str = ""
    figure: str = ""
    face: bool = False

    def __post_init__(self) -> None:
        from ..errors import PluginError

        path = PurePosixPath(self.filename)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise PluginError(f"output {self.name!r}: {self.filename!r} must be a relative path inside the "
                              "output folder")
        self.kind = self.kind or kind_of(self.value)
        if self.kind not in KINDS:
            raise PluginError(f"output {self.name!r}: unknown kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.figure and self.kind != "image":
            raise PluginError(f"output {self.name!r}: only an image can also be listed as a figure, not a "
                              f"{self.kind}")

    @property
    def listed_as(self) -> str:
        """Where the written path is recorded: ``figures`` or ``outputs``."""
        return "figures" if self.kind == "figure" else "outputs"


def kind_of(value: Any) -> str:
    """The output kind of a value (a mesh, a volume, ...); ``""`` when it cannot be told."""
    from .image import FaceImage
    from .landmarks import Landmarks
    from .mesh import SurfaceMesh
    from .plan import Plan
    from .volume import Volume

    table = ((SurfaceMesh, "mesh"), (Volume, "volume"), (Landmarks, "landmarks"), (FaceImage, "image"),
             (Plan, "plan"), (Figure, "figure"), (str, "text"), (dict, "json"))
    for cls, kind in table:
        if isinstance(value, cls):
            return kind
    if isinstance(value, list) and all(isinstance(row, dict) for row in value):
        return "table"
    if callable(getattr(value, "save", None)):
        return "saveable"
    return ""
