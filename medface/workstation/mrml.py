"""medface's data types as 3D Slicer MRML nodes, and back (docs/workstation.md).

medface keeps everything in the patient's LPS frame (millimetres); MRML's world frame is RAS.
Every conversion here goes through :data:`LPS_TO_RAS` (negate x and y, its own inverse), so a
vertex, a landmark and a voxel centre land on the same RAS point and come back to the same
LPS point.

- a :class:`~medface.data.Volume` is a ``vtkMRMLScalarVolumeNode``: voxels as they are, the
  IJK-to-RAS matrix built from spacing, origin and direction (never dropped), a grey display
  with Slicer's automatic window/level; a CT in HU is tagged with Slicer's coded voxel units;
- a :class:`~medface.data.SurfaceMesh` is a ``vtkMRMLModelNode``: every ``point_data`` array
  becomes a point-data array of the same name; one of them can be shown as a colour map
  (medface's own colour tables, :func:`colour_table_node`);
- :class:`~medface.data.Landmarks` are a ``vtkMRMLMarkupsFiducialNode``: one control point per
  id, labelled with the id (Slicer's markups storage writes ``.mrk.json`` in LPS);
- a :class:`~medface.data.FaceImage` is a ``vtkMRMLVectorVolumeNode`` (RGB, one slice): a
  frontal picture standing in the coronal plane, 1 mm per pixel (:func:`add_photo`).

slicer-core (the ``workstation`` extra) is imported only when a function here needs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError, ParameterError, PluginError

#: LPS <-> RAS: negate x and y (the matrix is its own inverse)
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
_LPS_TO_RAS_4 = np.diag([-1.0, -1.0, 1.0, 1.0])

#: node attributes medface sets (saved in the scene's .mrml)
CONFIDENCE_ATTRIBUTE = "medface.confidence"  # landmark id -> confidence, as JSON
RESULT_FILE_ATTRIBUTE = "medface.result_file"  # the result-folder file a node was read from
COLOUR_MAP_ATTRIBUTE = "medface.colour_map"  # which medface colour map a colour table node holds

#: colour maps for point data, the ones medface's figures use (medface.viz.scene): a
#: sequential map for values of one sign, a diverging one centred at 0 for signed values
HEAT_MAP = "inferno"  # maps shown over pictures (attention)
SEQUENTIAL_MAP = "viridis"
DIVERGING_MAP = "RdBu_r"
_COLOUR_TABLE_SIZE = 256

#: how an output's name chooses a model's colour in :func:`add_result` (medface.viz colours)
_TISSUE_COLOURS = {"skin": "skin", "face": "skin", "skull": "bone", "cranium": "bone", "mandible": "bone",
                   "maxilla": "bone", "bone": "bone"}

#: 3D Slicer's coded voxel quantity and units for CT in Hounsfield units (DICOM and UCUM codes)
_CT_QUANTITY = ("112031", "DCM", "Attenuation Coefficient")
_HU_UNITS = ("[hnsf'U]", "UCUM", "Hounsfield unit")

_MARKUPS_STORAGE_CLASSES = ("vtkMRMLMarkupsJsonStorageNode", "vtkMRMLMarkupsPlaneJsonStorageNode",
                            "vtkMRMLMarkupsROIJsonStorageNode")
_GREY_COLOUR_NODE_ID = "vtkMRMLColorTableNodeGrey"


# ------------------------------------------------------------------------------ slicer-core
def require_slicer():
    """The ``slicer`` module (slicer-core); :class:`PluginError` when the extra is missing."""
    try:
        import slicer
    except ImportError as exc:
        raise PluginError("the workstation extra is not installed: pip install 'medface[workstation]'",
                          hint=f"3D Slicer's core (slicer-core) could not be imported: {exc}") from None
    return slicer


def new_scene():
    """A fresh headless MRML scene, ready for medface nodes and for Slicer's storage classes."""
    slicer = require_slicer()
    scene = slicer.vtkMRMLScene()
    prepare_scene(scene)
    return scene


def prepare_scene(scene) -> None:
    """Make a bare scene able to store and read what medface puts in it (idempotent).

    A bare ``vtkMRMLScene`` knows the markups node classes but not their JSON storage classes
    (desktop Slicer's markups module registers those), and has none of Slicer's default colour
    nodes (which volume display nodes name, e.g. ``vtkMRMLColorTableNodeGrey``). Default
    colour nodes are not saved with a scene; a bundle refers to them by id. The scene's
    version, written into its ``.mrml``, becomes the Slicer release whose MRML library wrote
    it (:func:`scene_version`) instead of the wheel's placeholder ``slicer-core 4.0.0``, on
    which desktop Slicer warns that the scene "was saved with slicer-core application".
    """
    slicer = require_slicer()
    if str(scene.GetVersion() or "").startswith("slicer-core"):
        scene.SetVersion(scene_version())
    for class_name in _MARKUPS_STORAGE_CLASSES:
        if not scene.IsNodeClassRegistered(class_name):
            scene.RegisterNodeClass(getattr(slicer, class_name)())
    if scene.GetNodeByID(_GREY_COLOUR_NODE_ID) is None:
        colour_logic = slicer.vtkMRMLColorLogic()
        colour_logic.SetMRMLScene(scene)
        colour_logic.AddDefaultColorNodes()
        colour_logic.SetMRMLScene(None)


def scene_version() -> str:
    """``Slicer MAJOR.MINOR.PATCH 0``: the 3D Slicer release of the installed slicer-core."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("slicer-core").split(".")
    except PackageNotFoundError:
        release = []
    major, minor, patch = (release + ["0", "0", "0"])[:3]
    return f"Slicer {major}.{minor}.{patch} 0"


# ------------------------------------------------------------------------------ VTK helpers
def _vtk_matrix(matrix: np.ndarray):
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    out = vtkMatrix4x4()
    for row in range(4):
        for col in range(4):
            out.SetElement(row, col, float(matrix[row, col]))
    return out


def _numpy_matrix(vtk_matrix) -> np.ndarray:
    return np.array([[vtk_matrix.GetElement(row, col) for col in range(4)] for row in range(4)])


def _vtk_array(values: np.ndarray, name: str | None = None):
    """A deep-copied VTK data array of ``values`` ((N,) or (N, components)); booleans become
    0/1 bytes and half floats floats, which VTK has no type for."""
    from vtkmodules.util.numpy_support import numpy_to_vtk

    values = np.asarray(values)
    if values.dtype == bool:
        values = values.astype(np.uint8)
    elif values.dtype == np.float16:
        values = values.astype(np.float32)
    if values.ndim > 2:
        values = values.reshape(len(values), -1)
    array = numpy_to_vtk(np.ascontiguousarray(values), deep=True)
    if name is not None:
        array.SetName(name)
    return array


def _numpy_array(vtk_array) -> np.ndarray:
    """A numpy copy of a VTK data array: (N,) for one component, else (N, components)."""
    from vtkmodules.util.numpy_support import vtk_to_numpy

    values = np.array(vtk_to_numpy(vtk_array), copy=True)
    return values.reshape(-1) if vtk_array.GetNumberOfComponents() == 1 else values


def _image_data(array: np.ndarray, dimensions: tuple[int, int, int], components: int):
    """vtkImageData with origin 0 and spacing 1 (a volume node keeps the geometry)."""
    from vtkmodules.vtkCommonDataModel import vtkImageData

    image = vtkImageData()
    image.SetDimensions(*dimensions)
    flat = np.asarray(array).reshape(-1, components) if components > 1 else np.asarray(array).reshape(-1)
    image.GetPointData().SetScalars(_vtk_array(flat))
    return image


def _refuse_transformed(node) -> None:
    """Reading a node that sits under a Slicer transform would give coordinates before it."""
    if node.GetParentTransformNode() is not None:
        raise InputError(f"'{node.GetName()}' is under the transform '{node.GetParentTransformNode().GetName()}'",
                         hint="harden the transform in 3D Slicer (Transforms module, Harden) before using it")


# ------------------------------------------------------------------------------ volumes
def ijk_to_ras(volume) -> np.ndarray:
    """The 4x4 IJK-to-RAS matrix of a :class:`Volume` (its LPS affine seen from RAS)."""
    return _LPS_TO_RAS_4 @ volume.affine


def add_volume(scene, volume, name: str):
    """Add a :class:`~medface.data.Volume` as a ``vtkMRMLScalarVolumeNode`` named ``name``.

    Voxels keep their values, and their type where Slicer stores it (:func:`slicer_voxels`);
    the IJK-to-RAS matrix carries spacing, origin and direction. The display node is Slicer's
    default for scalar volumes: the Grey colour table and a window/level computed from the data.
    """
    require_slicer()
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    node.SetAndObserveImageData(_image_data(slicer_voxels(volume.array), volume.shape_ijk, components=1))
    node.SetIJKToRASMatrix(_vtk_matrix(ijk_to_ras(volume)))
    if volume.units == "HU":
        _tag_hounsfield(node)
    node.CreateDefaultDisplayNodes()
    return node


def slicer_voxels(array: np.ndarray) -> np.ndarray:
    """Voxels in a type Slicer's NRRD writer and histogram take, values unchanged: 64-bit
    integers become the 32-bit integer type that holds their range (doubles, exact up to
    2**53, when none does). Booleans and half floats are widened by :func:`_vtk_array`."""
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.integer) and array.dtype.itemsize == 8:
        low, high = int(array.min()), int(array.max())
        for narrower in (np.int32, np.uint32):
            if np.iinfo(narrower).min <= low and high <= np.iinfo(narrower).max:
                return array.astype(narrower)
        return array.astype(np.float64)
    return array


def _coded_entry(code: tuple[str, str, str]):
    entry = require_slicer().vtkCodedEntry()
    entry.SetValueSchemeMeaning(*code)
    return entry


def _tag_hounsfield(node) -> None:
    node.SetVoxelValueQuantity(_coded_entry(_CT_QUANTITY))
    node.SetVoxelValueUnits(_coded_entry(_HU_UNITS))


def _units_of(node) -> str:
    units = node.GetVoxelValueUnits()
    return "HU" if units is not None and units.GetCodeValue() == _HU_UNITS[0] else ""


def _voxels(node, what: str) -> tuple[np.ndarray, tuple[int, int, int], int]:
    """A volume node's voxels as a flat array, its dimensions (i, j, k) and components."""
    image = node.GetImageData()
    scalars = image.GetPointData().GetScalars() if image is not None else None
    if scalars is None:
        raise InputError(f"the {what} '{node.GetName()}' holds no image data")
    return _numpy_array(scalars), tuple(image.GetDimensions()), scalars.GetNumberOfComponents()


def read_volume_node(node):
    """The :class:`~medface.data.Volume` (LPS) of a scalar volume node."""
    from ..data.volume import Volume

    if node.IsA("vtkMRMLVectorVolumeNode"):
        raise InputError(f"'{node.GetName()}' is a colour image, not a scalar volume",
                         hint="read it with medface.workstation.mrml.read_photo_node")
    _refuse_transformed(node)
    values, (ni, nj, nk), components = _voxels(node, "volume")
    if components != 1:
        raise InputError(f"the volume '{node.GetName()}' has {components} components per voxel, not 1")
    ras = vtk_ijk_to_ras(node)
    lps = _LPS_TO_RAS_4 @ ras
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    return Volume(values.reshape(nk, nj, ni), spacing=tuple(spacing), origin=tuple(lps[:3, 3]),
                  direction=lps[:3, :3] / spacing, units=_units_of(node), source=node.GetName())


def vtk_ijk_to_ras(node) -> np.ndarray:
    """A volume node's IJK-to-RAS matrix as a numpy 4x4 array."""
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    matrix = vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return _numpy_matrix(matrix)


# ------------------------------------------------------------------------------ photos
def add_photo(scene, image, name: str):
    """Add a :class:`~medface.data.FaceImage` as an RGB ``vtkMRMLVectorVolumeNode`` (one slice,
    placed by :func:`medface.data.image.photo_ijk_to_lps`)."""
    slicer = require_slicer()
    node = scene.AddNewNodeByClass("vtkMRMLVectorVolumeNode", name)
    node.SetAndObserveImageData(_image_data(image.pixels, (image.width, image.height, 1), components=3))
    from ..data.image import photo_ijk_to_lps

    node.SetIJKToRASMatrix(_vtk_matrix(_LPS_TO_RAS_4 @ photo_ijk_to_lps(image.width, image.height)))
    node.SetVoxelVectorType(slicer.vtkMRMLVolumeNode.VoxelVectorTypeColorRGB)
    node.CreateDefaultDisplayNodes()
    return node


def same_grid(a, b, tolerance: float = 1e-6) -> bool:
    """Whether two volume nodes have the same voxel counts and the same IJK-to-RAS placement."""
    image_a, image_b = a.GetImageData(), b.GetImageData()
    if image_a is None or image_b is None or tuple(image_a.GetDimensions()) != tuple(image_b.GetDimensions()):
        return False
    return bool(np.allclose(vtk_ijk_to_ras(a), vtk_ijk_to_ras(b), atol=tolerance))


def show_as_heat_map(scene, node, colour_map: str = HEAT_MAP) -> None:
    """Colour a scalar volume node with medface's ``colour_map`` over its value range (for a map
    shown over a picture: an attention map in 0-1)."""
    display = node.GetDisplayNode()
    if display is None:
        node.CreateDefaultDisplayNodes()
        display = node.GetDisplayNode()
    values = _numpy_array(node.GetImageData().GetPointData().GetScalars())
    low, high = _scalar_range(np.asarray(values, dtype=np.float64))
    display.SetAndObserveColorNodeID(colour_table_node(scene, colour_map).GetID())
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(low, high)


def read_photo_node(node):
    """The :class:`~medface.data.FaceImage` of a colour volume node of one slice (pixels in index
    order: row ``j``, column ``i``; an alpha channel is dropped)."""
    from ..data.image import FaceImage

    values, (ni, nj, nk), components = _voxels(node, "image")
    if nk != 1 or components not in (3, 4):
        raise InputError(f"'{node.GetName()}' is not a colour picture: {ni}x{nj}x{nk} voxels with "
                         f"{components} components (a photo has one slice of RGB)")
    return FaceImage(values.reshape(nj, ni, components)[:, :, :3], source=node.GetName())


# ------------------------------------------------------------------------------ meshes
def mesh_polydata(mesh):
    """vtkPolyData of a :class:`~medface.data.SurfaceMesh`: points in RAS, triangles, and every
    ``point_data`` array under its own name (values copied as they are, not as vectors)."""
    from vtkmodules.util.numpy_support import numpy_to_vtkIdTypeArray
    from vtkmodules.vtkCommonCore import vtkPoints
    from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData

    points = vtkPoints()
    points.SetData(_vtk_array(mesh.vertices @ LPS_TO_RAS))
    cells = vtkCellArray()
    offsets = np.arange(0, 3 * len(mesh.faces) + 1, 3, dtype=np.int64)
    cells.SetData(numpy_to_vtkIdTypeArray(offsets, deep=True),
                  numpy_to_vtkIdTypeArray(np.ascontiguousarray(mesh.faces.reshape(-1)), deep=True))
    poly = vtkPolyData()
    poly.SetPoints(points)
    poly.SetPolys(cells)
    for key, values in mesh.point_data.items():
        values = np.asarray(values)
        if not (values.dtype == bool or np.issubdtype(values.dtype, np.number)) or \
                np.issubdtype(values.dtype, np.complexfloating):
            raise InputError(f"point data '{key}' of mesh '{mesh.name}' holds {values.dtype} values; a Slicer "
                             "model takes real numbers only")
        poly.GetPointData().AddArray(_vtk_array(values, str(key)))
    return poly


def _scalars_to_show(mesh, scalars: str | None) -> str | None:
    """The point-data array to show as colours: the one named, or the only scalar one."""
    if scalars is not None:
        if scalars not in mesh.point_data:
            have = ", ".join(sorted(mesh.point_data)) or "none"
            raise ParameterError(f"the mesh has no point data {scalars!r} (has: {have})", parameter="scalars")
        return scalars
    one_component = [key for key, values in mesh.point_data.items() if np.asarray(values).ndim == 1]
    return one_component[0] if len(one_component) == 1 else None


def add_mesh(scene, mesh, name: str, *, scalars: str | None = None, color=None):
    """Add a :class:`~medface.data.SurfaceMesh` as a ``vtkMRMLModelNode`` named ``name``.

    ``scalars`` names the point-data array shown as a colour map; by default the mesh's only
    array of one value per vertex, when it has exactly one. ``color`` is the surface colour
    (a medface colour name such as ``"skin"`` or ``"bone"``, any pyvista colour name or an RGB
    triple); Slicer's default when None.
    """
    require_slicer()
    shown = _scalars_to_show(mesh, scalars)
    node = scene.AddNewNodeByClass("vtkMRMLModelNode", name)
    node.SetAndObservePolyData(mesh_polydata(mesh))
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    if color is not None:
        from ..viz.scene import resolve_color

        display.SetColor(*resolve_color(color))
    if shown is not None:
        show_scalars(scene, display, shown, np.asarray(mesh.point_data[shown], dtype=np.float64))
    return node


def show_scalars(scene, display, name: str, values: np.ndarray) -> None:
    """Colour a model by its point-data array ``name``: scalar visibility on, medface's colour
    table (diverging for values of both signs, sequential otherwise), range from the data."""
    from vtkmodules.vtkFiltersCore import vtkAssignAttribute

    low, high = _scalar_range(values)
    diverging = low < 0.0 < high
    if diverging:
        high = max(abs(low), abs(high))
        low = -high
    display.SetActiveScalar(name, vtkAssignAttribute.POINT_DATA)
    display.SetAndObserveColorNodeID(colour_table_node(scene, DIVERGING_MAP if diverging else SEQUENTIAL_MAP).GetID())
    display.SetScalarRangeFlag(require_slicer().vtkMRMLDisplayNode.UseManualScalarRange)
    display.SetScalarRange(low, high)
    display.SetScalarVisibility(True)


def colour_legend(node, stops: int = 9) -> dict | None:
    """What a colour bar for a model node shows: ``{"name", "array", "low", "high", "gradient"}``
    (a CSS linear gradient of the node's colour table, low to high), or None when the node is
    not visible or not coloured by point data."""
    display = node.GetDisplayNode()
    if display is None or not display.GetVisibility() or not display.GetScalarVisibility():
        return None
    colours = display.GetColorNode()
    array = display.GetActiveScalarName()
    if colours is None or not array:
        return None
    low, high = display.GetScalarRange()
    count = colours.GetNumberOfColors()
    css = []
    for k in range(stops):
        rgba = [0.0, 0.0, 0.0, 1.0]
        colours.GetColor(round(k * (count - 1) / (stops - 1)), rgba)
        css.append(f"rgb({round(255 * rgba[0])},{round(255 * rgba[1])},{round(255 * rgba[2])})")
    return {"name": node.GetName(), "array": array, "low": float(low), "high": float(high),
            "gradient": f"linear-gradient(to right, {', '.join(css)})"}


def _scalar_range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    return (low - 0.5, high + 0.5) if low == high else (low, high)


def colour_table_node(scene, colour_map: str):
    """The scene's colour table node holding matplotlib's ``colour_map`` (256 colours), added
    on first use. It is saved with the scene (a CSV colour table in a bundle), so a scene shows
    the same colours in desktop Slicer and in a bare slicer-core scene, neither of which needs
    Slicer's own colour files (a bare scene has none of them)."""
    name = f"medface {colour_map}"
    found = scene.GetNodesByClassByName("vtkMRMLColorTableNode", name)
    for index in range(found.GetNumberOfItems()):
        node = found.GetItemAsObject(index)
        if node.GetAttribute(COLOUR_MAP_ATTRIBUTE) == colour_map:
            return node
    import matplotlib

    colours = matplotlib.colormaps[colour_map](np.linspace(0.0, 1.0, _COLOUR_TABLE_SIZE))
    node = require_slicer().vtkMRMLColorTableNode()
    node.SetName(name)
    node.SetTypeToUser()
    node.SetNumberOfColors(_COLOUR_TABLE_SIZE)
    for index, (red, green, blue, alpha) in enumerate(colours):
        node.SetColor(index, f"{index}", float(red), float(green), float(blue), float(alpha))
    node.SetAttribute(COLOUR_MAP_ATTRIBUTE, colour_map)
    node.SetDescription(f"matplotlib's {colour_map}, as medface's figures draw point data")
    scene.AddNode(node)
    return node


def _triangles(poly) -> np.ndarray:
    """The (M, 3) triangles of polydata; polygons and strips are triangulated first."""
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkFiltersCore import vtkTriangleFilter

    polys = poly.GetPolys()
    offsets = vtk_to_numpy(polys.GetOffsetsArray()) if polys is not None else np.zeros(1, np.int64)
    if poly.GetNumberOfStrips() or np.any(np.diff(offsets) != 3):
        triangulate = vtkTriangleFilter()
        triangulate.SetInputData(poly)
        triangulate.PassLinesOff()
        triangulate.PassVertsOff()
        triangulate.Update()
        polys = triangulate.GetOutput().GetPolys()
    if polys is None or polys.GetNumberOfCells() == 0:
        return np.zeros((0, 3), dtype=np.int64)
    return np.array(vtk_to_numpy(polys.GetConnectivityArray()), dtype=np.int64).reshape(-1, 3)


def read_model_node(node):
    """The :class:`~medface.data.SurfaceMesh` (LPS) of a model node, with every named numeric
    point-data array as ``point_data``."""
    from ..data.mesh import SurfaceMesh

    _refuse_transformed(node)
    poly = node.GetPolyData()
    if poly is None or poly.GetPoints() is None or poly.GetNumberOfPoints() == 0:
        raise InputError(f"the model '{node.GetName()}' has no points")
    vertices = _numpy_array(poly.GetPoints().GetData()).astype(np.float64).reshape(-1, 3) @ LPS_TO_RAS
    point_data = {}
    arrays = poly.GetPointData()
    for index in range(arrays.GetNumberOfArrays()):
        array = arrays.GetArray(index)  # None for string arrays
        if array is not None and array.GetName():
            point_data[array.GetName()] = _numpy_array(array)
    return SurfaceMesh(vertices, _triangles(poly), point_data=point_data, name=node.GetName(),
                       source=node.GetName())


def update_model_node(node, mesh) -> None:
    """Give a model node a mesh's vertices and point data in place (same triangles): a live
    panel's frame, with no new node and no new display pipeline."""
    poly = node.GetPolyData()
    poly.GetPoints().SetData(_vtk_array(mesh.vertices @ LPS_TO_RAS))
    for key, values in mesh.point_data.items():
        poly.GetPointData().AddArray(_vtk_array(np.asarray(values), str(key)))  # replaces the array of that name
    display = node.GetDisplayNode()
    shown = display.GetActiveScalarName() if display is not None else None
    if shown and shown in mesh.point_data:
        display.SetScalarRange(*_scalar_range(np.asarray(mesh.point_data[shown], dtype=np.float64)))
    poly.GetPoints().Modified()
    poly.Modified()
    node.Modified()


# ------------------------------------------------------------------------------ landmarks
def add_landmarks(scene, landmarks, name: str):
    """Add :class:`~medface.data.Landmarks` as a ``vtkMRMLMarkupsFiducialNode``: one control
    point per id (label = id, description kept), positions in RAS. Confidences, which Slicer's
    markups have no field for, are kept in the node attribute :data:`CONFIDENCE_ATTRIBUTE`."""
    require_slicer()
    node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", name)
    was_modifying = node.StartModify()
    for landmark_id, point in zip(landmarks.ids, landmarks.points @ LPS_TO_RAS):
        index = node.AddControlPoint(float(point[0]), float(point[1]), float(point[2]), landmark_id)
        if landmarks.descriptions.get(landmark_id):
            node.SetNthControlPointDescription(index, landmarks.descriptions[landmark_id])
    if landmarks.confidence:
        node.SetAttribute(CONFIDENCE_ATTRIBUTE, json.dumps({k: float(v) for k, v in landmarks.confidence.items()}))
    node.EndModify(was_modifying)
    node.CreateDefaultDisplayNodes()
    return node


def update_markups_node(node, landmarks) -> None:
    """Move a markups node's control points to ``landmarks`` (the same ids, in order), in place."""
    was_modifying = node.StartModify()
    for index, point in enumerate(landmarks.points @ LPS_TO_RAS):
        node.SetNthControlPointPosition(index, float(point[0]), float(point[1]), float(point[2]))
    node.EndModify(was_modifying)


def read_markups_node(node):
    """The :class:`~medface.data.Landmarks` (LPS) of a markups node: its placed control points,
    ids from their labels."""
    from ..data.landmarks import Landmarks

    _refuse_transformed(node)
    slicer = require_slicer()
    ids, points, descriptions = [], [], {}
    for index in range(node.GetNumberOfControlPoints()):
        if node.GetNthControlPointPositionStatus(index) != slicer.vtkMRMLMarkupsNode.PositionDefined:
            continue
        position = [0.0, 0.0, 0.0]
        node.GetNthControlPointPosition(index, position)
        label = node.GetNthControlPointLabel(index)
        ids.append(label)
        points.append(position)
        if node.GetNthControlPointDescription(index):
            descriptions[label] = node.GetNthControlPointDescription(index)
    confidence = _confidences(node)
    return Landmarks(ids, np.array(points, dtype=np.float64).reshape(-1, 3) @ LPS_TO_RAS,
                     confidence={k: v for k, v in confidence.items() if k in ids}, descriptions=descriptions,
                     name=node.GetName(), source=node.GetName())


def _confidences(node) -> dict[str, float]:
    text = node.GetAttribute(CONFIDENCE_ATTRIBUTE)
    if not text:
        return {}
    try:
        found = json.loads(text)
        return {str(k): float(v) for k, v in found.items()}
    except (ValueError, TypeError, AttributeError):
        raise InputError(f"the markups '{node.GetName()}' have an unreadable {CONFIDENCE_ATTRIBUTE} attribute",
                         hint="remove the attribute or set it to a JSON object of id: confidence") from None


# ------------------------------------------------------------------------------ results
def add_result(scene, result_dir: Path, *, figures: bool = True) -> list:
    """Add every volume, mesh, landmark set and picture of a medface result folder to ``scene``.

    Reads ``result.json``: each file listed in ``outputs`` (and each picture in ``figures``)
    that medface reads becomes a node named after its output; tables, JSON, reports and plans
    are skipped. A mesh with point data shows its first scalar array as a colour map; skin and
    bone surfaces get medface's skin and bone colours. The nodes go into one subject-hierarchy
    folder named after the command. A listed file that is missing or unreadable raises
    :class:`InputError` naming it. Returns the nodes in the order they were listed.
    ``figures=False`` leaves out the pictures that are only figures (the app shows those beside
    the scene).
    """
    result_dir = Path(result_dir)
    document = read_result_document(result_dir)
    nodes = []
    for name, file, data in result_entries(result_dir, document, figures=figures):
        node = add_data(scene, data, name)
        node.SetAttribute(RESULT_FILE_ATTRIBUTE, file)
        nodes.append(node)
    if nodes:
        _put_in_folder(scene, nodes, str(document.get("command") or result_dir.name))
    return nodes


def read_result_document(result_dir: Path) -> dict:
    """The parsed ``result.json`` of a result folder, checked for the keys :func:`add_result` uses."""
    from ..io.textfiles import load_json

    path = Path(result_dir) / "result.json"
    if not path.is_file():
        raise InputError(f"{result_dir} has no result.json, so it is not a medface result folder", path=result_dir,
                         hint="give the folder a command wrote with --out")
    document = load_json(path, "result file")
    if not isinstance(document, dict):
        raise InputError("the result file is not a JSON object", path=path)
    for key in ("outputs", "figures"):
        listing = document.get(key) or {}
        if not isinstance(listing, dict) or not all(isinstance(v, str) for v in listing.values()):
            raise InputError(f"the result file's '{key}' must map names to file names", path=path)
    return document


def result_entries(result_dir: Path, document: dict, *, figures: bool = True) -> list[tuple[str, str, object]]:
    """(name, file, data object) for every file of a result that medface reads, in the order
    ``outputs`` then ``figures`` list them (a figure that is also an output comes once)."""
    from .. import io

    found = []
    for name, file in _listing(document, figures):
        path = _listed_path(Path(result_dir), name, file)
        if _readable_kind(path) is not None:
            found.append((name, file, io.read(path)))
    return found


def _listing(document: dict, with_figures: bool = True) -> list[tuple[str, str]]:
    outputs = list((document.get("outputs") or {}).items())
    listed = {file for _, file in outputs}
    figures = (document.get("figures") or {}).items() if with_figures else ()
    return outputs + [(name, file) for name, file in figures if file not in listed]


def _listed_path(result_dir: Path, name: str, file: str) -> Path:
    path = result_dir / file
    try:
        path.resolve().relative_to(result_dir.resolve())
    except ValueError:
        raise InputError(f"the result lists '{name}' as {file}, outside the result folder", path=result_dir,
                         hint="a result folder's files lie inside it; was result.json edited?") from None
    if not path.exists():
        raise InputError(f"the result lists '{name}' as {file}, which is missing", path=path,
                         hint="the result folder is incomplete; run the command again or restore the file")
    return path


def _readable_kind(path: Path) -> str | None:
    """The category medface reads ``path`` as; None for a file of another kind (a table, a
    report, JSON, a plan). A file whose name claims a data format must be readable."""
    from .. import io

    try:
        kind = io.sniff(path)
    except InputError:
        if _claims_a_data_format(path.name):
            raise
        return None
    return None if kind == "csv" else io.category(kind)


def _claims_a_data_format(name: str) -> bool:
    """Whether a file name ends like a volume, mesh, picture or markups file medface writes."""
    from ..io.images import IMAGE_SUFFIXES
    from ..io.meshes import MESH_SUFFIXES
    from ..io.volumes import VOLUME_SUFFIXES

    return name.lower().endswith((*VOLUME_SUFFIXES, *MESH_SUFFIXES, *IMAGE_SUFFIXES, ".dcm", ".mrk.json"))


def add_data(scene, data, name: str):
    """Add any medface data object as the node its type becomes (see the module docstring)."""
    from ..data import FaceImage, Landmarks, SurfaceMesh, Volume

    if isinstance(data, Volume):
        return add_volume(scene, data, name)
    if isinstance(data, SurfaceMesh):
        first_scalar = next((key for key, values in data.point_data.items() if np.asarray(values).ndim == 1), None)
        return add_mesh(scene, data, name, scalars=first_scalar, color=_tissue_colour(name))
    if isinstance(data, Landmarks):
        return add_landmarks(scene, data, name)
    if isinstance(data, FaceImage):
        return add_photo(scene, data, name)
    raise InputError(f"'{name}' is a {type(data).__name__}, which a Slicer scene cannot show")


def _tissue_colour(name: str) -> str | None:
    words = name.lower().replace("-", "_").split("_")
    return next((_TISSUE_COLOURS[word] for word in words if word in _TISSUE_COLOURS), None)


def _put_in_folder(scene, nodes: list, folder_name: str) -> None:
    """Put ``nodes`` under a new subject-hierarchy folder (Slicer's Data module tree)."""
    hierarchy = require_slicer().vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    folder = hierarchy.CreateFolderItem(hierarchy.GetSceneItemID(), folder_name)
    for node in nodes:
        item = hierarchy.GetItemByDataNode(node)
        if item:
            hierarchy.SetItemParent(item, folder)
        else:
            hierarchy.CreateItem(folder, node)
