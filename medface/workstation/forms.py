"""Forms generated from manifests: every command (and live panel) of every plugin gets one.

A form is a list of :class:`Field` built from a command's typed parameters (type, range, units,
choices, default, help), plain data a page can show. :func:`values_for_run` turns what a user
entered into the keyword arguments of ``medface.run``: data-folder paths resolved (and refused
when they leave the folder), empty optional fields left out, the output folder set to the
run's own folder. Conversion and range checks stay where they are for every caller: in the
runner's parameter binding (:mod:`medface.plugin.params`), so the app and the CLI cannot
disagree about what is valid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import ParameterError
from .files import DataFolder

#: parameter type -> the categories of data-folder entries a picker offers ("" = any file)
PICKS = {"volume": ("volume",), "mesh": ("mesh",), "landmarks": ("landmarks",), "image": ("image",),
         "plan": ("",), "file": ("",)}
WIDGETS = {"int": "integer", "float": "number", "bool": "checkbox", "enum": "select", "string": "text",
           "directory": "folder"}


@dataclass(frozen=True)
class Field:
    """One input of a form."""

    name: str
    label: str
    widget: str  # number, integer, checkbox, select, text, file, folder
    help: str
    required: bool
    default: object = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    units: str = ""
    choices: tuple[str, ...] = ()
    accepts: tuple[str, ...] = ()  # file pickers: the data categories offered
    advanced: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def field_for(spec) -> Field:
    """The form field of one input parameter."""
    widget = "file" if spec.type in PICKS else WIDGETS[spec.type]
    default = spec.default
    if widget == "checkbox":
        default = bool(default)
    return Field(name=spec.name, label=spec.label or spec.name.replace("_", " "), widget=widget,
                 help=" ".join(spec.help.split()), required=bool(spec.required and spec.default is None),
                 default=default, minimum=spec.minimum, maximum=spec.maximum, step=_step(spec),
                 units=spec.units, choices=tuple(spec.choices), accepts=PICKS.get(spec.type, ()),
                 advanced=spec.advanced)


def form_for(command) -> list[Field]:
    """The fields of a command's (or panel's) input parameters, in manifest order."""
    return [field_for(spec) for spec in command.parameters if spec.channel == "input"]


def _step(spec) -> float | None:
    if spec.type == "int":
        return 1
    if spec.type == "float" and spec.minimum is not None and spec.maximum is not None:
        span = spec.maximum - spec.minimum
        return float(f"{span / 100:.1g}") if span > 0 else None
    return None


def output_target(command, run_folder: Path) -> tuple[str | None, Path | None]:
    """``(parameter, path)`` for the command's output: its output folder is the run folder; an
    output file goes inside it. ``(None, None)`` for a command that writes nothing."""
    for spec in command.parameters:
        if spec.channel == "output" and spec.type == "directory":
            return spec.name, run_folder
    for spec in command.parameters:
        if spec.channel == "output":
            name = spec.default if isinstance(spec.default, str) and spec.default else f"{command.id}.json"
            return spec.name, run_folder / Path(name).name
    return None, None


def values_for_run(command, entered: dict, data: DataFolder) -> dict:
    """Keyword arguments for ``medface.run`` from a form's values (strings, numbers, booleans)."""
    values = {}
    for spec in command.parameters:
        if spec.channel != "input":
            continue
        raw = entered.get(spec.name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if spec.required and spec.default is None:
                raise ParameterError(f"{spec.label or spec.name} is required", parameter=spec.name)
            continue
        if spec.is_path:
            values[spec.name] = str(data.existing(str(raw)))
        else:
            values[spec.name] = raw
    return values
