"""The plugin manifest, `medface-plugin.toml`: one typed model for validation, serialisation and docs.

:class:`Manifest`, :class:`CommandSpec`, :class:`PanelSpec` and :class:`ParameterSpec` are pydantic models. They are
the only description of a manifest: reading one validates it against them, :meth:`Manifest.to_dict`
writes every field back (`Manifest.model_validate(m.to_dict()) == m`), the JSON Schema for
editors (`manifest.schema.json` beside this file, `medface plugins schema`) and the key
reference in `docs/plugin-guide.md` (:func:`manifest_reference`) are generated from them.

A manifest is read without importing any plugin code. Validation reports *every* problem,
each with the file and the key it concerns (`commands[0].parameters[2].default`).

Besides commands, a plugin may contribute interactive **panels** (`[[panels]]`) for the
workstation: a logic class built once from scene data (its input parameters) whose
`update(**controls)` is called on every move of a control (its int, float, bool and enum
parameters) and returns a :class:`medface.data.PanelUpdate` (:mod:`medface.plugin.panels`).
"""

from __future__ import annotations

import difflib
import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, StrictFloat, StrictStr,
                      StringConstraints, ValidationError, ValidationInfo, field_validator, model_validator)
from pydantic_core import PydanticCustomError

from ..errors import ManifestError, MedfaceError
from ..policy import RUN_OPTIONS
from .manifest_summary import MANIFEST_NAME, CommandSummary, ManifestSummary, PanelSummary

SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
#: the largest manifest read (the shipped ones are a few KiB)
MAX_MANIFEST_BYTES = 1024 * 1024

ParameterType = Literal["volume", "mesh", "landmarks", "image", "plan", "float", "int", "bool", "enum", "string",
                        "file", "directory"]
Channel = Literal["input", "output"]
PARAMETER_TYPES: tuple[str, ...] = get_args(ParameterType)
CHANNELS: tuple[str, ...] = get_args(Channel)
DATA_TYPES = ("volume", "mesh", "landmarks", "image", "plan")
PATH_TYPES = DATA_TYPES + ("file", "directory")
NUMERIC_TYPES = ("float", "int")
#: a panel's parameters: scene data it is built from, and the live controls passed to `update`
PANEL_INPUT_TYPES = ("volume", "mesh", "landmarks", "image")
PANEL_CONTROL_TYPES = ("int", "float", "bool", "enum")
#: names a command's parameter cannot have: the run context and the runner's options of every command
RESERVED_PARAMETER_NAMES = ("context", *RUN_OPTIONS)

_NAME = r"^[a-z][a-z0-9_]*$"
_COMMAND_ID = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
_PYTHON_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
_VERSION = r"^\d+(\.\d+)*([a-z0-9.+-]*)$"
#: what each pattern means, for error messages people can act on
PATTERN_MEANINGS = {
    _NAME: "lower case letters, digits and '_', starting with a letter (snake_case)",
    _COMMAND_ID: "lower case words of letters and digits joined by '-' (lower-case-with-hyphens)",
    _PYTHON_NAME: "'package.module:function'",
    _VERSION: "a version number such as '1.2.0'",
}


def _valid_requirement(text: str) -> str:
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        Requirement(text)
    except InvalidRequirement as exc:
        raise ValueError(f"'{text}' is not a valid requirement ({exc})") from None
    return text


Name = Annotated[StrictStr, StringConstraints(pattern=_NAME)]
CommandId = Annotated[StrictStr, StringConstraints(pattern=_COMMAND_ID)]
PythonName = Annotated[StrictStr, StringConstraints(pattern=_PYTHON_NAME)]
Text = Annotated[StrictStr, StringConstraints(min_length=1)]
Version = Annotated[StrictStr, StringConstraints(pattern=_VERSION)]
RequirementText = Annotated[StrictStr, AfterValidator(_valid_requirement)]


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Seen:
    """Ids and names met so far while one manifest is validated (the validation context), so a
    duplicate is reported at its own key while every other problem is still found."""

    def __init__(self):
        self.commands: set[str] = set()
        self.panels: set[str] = set()
        self.parameters: set[str] = set()

    @staticmethod
    def of(info: ValidationInfo) -> "_Seen | None":
        return info.context if isinstance(info.context, _Seen) else None

    @staticmethod
    def claim(info: ValidationInfo, kind: str, value: str) -> str:
        """Record ``value`` among the ``kind`` ("commands", "panels" or "parameters") of this
        manifest; a second one is a duplicate."""
        seen = _Seen.of(info)
        if seen is not None:
            names = getattr(seen, kind)
            if value in names:
                what = {"commands": "command id", "panels": "panel id", "parameters": "parameter name"}[kind]
                raise PydanticCustomError("duplicate", "duplicate {what} '{value}'", {"what": what, "value": value})
            names.add(value)
        return value


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def _identity(self) -> str:
        """The fields (and a command's plugin); not where a manifest was read from."""
        return json.dumps([self.model_dump(mode="json"), getattr(self, "plugin", None)], sort_keys=True)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())


class ParameterSpec(_Spec):
    """A typed parameter of a command (`[[commands.parameters]]`)."""

    name: Name = Field(description="snake_case id; the command-line flag is `--name-with-hyphens`")
    type: ParameterType = Field(description="what the command receives: a data type read through medface.io, a "
                                            "path, or a value")
    channel: Channel = Field("input", description="`output` for a file, folder or data type the command writes")
    label: StrictStr = Field("", description="a short name for forms (the workstation)")
    help: Text = Field(description="one or more sentences shown in `--help` and `plugins info`")
    default: Any = Field(None, description="the value used when none is given (not for input files)")
    required: StrictBool = Field(True, description="default: true unless a default is given; false gives the "
                                                   "command None when absent")
    minimum: StrictFloat | None = Field(None, alias="min", description="smallest allowed value (int and float only)")
    maximum: StrictFloat | None = Field(None, alias="max", description="largest allowed value (int and float only)")
    choices: tuple[StrictStr, ...] = Field((), description="the allowed values of an enum")
    units: StrictStr = Field("", description="shown with values in help and errors (`mm`, `HU`)")
    advanced: StrictBool = Field(False, description="hidden from simple forms")

    @model_validator(mode="before")
    @classmethod
    def _required_unless_default(cls, data):
        if isinstance(data, dict) and "required" not in data:
            data = {**data, "required": data.get("default") is None}
        return data

    @field_validator("name")
    @classmethod
    def _name_free_and_unique(cls, name: str, info: ValidationInfo) -> str:
        if name in RESERVED_PARAMETER_NAMES:
            raise PydanticCustomError("reserved", "'{name}' is reserved (the run context and the options every "
                                      "command has: {reserved})",
                                      {"name": name, "reserved": ", ".join(RESERVED_PARAMETER_NAMES)})
        return _Seen.claim(info, "parameters", name)

    @field_validator("default")
    @classmethod
    def _float_default(cls, value, info: ValidationInfo):
        if info.data.get("type") == "float" and isinstance(value, int) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                raise ValueError(f"the default ({len(str(abs(value)))} digits) is too large for a float") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "ParameterSpec":
        problems = self._shape_problems() + self._default_problems()
        if problems:
            raise PydanticCustomError("manifest_rules", "{problems}", {"problems": problems})
        return self

    def _shape_problems(self) -> list[tuple[str, str]]:
        """Rules across keys: output channels, ranges and choices fit the type."""
        problems = []
        if self.channel == "output" and not self.is_path:
            problems.append(("channel", "an output parameter must be a file, directory or data type, "
                                        f"not '{self.type}'"))
        if (self.minimum is not None or self.maximum is not None) and self.type not in NUMERIC_TYPES:
            problems.append(("", f"min/max apply to int and float parameters only, not '{self.type}'"))
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            problems.append(("min", f"min {_fmt(self.minimum)} is greater than max {_fmt(self.maximum)}"))
        if self.type == "enum" and not self.choices:
            problems.append(("choices", "an enum parameter needs a list of choices"))
        if self.type != "enum" and self.choices:
            problems.append(("choices", "choices apply to enum parameters only"))
        if len(set(self.choices)) != len(self.choices):
            problems.append(("choices", "choices must be unique"))
        return problems

    def _default_problems(self) -> list[tuple[str, str]]:
        """The default has the parameter's type and lies in its range or choices."""
        d = self.default
        if d is None:
            return []
        problems = [("required", "a parameter with a default is not required")] if self.required else []
        if self.is_path and self.channel == "input":
            return problems + [("default", f"an input {self.type} cannot have a default")]
        if not _type_ok(self.type, d):
            return problems + [("default", f"{d!r} is not a valid {self.type}")]
        if self.type in NUMERIC_TYPES and self.minimum is not None and d < self.minimum:
            problems.append(("default", f"{_fmt(d)} is below min {_fmt(self.minimum)}"))
        if self.type in NUMERIC_TYPES and self.maximum is not None and d > self.maximum:
            problems.append(("default", f"{_fmt(d)} is above max {_fmt(self.maximum)}"))
        if self.type == "enum" and self.choices and d not in self.choices:
            problems.append(("default", f"'{d}' is not one of the choices {list(self.choices)}"))
        return problems

    @property
    def is_path(self) -> bool:
        return self.type in PATH_TYPES

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def describe(self) -> str:
        """One line: type, units, range, choices, default: what a user needs to fill it in."""
        bits = [self.type if self.channel == "input" or not self.is_path else f"{self.type} (output)"]
        if self.units:
            bits.append(f"units: {self.units}")
        if self.minimum is not None or self.maximum is not None:
            lo = "-inf" if self.minimum is None else _fmt(self.minimum)
            hi = "inf" if self.maximum is None else _fmt(self.maximum)
            bits.append(f"range: {lo} to {hi}")
        if self.choices:
            bits.append("choices: " + ", ".join(self.choices))
        if self.default is not None:
            bits.append(f"default: {_fmt(self.default)}")
        elif self.required:
            bits.append("required")
        return "; ".join(bits)


def _type_ok(ptype: str, value) -> bool:
    if ptype == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if ptype == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if ptype == "bool":
        return isinstance(value, bool)
    return isinstance(value, str)


class _Contribution(_Spec):
    """What commands and panels share: an id within the plugin, a heading and typed parameters
    (each contribution's parameter names are its own); `plugin` is the manifest's name."""

    _plugin: str = PrivateAttr("")

    @model_validator(mode="before")
    @classmethod
    def _new_parameter_scope(cls, data, info: ValidationInfo):
        seen = _Seen.of(info)
        if seen is not None:
            seen.parameters = set()
        return data

    @property
    def plugin(self) -> str:
        return self._plugin

    @property
    def full_id(self) -> str:
        return f"{self.plugin}.{self.id}"

    @property
    def heading(self) -> str:
        """The title, or the first line of the help when there is none."""
        return self.title or (self.help.strip().splitlines() or [""])[0]

    def parameter(self, name: str) -> ParameterSpec | None:
        for p in self.parameters:
            if p.name == name:
                return p
        return None


class CommandSpec(_Contribution):
    """A command of a plugin (`[[commands]]`); `plugin` is the manifest's name."""

    id: CommandId = Field(description='`lower-case-with-hyphens`; run as `medface PLUGIN ID` or '
                                      '`medface.run("plugin.id")`')
    title: StrictStr = Field("", description="a short title (default: the first line of help)")
    help: Text = Field(description="what the command does, shown in `--help`")
    python_name: PythonName = Field(description='the function to call, `"package.module:function"` (imported on '
                                                'first run)')
    parameters: tuple[ParameterSpec, ...] = Field((), description="the command's parameters "
                                                                  "(`[[commands.parameters]]`)")
    streaming: PythonName | None = Field(None, description='optional `"package.module:Class"`: the command split '
                                                           "into stages (prepare on CPU, a model held once per "
                                                           "actor, finish) for `medface batch --engine ray`'s "
                                                           "streaming pipeline (docs/batch.md)")

    @field_validator("id")
    @classmethod
    def _unique_id(cls, cid: str, info: ValidationInfo) -> str:
        return _Seen.claim(info, "commands", cid)


class PanelAction(_Spec):
    """A button of a panel (`[[panels.actions]]`) that runs one of the plugin's commands on the
    panel's current state (the full finite-element simulation of the move the sliders show)."""

    command: CommandId = Field(description="the id of a command of the same plugin; the panel's "
                                           "`command_inputs(command, **controls)` gives its parameter values")
    title: StrictStr = Field(description="the button's label")
    help: StrictStr = Field("", description="what the button runs, shown beside it")


class PanelSpec(_Contribution):
    """An interactive panel of a plugin (`[[panels]]`), for the workstation; `plugin` is the
    manifest's name. Its input parameters (mesh, landmarks, volume, image) are the scene data
    the logic class is built from; its controls (int, float, bool, enum, each with a default,
    numbers with min and max) are the widgets whose values go to ``update``."""

    id: CommandId = Field(description="`lower-case-with-hyphens`, unique among the plugin's panels; opened as "
                                      "`plugin.id`")
    title: StrictStr = Field("", description="the panel's title (default: the first line of help)")
    help: Text = Field(description="what the panel shows and how its controls act, shown above them")
    python_name: PythonName = Field(description='the logic class, `"package.module:Class"` (imported when the panel '
                                                'opens): built once with the inputs as keyword arguments; its '
                                                '`update(**controls)` returns a `medface.data.PanelUpdate`')
    parameters: tuple[ParameterSpec, ...] = Field((), description="inputs (`mesh`, `landmarks`, `volume`, `image`: "
                                                                  "the scene data) and controls (`int`, `float`, "
                                                                  "`bool`, `enum`: the widgets), with the keys of "
                                                                  "`[[commands.parameters]]` (`[[panels.parameters]]`)")
    actions: tuple[PanelAction, ...] = Field((), description="buttons that run a command of the plugin on the "
                                                             "panel's current state (`[[panels.actions]]`); the "
                                                             "logic class then defines `command_inputs(command, "
                                                             "**controls)`")

    @field_validator("id")
    @classmethod
    def _unique_id(cls, pid: str, info: ValidationInfo) -> str:
        return _Seen.claim(info, "panels", pid)

    @model_validator(mode="after")
    def _live_parameters(self) -> "PanelSpec":
        problems = [(f"parameters[{k}]" + (f".{key}" if key else ""), text)
                    for k, p in enumerate(self.parameters) for key, text in _panel_parameter_problems(p)]
        if problems:
            raise PydanticCustomError("manifest_rules", "{problems}", {"problems": problems})
        return self

    @property
    def inputs(self) -> tuple[ParameterSpec, ...]:
        """The scene data the logic class is built from (constructor keyword arguments)."""
        return tuple(p for p in self.parameters if p.type in PANEL_INPUT_TYPES)

    @property
    def controls(self) -> tuple[ParameterSpec, ...]:
        """The live controls, passed to ``update`` on every change."""
        return tuple(p for p in self.parameters if p.type in PANEL_CONTROL_TYPES)


def _panel_parameter_problems(p: ParameterSpec) -> list[tuple[str, str]]:
    """What a panel's parameter may not be: an output, a path or free text, a control without a
    starting value, a slider without ends."""
    problems = []
    if p.channel == "output":
        problems.append(("channel", "a panel has no output parameters: what it shows comes back from update() "
                                    "as a PanelUpdate"))
    if p.type not in PANEL_INPUT_TYPES + PANEL_CONTROL_TYPES:
        problems.append(("type", f"'{p.type}' is not meaningful for a live panel; use "
                                 f"{', '.join(PANEL_INPUT_TYPES)} for scene data or "
                                 f"{', '.join(PANEL_CONTROL_TYPES)} for controls"))
    elif p.type in PANEL_CONTROL_TYPES and p.default is None:
        problems.append(("default", f"a panel's {p.type} control needs a default: the value its widget starts at"))
    if p.type in NUMERIC_TYPES and (p.minimum is None or p.maximum is None):
        problems.append(("", f"a panel's {p.type} control needs min and max: the ends of its slider"))
    return problems


class Manifest(_Spec):
    """A plugin manifest, `medface-plugin.toml`: what the plugin is and which commands it offers."""

    model_config = ConfigDict(title="medface plugin manifest")

    name: Name = Field(description="plugin id; the CLI group and the prefix of command ids")
    title: Text = Field(description="shown by `medface plugins list` and in `--help`")
    version: Version = Field(description="the plugin's version, recorded in every result's provenance")
    category: Text = Field(description="a group for listings (`Forensics`)")
    contributors: tuple[StrictStr, ...] = Field(min_length=1, description="names (with e-mail if you like)")
    help: Text = Field(description="what the plugin does, shown by `medface plugins info`")
    acknowledgement: StrictStr = Field("", description="funding, papers to cite")
    requirements: tuple[RequirementText, ...] = Field((), description="PEP 508 strings; a missing or too old package "
                                                                      "makes the plugin broken, with the reason")
    selftest: PythonName | None = Field(None, description='`"package.module:function"`, called with an empty '
                                                          'temporary folder')
    homepage: StrictStr = Field("", description="a URL")
    commands: tuple[CommandSpec, ...] = Field(min_length=1, description="at least one command (`[[commands]]`)")
    panels: tuple[PanelSpec, ...] = Field((), description="interactive panels for the workstation (`[[panels]]`): "
                                                          "a logic class updated live by typed controls")
    _path: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _own_contributions(self) -> "Manifest":
        for contribution in self.commands + self.panels:
            contribution._plugin = self.name
        return self

    @model_validator(mode="after")
    def _actions_name_own_commands(self) -> "Manifest":
        known = {c.id for c in self.commands}
        problems = [(f"panels[{k}].actions[{j}].command", f"'{a.command}' is not a command of plugin '{self.name}' "
                                                          f"(it has {', '.join(sorted(known))})")
                    for k, p in enumerate(self.panels) for j, a in enumerate(p.actions) if a.command not in known]
        if problems:
            raise PydanticCustomError("manifest_rules", "{problems}", {"problems": problems})
        return self

    @property
    def path(self) -> Path | None:
        """The file the manifest was read from (None when built from a document)."""
        return self._path

    def command(self, command_id: str) -> CommandSpec | None:
        wanted = command_id.replace("_", "-")
        for c in self.commands:
            if c.id == wanted:
                return c
        return None

    def panel(self, panel_id: str) -> PanelSpec | None:
        wanted = panel_id.replace("_", "-")
        for p in self.panels:
            if p.id == wanted:
                return p
        return None

    def summary(self) -> ManifestSummary:
        """What listing needs (remembered between runs by :mod:`medface.plugin.manifest_summary`)."""
        return ManifestSummary(
            name=self.name, title=self.title, version=self.version, category=self.category, help=self.help,
            requirements=tuple(self.requirements), selftest=self.selftest,
            commands=tuple(CommandSummary(c.id, c.heading, c.python_name) for c in self.commands),
            panels=tuple(PanelSummary(p.id, p.heading, p.python_name) for p in self.panels))

    def to_dict(self) -> dict:
        """Every field, under its manifest key (`min`/`max`); validates back to an equal manifest."""
        return self.model_dump(mode="json", by_alias=True)


# --------------------------------------------------------------------------- validation messages

def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _model_at(loc: tuple) -> type[BaseModel]:
    """The model a location inside the document belongs to (``commands[0]`` -> CommandSpec,
    ``panels[0]`` -> PanelSpec)."""
    models = {"commands": CommandSpec, "panels": PanelSpec, "parameters": ParameterSpec, "actions": PanelAction}
    model: type[BaseModel] = Manifest
    for part in loc:
        model = models.get(part, model) if isinstance(part, str) else model
    return model


def _unknown_key(loc: tuple) -> str:
    keys = [f.alias or n for n, f in _model_at(loc[:-1]).model_fields.items()]
    close = difflib.get_close_matches(str(loc[-1]), keys, n=1)
    return f"unknown key '{loc[-1]}'" + (f" (did you mean '{close[0]}'?)" if close else "")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _problem_lines(error: dict) -> list[str]:
    """One pydantic error as `key: message` lines (a rules error holds several)."""
    loc, kind = tuple(error["loc"]), error["type"]
    if kind == "manifest_rules":
        return [f"{_key(loc + ((sub,) if sub else ()))}: {text}" for sub, text in error["ctx"]["problems"]]
    if kind == "missing":
        return [f"{_key(loc[:-1])}: '{loc[-1]}' is a required property"]
    if kind == "extra_forbidden":
        return [f"{_key(loc[:-1])}: {_unknown_key(loc)}"]
    if kind == "too_short":
        if isinstance(error["input"], (list, tuple)) and len(error["input"]) >= error["ctx"]["min_length"]:
            return []  # long enough; its items' own problems are listed
        return [f"{_key(loc)}: needs at least {error['ctx']['min_length']} item(s)"]
    if kind == "string_pattern_mismatch":
        meaning = PATTERN_MEANINGS.get(error["ctx"]["pattern"], f"the pattern {error['ctx']['pattern']}")
        return [f"{_key(loc)}: {error['input']!r} is not valid here; use {meaning}"]
    message = error["msg"].removeprefix("Value error, ")
    if kind in ("duplicate", "reserved", "value_error"):
        return [f"{_key(loc)}: {message}"]
    return [f"{_key(loc)}: {message[:1].lower()}{message[1:]}, not {_short(error['input'])}"]


def _validated(doc: Any) -> tuple[Manifest | None, list[str]]:
    if not isinstance(doc, dict):
        return None, ["(top level): a manifest must be a TOML table"]
    try:
        return Manifest.model_validate(doc, context=_Seen()), []
    except ValidationError as exc:
        return None, [line for error in exc.errors() for line in _problem_lines(error)]


def problems_in(doc: dict) -> list[str]:
    """Every problem found in a parsed manifest (empty when valid), each as `key: message`."""
    return _validated(doc)[1]


def build_manifest(doc: dict, path: Path | None = None) -> Manifest:
    """Turn a manifest document into a :class:`Manifest`; raises ManifestError listing every problem."""
    manifest, problems = _validated(doc)
    if problems:
        raise ManifestError("invalid plugin manifest", path=path, problems=problems)
    manifest._path = path
    return manifest


def read_manifest(path) -> Manifest:
    """Read and validate a `medface-plugin.toml` file (or the folder holding one).

    The file is untrusted: it must be a regular file (not a pipe, a device or a symlink loop)
    of at most :data:`MAX_MANIFEST_BYTES` bytes of UTF-8 TOML, nesting at most
    ``budget().max_json_depth`` levels; anything else, including TOML that Python's parser
    cannot take (too deep, integers beyond 4,300 digits), is a :class:`ManifestError`."""
    from ..io.limits import check_json_depth, require_regular_file

    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    try:
        require_regular_file(path, "manifest")
        text = _manifest_text(path)
        _check_dotted_keys(text, path)
        doc = tomllib.loads(text)
        check_json_depth(doc, path, "manifest")
    except ManifestError:
        raise
    except MedfaceError as exc:  # the InputErrors of require_regular_file and check_json_depth
        raise ManifestError(exc.message, path=path, hint=exc.hint) from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError("the manifest is not valid TOML", path=path, problems=[str(exc)]) from None
    except (RecursionError, ValueError, OverflowError) as exc:  # deep nesting; int() past 4,300 digits
        reason = "nests too deeply" if isinstance(exc, RecursionError) else f"holds a value TOML cannot take ({exc})"
        raise ManifestError(f"the manifest {reason}", path=path, hint="a manifest is a short, flat TOML file") from None
    return build_manifest(doc, path)


def _check_dotted_keys(text: str, path: Path) -> None:
    """Refuse keys of very many dotted parts (``a.a.a...``) before tomllib, which takes time
    quadratic in their number (20,000 parts: 5 s)."""
    from ..io.limits import budget

    limit = budget().max_json_depth
    for number, line in enumerate(text.splitlines(), start=1):
        key = line.split("=", 1)[0] if "=" in line else line if line.lstrip().startswith("[") else ""
        if key.count(".") > limit:
            raise ManifestError(f"line {number}: a key of more than {limit} dotted parts nests too deeply",
                                path=path, hint="a manifest is a short, flat TOML file")


def _manifest_text(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest ({exc.strerror or exc})", path=path) from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"the manifest is larger than {MAX_MANIFEST_BYTES:,} bytes", path=path,
                            hint="a manifest is a short TOML file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"cannot read the manifest ({exc})", path=path, hint="save it as UTF-8") from None


# --------------------------------------------------------------------------- generated schema and docs

def manifest_json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of `medface-plugin.toml`, generated from the model."""
    schema = Manifest.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def manifest_schema_text() -> str:
    """The schema as the committed `manifest.schema.json` holds it."""
    return json.dumps(manifest_json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_manifest_schema(path=SCHEMA_PATH) -> Path:
    """Regenerate the schema file (`medface plugins schema --out PATH` does the same)."""
    path = Path(path)
    path.write_text(manifest_schema_text(), encoding="utf-8")
    return path


def _reference_rows(model: type[BaseModel]) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        required = "yes" if field.is_required() else "no"
        rows.append(f"| `{key}` | {required} | {(field.description or '').strip()} |")
    return rows


def manifest_reference() -> str:
    """The key-by-key reference of `docs/plugin-guide.md` (markdown), generated from the model."""
    parts = []
    for heading, model in (("top level", Manifest), ("`[[commands]]`", CommandSpec),
                           ("`[[commands.parameters]]`", ParameterSpec), ("`[[panels]]`", PanelSpec),
                           ("`[[panels.actions]]`", PanelAction)):
        parts += [f"**{heading}**", "", "| key | required | meaning |", "|---|---|---|", *_reference_rows(model), ""]
    return "\n".join(parts)
