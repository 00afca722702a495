"""Cold start of the embedded default: `streamlit run streamlit_app.py` → first page shown.

Starts Streamlit in a fresh process (new emulator, demo traffic loaded through the pipeline),
opens it in headless Chromium and stops the clock when the page shows its numbers.
Run: `python -m bench.cold_start [runs]`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from bench.browser import launch
from pipeline.local.emulator import free_port

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 120_000


def one_run(browser) -> dict[str, float]:  # type: ignore[no-untyped-def]
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "streamlit_app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        page = browser.new_page()
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while True:
            try:
                page.goto(f"http://127.0.0.1:{port}/", timeout=TIMEOUT_MS)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        served = time.perf_counter() - started
        page.get_by_text("Unique visitors").wait_for(timeout=TIMEOUT_MS)
        page.locator(".js-plotly-plot").first.wait_for(timeout=TIMEOUT_MS)
        shown = time.perf_counter() - started
        page.close()
        return {"server_up_s": served, "first_page_s": shown}
    finally:
        process.terminate()
        process.wait(timeout=30)


def run(runs: int = 3) -> dict[str, float]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        results = [one_run(browser) for _ in range(runs)]
        browser.close()
    shown = [r["first_page_s"] for r in results]
    return {
        "runs": runs,
        "first_page_median_s": statistics.median(shown),
        "first_page_max_s": max(shown),
    }


if __name__ == "__main__":
    for key, value in run(int(sys.argv[1]) if len(sys.argv) > 1 else 3).items():
        print(f"{key:>22}: {value:,.3g}" if isinstance(value, float) else f"{key:>22}: {value}")
