"""How a process chooses its settings: `.env` read in one place (the settings), the environment
winning over it, and DEBUG on by default in embedded mode only, so that `manage.py` commands
typed from the README work as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOW = (
    "from django.conf import settings as s; "
    "print(s.PRODUCTION_MODE, s.DEBUG, s.DATABASES['default']['ENGINE'].rsplit('.', 1)[1])"
)


def _manage(tmp_path: Path, *args: str, env_file: str = "", **env: str):
    """manage.py as a reader types it: no test runner variables, a working folder of its own."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TESTING", "DEBUG", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SQLITE_PATH")
        and not k.startswith("DJANGO_")
    }
    clean.update(VAR_DIR=str(tmp_path / "var"), **env)
    if env_file:
        (tmp_path / ".env").write_text(env_file)
        clean["ENV_FILE"] = str(tmp_path / ".env")
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_embedded_mode_runs_manage_py_with_debug_on_and_no_warning(tmp_path):
    done = _manage(tmp_path, "shell", "-v", "0", "-c", SHOW)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True", "sqlite3"]
    migrate = _manage(tmp_path, "migrate", "--noinput")
    assert migrate.returncode == 0, migrate.stderr
    assert "W040" not in migrate.stdout + migrate.stderr
    superuser = _manage(
        tmp_path,
        "createsuperuser",
        "--noinput",
        DJANGO_SUPERUSER_EMAIL="admin@example.com",
        DJANGO_SUPERUSER_PASSWORD="correct horse battery",
    )
    assert superuser.returncode == 0, superuser.stderr


def test_env_file_is_read_and_the_environment_wins(tmp_path):
    url = "postgres://postgres@127.0.0.1:5432/nowhere"
    env_file = f"DATABASE_URL={url}\nREDIS_URL=redis://127.0.0.1:6379/9\nDEBUG=1\n"
    done = _manage(tmp_path, "shell", "-v", "0", "-c", SHOW, env_file=env_file)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "postgresql"]

    done = _manage(tmp_path, "shell", "-v", "0", "-c", SHOW, env_file=env_file, DEBUG="0")
    assert done.returncode != 0  # DEBUG off from the environment: secrets are now required
    assert "SECRET_KEY must be set when DEBUG is off" in done.stderr


def test_production_mode_keeps_debug_off_unless_set(tmp_path):
    env_file = "DATABASE_URL=postgres://postgres@127.0.0.1:5432/x\nREDIS_URL=redis://127.0.0.1/9\n"
    done = _manage(tmp_path, "shell", "-v", "0", "-c", SHOW, env_file=env_file)
    assert done.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in done.stderr


def test_secrets_can_come_from_files(tmp_path):
    """Docker and Kubernetes secrets: NAME_FILE names a file whose contents are the value."""
    (tmp_path / "secret_key").write_text("s" * 50 + "\n")
    (tmp_path / "pepper").write_text("pepper-from-a-file")
    (tmp_path / "database_url").write_text("postgres://app:hunter2@db:5432/nano\n")
    show = (
        "from django.conf import settings as s; "
        "print(s.SECRET_KEY == 's' * 50, s.API_KEY_PEPPER, s.DATABASES['default']['PASSWORD'])"
    )
    files = {
        "SECRET_KEY_FILE": str(tmp_path / "secret_key"),
        "API_KEY_PEPPER_FILE": str(tmp_path / "pepper"),
        "DATABASE_URL_FILE": str(tmp_path / "database_url"),
        "REDIS_URL": "redis://127.0.0.1:6379/9",
        "DEBUG": "0",
    }
    done = _manage(tmp_path, "shell", "-v", "0", "-c", show, **files)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "pepper-from-a-file", "hunter2"]

    missing = _manage(
        tmp_path, "shell", "-c", show, **{**files, "SECRET_KEY_FILE": str(tmp_path / "nope")}
    )
    assert missing.returncode != 0
    assert "SECRET_KEY_FILE=" in missing.stderr and "cannot be read" in missing.stderr
    both = _manage(tmp_path, "shell", "-c", show, **files, SECRET_KEY="x" * 50)
    assert "Set SECRET_KEY or SECRET_KEY_FILE, not both" in both.stderr
