"""A real PostgreSQL server for the tests: Debian's server binaries (`.ci/run` installs the
`postgresql` package when they are missing), a fresh cluster in a temp dir on a free port,
listening on 127.0.0.1 only, stopped by its postmaster's process id. PostgreSQL refuses to run
as root, so under root the server runs as the `postgres` user (`setpriv` execs, so the process
started is the postmaster itself)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from tests.kit.processes import free_port
from tests.kit.waiting import poll_until

BINARIES = "/usr/lib/postgresql/*/bin"  # Debian's layout, one folder per major version
START_TIMEOUT = 60.0  # seconds for initdb and the first connection, on a loaded machine
STOP_TIMEOUT = 30.0


@dataclass
class PostgresServer:
    """A running server: its superuser URL, its postmaster and its cluster's folder."""

    port: int
    process: subprocess.Popen
    root: Path
    command: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL."""
        con = psycopg2.connect(self.url)
        try:
            con.autocommit = True  # CREATE DATABASE runs outside a transaction only
            with con.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            con.close()
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any session still connected to it."""
        con = psycopg2.connect(self.url)
        try:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            con.close()

    def stop(self) -> None:
        """Stop the server and remove its cluster."""
        self._halt()
        shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        """Stop the server (every client's connection drops), then start it again on the same
        cluster and port, as an upgrade or a crash and recovery would."""
        self._halt()
        self.process = _spawn(self.command)
        _wait_until_it_answers(self)

    def _halt(self) -> None:
        """Fast shutdown (SIGINT to the postmaster, by pid); SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None."""
    found = sorted(glob.glob(BINARIES), key=lambda p: int(Path(p).parent.name))
    return Path(found[-1]) if found else None


def start_server() -> PostgresServer:
    """A fresh cluster, trusted local connections only, started and answering."""
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError(
            f"no PostgreSQL server binaries under {BINARIES}: install Debian's postgresql "
            "(apt-get install postgresql), as .ci/run does."
        )
    root = Path(tempfile.mkdtemp(prefix="ibw-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    run_as: list[str] = []
    if os.geteuid() == 0:  # the server refuses root: run it as `postgres`
        user = pwd.getpwnam("postgres")
        for path in (root, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
        run_as = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}"]
        run_as += ["--init-groups", "--"]
    initdb = [*run_as, str(binaries / "initdb"), "-D", str(data), "-U", "postgres"]
    initdb += ["--auth=trust", "-E", "UTF8", "--no-sync"]
    subprocess.run(initdb, check=True, capture_output=True, timeout=START_TIMEOUT)
    port = free_port()
    command = [*run_as, str(binaries / "postgres"), "-D", str(data), "-p", str(port)]
    command += ["-k", str(sockets), "-c", "listen_addresses=127.0.0.1"]
    command += ["-c", "fsync=off", "-c", "max_connections=200"]  # a test cluster, not a store
    server = PostgresServer(port, _spawn(command), root, command)
    try:
        _wait_until_it_answers(server)
    except BaseException:
        server.stop()
        raise
    return server


def _spawn(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_until_it_answers(server: PostgresServer) -> None:
    poll_until(lambda: _answers(server), "PostgreSQL to accept connections", START_TIMEOUT)


def _answers(server: PostgresServer) -> bool:
    if server.process.poll() is not None:
        raise RuntimeError(f"PostgreSQL exited with code {server.process.returncode}")
    try:
        psycopg2.connect(server.url, connect_timeout=2).close()
    except psycopg2.OperationalError:
        return False
    return True
