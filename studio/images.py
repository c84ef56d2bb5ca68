"""Decoding untrusted images: allowed formats only, with size and pixel limits."""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

from django.conf import settings
from PIL import Image

from nanostudio.errors import ApiError

ALLOWED_FORMATS = {"PNG", "JPEG", "WEBP", "GIF"}
_DATA_URL_RE = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)


def invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_IMAGE", message, {"fields": {"image": message}})


def decode_image(value: str) -> tuple[bytes, Image.Image]:
    """base64 or a data URL → (bytes, a fully loaded RGB(A) image). Raises INVALID_IMAGE."""
    text = _DATA_URL_RE.sub("", value.strip(), count=1)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("`image` is not valid base64 (or a base64 data URL).") from None
    if not raw:
        raise invalid("`image` is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(raw))
            if probe.format not in ALLOWED_FORMATS:
                raise invalid(f"Images must be PNG, JPEG, WebP or GIF, not {probe.format}.")
            width, height = probe.size
            if width * height > settings.IMAGE_MAX_PIXELS:
                raise invalid(
                    f"The image is {width}x{height} pixels; the limit is "
                    f"{settings.IMAGE_MAX_PIXELS:,} pixels."
                )
            probe.load()
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise invalid("The image is too large to decode safely.") from None
    except (OSError, SyntaxError, ValueError):
        raise invalid("`image` is not a readable PNG, JPEG, WebP or GIF image.") from None
    image = probe.convert("RGBA" if probe.mode in ("RGBA", "LA", "P") else "RGB")
    return raw, image
