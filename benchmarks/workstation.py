"""Workstation: app start to first frame, and slider move to new frame in the surgery panel.

A real `medface app` on a free port, driven by Playwright in headless Chromium (Debian's):

- start-up: from launching the process to the first frame of the 3D view in the page
  (goal <= 5 s on this machine);
- live panel: the surgery panel's "move segment" on the skin `surgery segment` makes of the
  sample CT (about 50k vertices); each move is a key press on a slider, timed in the page from
  the key press to the next frame of the 3D view (goal <= 100 ms). While a slider moves the app
  streams the 3D view at reduced resolution, then one full-resolution frame once it stops
  (medface.workstation.views): the sizes of the frames, the time from the last key press to that
  still frame and the size of the view's final image are reported too.

Baseline, measured in the same run: the same move computed without the panel's precomputed
affine response, i.e. building the panel's logic (the blend weights) again for every move, as
a command run would (server side, no rendering). ``ratio`` = baseline update time / live update
time (higher is better).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FIRST_FRAME_JS = """() => new Promise(resolve => {
  const ready = () => { const img = document.querySelector('#views img.image-display-area');
                        return img && img.src && img.src.startsWith('blob:'); };
  if (ready()) return resolve(performance.now());
  const id = setInterval(() => { if (ready()) { clearInterval(id); resolve(performance.now()); } }, 5);
})"""
ARM_JS = """() => { const img = document.querySelector('#views img.image-display-area');
  window.__nextFrame = new Promise(resolve => new MutationObserver((m, o) => { o.disconnect();
    const t = performance.now();  // the frame's time: its image swap; its size once decoded
    img.decode().catch(() => null).then(() => resolve({t: t, w: img.naturalWidth, h: img.naturalHeight,
      full: Math.round(img.clientWidth * devicePixelRatio)}));
  }).observe(img, {attributes: true, attributeFilter: ['src']}));
  return performance.now(); }"""
FINAL_JS = """() => { const img = document.querySelector('#views img.image-display-area');
  return {w: img.naturalWidth, h: img.naturalHeight, full: Math.round(img.clientWidth * devicePixelRatio)}; }"""
NEXT_FRAME_JS = """ms => Promise.race([window.__nextFrame, new Promise(r => setTimeout(() => r(null), ms))])"""


def _prepare(folder: Path) -> None:
    import medface

    medface.run("surgery.segment", ct=REPO / "sample_data" / "head_ct.nii.gz", out=folder / "case")


def _startup_and_moves(folder: Path, moves: int, shots: str | None = None) -> dict:
    import subprocess

    from playwright.sync_api import sync_playwright

    from medface.workstation.cli import free_port
    from tests.core.workstation_browser import chromium_path, choose

    port = free_port()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "medface", "app", "--data", str(folder), "--port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=2000)
                    break
                except Exception:
                    if proc.poll() is not None or time.perf_counter() - start > 120:
                        raise RuntimeError("the app did not start")
                    time.sleep(0.05)
            page.evaluate(FIRST_FRAME_JS)
            first_frame_s = time.perf_counter() - start
            for name in ("skull", "mandible", "skin"):
                page.locator(f"[data-testid='data-case/{name}.ply']").click()
                page.locator("#info", has_text=f"loaded case/{name}.ply").wait_for(timeout=60_000)
            page.locator("#tab-panels").click()
            choose(page, "#panel-select", "surgery")
            choose(page, "[data-testid='pick-segment']", "scene: mandible")
            page.locator("#open-panel").click()
            page.locator("#panel-controls").wait_for(timeout=120_000)
            page.wait_for_timeout(3000)
            slider = page.locator("#panel-controls .v-slider").first.locator("[role='slider']")
            slider.focus()
            latencies, server, frames = [], [], []
            for i in range(moves):
                armed = page.evaluate(ARM_JS)
                page.keyboard.press("ArrowRight" if (i // 10) % 2 == 0 else "ArrowLeft")
                frames.append(page.evaluate(NEXT_FRAME_JS, 30_000))
                latencies.append(frames[-1]["t"] - armed)
                if i == moves - 1:  # after the last move: the still frame, at full resolution
                    page.evaluate(ARM_JS)
                    still = page.evaluate(NEXT_FRAME_JS, 3000)
                server.append(float(page.locator("#panel-ms").inner_text().split()[1]))
                page.wait_for_timeout(120)
            page.wait_for_timeout(500)
            final = page.evaluate(FINAL_JS)
            if shots:
                page.locator("#views").screenshot(path=str(Path(shots) / "benchmark-after-moves.png"))
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            browser.close()
    still_ms = still["t"] - armed if still else None  # from the last key press
    return {"first_frame_s": first_frame_s, "frame_ms": latencies, "server_ms": server, "frames": frames,
            "still": still, "still_ms": still_ms, "final": final}


def _server_updates(folder: Path, repeats: int) -> tuple[list[float], list[float], int]:
    """Live update (precomputed) against rebuilding the panel's logic for each move, in ms."""
    from medface import io
    from medface.plugin.panels import open_panel, update_panel
    from medface.plugin.registry import get_registry

    _, spec = get_registry().panel("surgery.move-segment")
    inputs = {"skull": io.read_mesh(folder / "case" / "skull.ply"),
              "segment": io.read_mesh(folder / "case" / "mandible.ply"),
              "skin": io.read_mesh(folder / "case" / "skin.ply")}
    logic = open_panel(spec.full_id, **inputs)
    live, rebuilt = [], []
    for i in range(repeats):
        t0 = time.perf_counter()
        update_panel(logic, spec, translation_x_mm=0.5 * (i % 10))
        live.append((time.perf_counter() - t0) * 1000)
    for i in range(max(3, repeats // 10)):
        t0 = time.perf_counter()
        update_panel(open_panel(spec.full_id, **inputs), spec, translation_x_mm=0.5 * (i % 10))
        rebuilt.append((time.perf_counter() - t0) * 1000)
    return live, rebuilt, len(inputs["skin"].vertices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=40, help="slider moves timed in the browser")
    parser.add_argument("--screenshots", help="a folder for a screenshot of the views after the moves")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        folder.mkdir()
        _prepare(folder)
        live, rebuilt, n_skin = _server_updates(folder, 50)
        browser = _startup_and_moves(folder, args.moves, args.screenshots)
    frame = browser["frame_ms"]
    p95 = sorted(frame)[int(0.95 * (len(frame) - 1))]
    live_ms, rebuilt_ms = statistics.median(live), statistics.median(rebuilt)
    print(f"skin: {n_skin} vertices (surgery segment of the sample CT)")
    print(f"app start to first frame of the 3D view: {browser['first_frame_s']:.2f} s   goal <= 5 s")
    print(f"slider move to new frame (in the page, {len(frame)} moves): median {statistics.median(frame):.0f} ms, "
          f"95th percentile {p95:.0f} ms   goal <= 100 ms")
    sizes = sorted({f"{f['w']}x{f['h']}" for f in browser["frames"]})
    final, still = browser["final"], browser["still"]
    print(f"  frame sizes while moving: {', '.join(sizes)} (view {final['full']} px wide)")
    still_text = (f"{browser['still_ms']:.0f} ms after the last key press, {still['w']}x{still['h']}" if still
                  else "none within 3 s")
    print(f"  still frame: {still_text}; the view's final image {final['w']}x{final['h']} "
          f"({'full' if final['w'] >= final['full'] - 1 else 'REDUCED'} resolution)")
    print(f"  of which the panel update and scene change on the server: median "
          f"{statistics.median(browser['server_ms']):.1f} ms")
    print(f"panel update alone: live {live_ms:.1f} ms; baseline (weights rebuilt per move) {rebuilt_ms:.0f} ms")
    print(f"skin_vertices={n_skin} first_frame_s={browser['first_frame_s']:.2f} "
          f"slider_frame_ms={statistics.median(frame):.0f} slider_frame_p95_ms={p95:.0f} "
          f"still_frame_ms={browser['still_ms'] or float('nan'):.0f} final_px={final['w']}x{final['h']} "
          f"live_update_ms={live_ms:.1f} baseline_update_ms={rebuilt_ms:.0f} ratio={rebuilt_ms / live_ms:.1f}")


if __name__ == "__main__":
    main()
