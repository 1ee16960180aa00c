"""The medface error hierarchy.

Every error a user can cause derives from :class:`MedfaceError`. A message says what was wrong,
with which input, and what to do about it. The command line maps each class to an exit code
(see ``docs/cli.md``) and prints the message without a traceback.
"""

from __future__ import annotations

import os


class MedfaceError(Exception):
    """Base class of every error medface raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, path: str | os.PathLike | None = None, hint: str | None = None):
        self.path = os.fspath(path) if path is not None else None
        self.hint = hint
        self.message = message
        super().__init__(self._compose())

    def _located(self) -> str:
        """The message, led by the path it concerns (when it does not name it already)."""
        if self.path is not None and self.path not in self.message:
            return f"{self.path}: {self.message}"
        return self.message

    def _compose(self) -> str:
        text = self._located()
        return f"{text} ({self.hint})" if self.hint else text

    def to_dict(self) -> dict:
        """The error for machines (``medface ... --json``): class, message, hint and exit code."""
        return {"error": type(self).__name__, "message": self._located(), "hint": self.hint,
                "exit_code": self.exit_code}


class InputWarning(UserWarning):
    """A reader's note about an input it read but had to interpret (a Latin-1 text file, a
    value it repaired): the runner adds each one to the result's warnings, so it reaches the
    report and ``result.json`` rather than only the terminal."""


class InputError(MedfaceError):
    """An input file or value is missing, unreadable, corrupt or of the wrong kind."""

    exit_code = 3


class ParameterError(InputError):
    """A command parameter is missing, of the wrong type or out of range."""

    exit_code = 2

    def __init__(self, message: str, *, parameter: str | None = None, hint: str | None = None):
        self.parameter = parameter
        if parameter and f"'{parameter}'" not in message:
            message = f"parameter '{parameter}': {message}"
        super().__init__(message, hint=hint)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "parameter": self.parameter}


class PluginError(MedfaceError):
    """A plugin or command cannot be found, loaded or run."""

    exit_code = 4


class ManifestError(PluginError):
    """A plugin manifest is invalid. ``problems`` lists every problem with its key."""

    def __init__(self, message: str, *, path=None, problems: list[str] | None = None, hint=None):
        self.problems = list(problems or [])
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message, path=path, hint=hint)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "problems": self.problems}


class ModelError(MedfaceError):
    """A model package is missing, tampered with, or does not fit the request."""

    exit_code = 5


class DeviceError(MedfaceError):
    """A requested compute device is not available or failed."""

    exit_code = 6


class OutputError(MedfaceError):
    """An output cannot be written (permissions, disk full, existing file)."""

    exit_code = 7


EXIT_CODES = {
    0: "success",
    1: "medface error not covered below",
    2: "bad command-line usage or parameter value",
    3: "bad input file or data (InputError)",
    4: "plugin missing, broken or failing (PluginError)",
    5: "model package problem (ModelError)",
    6: "compute device problem (DeviceError)",
    7: "output cannot be written (OutputError)",
    8: "input refused: the command declined it (e.g. a photo its quality gate refused); outputs still written",
    9: "batch finished, but some items failed or crashed (see results.parquet)",
    10: "batch stopped early by --max-failures",
    70: "internal error: a bug in medface or a plugin; the traceback is printed, please report it",
    130: "interrupted by the user (Ctrl-C)",
}
