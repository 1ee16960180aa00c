"""What a report says about itself: the notice, and the purpose line under its title.

The purpose names the command's title. The report layer does not know plugins; the layer that
does (``medface.plugin.registry``) gives it a lookup with :func:`set_command_titles`:
``lookup("surgery.inspect-ct")`` returns the command's title, or ``""`` when it is unknown.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["NOTICE", "set_command_titles", "command_title", "default_purpose"]

NOTICE = ("Research software, not a medical device. These results are not for diagnosis, treatment "
          "or identification on their own: a qualified professional must check them.")

_TITLES: list[Callable[[str], str]] = []


def set_command_titles(lookup: Callable[[str], str] | None) -> None:
    """Use ``lookup(command_id) -> title`` for default purposes (None: no titles)."""
    _TITLES[:] = [lookup] if lookup is not None else []


def command_title(command_id: str) -> str:
    """The command's title from the lookup, or ``""``; a failing lookup costs only the title."""
    for lookup in _TITLES:
        try:
            return str(lookup(command_id) or "")
        except Exception:  # noqa: BLE001 - the report is written without the title
            return ""
    return ""


def default_purpose(command_id: str) -> str:
    """``"Inspect a CT volume: what the command surgery.inspect-ct found, ..."``."""
    title = command_title(command_id)
    line = f"{title.rstrip('.')}: " if title else ""
    return line + f"what the command {command_id} found, the limits of its method, and how it was run."
