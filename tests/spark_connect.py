"""A throw-away Spark Connect server (local[2]) for ``make test-spark-connect``.

The server is the one inside the pyspark wheel (``sbin/start-connect-server.sh`` and the
``spark-connect`` jar it ships): nothing is downloaded. It listens on a free port of 127.0.0.1,
its logs and pid file go to a temporary folder, and it is stopped (and checked gone) when the
command ends, whatever its outcome::

    python -m tests.spark_connect -- python -m pytest -q tests/test_spark_engine.py

runs the command with ``WORKBENCH_TEST_SPARK_REMOTE=sc://127.0.0.1:<port>``: the Spark tests'
session (``tests/conftest.py``) and every stage they run then go through Spark Connect.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.pg_server import free_port


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


class ConnectServer:
    """``start()`` a local Spark Connect server; ``url`` to reach it; ``stop()`` it."""

    def __init__(self, *, master: str = "local[2]", driver_memory: str = "2g", timeout: float = 180):
        self.master, self.driver_memory, self.timeout = master, driver_memory, timeout
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="workbench-spark-connect-"))
        home = _spark_home()
        self.env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOG_DIR": str(self.folder / "logs"),
                    "SPARK_PID_DIR": str(self.folder), "SPARK_LOCAL_IP": "127.0.0.1",
                    "SPARK_IDENT_STRING": f"workbench-{self.port}",
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.sbin = home / "sbin"

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def start(self) -> "ConnectServer":
        conf = {"spark.connect.grpc.binding.address": "127.0.0.1", "spark.connect.grpc.binding.port": str(self.port),
                "spark.ui.enabled": "false", "spark.sql.session.timeZone": "UTC"}
        args = ["bash", str(self.sbin / "start-connect-server.sh"), "--master", self.master,
                "--driver-memory", self.driver_memory]
        for k, v in conf.items():
            args += ["--conf", f"{k}={v}"]
        subprocess.run(args, env=self.env, check=True, capture_output=True, text=True)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.5)
        log = "".join(p.read_text(errors="replace")[-3000:] for p in (self.folder / "logs").glob("*.out"))
        self.stop()
        raise RuntimeError(f"The Spark Connect server did not listen on port {self.port} within "
                           f"{self.timeout:.0f} s. Its log ends:\n{log}")

    def stop(self) -> None:
        """Stop the server and wait until its JVM is gone (killed after 60 s)."""
        pids = [int(p.read_text().strip()) for p in self.folder.glob("*.pid") if p.read_text().strip().isdigit()]
        subprocess.run(["bash", str(self.sbin / "stop-connect-server.sh")], env=self.env, capture_output=True)
        deadline = time.monotonic() + 60
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if _alive(p)]
            time.sleep(0.2)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1:]
    if not argv:
        print("usage: python -m tests.spark_connect -- <command> ...", file=sys.stderr)
        return 2
    server = ConnectServer().start()
    print(f"Spark Connect server at {server.url}", flush=True)
    try:
        return subprocess.call(argv, env={**os.environ, "WORKBENCH_TEST_SPARK_REMOTE": server.url})
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
