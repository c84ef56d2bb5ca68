"""The built-in engine: image transformations with Pillow, run on the worker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageOps

if TYPE_CHECKING:
    from studio.models import Template

from studio.engines import EngineError, EngineResult


def _rgb(image: Image.Image) -> Image.Image:
    return image.convert("RGB")


def sepia(image: Image.Image, strength: float = 1.0) -> Image.Image:
    gray = ImageOps.grayscale(image)
    toned = ImageOps.colorize(gray, black="#2b1d0e", white="#fff1d6", mid="#a67b4f")
    return Image.blend(_rgb(image), toned, strength)


def vignette(image: Image.Image, strength: float = 0.6) -> Image.Image:
    image = _rgb(image)
    width, height = image.size
    mask = Image.new("L", (width, height), 0)
    inset = int(min(width, height) * 0.12)
    ImageDraw.Draw(mask).ellipse((inset, inset, width - inset, height - inset), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(min(width, height) / 6))
    dark = ImageEnhance.Brightness(image).enhance(1 - strength)
    return Image.composite(image, dark, mask)


def vintage(image: Image.Image) -> Image.Image:
    faded = ImageEnhance.Contrast(sepia(image, 0.8)).enhance(0.85)
    return vignette(faded, 0.45)


def pencil_sketch(image: Image.Image) -> Image.Image:
    gray = ImageOps.grayscale(image)
    # Contour lines on white, with a light wash of the original tones for shading.
    lines = gray.filter(ImageFilter.SMOOTH).filter(ImageFilter.CONTOUR)
    wash = gray.point(lambda value: 255 - (255 - value) // 3)
    return ImageOps.autocontrast(Image.blend(lines, wash, 0.35)).convert("RGB")


def pop_art(image: Image.Image) -> Image.Image:
    return ImageEnhance.Color(ImageOps.posterize(_rgb(image), 2)).enhance(2.2)


def cartoon(image: Image.Image) -> Image.Image:
    image = _rgb(image)
    smooth = image.filter(ImageFilter.ModeFilter(5)).filter(ImageFilter.SMOOTH_MORE)
    flat = ImageOps.posterize(smooth, 3)
    edges = ImageOps.grayscale(image).filter(ImageFilter.FIND_EDGES)
    edges = edges.point(lambda value: 0 if value > 40 else 255)
    return ImageChops.multiply(flat, edges.convert("RGB"))


def grayscale(image: Image.Image) -> Image.Image:
    return ImageOps.grayscale(image).convert("RGB")


def blur(image: Image.Image, radius: float = 4) -> Image.Image:
    return _rgb(image).filter(ImageFilter.GaussianBlur(radius))


def sharpen(image: Image.Image) -> Image.Image:
    return _rgb(image).filter(ImageFilter.UnsharpMask(radius=2, percent=200, threshold=2))


def emboss(image: Image.Image) -> Image.Image:
    return _rgb(image).filter(ImageFilter.EMBOSS)


def invert(image: Image.Image) -> Image.Image:
    return ImageOps.invert(_rgb(image))


def brightness(image: Image.Image, factor: float = 1.35) -> Image.Image:
    return ImageEnhance.Brightness(_rgb(image)).enhance(factor)


def contrast(image: Image.Image, factor: float = 1.5) -> Image.Image:
    return ImageEnhance.Contrast(_rgb(image)).enhance(factor)


def saturation(image: Image.Image, factor: float = 1.8) -> Image.Image:
    return ImageEnhance.Color(_rgb(image)).enhance(factor)


def auto_contrast(image: Image.Image) -> Image.Image:
    return ImageOps.autocontrast(_rgb(image), cutoff=2)


def polaroid(image: Image.Image) -> Image.Image:
    image = _rgb(image)
    side = max(8, min(image.size) // 18)
    framed = ImageOps.expand(image, border=(side, side, side, side * 4), fill="#fbfbf8")
    return framed


def rounded_corners(image: Image.Image, radius_ratio: float = 0.12) -> Image.Image:
    image = _rgb(image)
    mask = Image.new("L", image.size, 0)
    radius = int(min(image.size) * radius_ratio)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, *image.size), radius=radius, fill=255)
    background = Image.new("RGB", image.size, "white")
    return Image.composite(image, background, mask)


def black_frame(image: Image.Image) -> Image.Image:
    side = max(4, min(image.size) // 25)
    return ImageOps.expand(_rgb(image), border=side, fill="black")


OPERATIONS = {
    "vintage": vintage,
    "pencil_sketch": pencil_sketch,
    "pop_art": pop_art,
    "cartoon": cartoon,
    "grayscale": grayscale,
    "sepia": sepia,
    "blur": blur,
    "sharpen": sharpen,
    "emboss": emboss,
    "invert": invert,
    "brightness": brightness,
    "contrast": contrast,
    "saturation": saturation,
    "auto_contrast": auto_contrast,
    "polaroid": polaroid,
    "rounded_corners": rounded_corners,
    "black_frame": black_frame,
    "vignette": vignette,
}


def run(template: Template, image: Image.Image, params: dict[str, Any]) -> EngineResult:
    parameters = dict(template.parameters)
    operation = OPERATIONS.get(parameters.pop("op", ""))
    if operation is None:
        raise EngineError(f"Template {template.name!r} has no known operation")
    return EngineResult(image=operation(image, **parameters))
