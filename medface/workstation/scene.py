"""The workstation's scene: one MRML scene (3D Slicer's) with what the user loaded and computed.

Logic without a user interface: load data-folder files and result folders, list the nodes
for pickers, write a node back to a file when a command needs it as input, apply a live
panel's update (mesh vertices replaced in place, so a slider move costs no new node), and save
the scene as a Slicer bundle. The page (:mod:`.app`) only calls these.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from . import mrml

SCENE_PREFIX = "scene:"  # a picker value naming a scene node instead of a data-folder file
_KINDS = {"vtkMRMLScalarVolumeNode": "volume", "vtkMRMLVectorVolumeNode": "image", "vtkMRMLModelNode": "mesh",
          "vtkMRMLMarkupsFiducialNode": "landmarks"}
PATH_ATTRIBUTE = "medface.path"  # the data-folder file a node was read from


@dataclass(frozen=True)
class NodeEntry:
    """A node as a picker shows it."""

    id: str
    name: str
    kind: str  # volume, image, mesh, landmarks
    path: str  # the data-folder file it came from, "" for a node made in the app
    visible: bool


#: how much of a map shown over a photo covers it (the photo shows through)
OVERLAY_OPACITY = 0.5


class WorkstationScene:
    """The MRML scene of a :class:`trame_slicer.core.SlicerApp`, with medface's data in LPS mm."""

    def __init__(self, slicer_app):
        self.app = slicer_app
        self.scene = slicer_app.scene

    # ------------------------------------------------------------------ loading
    def load_file(self, path: Path, relative: str, name: str | None = None):
        """Read a data file (volume, mesh, landmarks, photo) into the scene; returns its node."""
        from .. import io

        data = io.read(path)
        node = self.add(data, name or _stem(Path(relative)))
        node.SetAttribute(PATH_ATTRIBUTE, relative)
        return node

    def add(self, data, name: str):
        """Add a medface data object (Volume, SurfaceMesh, Landmarks, FaceImage) as a node; a
        volume or a photo is shown in the slice views."""
        node = mrml.add_data(self.scene, data, name)
        if node.IsA("vtkMRMLVolumeNode"):
            self.app.display_manager.show_volume_in_slice_background(node)
        return node

    def load_result(self, result_dir: Path, relative_dir: str) -> list:
        """Every volume, mesh, landmark set and photo of a result folder, as nodes."""
        nodes = mrml.add_result(self.scene, result_dir, figures=False)
        for node in nodes:  # the file each node was read from, for pickers
            node.SetAttribute(PATH_ATTRIBUTE, f"{relative_dir}/{node.GetAttribute(mrml.RESULT_FILE_ATTRIBUTE)}")
        for node in nodes:
            if node.IsA("vtkMRMLScalarVolumeNode") and not node.IsA("vtkMRMLVectorVolumeNode"):
                picture = self.picture_on_grid_of(node)
                if picture is None:
                    self.app.display_manager.show_volume_in_slice_background(node)
                else:  # a map over a photo (an attention map): shown over it, half see-through
                    self.show_over(picture, node)
        return nodes

    def picture_on_grid_of(self, volume):
        """The photo node (an RGB volume) on exactly the grid of ``volume``, or None."""
        for i in range(self.scene.GetNumberOfNodesByClass("vtkMRMLVectorVolumeNode")):
            picture = self.scene.GetNthNodeByClass(i, "vtkMRMLVectorVolumeNode")
            if mrml.same_grid(picture, volume):
                return picture
        return None

    def show_over(self, picture, overlay, opacity: float = OVERLAY_OPACITY) -> None:
        """``picture`` in the slice views' background, ``overlay`` over it in a colour map."""
        mrml.show_as_heat_map(self.scene, overlay)
        self.app.display_manager.show_volume_in_slice_background(picture)
        self.app.display_manager.show_volume_in_slice_foreground(overlay)
        for view in self.app.view_manager.get_slice_views():
            view.set_foreground_opacity(opacity)

    def path_loaded(self, relative: str) -> bool:
        """Whether a node read from data-folder file ``relative`` is in the scene."""
        return any(e.path == relative for e in self.entries())

    # ------------------------------------------------------------------ listing
    def entries(self) -> list[NodeEntry]:
        found = []
        for class_name, kind in _KINDS.items():
            for i in range(self.scene.GetNumberOfNodesByClass(class_name)):
                node = self.scene.GetNthNodeByClass(i, class_name)
                if node.GetClassName() != class_name or node.GetHideFromEditors():
                    continue
                display = node.GetDisplayNode()
                found.append(NodeEntry(node.GetID(), node.GetName(), kind, node.GetAttribute(PATH_ATTRIBUTE) or "",
                                       bool(display.GetVisibility()) if display is not None else True))
        return found

    def colour_legends(self) -> list[dict]:
        """A colour bar's content for each visible model coloured by point data (:func:`.mrml.colour_legend`)."""
        found = []
        for i in range(self.scene.GetNumberOfNodesByClass("vtkMRMLModelNode")):
            node = self.scene.GetNthNodeByClass(i, "vtkMRMLModelNode")
            if not node.GetHideFromEditors():
                legend = mrml.colour_legend(node)
                if legend is not None:
                    found.append(legend)
        return found

    def node(self, node_id: str):
        node = self.scene.GetNodeByID(node_id)
        if node is None:
            raise InputError(f"the scene has no node {node_id!r} (was it removed?)")
        return node

    def node_named(self, name: str):
        nodes = self.scene.GetNodesByName(name)
        return nodes.GetItemAsObject(0) if nodes.GetNumberOfItems() else None

    def set_visible(self, node_id: str, visible: bool) -> None:
        display = self.node(node_id).GetDisplayNode()
        if display is not None:
            display.SetVisibility(bool(visible))

    def remove(self, node_id: str) -> None:
        self.scene.RemoveNode(self.node(node_id))

    def clear(self) -> None:
        for entry in self.entries():
            self.scene.RemoveNode(self.scene.GetNodeByID(entry.id))

    # ------------------------------------------------------------------ data out
    def data_of(self, node_id: str):
        """The medface data object (LPS mm) of a node."""
        node = self.node(node_id)
        if node.IsA("vtkMRMLModelNode"):
            return mrml.read_model_node(node)
        if node.IsA("vtkMRMLMarkupsFiducialNode"):
            return mrml.read_markups_node(node)
        if node.IsA("vtkMRMLScalarVolumeNode"):
            return mrml.read_volume_node(node)
        raise InputError(f"'{node.GetName()}' cannot be given to a command")

    def write_input(self, node_id: str, folder: Path) -> Path:
        """A node as a file in ``folder`` (for a command's input), in its type's usual format."""
        from .. import io

        return io.write_to_folder(self.data_of(node_id), folder, _file_stem(self.node(node_id).GetName()))

    # ------------------------------------------------------------------ live panels
    def show_update(self, prefix: str, update) -> list:
        """Put a panel's meshes and landmarks into the scene: nodes named ``prefix: name``, updated
        in place when they exist (a slider move adds no node). Returns the nodes it added."""
        added = []
        for name, mesh in update.meshes.items():
            node = self.node_named(f"{prefix}: {name}")
            if node is not None and _same_topology(node, mesh):
                mrml.update_model_node(node, mesh)
                continue
            if node is not None:
                self.scene.RemoveNode(node)
            added.append(mrml.add_mesh(self.scene, mesh, f"{prefix}: {name}"))
        for name, landmarks in update.landmarks.items():
            node = self.node_named(f"{prefix}: {name}")
            if node is not None and node.GetNumberOfControlPoints() == len(landmarks.ids):
                mrml.update_markups_node(node, landmarks)
                continue
            if node is not None:
                self.scene.RemoveNode(node)
            added.append(mrml.add_landmarks(self.scene, landmarks, f"{prefix}: {name}"))
        return added

    # ------------------------------------------------------------------ saving
    def save_landmarks(self, node_id: str, target: Path) -> Path:
        from .. import io

        data = self.data_of(node_id)
        if not hasattr(data, "ids"):
            raise InputError(f"'{self.node(node_id).GetName()}' is not a set of landmarks")
        io.write_landmarks(data, target)
        return target


def replaced_inputs(inputs, outputs) -> list[str]:
    """The panel inputs a panel's meshes stand in for: an output named like the input, or the
    input's name and a suffix (``segment`` -> ``segment_moved``, ``skin`` -> ``skin_predicted``).
    Those are hidden while the panel shows its versions; the rest (a fixed skull) stay in view."""
    return [name for name in inputs if any(out == name or out.startswith(f"{name}_") for out in outputs)]


def _same_topology(node, mesh) -> bool:
    poly = node.GetPolyData()
    return poly is not None and poly.GetNumberOfPoints() == len(mesh.vertices) and \
        poly.GetNumberOfPolys() == len(mesh.faces)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".mrk.json", ".nii.gz", ".landmarks.json"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem or name


def _file_stem(name: str) -> str:
    from .files import safe_name

    return safe_name(name).replace(".", "_") or "node"
