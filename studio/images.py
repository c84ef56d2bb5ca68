"""Untrusted images: checked cheaply on the request path, decoded only by the worker.

The request path reads the header, the declared size and the frame count, and verifies the
file's structure without decoding its pixels, so any input within the body limit costs a
few milliseconds and kilobytes there. The worker decodes (allowed formats only, the same
limits), applies the EXIF orientation and converts; a file that fails then (a truncated
one) fails its job with INVALID_IMAGE and is refunded.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from struct import error as struct_error  # Pillow lets it out of some damaged headers

from django.conf import settings
from PIL import Image, ImageOps, UnidentifiedImageError

from studio.rejections import Rejected

# Pillow format → the file extension we store it under. Phone cameras write multi-picture
# JPEGs, which Pillow opens as MPO: they are JPEGs, and the first picture is the photo.
FORMATS = {"PNG": "png", "JPEG": "jpg", "MPO": "jpg", "WEBP": "webp", "GIF": "gif"}
DECLARED_TYPES = {
    "image/png": {"PNG"},
    "image/jpeg": {"JPEG", "MPO"},
    "image/jpg": {"JPEG", "MPO"},
    "image/webp": {"WEBP"},
    "image/gif": {"GIF"},
}
_DATA_URL_RE = re.compile(r"^data:([^;,]*);base64,", re.IGNORECASE)


class InvalidImage(Exception):
    """The bytes are not an image we accept; the message says why, for the client."""


def invalid(message: str) -> Rejected:
    return Rejected("INVALID_IMAGE", message, {"fields": {"image": message}})


@dataclass(frozen=True)
class CheckedImage:
    raw: bytes
    format: str  # a key of FORMATS
    width: int
    height: int

    @property
    def extension(self) -> str:
        return FORMATS[self.format]


def check_image(value: str) -> CheckedImage:
    """base64 or a data URL → the checked bytes. Raises INVALID_IMAGE; never decodes pixels."""
    text = value.strip()
    declared = None
    if match := _DATA_URL_RE.match(text):
        declared = match.group(1).strip().lower()
        text = text[match.end() :]
        if declared not in DECLARED_TYPES:
            raise invalid(
                f"The data URL declares {declared or 'no type'}; send image/png, image/jpeg, "
                "image/webp or image/gif."
            )
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("`image` is not valid base64 (or a base64 data URL).") from None
    if not raw:
        raise invalid("`image` is empty.")
    try:
        with _opened(raw) as probe:
            assert probe.format is not None  # Image.open(formats=…) only opens those formats
            checked = CheckedImage(raw, probe.format, *probe.size)
            animated = _check_frames(probe)
            if not animated:
                probe.verify()  # structure and checksums, without decoding the pixels
        if animated:  # verify() must come straight after open, before any seek
            with _opened(raw) as probe:
                probe.verify()
    except InvalidImage as refused:
        raise invalid(str(refused)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise invalid("The image is too large to decode safely.") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct_error):
        raise invalid("`image` is not a readable PNG, JPEG, WebP or GIF image.") from None
    if declared is not None and checked.format not in DECLARED_TYPES[declared]:
        raise invalid(f"The data URL declares {declared}, but the image is a {checked.format}.")
    return checked


def decode(raw: bytes) -> Image.Image:
    """The worker's full decode: upright (EXIF orientation applied), RGB or RGBA. Raises
    InvalidImage for anything the request-path check let through but cannot be decoded."""
    try:
        with _opened(raw) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            mode = "RGBA" if upright.mode in ("RGBA", "LA", "P", "PA") else "RGB"
            return upright.convert(mode)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage("The image is too large to decode safely.") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct_error):
        raise InvalidImage("The image could not be decoded: it is truncated or damaged.") from None


@contextmanager
def _opened(raw: bytes) -> Iterator[Image.Image]:
    """Image.open restricted to the allowed formats, with the pixel limit checked before any
    decoding and Pillow's decompression-bomb warning made an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            # JPEG's opener hands multi-picture files to the MPO plugin: JPEG covers MPO.
            image = Image.open(io.BytesIO(raw), formats=["PNG", "JPEG", "WEBP", "GIF"])
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InvalidImage("The image is too large to decode safely.") from None
        except UnidentifiedImageError:
            raise InvalidImage("`image` is not a readable PNG, JPEG, WebP or GIF image.") from None
        with image:
            width, height = image.size
            if width * height > settings.IMAGE_MAX_PIXELS:
                raise InvalidImage(
                    f"The image is {width}x{height} pixels; the limit is "
                    f"{settings.IMAGE_MAX_PIXELS:,} pixels."
                )
            yield image


def _check_frames(image: Image.Image) -> bool:
    """Animated GIF, WebP and PNG: at most IMAGE_MAX_FRAMES frames (only the first is used).
    Seeks to the first frame past the limit rather than counting them all. True if the image
    is animated (it was sought in)."""
    limit = settings.IMAGE_MAX_FRAMES
    if not getattr(image, "is_animated", False):
        return False
    try:
        image.seek(limit)
    except EOFError:
        image.seek(0)
        return True
    raise InvalidImage(f"Animated images may have at most {limit} frames.")
