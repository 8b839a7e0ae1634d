"""Real servers for the tests, started from the binaries Debian installs.

`start_postgres(tmp_dir)` makes a throwaway PostgreSQL cluster in `tmp_dir` (no fsync: the
data dies with the tests) listening on a free loopback port, with a superuser that logs in
with a password over TCP, and returns its URL and a function that stops it. As root it runs
initdb and the server as the `postgres` user (initdb refuses root): `tmp_dir` is then chowned
to that user and must be reachable by it (made with `tempfile.mkdtemp()` in /tmp, say).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

INSTALL_POSTGRES = "apt-get install postgresql"
PG_USER = "dreamnodes"
PG_PASSWORD = "pg-test-secret-5d1e"  # a throwaway cluster's


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_bin() -> Path | None:
    """The folder of initdb and pg_ctl: Debian's newest, else wherever pg_ctl is on PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).resolve().parent if on_path else None


def start_postgres(tmp_dir: str | Path) -> tuple[str, Callable[[], None]]:
    """A fresh cluster in `tmp_dir`: (``postgresql://USER:PASSWORD@127.0.0.1:PORT/postgres``,
    stop). Raises FileNotFoundError, naming what to install, when there is no PostgreSQL."""
    bin_dir = postgres_bin()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        raise FileNotFoundError(f"no PostgreSQL server binaries ({INSTALL_POSTGRES})")
    tmp = Path(tmp_dir)
    data, log, pwfile = tmp / "data", tmp / "postgres.log", tmp / "pwfile"
    pwfile.write_text(PG_PASSWORD + "\n")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb will not run as root: the cluster is postgres's
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise FileNotFoundError(
                f"no 'postgres' user to run it as ({INSTALL_POSTGRES})"
            ) from None
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(tmp, "postgres")
        shutil.chown(pwfile, "postgres")
    subprocess.run(
        [
            *as_user,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            PG_USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {tmp}"
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    pg_ctl = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data)]
    started = subprocess.run(
        [*pg_ctl, "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {started.stderr}{tail}")

    def stop() -> None:
        subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True)

    return f"postgresql://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{port}/postgres", stop
