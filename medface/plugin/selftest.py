"""Plugin self-tests (3D Slicer's module self-tests): each plugin checks itself on sample data."""

from __future__ import annotations

import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from ..errors import MedfaceError, PluginError
from .registry import Registry, get_registry


@dataclass
class SelftestOutcome:
    plugin: str
    passed: bool
    message: str
    duration_s: float

    def to_dict(self) -> dict:
        return {"plugin": self.plugin, "passed": self.passed, "message": self.message,
                "duration_s": round(self.duration_s, 3)}


def run_selftest(name: str, registry: Registry | None = None) -> SelftestOutcome:
    """Run one plugin's self-test in a fresh temporary folder. Never raises for a failing test."""
    registry = registry or get_registry()
    start = time.perf_counter()
    try:
        info = registry[name]
        if not info.ok:
            raise PluginError(f"plugin '{name}' is broken: {info.reason}")
        if not info.manifest.selftest:
            raise PluginError(f"plugin '{name}' declares no selftest in its manifest")
        func = registry.load_callable(info, info.manifest.selftest)
        with tempfile.TemporaryDirectory(prefix=f"medface-selftest-{name}-") as tmp:
            message = func(Path(tmp)) or "passed"
        return SelftestOutcome(name, True, str(message), time.perf_counter() - start)
    except AssertionError as exc:
        return SelftestOutcome(name, False, f"check failed: {exc}", time.perf_counter() - start)
    except MedfaceError as exc:
        return SelftestOutcome(name, False, str(exc), time.perf_counter() - start)
    except Exception as exc:  # a crash in a self-test is reported, not raised
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return SelftestOutcome(name, False, f"crashed: {tb}", time.perf_counter() - start)


def run_selftests(name: str | None = None, registry: Registry | None = None) -> list[SelftestOutcome]:
    registry = registry or get_registry()
    names = [name] if name else list(registry)
    return [run_selftest(n, registry) for n in names]
