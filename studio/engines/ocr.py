"""OCR: RapidOCR (PP-OCRv4 ONNX models shipped inside the pip package) by default, and
Tesseract for other languages where the `tesseract` binary is installed."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

import pycountry
from PIL import Image

if TYPE_CHECKING:
    from studio.models import Template

from studio.engines import EngineError, EngineResult

# PP-OCRv4's recogniser reads Latin script and Chinese.
BUILTIN_LANGUAGES = {"auto": "Detect automatically", "en": "English", "zh": "Chinese"}
TESSERACT_TIMEOUT_S = 60


def available() -> bool:
    """Whether RapidOCR is installed: looked up, not imported (the web answers submits and
    needs no onnxruntime; importing it cost a new process's first OCR submit 0.4 s)."""
    return importlib.util.find_spec("rapidocr_onnxruntime") is not None


@functools.cache
def _tesseract_data() -> dict[str, tuple[str, str]]:
    """Tesseract's installed language data: data name → (ISO 639-1 code or the data name,
    language name). Read once per process."""
    binary = shutil.which("tesseract")
    if not binary:
        return {}
    listing = subprocess.run(  # noqa: S603 - fixed arguments
        [binary, "--list-langs"], capture_output=True, text=True, timeout=10, check=False
    )
    data = {}
    for name in listing.stdout.splitlines()[1:]:
        name = name.strip()
        if name and name != "osd":  # `osd` is orientation data, not a language
            iso = pycountry.languages.get(alpha_3=name)
            data[name] = (getattr(iso, "alpha_2", name), iso.name if iso else name)
    return data


@functools.cache
def tesseract_languages() -> dict[str, str]:
    """Each code a client may send for Tesseract, ISO 639-1 (`de`) or Tesseract's own (`deu`,
    `chi_sim`), → the data name."""
    codes = {name: name for name in _tesseract_data()}
    for name, (code, _) in _tesseract_data().items():
        codes.setdefault(code, name)
    return codes


@functools.cache
def languages() -> dict[str, str]:
    """Every language this server reads, one code each → its name."""
    names = dict(BUILTIN_LANGUAGES)
    for code, name in _tesseract_data().values():
        names.setdefault(code, name)
    return names


def supports(language: str) -> bool:
    return language in BUILTIN_LANGUAGES or language in tesseract_languages()


# One recognised segment: text, confidence and its box's corner points.
Line = dict[str, Any]


# onnxruntime's threads per model, and Tesseract's: all cores unless the worker says how many
# of them each of its processes may take (size_for_worker).
_threads: int | None = None
# A blank line of text's size, to run the models once before the first job.
_WARM_UP_SIZE = (320, 48)


def size_for_worker(processes: int) -> None:
    """Share the machine's cores among a worker's `processes`, so that two OCR jobs at once
    do not each spin up a thread per core and slow each other down. Call before the models
    load (the worker does, as it starts)."""
    global _threads
    _threads = max(1, len(os.sched_getaffinity(0)) // max(1, processes))


@functools.cache
def _rapidocr() -> Any:  # RapidOCR ships no types
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(  # loads the models once per worker process
        # Detection scales a short side up to 240 px (larger images as they are, up to the
        # 2,000 px cap). RapidOCR's default, 736 px, turned a 900x120 line into 5,520x736:
        # 1.7 s instead of 0.28 s, and it read no better (test_ocr's sentences: worse order).
        # At the image's own size it ran words together ("Invoice2041isdue").
        det_limit_type="min",
        det_limit_side_len=240,
        # No 180° classification: upright text gains nothing from it (a third model run).
        use_cls=False,
        intra_op_num_threads=_threads or -1,
        inter_op_num_threads=1,
    )


def warm() -> None:
    """Load the models and run them once, so that the first job pays for neither."""
    import numpy as np

    _rapidocr()(np.full((_WARM_UP_SIZE[1], _WARM_UP_SIZE[0], 3), 255, dtype=np.uint8))


def _reading_order(lines: list[Line]) -> list[list[Line]]:
    """Group detected segments into rows (overlapping vertically), each sorted left to right.
    The detector returns segments in no particular order."""
    rows: list[list[Line]] = []
    for line in sorted(lines, key=lambda item: min(y for _, y in item["box"])):
        ys = [y for _, y in line["box"]]
        middle, height = (min(ys) + max(ys)) / 2, max(ys) - min(ys)
        for row in rows:
            row_ys = [y for item in row for _, y in item["box"]]
            if min(row_ys) - height / 2 <= middle <= max(row_ys) + height / 2:
                row.append(line)
                break
        else:
            rows.append([line])
    return [sorted(row, key=lambda item: min(x for x, _ in item["box"])) for row in rows]


def _lines_rapidocr(image: Image.Image) -> list[list[Line]]:
    import numpy as np

    result, _ = _rapidocr()(np.array(image.convert("RGB")))
    lines = []
    for box, text, confidence in result or []:
        lines.append(
            {
                "text": text.strip(),
                "confidence": round(float(confidence), 4),
                "box": [[round(x), round(y)] for x, y in box],
            }
        )
    return _reading_order(lines)


def _lines_tesseract(image: Image.Image, language: str) -> list[list[Line]]:
    import io

    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    try:
        # `language` is one tesseract itself listed (see run()), never free text.
        done = subprocess.run(  # noqa: S603
            [shutil.which("tesseract") or "tesseract", "stdin", "stdout", "-l", language, "tsv"],
            input=buffer.getvalue(),
            env={**os.environ, "OMP_THREAD_LIMIT": str(_threads)} if _threads else None,
            capture_output=True,
            timeout=TESSERACT_TIMEOUT_S,
            check=True,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        raise EngineError(f"Tesseract failed: {exc.__class__.__name__}") from exc
    # TSV columns: level page block par line word left top width height conf text
    words: dict[tuple[str, str, str], list[list[str]]] = {}
    for row in done.stdout.decode().splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) == 12 and cols[11].strip() and float(cols[10]) >= 0:
            words.setdefault((cols[2], cols[3], cols[4]), []).append(cols)
    lines = []
    for line in words.values():
        boxes = [tuple(map(int, cols[6:10])) for cols in line]
        left, top = min(b[0] for b in boxes), min(b[1] for b in boxes)
        right, bottom = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
        lines.append(
            {
                "text": " ".join(cols[11] for cols in line),
                "confidence": round(sum(float(cols[10]) for cols in line) / len(line) / 100, 4),
                "box": [[left, top], [right, top], [right, bottom], [left, bottom]],
            }
        )
    return [[line] for line in lines]


def run(template: Template | None, image: Image.Image, params: dict[str, Any]) -> EngineResult:
    language = params.get("language", "auto")
    tesseract_data = tesseract_languages().get(language)
    if language in BUILTIN_LANGUAGES:
        rows = _lines_rapidocr(image)
    elif tesseract_data:
        rows = _lines_tesseract(image, tesseract_data)
    else:
        raise EngineError(f"No OCR engine here reads {language!r}")
    text = "\n".join(" ".join(segment["text"] for segment in row) for row in rows)
    data = {"language": language, "text": text}
    if params.get("outputFormat") == "json":
        data["lines"] = [segment for row in rows for segment in row]
    return EngineResult(data=data)
