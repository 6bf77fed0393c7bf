"""Headless Chromium for looking at reports as a person would: Debian's ``chromium`` package and a
CJK font for the HTML text (``fonts-noto-cjk``), installed by ``make browser`` (CI's .ci/run calls it).

Example:
    >>> png = screenshot(Path("reports/latest/index.html"), Path("/tmp/index.png"))  # doctest: +SKIP

As a script, screenshots of a run's index and segment report into ``<run>/screenshots/``::

    .venv/bin/python -m tests.browser reports/latest
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

#: Flags for a closed network, as root, without a display (no sandbox, no GPU, no background traffic).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--force-device-scale-factor=1")


def missing() -> str | None:
    """What is missing for the screenshots (chromium, or a CJK font for page text), or None."""
    if not shutil.which("chromium"):
        return "chromium"
    fonts = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout.strip() \
        if shutil.which("fc-list") else ""
    return None if fonts else "a CJK font for chromium (fc-list :lang=zh is empty)"


def chromium() -> str:
    """Path of Debian's chromium with a CJK font for page text; in CI (``CI=true``) their absence
    fails the test, elsewhere it skips it with the command that installs them."""
    what = missing()
    if what is None:
        return shutil.which("chromium")  # type: ignore[return-value]
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} missing: .ci/run installs it with `make browser`")
    pytest.skip(f"{what} missing: `make browser` installs Debian's chromium and fonts-noto-cjk")


def screenshot(page: Path, png: Path, *, width: int = 1280, height: int = 3000, timeout: float = 120) -> Path:
    """Open ``page`` (an HTML file) in headless Chromium and save a ``width`` × ``height`` screenshot."""
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
               f"--screenshot={png}", page.resolve().as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0 and png.is_file(), f"chromium failed ({done.returncode}):\n{done.stderr[-2000:]}"
    return png


def _main(argv: list[str]) -> int:
    import sys

    if len(argv) != 1:
        print("usage: python -m tests.browser REPORTS/RUN_ID", file=sys.stderr)
        return 2
    if (what := missing()) is not None:
        print(f"{what} missing: run `make browser`", file=sys.stderr)
        return 1
    run = Path(argv[0]).resolve()
    for page, height in (("index.html", 1400), ("10_segment_report.html", 4200), ("12_campaign_results.html", 3600)):
        if (run / page).is_file():
            print(screenshot(run / page, run / "screenshots" / page.replace(".html", ".png"), height=height))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(_main(sys.argv[1:]))
