"""The production profile on one machine, for trying it: PostgreSQL, an MLflow tracking server on it with
served artifacts, a Prefect server on it, and a `process` worker. rewarm itself changes nothing: it reads
the stack from MLFLOW_TRACKING_URI and PREFECT_API_URL, like any other client.

    rewarm stack --folder /srv/rewarm-stack      # or python -m rewarm.stack; Ctrl-C stops all of it

Everything binds 127.0.0.1. PostgreSQL trusts connections from this machine only (no password): fine for
trying it, not for a shared machine (docs/production.md says what to change).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rewarm.errors import RewarmError
from rewarm.processes import free_port, spawn, stop_group, wait_healthy
from rewarm.serve import ui_env

DATABASES = ("mlflow", "prefect")
DB_USER = "rewarm"


@dataclass
class Stack:
    """Where each part of a running stack answers, and the environment a client or worker needs."""

    folder: Path
    postgres: str  # host:port
    tracking_uri: str
    prefect_api: str
    pool: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": self.tracking_uri, "PREFECT_API_URL": self.prefect_api}

    def database_url(self, name: str, driver: str = "postgresql") -> str:
        return f"{driver}://{DB_USER}@{self.postgres}/{name}"

    def create_database(self, name: str, driver: str = "postgresql") -> str:
        """Create database NAME in the stack's cluster (kept if it exists); return its URL."""
        createdb(self.postgres, name)
        return self.database_url(name, driver)


def postgres_bin() -> Path:
    """The folder of Debian's PostgreSQL programs (initdb, pg_ctl, createdb), newest version first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    if os.environ.get("REWARM_PG_BIN"):
        found.insert(0, os.environ["REWARM_PG_BIN"])
    for folder in found:
        if Path(folder, "initdb").is_file():
            return Path(folder)
    raise FileNotFoundError("PostgreSQL is not installed: apt-get install postgresql (or set REWARM_PG_BIN)")


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its programs as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(path, user.pw_uid, user.pw_gid)


def createdb(address: str, name: str) -> None:
    """Create database NAME on the cluster at ADDRESS (host:port) unless it exists."""
    host, port = address.rsplit(":", 1)
    made = subprocess.run(
        [str(postgres_bin() / "createdb"), "-h", host, "-p", port, "-U", DB_USER, name],
        capture_output=True,
        text=True,
    )
    if made.returncode and "already exists" not in made.stderr:
        raise RuntimeError(f"createdb {name}: {made.stderr.strip()}")


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        program = Path(next(c for c in command if c.startswith("/"))).name
        raise RuntimeError(f"{program} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-1500:]}")


def _check_reachable(data: Path) -> None:
    """As root, PostgreSQL runs as the postgres user: every folder above DATA must let others pass."""
    if os.geteuid() != 0:
        return
    closed = [p for p in data.parents if p.exists() and not os.stat(p).st_mode & 0o001]
    if closed:
        raise RewarmError(
            f"PostgreSQL runs as the postgres user, which cannot enter {closed[0]} to reach {data}: choose a "
            f"folder outside private ones (such as /srv/rewarm-stack), or `chmod o+x {closed[0]}`"
        )


@contextlib.contextmanager
def postgres(data: Path, port: int) -> Iterator[str]:
    """A PostgreSQL cluster in DATA on 127.0.0.1:PORT with the stack's databases; stopped and kept after."""
    bin_ = postgres_bin()
    _check_reachable(data)
    data.mkdir(parents=True, exist_ok=True)
    _own(data)
    if not (data / "PG_VERSION").exists():
        _run(_as_postgres([str(bin_ / "initdb"), "-D", str(data), "-U", DB_USER, "--auth=trust", "-E", "UTF8"]))
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {data}"
    _run(
        _as_postgres(
            [str(bin_ / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(data / "server.log"), "-w", "start"]
        )
    )
    try:
        for name in DATABASES:
            createdb(f"127.0.0.1:{port}", name)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_postgres([str(bin_ / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True
        )


@contextlib.contextmanager
def stack(
    folder: Path, pool: str = "rewarm", worker: bool = True, data: Path | None = None, artifacts: str | None = None
) -> Iterator[Stack]:
    """Start PostgreSQL, MLflow, Prefect (and a worker of the `process` pool POOL) under FOLDER; stop them after.

    DATA is the PostgreSQL cluster's folder (default FOLDER/postgres); it must be reachable by the postgres
    user when running as root (a folder under a private temporary folder is not). ARTIFACTS is where the
    tracking server keeps artifacts (default FOLDER/artifacts; s3://bucket/path with boto3 and the AWS_* and
    MLFLOW_S3_ENDPOINT_URL variables in this environment). Clients reach artifacts through the server only.
    """
    folder.mkdir(parents=True, exist_ok=True)
    python = Path(sys.executable)
    # The stack's own stores replace whatever this shell points at (a registry URI left behind would send
    # the worker's registry writes elsewhere).
    theirs = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "PREFECT_API_URL", "REWARM_HOME")
    base_env = {k: v for k, v in os.environ.items() if k not in theirs}
    base_env |= {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    with postgres(data or folder / "postgres", free_port()) as pg:
        mlflow_port, prefect_port = free_port(), free_port()
        result = Stack(
            folder=folder,
            postgres=pg,
            tracking_uri=f"http://127.0.0.1:{mlflow_port}",
            prefect_api=f"http://127.0.0.1:{prefect_port}/api",
            pool=pool,
        )
        try:
            mlflow_log = folder / "mlflow.log"
            mlflow = spawn(
                [
                    *(str(python), "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(mlflow_port)),
                    *("--backend-store-uri", result.database_url("mlflow")),
                    *("--artifacts-destination", artifacts or str(folder / "artifacts"), "--workers", "2"),
                ],
                mlflow_log,
                base_env,
            )
            result.processes.append(mlflow)
            prefect_log = folder / "prefect.log"
            prefect_env = (
                base_env
                | ui_env("127.0.0.1", prefect_port)
                | {
                    "PREFECT_HOME": str(folder / "prefect-home"),
                    "PREFECT_SERVER_DATABASE_CONNECTION_URL": result.database_url("prefect", "postgresql+asyncpg"),
                }
            )
            command = [str(python.with_name("prefect")), "server", "start", "--host", "127.0.0.1"]
            prefect = spawn([*command, "--port", str(prefect_port)], prefect_log, prefect_env)
            result.processes.append(prefect)
            wait_healthy(result.tracking_uri, mlflow, mlflow_log, interval=0.3)
            wait_healthy(result.prefect_api, prefect, prefect_log, interval=0.3)
            if worker:
                worker_env = base_env | result.env | {"PREFECT_HOME": str(folder / "worker-home")}
                worker_env |= {"REWARM_HOME": str(folder / "rewarm-home"), "PREFECT_WORKER_QUERY_SECONDS": "2"}
                command = [str(python.with_name("prefect")), "worker", "start", "--pool", pool, "--type", "process"]
                result.processes.append(spawn(command, folder / "worker.log", worker_env))
            yield result
        finally:
            for process in reversed(result.processes):
                stop_group(process, grace=20, reap=10)


def main(argv: list[str] | None = None) -> int:
    """`python -m rewarm.stack`: start the stack, print what a client exports, keep it up until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m rewarm.stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", required=True, type=Path, help="where the databases, artifacts and logs live")
    parser.add_argument("--pool", default="rewarm", help="the process work pool the worker polls")
    parser.add_argument("--artifacts", help="where MLflow keeps artifacts (default FOLDER/artifacts; or s3://...)")
    args = parser.parse_args(argv)
    try:
        check_can_start()
    except RewarmError as exc:
        parser.error(str(exc))
    return serve_stack(args.folder, args.pool, args.artifacts)


def check_can_start() -> None:
    """Refuse early what cannot start PostgreSQL here: root without runuser."""
    if shutil.which("runuser") is None and os.geteuid() == 0:
        raise RewarmError("running as root needs runuser (util-linux) to start PostgreSQL as the postgres user")


def serve_stack(folder: Path, pool: str = "rewarm", artifacts: str | None = None) -> int:
    """Run the stack under FOLDER in the foreground, printing what a client exports, until Ctrl-C or SIGTERM."""
    check_can_start()
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)  # a SIGTERM stops the stack like Ctrl-C, not just this process
    with (
        contextlib.suppress(KeyboardInterrupt),
        stack(folder.resolve(), pool, artifacts=artifacts) as running,
    ):
        print("stack up; in another shell:")
        for key, value in running.env.items():
            print(f"  export {key}={value}")
        print(f"  rewarm deploy --pool {pool} --config A/rewarm.toml --config B/rewarm.toml")
        print(f"logs: {folder}/*.log; Ctrl-C stops everything (the databases are kept)", flush=True)
        signal.pause()
    print("stack stopped", flush=True)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    # Once: a second Ctrl-C or SIGTERM must not cut short the stopping of the servers (they run in sessions
    # of their own, so a terminal's Ctrl-C never reaches them).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def run() -> None:
    """Run main() as a program: exit with its status, or with a RewarmError's one line."""
    try:
        sys.exit(main())
    except RewarmError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    run()
