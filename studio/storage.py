"""Job files (inputs and outputs, `jobs/<id>/<name>`) through Django's storage API: an
S3-compatible bucket when AWS_STORAGE_BUCKET_NAME is set (what several machines need: the
web process that stores an input and the worker that reads it may be on different hosts), else
the local folder MEDIA_ROOT. Served only through owner-checked views, which redirect to a
short-lived presigned URL where the storage can make one, and stream otherwise. An input of up
to JOB_INPUT_INLINE_MAX_BYTES is no file: it is kept in the database with its job (JobInput)."""

from __future__ import annotations

import io
import mimetypes
import uuid
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.http import FileResponse, HttpResponseBase, HttpResponseRedirect
from PIL import Image

from studio import images
from studio.images import CheckedImage
from studio.models import Job, JobInput


def job_files() -> Storage:
    return storages["jobs"]


def _name(job_id: uuid.UUID, name: str) -> str:
    return f"jobs/{job_id}/{name}"


def save_image(job_id: uuid.UUID, name: str, image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return job_files().save(_name(job_id, name), ContentFile(buffer.getvalue()))


def keep_input(job: Job, image: CheckedImage) -> JobInput | None:
    """Keep the client's bytes as they came (the worker decodes them, not the web process).
    Up to JOB_INPUT_INLINE_MAX_BYTES: the row to insert with the job, in its statement, and
    no file at all. Larger: saved in the job files storage now, named in `job.input_file`."""
    if len(image.raw) <= settings.JOB_INPUT_INLINE_MAX_BYTES:
        return JobInput(job=job, data=image.raw, extension=image.extension)
    name = _name(job.pk, f"input.{image.extension}")
    job.input_file = job_files().save(name, ContentFile(image.raw))
    return None


def open_input(job: Job) -> Image.Image | None:
    """A job's input image, decoded and upright (None: a prompt job has none); raises
    images.InvalidImage."""
    if job.input_file:
        return open_image(job.input_file)
    kept = JobInput.objects.filter(job_id=job.pk).values_list("data", flat=True).first()
    return None if kept is None else images.decode(bytes(kept))


def open_image(name: str) -> Image.Image:
    """A job's stored image, decoded and upright; raises images.InvalidImage."""
    with job_files().open(name, "rb") as file:
        return images.decode(file.read())


def delete(*names: str) -> None:
    """A job's files, by name (empty names are skipped: a job may have no input or output)."""
    storage = job_files()
    for name in names:
        if name:
            storage.delete(name)


def download(name: str, filename: str, *, attachment: bool = False) -> HttpResponseBase:
    """The owner's answer for one of a job's files: a redirect to a presigned URL valid for
    JOB_FILE_URL_EXPIRE_S where the storage makes them (the bytes then come from the bucket,
    not from a web thread), else the file streamed."""
    storage = job_files()
    signed = _presigned_url(storage, name, filename, attachment)
    if signed:
        response = HttpResponseRedirect(signed)
        response["Cache-Control"] = "private, no-store"
        return response
    return FileResponse(storage.open(name, "rb"), as_attachment=attachment, filename=filename)


def download_input(job: Job, stem: str, *, attachment: bool = False) -> HttpResponseBase:
    """The owner's answer for a job's input: as download() from the files storage, or from its
    row (filename: stem + the client's format). FileNotFoundError if none is kept."""
    if job.input_file:
        suffix = PurePosixPath(job.input_file).suffix
        return download(job.input_file, f"{stem}{suffix}", attachment=attachment)
    kept = JobInput.objects.filter(job_id=job.pk).first()
    if kept is None:
        raise FileNotFoundError
    filename = f"{stem}.{kept.extension}"
    return FileResponse(io.BytesIO(bytes(kept.data)), as_attachment=attachment, filename=filename)


def _presigned_url(storage: Storage, name: str, filename: str, attachment: bool) -> str | None:
    if not hasattr(storage, "bucket_name"):
        return None  # a local folder: nothing to sign
    signer: Any = _public_signer() or storage
    disposition = "attachment" if attachment else "inline"
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return str(
        signer.url(
            name,
            parameters={
                "ResponseContentDisposition": f'{disposition}; filename="{filename}"',
                "ResponseContentType": content_type,
            },
            expire=settings.JOB_FILE_URL_EXPIRE_S,
        )
    )


_signer: Any = None


def _public_signer() -> Any:
    """Where clients reach the bucket at another address than the servers do (compose: MinIO
    behind the proxy), URLs are signed for AWS_S3_PUBLIC_ENDPOINT_URL."""
    global _signer
    public = settings.AWS_S3_PUBLIC_ENDPOINT_URL
    if not public:
        return None
    if _signer is None:
        from storages.backends.s3 import S3Storage

        _signer = S3Storage(endpoint_url=public)
    return _signer
