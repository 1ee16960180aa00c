"""Text inputs read whole (landmark CSV, markups JSON, plans): bounded, decoded, parsed safely.

Every reader of a text file goes through :func:`read_text` (a regular file, at most
``budget().max_text_bytes``, UTF-8) and every JSON reader through :func:`load_json`, which
turns what Python's :mod:`json` does with hostile input into :class:`InputError`:

* nesting deeper than ``budget().max_json_depth`` (json itself raises RecursionError near 1,000
  levels; the budget refuses far earlier);
* integers of more than :data:`MAX_INTEGER_DIGITS` digits (int() refuses more than 4,300 with a
  ValueError, and smaller giants are no sensible value of any field medface reads);
* numbers out of the range of a double (``1e400``) and the non-JSON constants ``NaN``,
  ``Infinity`` and ``-Infinity`` (Python's json accepts them; the JSON standard does not).

:func:`schema_problems` lists where a document breaks a JSON Schema in plain words
(``controlPoints[0].position: expected a list of 3 numbers`` style): ``expected a number, got a
list`` for a wrong type, the missing key for a ``required`` rule, and the branch that matched
for ``anyOf``/``oneOf`` schemas such as Slicer's.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

from ..errors import InputError, InputWarning
from .limits import budget, check_json_depth, require_regular_file

__all__ = ["MAX_INTEGER_DIGITS", "read_text", "load_json", "json_type_name", "schema_problems",
           "describe_schema_error", "format_json_path"]

#: the longest integer (in digits, sign excluded) a JSON input may hold
MAX_INTEGER_DIGITS = 100

_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null",
               int: "a number", float: "a number"}
_SCHEMA_TYPES = {"object": "an object", "array": "a list", "string": "a string", "boolean": "true/false",
                 "null": "null", "number": "a number", "integer": "a whole number"}


def read_text(path, what: str, *, latin1_fallback: bool = False) -> str:
    """The text of the regular file ``path`` (UTF-8, a byte-order mark dropped).

    Refuses a file larger than ``budget().max_text_bytes`` before reading it. Bytes that are
    not UTF-8 are an :class:`InputError` naming the offset, unless ``latin1_fallback``: then
    the text is decoded as Latin-1 (ISO-8859-1, which maps every byte) with a
    :class:`UserWarning` saying so.
    """
    path = require_regular_file(path, what)
    limit = budget().max_text_bytes
    _check_size(path.stat().st_size, limit, what, path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)  # a file that grows while read is still bounded
    except OSError as exc:
        raise InputError(f"cannot read the {what}: {exc.strerror or exc}", path=path) from None
    _check_size(len(data), limit, what, path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        where = f"byte 0x{data[exc.start]:02x} at offset {exc.start}"
    if not latin1_fallback:
        raise InputError(f"the {what} is not UTF-8 text ({where})", path=path, hint="save it as UTF-8")
    warnings.warn(f"{path}: the {what} is not UTF-8 ({where}); read it as Latin-1 (ISO-8859-1): check its "
                  "non-ASCII labels and descriptions, or save it as UTF-8", InputWarning, stacklevel=4)
    return data.decode("latin-1")


def _check_size(size: int, limit: int, what: str, path: Path) -> None:
    if size > limit:
        raise InputError(f"too large: the {what} has {size:,} bytes, more than the budget of {limit:,}", path=path,
                         hint="set MEDFACE_MAX_TEXT_BYTES to allow more, if the file is genuine")


def load_json(path, what: str = "JSON file") -> Any:
    """Parse the JSON file ``path`` (see the module docstring for what is refused)."""
    path = Path(path)
    text = read_text(path, what)
    try:
        doc = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except _NumberError as exc:
        raise InputError(f"the {what} holds {exc}", path=path, hint="the file may be corrupt or hand-edited") from None
    except RecursionError:
        raise InputError(f"the {what} nests too deeply to be read", path=path,
                         hint="the file is corrupt or not what it claims to be") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"the {what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
                         path=path, hint="the file may be truncated or hand-edited") from None
    check_json_depth(doc, path, what)
    return doc


class _NumberError(ValueError):
    """A number json cannot turn into a sensible Python value (raised from the parse hooks)."""


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INTEGER_DIGITS:
        raise _NumberError(f"an integer of {digits:,} digits (at most {MAX_INTEGER_DIGITS} are read)")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 24 else text[:20] + "..."
        raise _NumberError(f"the number {shown}, out of the range of a double")
    return value


def _parse_constant(name: str):
    raise _NumberError(f"{name}, which is not a JSON number")


def json_type_name(value) -> str:
    """``"a list"``, ``"an object"``, ``"a string"``, ``"a number"``, ``"true/false"`` or ``"null"``."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def format_json_path(parts) -> str:
    """``markups[0].controlPoints[2].position`` from a path of keys and indices."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def schema_problems(validator, doc, limit: int | None = None) -> list[tuple[str, str]]:
    """``(where, problem)`` for each place ``doc`` breaks the schema of ``validator`` (a
    jsonschema validator), sorted by where (list items in order, keys alphabetically); at most
    ``limit`` of them when given."""
    found = []
    for error in validator.iter_errors(doc):
        found.extend(_leaves(error))
    found.sort(key=lambda item: _order_key(item[0]))
    problems = list(dict.fromkeys((format_json_path(parts), message) for parts, message in found))  # unique, in order
    return problems[:limit] if limit is not None else problems


def _order_key(parts: tuple) -> list:
    return [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in parts]


def _leaves(error) -> list[tuple[tuple, str]]:
    """The errors that say what is wrong: ``anyOf``/``oneOf`` are opened to the branch that
    fits the value's type (or summarised as "expected A or B" when none does)."""
    parts = tuple(error.absolute_path)
    if error.validator in ("anyOf", "oneOf") and error.context:
        branches: dict[int, list] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        fitting = [subs for subs in branches.values()
                   if not any(s.validator == "type" and not s.relative_path for s in subs)]
        if len(branches) == 1 or len(fitting) == 1:
            chosen = next(iter(branches.values())) if len(branches) == 1 else fitting[0]
            return [leaf for sub in chosen for leaf in _leaves(sub)]
        expected = [s.validator_value for subs in branches.values() for s in subs
                    if s.validator == "type" and not s.relative_path]
        if len(expected) == len(branches):
            return [(parts, f"expected {_alternatives(expected)}, got {_shown(error.instance)}")]
    return [_leaf(error)]


def _leaf(error) -> tuple[tuple, str]:
    parts = tuple(error.absolute_path)
    key = _missing_key(error)
    return (parts + (key,), "missing required key") if key is not None else (parts, describe_schema_error(error))


def _missing_key(error) -> str | None:
    """The key a ``required`` error is about (jsonschema reports one error per missing key)."""
    if error.validator != "required" or not isinstance(error.instance, dict):
        return None
    missing = [k for k in error.validator_value if k not in error.instance]
    named = [k for k in missing if error.message == f"{k!r} is a required property"]
    return (named or missing or [None])[0]


def describe_schema_error(error) -> str:
    """One jsonschema error in plain words: ``expected a number, got a list ([1, 2])`` for a
    wrong type, ``missing required key``, ``"cm" is not one of "mm", "um"`` ..."""
    if error.validator == "type":
        return f"expected {_alternatives([error.validator_value])}, got {_shown(error.instance)}"
    key = _missing_key(error)
    if key is not None:
        return f"missing required key '{key}'"
    if error.validator == "enum":
        return f"{_short(error.instance)} is not one of {', '.join(_short(v) for v in error.validator_value)}"
    if error.validator in ("minItems", "maxItems") and isinstance(error.instance, list):
        want = "at least" if error.validator == "minItems" else "at most"
        return f"expected {want} {error.validator_value} items, got {len(error.instance)}"
    return error.message if len(error.message) <= 200 else error.message[:197] + "..."


def _alternatives(types: list) -> str:
    names = []
    for value in types:
        for name in value if isinstance(value, list) else [value]:
            phrase = _SCHEMA_TYPES.get(name, str(name))
            if phrase not in names:
                names.append(phrase)
    return " or ".join(names)


def _shown(value) -> str:
    return f"{json_type_name(value)} ({_short(value)})"


def _short(value) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
