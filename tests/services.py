"""The team services a project outgrows one machine into, started for real on this machine by the tests:
PostgreSQL (Debian's cluster; there is no systemd, so `pg_ctlcluster`) and an S3 endpoint (moto's server).
Nothing is running when CI starts, and nothing is mocked: clients talk to them over the network."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

PG_VERSION = "15"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 60, log: Path | None = None):
    """Wait until something accepts connections on 127.0.0.1:port; fail with the log if the process dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before listening on {port}:\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listened on {port} within {timeout:.0f} s:\n{_tail(log)}")


def _tail(log: Path | None) -> str:
    return log.read_text()[-3000:] if log and log.exists() else ""


def _as_postgres(sql: str) -> None:
    # The cluster belongs to the postgres OS user; its local socket trusts that user (peer auth).
    subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True)


def start_postgres() -> int:
    """Start Debian's PostgreSQL cluster when it is down (idempotent) and return its port."""
    if not shutil.which("pg_ctlcluster"):
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")
    ready = subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"], check=False).returncode == 0
    if not ready:
        subprocess.run(["pg_ctlcluster", PG_VERSION, "main", "start"], check=True)
        for _ in range(100):
            if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"], check=False).returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("PostgreSQL did not become ready")
    return 5432


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database and role with a password on the local cluster; yields its postgresql:// URL.

    SQLAlchemy 2.1 reads `postgresql://` as psycopg 3, so the client needs `psycopg[binary]`.
    """
    port = start_postgres()
    name = f"t_{secrets.token_hex(4)}"
    password = secrets.token_hex(8)
    _as_postgres(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
    _as_postgres(f"CREATE DATABASE {name} OWNER {name}")
    try:
        yield f"postgresql://{name}:{password}@127.0.0.1:{port}/{name}"
    finally:
        _as_postgres(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        _as_postgres(f"DROP ROLE IF EXISTS {name}")


# moto accepts any credentials; clients still need some to sign requests.
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def s3_client(url: str):
    """A boto3 client of the test endpoint at url, with its S3_CREDENTIALS: to look into buckets without DVC."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    )


@contextlib.contextmanager
def s3_endpoint(workdir: Path, buckets: tuple[str, ...] = ()) -> Iterator[str]:
    """An S3-compatible endpoint (moto's server) with the given buckets; yields its http:// URL.

    Clients find it with the S3_CREDENTIALS above and the URL as their endpoint
    (`AWS_ENDPOINT_URL`, `MLFLOW_S3_ENDPOINT_URL`, or DVC's `endpointurl`).
    """
    port = free_port()
    log = workdir / f"moto-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **S3_CREDENTIALS},
        )
    try:
        wait_for_port(port, process, log=log)
        url = f"http://127.0.0.1:{port}"
        client = s3_client(url)
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def mlflow_server(mlflow: Path, store: str, artifacts: str, s3_url: str, workdir: Path) -> Iterator[str]:
    """`mlflow server` on a free port with its runs in `store` and artifacts proxied to `artifacts` (s3://...) at
    the S3 endpoint s3_url; yields its http:// URL once /health answers.

    `mlflow` is the executable to run, e.g. a project's .venv/bin/mlflow installed with its `team` extra (the
    server needs psycopg and boto3). The server alone gets the S3 credentials. One worker and no job runner:
    up in ~20 s instead of ~60 s.
    """
    import urllib.request

    port = free_port()
    log = workdir / f"mlflow-server-{port}.log"
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI")}
    env.update(S3_CREDENTIALS, MLFLOW_S3_ENDPOINT_URL=s3_url, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    command = [str(mlflow), "server", "--backend-store-uri", store, "--artifacts-destination", artifacts]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, process, timeout=180, log=log)
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server at {url} never became healthy:\n{_tail(log)}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
