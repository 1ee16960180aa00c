"""The plugin manifest, ``medface-plugin.toml``: schema, parsing and validation.

A manifest is read without importing any plugin code. Validation reports *every* problem,
each with the file and the key it concerns (``commands[0].parameters[2].default``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ManifestError

MANIFEST_NAME = "medface-plugin.toml"

PARAMETER_TYPES = ("volume", "mesh", "landmarks", "image", "plan", "float", "int", "bool", "enum", "string", "file",
                   "directory")
DATA_TYPES = ("volume", "mesh", "landmarks", "image", "plan")
PATH_TYPES = DATA_TYPES + ("file", "directory")
NUMERIC_TYPES = ("float", "int")
CHANNELS = ("input", "output")

_NAME = r"^[a-z][a-z0-9_]*$"
_COMMAND_ID = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
_PYTHON_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"

_PARAMETER_SCHEMA = {
    "type": "object",
    "required": ["name", "type", "help"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": _NAME},
        "type": {"enum": list(PARAMETER_TYPES)},
        "channel": {"enum": list(CHANNELS)},
        "label": {"type": "string"},
        "help": {"type": "string", "minLength": 1},
        "default": {},
        "required": {"type": "boolean"},
        "min": {"type": "number"},
        "max": {"type": "number"},
        "choices": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True},
        "units": {"type": "string"},
        "advanced": {"type": "boolean"},
    },
}

_COMMAND_SCHEMA = {
    "type": "object",
    "required": ["id", "help", "python_name"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": _COMMAND_ID},
        "title": {"type": "string"},
        "help": {"type": "string", "minLength": 1},
        "python_name": {"type": "string", "pattern": _PYTHON_NAME},
        "parameters": {"type": "array", "items": _PARAMETER_SCHEMA},
    },
}

MANIFEST_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "medface plugin manifest",
    "type": "object",
    "required": ["name", "title", "version", "category", "contributors", "help", "commands"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": _NAME},
        "title": {"type": "string", "minLength": 1},
        "version": {"type": "string", "pattern": r"^\d+(\.\d+)*([a-z0-9.+-]*)$"},
        "category": {"type": "string", "minLength": 1},
        "contributors": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "help": {"type": "string", "minLength": 1},
        "acknowledgement": {"type": "string"},
        "requirements": {"type": "array", "items": {"type": "string"}},
        "selftest": {"type": "string", "pattern": _PYTHON_NAME},
        "homepage": {"type": "string"},
        "commands": {"type": "array", "items": _COMMAND_SCHEMA, "minItems": 1},
    },
}


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    type: str
    help: str
    channel: str = "input"
    label: str = ""
    default: Any = None
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    units: str = ""
    advanced: bool = False

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


@dataclass(frozen=True)
class CommandSpec:
    plugin: str
    id: str
    help: str
    python_name: str
    title: str = ""
    parameters: tuple[ParameterSpec, ...] = ()

    @property
    def full_id(self) -> str:
        return f"{self.plugin}.{self.id}"

    def parameter(self, name: str) -> ParameterSpec | None:
        for p in self.parameters:
            if p.name == name:
                return p
        return None


@dataclass(frozen=True)
class Manifest:
    name: str
    title: str
    version: str
    category: str
    contributors: tuple[str, ...]
    help: str
    commands: tuple[CommandSpec, ...]
    acknowledgement: str = ""
    requirements: tuple[str, ...] = ()
    selftest: str | None = None
    homepage: str = ""
    path: Path | None = field(default=None, compare=False)

    def command(self, command_id: str) -> CommandSpec | None:
        wanted = command_id.replace("_", "-")
        for c in self.commands:
            if c.id == wanted:
                return c
        return None

    def to_dict(self) -> dict:
        return {
            "name": self.name, "title": self.title, "version": self.version, "category": self.category,
            "contributors": list(self.contributors), "help": self.help, "acknowledgement": self.acknowledgement,
            "requirements": list(self.requirements), "selftest": self.selftest, "homepage": self.homepage,
            "commands": [
                {"id": c.id, "title": c.title, "help": c.help, "python_name": c.python_name,
                 "parameters": [{"name": p.name, "type": p.type, "channel": p.channel, "help": p.help,
                                 "default": p.default, "required": p.required, "min": p.minimum, "max": p.maximum,
                                 "choices": list(p.choices), "units": p.units} for p in c.parameters]}
                for c in self.commands
            ],
        }


def _fmt(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _schema_problems(doc: dict) -> list[str]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(MANIFEST_SCHEMA)
    problems = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        problems.append(f"{_key(err.absolute_path)}: {err.message}")
    return problems


def _type_ok(ptype: str, value) -> bool:
    if ptype == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if ptype == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if ptype == "bool":
        return isinstance(value, bool)
    return isinstance(value, str)


def _semantic_problems(doc: dict) -> list[str]:
    """Rules a JSON schema cannot say well: ranges, defaults, choices, uniqueness."""
    problems = []
    seen_commands = set()
    for ci, cmd in enumerate(doc.get("commands") or []):
        if not isinstance(cmd, dict):
            continue
        cid = cmd.get("id")
        if cid in seen_commands:
            problems.append(f"commands[{ci}].id: duplicate command id '{cid}'")
        seen_commands.add(cid)
        seen_params = set()
        for pi, p in enumerate(cmd.get("parameters") or []):
            if not isinstance(p, dict):
                continue
            where = f"commands[{ci}].parameters[{pi}]"
            name, ptype = p.get("name"), p.get("type")
            if name in seen_params:
                problems.append(f"{where}.name: duplicate parameter name '{name}'")
            seen_params.add(name)
            if name in ("context",):
                problems.append(f"{where}.name: '{name}' is reserved")
            if ptype not in PARAMETER_TYPES:
                continue
            channel = p.get("channel", "input")
            if channel == "output" and ptype not in PATH_TYPES:
                problems.append(f"{where}.channel: an output parameter must be a file, directory or data type, "
                                f"not '{ptype}'")
            if ("min" in p or "max" in p) and ptype not in NUMERIC_TYPES:
                problems.append(f"{where}: min/max apply to int and float parameters only, not '{ptype}'")
            if "min" in p and "max" in p and isinstance(p["min"], (int, float)) and \
                    isinstance(p["max"], (int, float)) and p["min"] > p["max"]:
                problems.append(f"{where}.min: min {p['min']} is greater than max {p['max']}")
            if ptype == "enum" and not p.get("choices"):
                problems.append(f"{where}.choices: an enum parameter needs a list of choices")
            if ptype != "enum" and "choices" in p:
                problems.append(f"{where}.choices: choices apply to enum parameters only")
            if "default" in p:
                d = p["default"]
                if ptype in DATA_TYPES + ("file", "directory") and channel == "input":
                    problems.append(f"{where}.default: an input {ptype} cannot have a default")
                elif not _type_ok(ptype, d):
                    problems.append(f"{where}.default: {d!r} is not a valid {ptype}")
                else:
                    if ptype in NUMERIC_TYPES:
                        if isinstance(p.get("min"), (int, float)) and d < p["min"]:
                            problems.append(f"{where}.default: {d} is below min {p['min']}")
                        if isinstance(p.get("max"), (int, float)) and d > p["max"]:
                            problems.append(f"{where}.default: {d} is above max {p['max']}")
                    if ptype == "enum" and p.get("choices") and d not in p["choices"]:
                        problems.append(f"{where}.default: '{d}' is not one of the choices {p['choices']}")
            if p.get("required") is True and "default" in p:
                problems.append(f"{where}.required: a parameter with a default is not required")
    for ri, req in enumerate(doc.get("requirements") or []):
        if not isinstance(req, str):
            continue
        try:
            from packaging.requirements import Requirement

            Requirement(req)
        except Exception as exc:  # packaging raises InvalidRequirement
            problems.append(f"requirements[{ri}]: '{req}' is not a valid requirement ({exc})")
    return problems


def problems_in(doc: dict) -> list[str]:
    """Every problem found in a parsed manifest (empty when valid)."""
    if not isinstance(doc, dict):
        return ["(top level): a manifest must be a TOML table"]
    return _schema_problems(doc) + _semantic_problems(doc)


def _parameter(p: dict) -> ParameterSpec:
    has_default = "default" in p
    default = p.get("default")
    if p["type"] == "float" and isinstance(default, int):
        default = float(default)
    return ParameterSpec(
        name=p["name"], type=p["type"], help=p["help"], channel=p.get("channel", "input"),
        label=p.get("label", ""), default=default,
        required=p.get("required", not has_default), minimum=p.get("min"), maximum=p.get("max"),
        choices=tuple(p.get("choices", ())), units=p.get("units", ""), advanced=p.get("advanced", False),
    )


def build_manifest(doc: dict, path: Path | None = None) -> Manifest:
    """Turn a manifest document into a :class:`Manifest`; raises ManifestError listing every problem."""
    problems = problems_in(doc)
    if problems:
        raise ManifestError("invalid plugin manifest", path=path, problems=problems)
    name = doc["name"]
    commands = tuple(
        CommandSpec(plugin=name, id=c["id"], help=c["help"], python_name=c["python_name"], title=c.get("title", ""),
                    parameters=tuple(_parameter(p) for p in c.get("parameters", [])))
        for c in doc["commands"]
    )
    return Manifest(
        name=name, title=doc["title"], version=doc["version"], category=doc["category"],
        contributors=tuple(doc["contributors"]), help=doc["help"], commands=commands,
        acknowledgement=doc.get("acknowledgement", ""), requirements=tuple(doc.get("requirements", ())),
        selftest=doc.get("selftest"), homepage=doc.get("homepage", ""), path=path,
    )


def read_manifest(path) -> Manifest:
    """Read and validate a ``medface-plugin.toml`` file (or the folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError("manifest file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read the manifest ({exc})", path=path) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError("the manifest is not valid TOML", path=path, problems=[str(exc)]) from None
    return build_manifest(doc, path)


def parameter_name_pattern() -> re.Pattern:
    return re.compile(_NAME)
