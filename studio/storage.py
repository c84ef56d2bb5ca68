"""Job files on disk (MEDIA_ROOT/jobs/<id>/), served only through owner-checked views."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

from django.conf import settings
from PIL import Image


def job_dir(job_id) -> Path:
    return Path(settings.MEDIA_ROOT) / "jobs" / str(job_id)


def save_image(job_id, name: str, image: Image.Image) -> str:
    folder = job_dir(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    (folder / name).write_bytes(buffer.getvalue())
    return f"jobs/{job_id}/{name}"


def open_image(relative: str) -> Image.Image:
    return Image.open(Path(settings.MEDIA_ROOT) / relative)


def path_of(relative: str) -> Path:
    return Path(settings.MEDIA_ROOT) / relative


def delete_job_files(job_id) -> None:
    shutil.rmtree(job_dir(job_id), ignore_errors=True)
