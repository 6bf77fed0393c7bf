"""One pipeline run per data folder at a time.

``run_pipeline`` holds ``<data>/.workbench-run.lock`` while it runs. A second run on the
same data folder refuses to start and says who holds the lock. A lock left by a process
that no longer exists (a killed run) is taken over, with a note.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> d = Path(tempfile.mkdtemp())
    >>> with data_lock(d, owner="run A"):
    ...     try:
    ...         with data_lock(d, owner="run B"):
    ...             pass
    ...     except RunLocked as exc:
    ...         print("refused")
    refused
"""

from __future__ import annotations

import json
import os
import socket
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

LOCK_NAME = ".workbench-run.lock"


class RunLocked(RuntimeError):
    """Another run holds the data folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def data_lock(data_dir: Path, *, owner: str = "workbench run",
              log: Callable[[str], None] | None = None) -> Iterator[Path]:
    """Hold the run lock of ``data_dir`` for the duration of the ``with`` block."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = data_dir / LOCK_NAME
    info = {"pid": os.getpid(), "host": socket.gethostname(), "owner": owner,
            "started_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    for _attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                held = json.loads(lock.read_text(encoding="utf-8") or "{}")
            except (OSError, ValueError):
                held = {}
            same_host = held.get("host") == info["host"]
            pid = held.get("pid")
            if same_host and isinstance(pid, int) and not _alive(pid):
                if log:
                    log(f"note: removing a stale lock of a run that no longer exists (pid {pid}, "
                        f"started {held.get('started_utc')})")
                lock.unlink(missing_ok=True)
                continue
            raise RunLocked(
                f"Another run is using the data folder {data_dir}: {held.get('owner', 'unknown')} "
                f"(pid {pid} on {held.get('host')}, started {held.get('started_utc')} UTC). Wait for it to finish, "
                f"or delete {lock} if you are sure no run is active.") from None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(info, fh)
        break
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)
