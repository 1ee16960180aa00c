"""A result folder as a 3D Slicer scene bundle (``.mrb``): ``medface export-slicer``.

A bundle is a zip file holding a ``.mrml`` scene and its data files, which desktop 3D Slicer
opens with File > Add Data (or by dropping the file on its window). The scene is built and
written by slicer-core, 3D Slicer's own MRML library, headless: volumes as NRRD, models as
legacy VTK files with their point data, landmarks as Markups JSON (coordinate system LPS),
medface's colour tables as CSV colour tables. docs/workstation.md.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError, OutputError
from . import mrml

MRB_SUFFIX = ".mrb"


def export_slicer(result_dir, mrb_path) -> Path:
    """Write the volumes, meshes, landmarks and pictures of ``result_dir`` as the bundle ``mrb_path``.

    Refused with :class:`InputError` (nothing written): a target not ending in ``.mrb``, a
    folder without ``result.json``, a result with nothing a Slicer scene shows, a listed file
    that is missing or unreadable. The bundle is written to a temporary file beside the target
    and renamed into place, so a failure leaves no half-written file.
    """
    result_dir, mrb_path = Path(result_dir), Path(mrb_path)
    require_mrb_name(mrb_path)
    scene = mrml.new_scene()
    if not mrml.add_result(scene, result_dir):
        raise InputError("the result has no volume, mesh, landmarks or picture to put in a Slicer scene",
                         path=result_dir, hint="only tables, JSON and reports were listed in its result.json")
    return write_scene_bundle(scene, mrb_path)


def require_mrb_name(path: Path) -> None:
    """Refuse a bundle path that does not end in ``.mrb`` (Slicer tells a bundle by its name)."""
    if not path.name.lower().endswith(MRB_SUFFIX) or len(path.name) <= len(MRB_SUFFIX):
        raise InputError(f"a Slicer scene bundle is written to a .mrb file, not '{path.name}'", path=path,
                         hint="name the output like scene.mrb")


def write_scene_bundle(scene, mrb_path) -> Path:
    """Write ``scene`` as the bundle ``mrb_path`` with Slicer's ``WriteToMRB``, atomically.

    Each storable node without a storage node gets its default one (Slicer's own choice of
    format, see :func:`add_storage_nodes`); the scene's file paths inside the bundle are
    relative to it.
    """
    from ..io._files import atomic_output

    mrb_path = Path(mrb_path)
    require_mrb_name(mrb_path)
    mrml.prepare_scene(scene)
    add_storage_nodes(scene)
    messages = mrml.require_slicer().vtkMRMLMessageCollection()
    with atomic_output(mrb_path, "Slicer scene bundle") as tmp, quiet_vtk(), kept_working_directory():
        if not scene.WriteToMRB(os.fspath(tmp), None, messages) or not Path(tmp).is_file():
            raise OutputError(f"3D Slicer could not write the scene bundle: {_problems(messages)}", path=mrb_path)
    return mrb_path


def add_storage_nodes(scene) -> list:
    """Give every storable node that is saved with the scene its default storage node.

    ``CreateDefaultStorageNode`` picks what desktop Slicer writes: a volume archetype storage
    node (``.nrrd``), a model storage node (``.vtk``, in LPS), a markups JSON storage node
    (``.mrk.json``, in LPS), a colour table storage node (``.csv``; not the older ``.ctbl``,
    whose header comment records the absolute path it was written to). Returns the storage
    nodes added.
    """
    added = []
    for node in _nodes_of_class(scene, "vtkMRMLStorableNode"):
        if not node.GetSaveWithScene() or node.GetStorageNode() is not None:
            continue
        if not node.AddDefaultStorageNode():
            raise OutputError(f"3D Slicer has no storage for '{node.GetName()}' ({node.GetClassName()})")
        added.append(node.GetStorageNode())
    return added


def _nodes_of_class(scene, class_name: str) -> list:
    return [scene.GetNthNodeByClass(i, class_name) for i in range(scene.GetNumberOfNodesByClass(class_name))]


def read_mrb(mrb_path):
    """A new headless scene read from the bundle ``mrb_path`` with Slicer's ``ReadFromMRB``.

    The bundle is unpacked into a temporary folder that is removed afterwards (its data are
    in memory by then). Meant for medface's own bundles and tests.
    """
    mrb_path = Path(mrb_path)
    require_mrb_name(mrb_path)
    if not mrb_path.is_file():
        raise InputError("the scene bundle does not exist", path=mrb_path)
    scene = mrml.new_scene()
    messages = mrml.require_slicer().vtkMRMLMessageCollection()
    with tempfile.TemporaryDirectory(prefix="medface-mrb-") as cache, quiet_vtk(), kept_working_directory():
        scene.SetDataIOManager(_data_io_manager(cache))
        try:
            read = scene.ReadFromMRB(os.fspath(mrb_path.resolve()), False, messages)
        finally:
            scene.SetDataIOManager(None)
    if not read:
        raise InputError(f"3D Slicer could not read the scene bundle: {_problems(messages)}", path=mrb_path)
    return scene


def _data_io_manager(cache_dir: str):
    """The data I/O manager ``ReadFromMRB`` asks for its unpacking folder (the remote cache)."""
    slicer = mrml.require_slicer()
    cache = slicer.vtkCacheManager()
    cache.SetRemoteCacheDirectory(cache_dir)
    manager = slicer.vtkDataIOManager()
    manager.SetCacheManager(cache)
    return manager


def _problems(messages) -> str:
    """Slicer's messages about a failed read or write, on one line."""
    text = " ".join(line.strip().lstrip("- ") for line in messages.GetAllMessagesAsString().splitlines())
    return text.strip() or "Slicer gave no reason"


@contextmanager
def kept_working_directory() -> Iterator[None]:
    """Restore the current folder afterwards: slicer-core's ``ReadFromMRB`` changes into its
    unpacking folder and, when the bundle is corrupt, stays there (a folder then removed)."""
    previous = os.getcwd()
    try:
        yield
    finally:
        os.chdir(previous)


@contextmanager
def quiet_vtk() -> Iterator[None]:
    """Keep VTK's and MRML's log output off the terminal for a while, then restore it.

    ``WriteToMRB`` reports each file it zips (with its temporary path) and the markups writer
    warns that a headless scene has no unit node; a command line should print neither. What
    went wrong in a failed read or write comes from Slicer's message collection instead.
    """
    from vtkmodules.vtkCommonCore import vtkLogger, vtkOutputWindow, vtkStringOutputWindow

    previous_window = vtkOutputWindow.GetInstance()
    previous_verbosity = vtkLogger.GetCurrentVerbosityCutoff()
    vtkOutputWindow.SetInstance(vtkStringOutputWindow())
    vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_OFF)
    try:
        yield
    finally:
        vtkLogger.SetStderrVerbosity(previous_verbosity)
        vtkOutputWindow.SetInstance(previous_window)
