"""The surgery commands' pictures, as :class:`medface.data.outputs.Figure` descriptions.

Each function returns figures whose scenes are built only when the runner writes them (through
``medface.viz``), so a script that asks for no output folder never starts VTK.
"""

from __future__ import annotations

from medface.data import SurfaceMesh
from medface.data.outputs import Figure


def _bone_scene(meshes):
    from medface.viz import Scene

    scene = Scene()
    for mesh in meshes:
        scene.add_mesh(mesh, color="bone")
    return scene


def _skin_scenes(skin: SurfaceMesh, skin_after: SurfaceMesh) -> list:
    from medface.viz import Scene

    return [Scene().add_mesh(skin), Scene().add_mesh(skin_after, scalars="displacement_mm", cmap="viridis")]


def simulation_figures(bones: dict[str, SurfaceMesh], sim) -> list[tuple[str, str, Figure]]:
    """(name, file name, figure) of a :class:`.simulation.SimulationResult`'s pictures: bone and
    skin before and after from the left, the skin before and after from the front (displacement
    in mm)."""
    after = [*sim.planned.segments.values(), *(sim.pieces[k] for k in sim.fixed)]

    def left() -> list:
        return [_bone_scene(bones.values()), _bone_scene(after), *_skin_scenes(sim.skin, sim.skin_after)]

    def frontal() -> list:
        return _skin_scenes(sim.skin, sim.skin_after)

    return [("before/after (left)", "before_after_left.png",
             Figure(left, views="left", size=(360, 360),
                    titles=["bone before", "bone after", "skin before", "skin after (mm)"])),
            ("before/after (frontal)", "before_after_frontal.png",
             Figure(frontal, views="frontal", size=(400, 400), titles=["skin before", "skin after (mm)"]))]


def segmentation_figure(meshes: dict[str, SurfaceMesh]) -> Figure:
    """Skin and bone (mandible in blue) of a segmentation, from the front and the left."""

    def scenes() -> list:
        from medface.viz import Scene

        bone = Scene().add_mesh(meshes["skull"], color="bone", name="skull")
        if "mandible" in meshes:
            bone.add_mesh(meshes["mandible"], color=(0.75, 0.82, 0.95), name="mandible")
        skin = Scene().add_mesh(meshes["skin"], color="skin", name="skin")
        return [skin, bone, bone]

    return Figure(scenes, views=["frontal", "frontal", "left"], size=(400, 400),
                  titles=["skin", "bone (mandible blue)", "bone, left"])
