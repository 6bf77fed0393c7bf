"""Run one benchmark step in a fresh Python process (so its peak memory is its own) and
read back the JSON it prints on a ``RESULT`` line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
RESULT = "RESULT "


def run_child(module: str, *args: object) -> dict:
    """``python -m <module> <args>`` in the project root; its last ``RESULT {json}`` line."""
    cmd = [sys.executable, "-m", module, *map(str, args)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    line = [x for x in out.stdout.splitlines() if x.startswith(RESULT)][-1]
    return json.loads(line[len(RESULT):])
