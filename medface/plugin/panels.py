"""Opening a plugin's interactive panel and updating it: the contract between plugins and the workstation.

A panel (a manifest's ``[[panels]]``, :class:`~.manifest.PanelSpec`) names a logic class and
typed parameters. Its **inputs** (mesh, landmarks, volume, image) are the scene data the class
is built from, once; its **controls** (int, float, bool, enum) are the widgets, whose values go
to ``update`` on every change::

    from medface.plugin.panels import open_panel, update_panel

    panel = open_panel("surgery.move-segment", skull="skull.ply", segment="mandible.ply", skin="skin.ply")
    frame = update_panel(panel, "surgery.move-segment", translation_y_mm=-5.0)
    frame.meshes["skin"].point_data["skin_change_mm"], frame.summary

Values are converted and checked by the runner's own binding (:func:`.params.bind`) before any
plugin code runs: a path is read through :mod:`medface.io`, a data object passes as it is, a
missing input or a control out of its range raises :class:`~medface.errors.ParameterError`.
A panel's **actions** (``[[panels.actions]]``) are buttons that run one of the plugin's commands on
the panel's current state: :func:`action_inputs` asks the logic object's
``command_inputs(command, **controls)`` for that command's parameter values (data objects or
plain values) and checks they name the command's inputs.

The class is imported through the registry, so an import failure makes the plugin broken and
raises :class:`~medface.errors.PluginError`, as a command's does; so does an ``update`` that
returns anything but a valid :class:`medface.data.PanelUpdate`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..data.panel import PanelUpdate
from ..errors import ParameterError, PluginError
from .manifest import PanelSpec, ParameterSpec
from .params import bind
from .registry import get_registry


class _Parameters(NamedTuple):
    """What :func:`.params.bind` reads from a command: an id for messages and the parameters."""

    full_id: str
    parameters: tuple[ParameterSpec, ...]


def open_panel(full_id: str, **inputs: Any) -> object:
    """The logic object of panel ``plugin.panel``, built from ``inputs`` (paths or data objects).

    Every required input must be given (an optional one left out is passed as None); controls
    are not given here but to :func:`update_panel`."""
    registry = get_registry()
    info, spec = registry.panel(full_id)
    _refuse(spec, inputs, spec.controls, "a control", "update_panel")
    bound = bind(_Parameters(spec.full_id, spec.inputs), inputs)  # before any plugin import
    logic_class = registry.load_callable(info, spec.python_name)
    panel = logic_class(**bound.values)
    if not callable(getattr(panel, "update", None)):
        raise PluginError(f"panel {spec.full_id}: {spec.python_name} has no update() method",
                          hint="a panel's class defines update(**controls) -> medface.data.PanelUpdate")
    return panel


def update_panel(panel: object, spec: PanelSpec | str, **values: Any) -> PanelUpdate:
    """``panel.update(**controls)`` with ``values`` converted and range-checked and the other
    controls at their defaults; the returned :class:`PanelUpdate` is checked before it is
    handed on. ``spec`` is the panel's :class:`PanelSpec` or its id (``"surgery.move-segment"``)."""
    if isinstance(spec, str):
        spec = get_registry().panel(spec)[1]
    return _checked_update(spec, panel.update(**_bound_controls(spec, values)))


def action_inputs(panel: object, spec: PanelSpec | str, command: str, **values: Any) -> dict[str, Any]:
    """The parameter values of the command an action of the panel runs, for the controls'
    ``values``: ``panel.command_inputs(command, **controls)``, checked to be a dict naming only
    input parameters of that command (the caller chooses where its output goes)."""
    registry = get_registry()
    if isinstance(spec, str):
        spec = registry.panel(spec)[1]
    if command not in {a.command for a in spec.actions}:
        raise ParameterError(f"panel {spec.full_id} has no action running '{command}' "
                             f"(it has {', '.join(a.command for a in spec.actions) or 'none'})", parameter="command")
    controls = _bound_controls(spec, values)
    produce = getattr(panel, "command_inputs", None)
    if not callable(produce):
        raise PluginError(f"panel {spec.full_id}: {spec.python_name} declares actions but has no command_inputs() "
                          "method", hint="define command_inputs(command, **controls) -> dict of parameter values")
    given = produce(command, **controls)
    target = registry.command(f"{spec.plugin}.{command}")[1]
    inputs = {p.name for p in target.parameters if p.channel == "input"}
    if not isinstance(given, dict) or not all(isinstance(k, str) and k in inputs for k in given):
        raise PluginError(f"panel {spec.full_id}: {spec.python_name}.command_inputs({command!r}) must return a dict "
                          f"of input parameters of {target.full_id} ({', '.join(sorted(inputs))}); got "
                          f"{sorted(given) if isinstance(given, dict) else type(given).__name__}")
    return given


def _bound_controls(spec: PanelSpec, values: dict) -> dict:
    """The controls' values converted, range-checked and completed with their defaults (an input
    given here is refused)."""
    _refuse(spec, values, spec.inputs, "an input", "open_panel")
    return bind(_Parameters(spec.full_id, spec.controls), values).values


def _refuse(spec: PanelSpec, given: dict, wrong: tuple[ParameterSpec, ...], what: str, where: str) -> None:
    """A ParameterError for a value given to the wrong call (an input to update, a control to open)."""
    names = {p.name for p in wrong}
    for key in given:
        if key.replace("-", "_") in names:
            raise ParameterError(f"is {what} of panel {spec.full_id}: give it to {where}()", parameter=key)


def _checked_update(spec: PanelSpec, update: object) -> PanelUpdate:
    if not isinstance(update, PanelUpdate):
        raise PluginError(f"panel {spec.full_id}: {spec.python_name}.update returned {type(update).__name__}, "
                          "not a medface.data.PanelUpdate")
    problems = update.problems()
    if problems:
        raise PluginError(f"panel {spec.full_id}: {spec.python_name}.update returned a PanelUpdate with "
                          f"{len(problems)} problem(s): " + "; ".join(problems))
    return update
