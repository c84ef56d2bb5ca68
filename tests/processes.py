"""Processes the tests and the bench start and stop: a Celery worker and beat, gunicorn, a Redis
of their own. Each runs in its own session, so that stopping it stops its children too."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _celery(
    env: dict[str, str], command: str, *args: str, log: Path | None = None
) -> subprocess.Popen:
    """`celery --app nanostudio <command>` in a session of its own: quiet, or with every log
    line (DEBUG) written to `log`."""
    level = "DEBUG" if log else "WARNING"
    argv = [sys.executable, "-m", "celery", "--app", "nanostudio", command, "--loglevel", level]
    out = log.open("ab") if log else None
    try:
        return subprocess.Popen(
            [*argv, *args], cwd=ROOT, env=env, start_new_session=True, stdout=out, stderr=out
        )
    finally:
        if out:
            out.close()  # the child has its own copy


# Every queue but `webhooks` (its own worker, below), unless a test names the queues.
ALL_BUT_WEBHOOKS = "images,ocr,upstream,maintenance,celery"


def start_worker(env: dict[str, str], *args: str, log: Path | None = None) -> subprocess.Popen:
    queues = () if "--queues" in args else ("--queues", ALL_BUT_WEBHOOKS)
    return _celery(
        env,
        "worker",
        "--without-gossip",
        "--without-mingle",
        "--concurrency",
        "1",
        *queues,
        *args,
        log=log,
    )


def start_webhooks_worker(env: dict[str, str], concurrency: int = 8) -> subprocess.Popen:
    """The `webhooks` queue's worker as the Procfile runs it: threads, for waiting on others."""
    return start_worker(
        env,
        "--queues",
        "webhooks",
        "--pool",
        "threads",
        "--concurrency",
        str(concurrency),
        "--hostname",
        "webhooks@%h",
    )


def start_usage_mover(
    env: dict[str, str], python: str = sys.executable, root: Path = ROOT
) -> subprocess.Popen:
    """The Procfile's `usage` process (`manage.py move_usage_events`), of the checkout at
    `root` run by `python` (this one's by default)."""
    return subprocess.Popen(
        [python, "manage.py", "move_usage_events"], cwd=root, env=env, start_new_session=True
    )


def stop_process(process: subprocess.Popen) -> None:
    """Stop a process started here (worker, web, beat, Redis) and its children, at once: when
    a test is done with it there is nothing left for it to finish, and a graceful stop costs
    a worker 1.5 s (production mode) to 5.6 s (embedded mode, whose broker it polls)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def wait_for_log(log: Path, text: str, count: int = 1, seconds: float = 30) -> None:
    """Wait until `text` is in the log of a process started here `count` times (it is stopped
    with SIGKILL, so a line it writes after the test's last check must be waited for)."""
    deadline = time.monotonic() + seconds
    while (content := log.read_text()).count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} not logged: {content[-2000:]}"
        time.sleep(0.05)


def start_redis(port: int, *settings: str, folder: Path | None = None) -> subprocess.Popen:
    """A Redis server of the test's own, to stop and start (never the shared one): keeping
    nothing on disk unless `settings` say otherwise (its files then go in `folder`)."""
    command = [
        "redis-server",
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        *(["--dir", str(folder)] if folder else []),
        *settings,
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
    wait_for_port(port, process)
    return process


def start_web(env: dict[str, str], port: int, *args: str) -> subprocess.Popen:
    """gunicorn with the Procfile's server model (gthread), on this run's database."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "nanostudio.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        "gthread",
        "--workers",
        "1",
        "--threads",
        "8",
        *args,
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    wait_for_port(port, process)
    return process


def start_beat(env: dict[str, str], schedule: Path) -> subprocess.Popen:
    return _celery(env, "beat", "--schedule", str(schedule))


def start_s3(port: int) -> subprocess.Popen:
    """moto's standalone S3-compatible server (from PyPI): a real HTTP server, in memory."""
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(port, process)
    return process
