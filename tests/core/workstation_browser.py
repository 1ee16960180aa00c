"""A real `medface app` on a free port, driven by Playwright in Debian's headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from medface.workstation.cli import free_port

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120


def chromium_path() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("headless Chromium is not installed (`make test` installs Debian's chromium package)")
    return exe


@contextmanager
def running_app(data: Path, *, plugin_path: Path | None = None, extra: tuple[str, ...] = ()):
    """``medface app`` in a subprocess; yields (url, process); stops it afterwards."""
    pytest.importorskip("trame_slicer", reason="the workstation extra (trame-slicer) is not installed")
    port = free_port()
    env = {**os.environ, "MEDFACE_QUIET": "1"}
    if plugin_path is not None:
        env["MEDFACE_PLUGIN_PATH"] = str(plugin_path)
    log = open(data.parent / f"app-{port}.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "medface", "app", "--data", str(data), "--port", str(port),
                             *extra], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=data.parent)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_listening(port, proc, log)
        yield url, proc
    except BaseException:
        log.seek(0)
        print("---- medface app's log ----\n" + "\n".join(line for line in log.read().splitlines()[-80:]
                                                      if "vtk" not in line.lower() and line.strip()))
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _wait_until_listening(port: int, proc, log) -> None:
    import socket

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise AssertionError(f"medface app exited with {proc.returncode}:\n{log.read()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"medface app did not listen on {port} within {START_TIMEOUT_S} s")


@contextmanager
def browser_page(width: int = 1500, height: int = 950):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def choose(page, selector: str, option_text: str) -> None:
    """Pick an option of a Vuetify select (found by its input's id or test id) by the text it shows."""
    page.locator(selector).locator("xpath=ancestor-or-self::div[contains(@class, 'v-input')][1]").click()
    page.locator(".v-overlay--active .v-list-item", has_text=option_text).first.click()
    page.locator(".v-overlay--active .v-list-item").first.wait_for(state="detached", timeout=5000)


def views_png(page) -> bytes:
    return page.locator("#views").screenshot()


def changed_fraction(a: bytes, b: bytes) -> float:
    """The share of pixels that differ by more than a little between two screenshots."""
    import io

    import numpy as np
    from PIL import Image

    x = np.asarray(Image.open(io.BytesIO(a)).convert("RGB"), dtype=np.int16)
    y = np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), dtype=np.int16)
    if x.shape != y.shape:
        return 1.0
    return float((np.abs(x - y).max(axis=2) > 12).mean())


def views_changed(page, reference: bytes, minimum: float, timeout_s: float = 60.0) -> tuple[float, bytes]:
    """Screenshots of the views until one differs from ``reference`` by more than ``minimum`` (a
    share of pixels) or the time is up (a loaded machine streams frames late); the last one."""
    deadline = time.monotonic() + timeout_s
    while True:
        shot = views_png(page)
        fraction = changed_fraction(reference, shot)
        if fraction > minimum or time.monotonic() > deadline:
            return fraction, shot
        page.wait_for_timeout(500)
