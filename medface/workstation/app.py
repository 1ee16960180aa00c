"""``medface app``: the workstation page, on trame and 3D Slicer's core (trame-slicer).

What is shown: the MRML scene in a 3D view and three slice views (Slicer's own views,
rendered on the server); on the left, tabs for the data folder, the plugins' commands (forms
generated from their manifests, runs in a worker with progress and cancel), the plugins' live
panels and the scene's nodes. The logic lives in :mod:`.scene`, :mod:`.forms`, :mod:`.jobs`,
:mod:`.files`, :mod:`.views` and :mod:`medface.plugin.panels`; this module only binds it to the page.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import time
from pathlib import Path

from ..errors import InputError, MedfaceError
from . import forms
from .files import RUNS, DataFolder, safe_name
from .scene import PATH_ATTRIBUTE, SCENE_PREFIX, WorkstationScene, replaced_inputs
from .jobs import DONE, REFUSED, one_line, start_job
from .views import InteractiveResolution, register_views

TITLE = "medface workstation"
POLL_SECONDS = 0.25
FIGURE_LIMIT = 3 * 1024 * 1024  # figures larger than this are linked, not shown inline


class Workstation:
    """One app: a trame server, a Slicer scene and the panels that act on it."""

    def __init__(self, data: DataFolder, *, server=None):
        from trame.app import get_server
        from trame_slicer import module as trame_slicer_module
        from trame_slicer.core import LayoutManager, SlicerApp

        from ..plugin.registry import get_registry

        self.data = data
        self.server = server or get_server("medface-workstation", client_type="vue3")
        self.server.enable_module(trame_slicer_module)
        self.state, self.ctrl = self.server.state, self.server.controller
        self.slicer = SlicerApp()
        self.frames = InteractiveResolution(register_views(self.slicer.view_manager, self.server))
        self.layouts = LayoutManager(self.slicer.scene, self.slicer.view_manager, self.server)
        self.layouts.register_layout_dict(LayoutManager.default_grid_configuration())
        self.layouts.set_layout("3D Primary")
        self.scene = WorkstationScene(self.slicer)
        self.registry = get_registry()
        self.jobs: list = []
        self.panel = None  # (spec, logic object) of the open live panel
        self.panel_frame = None  # its last PanelUpdate
        (data.root / RUNS).mkdir(exist_ok=True)
        self.server.serve["runs"] = str(data.root / RUNS)
        self._init_state()
        self._build_page()
        self.ctrl.on_server_ready.add(self._start_polling)

    # ------------------------------------------------------------------ state
    def _init_state(self) -> None:
        s = self.state
        s.trame__title = TITLE
        s.error_text = ""
        s.info_text = ""
        s.data_entries, s.data_folders = [], []
        s.scene_nodes = []
        s.colour_legends = []
        s.commands = [{"title": f"{c.plugin} · {c.id} — {c.heading}", "value": c.full_id}
                      for c in self.registry.commands()]
        s.broken_plugins = [f"{p.name}: {p.error}" for p in self.registry.broken()]
        s.command_id = None
        s.command_help = ""
        s.form_fields, s.form_values, s.form_choices = [], {}, {}
        s.job_running = False
        s.job_progress = ""
        s.job = None
        s.panels = [{"title": f"{p.plugin} · {p.title or p.id}", "value": p.full_id} for p in self.registry.panels()]
        s.panel_id = None
        s.panel_help = ""
        s.panel_inputs, s.panel_controls = [], []
        s.panel_values, s.panel_choices, s.panel_picks = {}, {}, {}
        s.panel_open = False
        s.panel_actions = []
        s.panel_busy = False
        s.panel_summary = []
        s.panel_ms = 0.0
        s.upload_files = None
        s.placing = False
        s.frame_count = 0
        self.refresh_data()
        self.state.change("command_id")(self._on_command)
        self.state.change("panel_id")(self._on_panel)
        self.state.change("panel_values")(self._on_panel_values)
        self.state.change("upload_files")(self._on_upload)

    # ------------------------------------------------------------------ data folder and scene
    def refresh_data(self) -> None:
        entries = self.data.listing()
        self.state.data_entries = [{"path": e.path, "category": e.category, "size_mb": round(e.size / 2**20, 2)}
                                   for e in entries]
        self.state.data_folders = self.data.folders()
        self._refresh_choices()

    def refresh_scene(self) -> None:
        self.state.scene_nodes = [vars(e) for e in self.scene.entries()]
        self.state.colour_legends = self.scene.colour_legends()
        self._refresh_choices()  # pickers offer the scene's nodes: from scene_nodes, not the scene again

    def _refresh_choices(self) -> None:
        self.state.form_choices = {f["name"]: self._choices(f) for f in self.state.form_fields or []}
        self.state.panel_choices = {f["name"]: self._scene_choices(f["accepts"]) for f in self.state.panel_inputs or []}

    def _scene_choices(self, accepts) -> list[dict]:
        return [{"title": f"scene: {n['name']}", "value": f"{SCENE_PREFIX}{n['id']}"} for n in self.state.scene_nodes
                if n["kind"] in accepts]

    def _choices(self, field: dict) -> list[dict]:
        if field["widget"] == "folder":
            return [{"title": d, "value": d} for d in self.state.data_folders]
        if field["widget"] != "file":
            return []
        accepts = field["accepts"]
        files = [{"title": e["path"], "value": e["path"]} for e in self.state.data_entries
                 if "" in accepts or e["category"] in accepts]
        return self._scene_choices(accepts) + files

    def load(self, relative: str) -> None:
        """Load a data-folder file into the scene."""
        with self._reported():
            path = self.data.existing(relative)
            self.scene.load_file(path, relative)
            self._after_scene_change(reset=True)
            self.state.info_text = f"loaded {relative}"

    def _after_scene_change(self, reset: bool = False) -> None:
        self.refresh_scene()
        if reset:
            self.slicer.display_manager.reset_views()
        self.render()

    def render(self, only_3d: bool = False) -> None:
        views = self.slicer.view_manager.get_threed_views() if only_3d else self.slicer.view_manager.get_views()
        for view in views:
            view.schedule_render()

    def set_visible(self, node_id: str, visible: bool) -> None:
        with self._reported():
            self.scene.set_visible(node_id, visible)
            self._after_scene_change()

    def remove_node(self, node_id: str) -> None:
        with self._reported():
            self.scene.remove(node_id)
            self._after_scene_change()

    def clear_scene(self) -> None:
        with self._reported():
            self.scene.clear()
            self._after_scene_change()

    def _on_upload(self, upload_files=None, **_) -> None:
        if not upload_files:
            return
        with self._reported():
            files = upload_files if isinstance(upload_files, list) else [upload_files]
            saved = []
            for item in files:  # the data folder refuses one over the size limit
                content = item.get("content") or b""
                if isinstance(content, list):  # chunked
                    content = b"".join(content)
                saved.append(self.data.relative(self.data.save_upload(item.get("name") or "upload", content)))
            self.refresh_data()
            self.state.info_text = "uploaded " + ", ".join(saved)
        self.state.upload_files = None

    # ------------------------------------------------------------------ landmarks
    def start_placing(self) -> None:
        with self._reported():
            node = self.scene.node_named("placed landmarks")
            if node is None:
                node = self.slicer.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "placed landmarks")
            self.slicer.markups_logic.place_node(node, True)
            self.state.placing = True
            self.refresh_scene()

    def stop_placing(self) -> None:
        with self._reported():
            self.slicer.markups_logic.disable_place_mode()
            self.state.placing = False
            self.refresh_scene()

    def save_landmarks(self, node_id: str) -> None:
        with self._reported():
            name = self.scene.node(node_id).GetName()
            folder = self.data.root / "landmarks"
            folder.mkdir(exist_ok=True)
            target = self.scene.save_landmarks(node_id, folder / f"{safe_name(name)}.mrk.json")
            self.refresh_data()
            self.state.info_text = f"saved {self.data.relative(target)}"

    def export_scene(self) -> None:
        """The whole scene as a Slicer bundle in ``exports/`` of the data folder."""
        with self._reported():
            from .slicer_scene import write_scene_bundle

            folder = self.data.root / "exports"
            folder.mkdir(exist_ok=True)
            target = folder / f"scene-{time.strftime('%Y%m%d-%H%M%S')}.mrb"
            write_scene_bundle(self.slicer.scene, target)
            self.refresh_data()
            self.state.info_text = f"saved the scene as {self.data.relative(target)} (opens in 3D Slicer)"

    # ------------------------------------------------------------------ commands
    def _on_command(self, command_id=None, **_) -> None:
        if not command_id:
            self.state.form_fields, self.state.form_values = [], {}
            return
        with self._reported():
            _, command = self.registry.command(command_id)
            fields = forms.form_for(command)
            self.state.command_help = " ".join(command.help.split())
            self.state.form_fields = [f.to_dict() for f in fields]
            self.state.form_values = {f.name: f.default for f in fields}
            self._refresh_choices()

    def run_command(self, values=None) -> None:
        """Start the chosen command in a worker with the form's values."""
        with self._reported():
            command = self._command_to_start(self.state.command_id)
            entered = dict(values if values is not None else self.state.form_values or {})
            self._start(command, lambda folder: self._scene_inputs_as_files(command, entered, folder / "inputs"))

    def run_panel_action(self, command_id: str) -> None:
        """Start the command an action of the open panel names, on the panel's current state (its
        data objects written into the run folder's ``inputs/``)."""
        from ..plugin.panels import action_inputs

        with self._reported():
            if self.panel is None:
                raise InputError("open the panel first")
            spec, logic = self.panel
            command = self._command_to_start(f"{spec.plugin}.{command_id}")
            controls = {k: v for k, v in (self.state.panel_values or {}).items() if v is not None}
            given = action_inputs(logic, spec, command_id, **controls)
            self._start(command, lambda folder: self._data_as_files(given, folder / "inputs"), from_panel=True)

    def _command_to_start(self, command_id):
        if self.state.job_running:
            raise InputError("a command is already running; wait for it or cancel it")
        if not command_id:
            raise InputError("choose a command first")
        return self.registry.command(command_id)[1]

    def _start(self, command, entered_in, from_panel: bool = False) -> None:
        """A run folder, the values ``entered_in(folder)`` gives (files inside it), the worker."""
        folder = self.data.run_folder(command.full_id)
        try:
            params = forms.values_for_run(command, entered_in(folder), self.data)
            out_param, out_path = forms.output_target(command, folder)
            job = start_job(command.full_id, params, out_path or folder, out_param)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # a run that never started leaves no folder
            raise
        self.jobs.append(job)
        self.state.job_running = True
        self.state.job_progress = "starting the worker"
        self.state.job = {"command": command.full_id, "state": "running", "error": "", "summary": [],
                          "warnings": [], "figures": [], "report": "", "folder": self.data.relative(folder),
                          "from_panel": from_panel, "pictures": self._pictures_of(command, params)}

    def _pictures_of(self, command, params: dict) -> list[str]:
        """The data-folder paths of a run's photo inputs (shown with its result: maps over them)."""
        return [self.data.relative(Path(params[p.name])) for p in command.parameters
                if p.type == "image" and p.channel == "input" and params.get(p.name)]

    def _data_as_files(self, given: dict, folder: Path) -> dict:
        """Data objects among a command's values become files in ``folder`` (data-folder paths)."""
        from .. import io

        return {name: value if isinstance(value, (str, int, float, bool)) or value is None
                else self.data.relative(io.write_to_folder(value, folder, safe_name(name)))
                for name, value in given.items()}

    def _scene_inputs_as_files(self, command, entered: dict, folder: Path) -> dict:
        """Picker values that name scene nodes become files: the file a volume or mesh was read from,
        a new file for landmarks and for what the app made (panels' meshes, placed points)."""
        out = dict(entered)
        for spec in command.parameters:
            value = entered.get(spec.name)
            if isinstance(value, str) and value.startswith(SCENE_PREFIX):
                node_id = value[len(SCENE_PREFIX):]
                node = self.scene.node(node_id)
                known = node.GetAttribute(PATH_ATTRIBUTE)
                # landmarks may have been dragged in the views since they were read: always their current state
                if known and not node.IsA("vtkMRMLMarkupsNode"):
                    out[spec.name] = known
                else:
                    out[spec.name] = self.data.relative(self.scene.write_input(node_id, folder))
        return out

    def cancel_command(self) -> None:
        with self._reported():
            for job in self.jobs:
                job.cancel()
            self._poll_jobs()

    def _poll_jobs(self) -> None:
        for job in list(self.jobs):
            if not job.poll() and not job.done:
                continue
            if not job.done:
                self.state.job_progress = job.progress_text
                continue
            self.jobs.remove(job)
            self._show_job(job)

    def _show_job(self, job) -> None:
        folder = job.out_dir if job.out_dir.is_dir() else job.out_dir.parent  # an output file lies in the run folder
        relative = self.data.relative(folder)
        shown = dict(self.state.job or {})
        shown.update(state=job.state, error=job.error, summary=[[k, _shown(v)] for k, v in job.summary.items()],
                     warnings=job.warnings, seconds=round(job.seconds, 1))
        self.state.job_running = False
        self.state.job_progress = job.progress_text
        if job.state in (DONE, REFUSED) and (folder / "result.json").is_file():
            with self._reported():
                shown.update(figures=self._figures(folder), report=f"{RUNS}/{folder.name}/report.html"
                             if (folder / "report.html").is_file() else "")
                for picture in shown.get("pictures") or []:  # the photo a result's maps lie over
                    if not self.scene.path_loaded(picture):
                        self.scene.load_file(self.data.existing(picture), picture)
                self.scene.load_result(folder, relative)
                self._after_scene_change(reset=True)
        elif folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # a run that wrote nothing leaves no empty folder behind
        self.state.job = shown
        self.refresh_data()

    def _figures(self, folder: Path) -> list[dict]:
        """The result's PNG figures as pictures for the page (larger ones are left to the report)."""
        from .mrml import read_result_document

        doc = read_result_document(folder)
        shown = []
        for title, name in (doc.get("figures") or {}).items():
            path = (folder / str(name)).resolve()
            inside = path.is_relative_to(folder.resolve())  # a result.json naming ../x shows nothing outside
            if inside and path.suffix.lower() == ".png" and path.is_file() and path.stat().st_size <= FIGURE_LIMIT:
                shown.append({"title": title, "src": "data:image/png;base64," +
                              base64.b64encode(path.read_bytes()).decode("ascii")})
        return shown

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if self.jobs:
                with self.state:
                    self._poll_jobs()

    def _start_polling(self, **_) -> None:
        from trame_server.utils.asynchronous import create_task

        create_task(self._poll())

    # ------------------------------------------------------------------ live panels
    def _on_panel(self, panel_id=None, **_) -> None:
        self.panel = None
        self.panel_frame = None
        self.state.panel_actions = []
        self.state.panel_open = False
        self.state.panel_summary = []
        if not panel_id:
            self.state.panel_inputs, self.state.panel_controls = [], []
            return
        with self._reported():
            _, spec = self.registry.panel(panel_id)
            fields = forms.form_for(spec)
            self.state.panel_help = " ".join(spec.help.split())
            self.state.panel_inputs = [f.to_dict() for f in fields if f.widget == "file"]
            self.state.panel_controls = [f.to_dict() for f in fields if f.widget != "file"]
            self.state.panel_picks = {f.name: self._default_pick(f) for f in fields if f.widget == "file"}
            self.state.panel_values = {f.name: f.default for f in fields if f.widget != "file"}
            self.state.panel_actions = [{"command": a.command, "title": a.title, "help": " ".join(a.help.split())}
                                        for a in spec.actions]
            self._refresh_choices()

    def _default_pick(self, field) -> str | None:
        """The scene node named like the input (``skin`` for an input ``skin``), if any."""
        for entry in self.scene.entries():
            if entry.kind in field.accepts and entry.name.split()[-1] == field.name:
                return f"{SCENE_PREFIX}{entry.id}"
        return None

    def open_panel(self, picks=None) -> None:
        """Build the panel's logic from the picked scene nodes, then show its first update."""
        from ..plugin.panels import open_panel

        with self._reported():
            _, spec = self.registry.panel(self.state.panel_id)
            picks = dict(picks if picks is not None else self.state.panel_picks or {})
            inputs, used = {}, {}
            for field in self.state.panel_inputs:
                value = picks.get(field["name"])
                if not value:
                    if field["required"]:
                        raise InputError(f"pick a scene node for '{field['label']}'")
                    continue
                node_id = str(value).removeprefix(SCENE_PREFIX)
                inputs[field["name"]] = self.scene.data_of(node_id)
                used[field["name"]] = node_id
            self.state.panel_busy = True
            self.state.flush()
            logic = open_panel(spec.full_id, **inputs)
            self.panel = (spec, logic)
            first = self._apply_panel(self.state.panel_values or {}, reset=True)
            for name in replaced_inputs(used, first.meshes):  # the panel shows its own versions of these
                self.scene.set_visible(used[name], False)
            self._after_scene_change()
            self.state.panel_open = True
        self.state.panel_busy = False

    def _on_panel_values(self, panel_values=None, **_) -> None:
        if self.panel is not None and panel_values is not None:
            with self._reported():
                self._apply_panel(panel_values)

    def _apply_panel(self, values: dict, reset: bool = False):
        from ..plugin.panels import update_panel

        spec, logic = self.panel
        start = time.perf_counter()
        update = update_panel(logic, spec, **{k: v for k, v in values.items() if v is not None})
        self.panel_frame = update
        added = self.scene.show_update(spec.id, update)
        self.state.panel_summary = [[k, _shown(v)] for k, v in update.summary.items()]
        if update.warnings:
            self.state.info_text = "; ".join(update.warnings)
        if added or reset:
            self._after_scene_change(reset=reset)
        else:  # a slider move: the same nodes, moved; the 3D view first, at reduced resolution until it stops
            self.state.colour_legends = self.scene.colour_legends()  # their colour ranges follow the data
            self.frames.moving()
            self.render(only_3d=True)
        self.state.panel_ms = round((time.perf_counter() - start) * 1000, 1)
        return update

    def export_panel_meshes(self) -> None:
        """The open panel's meshes as they are now, as STL files in ``exports/`` of the data folder."""
        from .. import io

        with self._reported():
            if self.panel is None or self.panel_frame is None:
                raise InputError("open the panel first")
            spec = self.panel[0]
            folder = self.data.root / "exports" / f"{spec.id}-{time.strftime('%Y%m%d-%H%M%S')}"
            folder.mkdir(parents=True, exist_ok=True)
            written = [io.write_mesh(mesh, folder / f"{safe_name(name)}.stl")
                       for name, mesh in self.panel_frame.meshes.items()]
            self.refresh_data()
            self.state.info_text = (f"saved {len(written)} STL file(s) in {self.data.relative(folder)}" if written
                                    else "the panel shows no meshes to save")

    def close_panel(self) -> None:
        self.panel = None
        self.panel_frame = None
        self.state.panel_open = False

    # ------------------------------------------------------------------ errors
    def _reported(self):
        return _Reported(self.state)

    # ------------------------------------------------------------------ page
    def _build_page(self) -> None:
        from .page import build_page

        self.ui = build_page(self)

    def start(self, *, port: int, host: str, open_browser: bool = False, **kwargs) -> None:
        self.server.start(port=port, host=host, open_browser=open_browser, show_connection_info=False, **kwargs)


class _Reported:
    """Shows a medface error (or an internal one) as the page's one-line error; the app goes on."""

    def __init__(self, state):
        self.state = state

    def __enter__(self):
        self.state.error_text = ""
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None:
            return False
        if isinstance(exc, MedfaceError):
            self.state.error_text = (one_line(str(exc)) or type(exc).__name__)
        elif isinstance(exc, Exception):
            import traceback

            traceback.print_exception(kind, exc, tb)
            self.state.error_text = f"internal error ({type(exc).__name__}): {(one_line(str(exc)) or type(exc).__name__)}"
        else:
            return False
        self.state.panel_busy = False
        return True


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
