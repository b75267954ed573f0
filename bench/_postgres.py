"""A throwaway PostgreSQL server for the benchmarks that measure or stress a study on PostgreSQL (``bench.driver``,
``bench.reliability``): started from the machine's ``initdb`` in a temporary folder, trust authentication, loopback
only, stopped and removed afterwards. Needs the ``postgres`` extra (psycopg)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["postgres_server", "fresh_database", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server():
    """A throwaway PostgreSQL server in a temporary folder (trust authentication, loopback only); its URL."""
    bindir = next((Path(p).parent for p in (shutil.which("initdb"),) if p), None)
    if bindir is None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        bindir = found[-1].parent if found else None
    if bindir is None:
        raise SystemExit("PostgreSQL: no initdb found; pass --postgres URL of a server")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # the server refuses root
    work = Path(tempfile.mkdtemp(prefix="nas-bench-pg-"))  # readable by that user, unlike the bench's work folder
    data = work / "pgdata"
    if as_user:
        shutil.chown(work, "postgres")
    subprocess.run(as_user + [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "nas"], check=True,
                   capture_output=True)
    port = free_port()
    subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(work / "pg.log"), "-o",
                              f"-p {port} -k {work} -c listen_addresses=127.0.0.1 -c fsync=on", "start"],
                   check=True, capture_output=True)
    try:
        url = f"postgresql+psycopg://nas@127.0.0.1:{port}/postgres"
        yield url
    finally:
        subprocess.run(as_user + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def fresh_database(url: str, prefix: str) -> str:
    """A new, empty database on the PostgreSQL server of ``url`` (a server given by --postgres may hold the studies
    of earlier runs, which the driver would resume instead of running); its URL."""
    import sqlalchemy

    name = f"{prefix}_{time.time_ns()}"
    with sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    return url.rsplit("/", 1)[0] + "/" + name
