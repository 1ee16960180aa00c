"""Osteotomy planes: a plan's osteotomy as a cutting plane, and as a 3D Slicer markups plane.

3D Slicer stores a plane node (markups schema v1.0.3) with its centre, normal, size and the
``objectToBase`` frame; :func:`plane_to_slicer` writes one such document per osteotomy (LPS)
and :func:`plane_from_slicer` reads one back (LPS or RAS), so a surgeon can adjust the preset
planes in Slicer and return them to the plan.
"""

from __future__ import annotations

import numpy as np

from medface.errors import InputError

from .cutting import CutPlane


def cut_plane(osteotomy: dict) -> CutPlane:
    """The :class:`CutPlane` of a plan's osteotomy (dict)."""
    size = osteotomy.get("size_mm")
    return CutPlane(osteotomy["name"], osteotomy["centre"], osteotomy["normal"],
                    tuple(size) if size else None, osteotomy.get("u_axis"))


def plane_to_slicer(osteotomy: dict) -> dict:
    """A 3D Slicer markups document (schema v1.0.3, LPS) holding one "Plane" node."""
    from medface.io.markups import MARKUPS_SCHEMA

    plane = cut_plane(osteotomy)
    u, v, n = plane.basis()
    size = list(plane.size) if plane.size else [100.0, 100.0]
    object_to_base = np.eye(4)
    object_to_base[:3, 0], object_to_base[:3, 1], object_to_base[:3, 2] = u, v, n
    object_to_base[:3, 3] = plane.centre
    centre = [float(x) for x in plane.centre]
    return {"@schema": MARKUPS_SCHEMA, "markups": [{
        "type": "Plane", "coordinateSystem": "LPS", "coordinateUnits": "mm", "locked": False,
        "name": plane.name, "labelFormat": "%N-%d",
        "controlPoints": [{"id": "1", "label": plane.name, "description": osteotomy.get("description", ""),
                           "associatedNodeID": "", "position": centre,
                           "orientation": [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0],
                           "selected": True, "locked": False, "visibility": True, "positionStatus": "defined"}],
        "measurements": [],
        "planeType": "pointNormal", "sizeMode": "absolute" if plane.size else "auto", "autoScalingFactor": 1.0,
        "center": centre, "normal": [float(x) for x in n], "size": size,
        "planeBounds": [-size[0] / 2, size[0] / 2, -size[1] / 2, size[1] / 2],
        "objectToBase": [float(x) for x in object_to_base.ravel()],
        "baseToNode": [float(x) for x in np.eye(4).ravel()],
        "orientation": [float(x) for x in np.column_stack([u, v, n]).ravel()],
        "medfaceBone": osteotomy.get("bone", ""),
    }]}


def plane_from_slicer(doc: dict, *, bone: str | None = None, name: str | None = None) -> dict:
    """An osteotomy dict from a 3D Slicer markups document's first "Plane" node (LPS or RAS)."""
    planes = [m for m in doc.get("markups", []) if m.get("type") == "Plane"] if isinstance(doc, dict) else []
    if not planes:
        raise InputError("the markups document holds no \"Plane\" node")
    m = planes[0]
    flip = np.array([-1.0, -1.0, 1.0]) if m.get("coordinateSystem", "LPS") == "RAS" else np.ones(3)
    base_to_node = np.asarray(m.get("baseToNode", np.eye(4).ravel()), float).reshape(4, 4)
    if "objectToBase" in m:
        o2n = base_to_node @ np.asarray(m["objectToBase"], float).reshape(4, 4)
        u, normal, centre = o2n[:3, 0], o2n[:3, 2], o2n[:3, 3]
    else:
        u = None
        normal = np.asarray(m.get("normal"), float)
        centre = np.asarray(m.get("center") or m["controlPoints"][0]["position"], float)
    if "normal" in m and "objectToBase" not in m:
        normal = np.asarray(m["normal"], float)
    size = m.get("size") if m.get("sizeMode") == "absolute" else None
    out = {"name": name or m.get("name") or "plane", "bone": bone or m.get("medfaceBone") or "bone",
           "centre": [float(x) for x in centre * flip], "normal": [float(x) for x in normal * flip]}
    if size:
        out["size_mm"] = [float(size[0]), float(size[1])]
    if u is not None:
        out["u_axis"] = [float(x) for x in u * flip]
    return out
