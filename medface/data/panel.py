"""`PanelUpdate`: what a plugin's interactive panel hands back after each change of a control.

A panel is a manifest contribution (``[[panels]]``, ``docs/plugin-guide.md``, "Interactive
panels"): a logic object built once from scene data (meshes, landmarks, ...), whose
``update(**controls)`` is called on every move of a slider. It returns a :class:`PanelUpdate`
and the workstation shows it: each mesh replaces the scene's mesh of that name (a mesh's
``point_data`` array is shown as a colour map), each landmark set likewise, the summary as a
table and the warnings as notes. The core checks the update (:meth:`PanelUpdate.problems`)
before anything is shown (:func:`medface.plugin.panels.update_panel`).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

from .landmarks import Landmarks
from .mesh import SurfaceMesh


@dataclass
class PanelUpdate:
    """One frame of a live panel (LPS mm).

    ``meshes``: name -> mesh to show or replace in the scene (its ``point_data`` scalar is shown
    as a colour map); ``landmarks``: name -> landmark set to show or replace; ``summary``: a
    table of values, units in the key (``"SNA_deg"``, ``"max_skin_change_mm"``); ``warnings``:
    what the user should know about this frame.
    """

    meshes: dict[str, SurfaceMesh] = field(default_factory=dict)
    landmarks: dict[str, Landmarks] = field(default_factory=dict)
    summary: dict[str, float | int | str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Every entry of the wrong type, as ``field['name']: what is wrong`` ([] when all are right)."""
        found = _typed_entries("meshes", self.meshes, SurfaceMesh)
        found += _typed_entries("landmarks", self.landmarks, Landmarks)
        found += _summary_problems(self.summary)
        if not isinstance(self.warnings, list) or not all(isinstance(w, str) for w in self.warnings):
            found.append("warnings: must be a list of strings")
        return found


def _typed_entries(what: str, entries, cls: type) -> list[str]:
    if not isinstance(entries, dict):
        return [f"{what}: must be a dict of name -> {cls.__name__}, not {type(entries).__name__}"]
    return [f"{what}[{name!r}]: a {type(value).__name__}, not a {cls.__name__}"
            for name, value in entries.items() if not isinstance(name, str) or not isinstance(value, cls)]


def _summary_problems(summary) -> list[str]:
    if not isinstance(summary, dict):
        return [f"summary: must be a dict of name -> number or text, not {type(summary).__name__}"]
    return [f"summary[{name!r}]: a {type(value).__name__}, not a number or text"
            for name, value in summary.items()
            if not isinstance(name, str) or not isinstance(value, (numbers.Real, str))]
