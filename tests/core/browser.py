"""Headless Chromium (Debian's `chromium` package) for the browser tests: screenshots and DOM dumps."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", "--enable-unsafe-swiftshader",
         "--use-angle=swiftshader"]


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("headless Chromium is not installed (`make test` installs Debian's chromium package)")
    return exe


def run(page: Path, tmp: Path, *extra: str, timeout: int = 90) -> subprocess.CompletedProcess:
    args = [chromium(), *FLAGS, f"--user-data-dir={tmp / 'profile'}", "--window-size=700,700",
            "--virtual-time-budget=10000", *extra, page.resolve().as_uri()]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout)


def screenshot(page: Path, tmp: Path) -> Path:
    out = tmp / "screenshot.png"
    proc = run(page, tmp, f"--screenshot={out}")
    assert out.is_file(), f"Chromium wrote no screenshot: {proc.stderr[-2000:]}"
    return out


def dump_dom(page: Path, tmp: Path) -> str:
    proc = run(page, tmp, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout
