"""Start-up cost: `import medface` plus listing plugins, in fresh interpreters.

Baseline, measured in the same run: importing torch, which medface avoids at start-up (what
listing would cost if the core imported its runtime eagerly). ratio = baseline / medface
(higher is better). Acceptance: medface under 1 s.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

REPEATS = 7


def _time(code: str) -> float:
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    empty = _time("pass")
    listing = _time("import medface; reg = medface.plugins(); assert len(reg) >= 3")
    cli = _time("from medface.cli import main; main(['plugins', 'list'])")
    torch = _time("import torch")
    print(f"python -c pass:                    {empty * 1000:7.1f} ms")
    print(f"import medface + list plugins:     {listing * 1000:7.1f} ms")
    print(f"medface plugins list (CLI parser): {cli * 1000:7.1f} ms")
    print(f"baseline: import torch:            {torch * 1000:7.1f} ms")
    print(f"medians of {REPEATS} fresh interpreters each")
    print(f"startup_ms={listing * 1000:.1f} cli_list_ms={cli * 1000:.1f} torch_import_ms={torch * 1000:.1f} "
          f"under_1s={listing < 1.0} ratio={torch / listing:.2f}")


if __name__ == "__main__":
    main()
