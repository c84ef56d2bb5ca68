"""Job files on disk (MEDIA_ROOT/jobs/<id>/), served only through owner-checked views."""

from __future__ import annotations

import io
import shutil
import uuid
from pathlib import Path

from django.conf import settings
from PIL import Image

from studio import images
from studio.images import CheckedImage


def job_dir(job_id: uuid.UUID) -> Path:
    return Path(settings.MEDIA_ROOT) / "jobs" / str(job_id)


def save_image(job_id: uuid.UUID, name: str, image: Image.Image) -> str:
    folder = job_dir(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    (folder / name).write_bytes(buffer.getvalue())
    return f"jobs/{job_id}/{name}"


def save_input(job_id: uuid.UUID, image: CheckedImage) -> str:
    """The client's bytes as they came: the worker decodes them, not the web process."""
    folder = job_dir(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"input.{image.extension}"
    (folder / name).write_bytes(image.raw)
    return f"jobs/{job_id}/{name}"


def open_image(relative: str) -> Image.Image:
    """A job's stored image, decoded and upright; raises images.InvalidImage."""
    return images.decode((Path(settings.MEDIA_ROOT) / relative).read_bytes())


def path_of(relative: str) -> Path:
    return Path(settings.MEDIA_ROOT) / relative


def delete_job_files(job_id: uuid.UUID) -> None:
    shutil.rmtree(job_dir(job_id), ignore_errors=True)
