"""A throwaway PostgreSQL server for the tests: Debian's `postgresql` package, a cluster in a
temporary folder, run as the unprivileged `postgres` user, reachable on 127.0.0.1 only.

    server = PostgresServer(tmp_path).start()
    server.url          # postgresql://vischain@127.0.0.1:PORT/vischain
    server.restart()    # stop (immediately) and start again on the same port
    server.stop()
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from pathlib import Path

INSTALL = "PostgreSQL is not installed: `make test` installs it (apt-get install -y postgresql), or install it yourself"


def _binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found and shutil.which(name):
        found = [shutil.which(name)]
    if not found:
        raise RuntimeError(INSTALL)
    return found[-1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.data = self.folder / "data"
        self.port = _free_port()
        self.url = f"postgresql://vischain@127.0.0.1:{self.port}/vischain"

    def _as_postgres(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        # PostgreSQL refuses to run as root; as root we switch to its own user, else run as ourselves.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *args], capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> PostgresServer:
        if not self.data.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(self.folder, "postgres", "postgres")
                os.chmod(self.folder, 0o755)
                for parent in self.folder.parents:  # the postgres user must reach the folder
                    if parent == Path("/"):
                        break
                    os.chmod(parent, os.stat(parent).st_mode | 0o111)
            self._as_postgres(_binary("initdb"), "-D", str(self.data), "-U", "vischain", "--auth=trust",
                              "--no-sync", "-E", "UTF8")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off " \
                  "-c full_page_writes=off -c max_connections=100"
        self._as_postgres(_binary("pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                          str(self.folder / "server.log"), "-w", "start")
        self._as_postgres(_binary("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "vischain", "-d",
                          "postgres", "-c", "SELECT 1", check=True)
        self._as_postgres(_binary("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "vischain",
                          "vischain", check=False)  # exists after a restart
        return self

    def stop(self) -> None:
        self._as_postgres(_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)

    def restart(self) -> None:
        self.stop()
        self.start()
