"""Overview page timings in the embedded default, under Streamlit's AppTest (issue 5).

Targets: first render ≤ 5 s once the data is loaded; a filter change ≤ 1 s.
Run: `python -m bench.dashboard_render [runs]`.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ENTRY = str(Path(__file__).resolve().parent.parent / "tests" / "dashboard_entry.py")


def run(runs: int = 5) -> dict[str, float]:
    started = time.perf_counter()
    AppTest.from_file(ENTRY, default_timeout=300).run()  # emulator + demo + first query, cached
    cold = time.perf_counter() - started
    renders, filters = [], []
    for _ in range(runs):
        app = AppTest.from_file(ENTRY, default_timeout=300)
        began = time.perf_counter()
        app.run()
        renders.append(time.perf_counter() - began)
        app.sidebar.selectbox(key="filter_dimension").set_value("country")
        app.sidebar.text_input(key="filter_value").set_value("DE")
        began = time.perf_counter()
        app.sidebar.button(key="filter_add").click().run()
        filters.append(time.perf_counter() - began)
        assert not app.exception
    return {
        "cold_start_s": cold,
        "render_median_s": statistics.median(renders),
        "render_max_s": max(renders),
        "filter_change_median_s": statistics.median(filters),
        "filter_change_max_s": max(filters),
    }


if __name__ == "__main__":
    for key, value in run(int(sys.argv[1]) if len(sys.argv) > 1 else 5).items():
        print(f"{key:>24}: {value:.3f}")
