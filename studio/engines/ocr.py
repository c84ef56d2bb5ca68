"""OCR: RapidOCR (PP-OCRv4 ONNX models shipped inside the pip package) by default, and
Tesseract for other languages where the `tesseract` binary is installed."""

from __future__ import annotations

import functools
import shutil
import subprocess

from PIL import Image

from studio.engines import EngineError, EngineResult

# PP-OCRv4's recogniser reads Latin script and Chinese.
BUILTIN_LANGUAGES = {"auto", "en", "zh", "ch"}
TESSERACT_TIMEOUT_S = 60


def available() -> bool:
    try:
        import rapidocr_onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def tesseract_languages() -> set[str]:
    binary = shutil.which("tesseract")
    if not binary:
        return set()
    listing = subprocess.run(  # noqa: S603 - fixed arguments
        [binary, "--list-langs"], capture_output=True, text=True, timeout=10, check=False
    )
    return {line.strip() for line in listing.stdout.splitlines()[1:] if line.strip()}


def supports(language: str) -> bool:
    return language in BUILTIN_LANGUAGES or language in tesseract_languages()


@functools.cache
def _rapidocr():
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()  # loads the models once per worker process


def _reading_order(lines: list[dict]) -> list[list[dict]]:
    """Group detected segments into rows (overlapping vertically), each sorted left to right.
    The detector returns segments in no particular order."""
    rows: list[list[dict]] = []
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


def _lines_rapidocr(image: Image.Image) -> list[list[dict]]:
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


def _lines_tesseract(image: Image.Image, language: str) -> list[list[dict]]:
    import io

    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    try:
        # `language` is one tesseract itself listed (see run()), never free text.
        done = subprocess.run(  # noqa: S603
            [shutil.which("tesseract") or "tesseract", "stdin", "stdout", "-l", language, "tsv"],
            input=buffer.getvalue(), capture_output=True, timeout=TESSERACT_TIMEOUT_S, check=True,
        )  # fmt: skip
    except (subprocess.SubprocessError, OSError) as exc:
        raise EngineError(f"Tesseract failed: {exc.__class__.__name__}") from exc
    lines: dict[tuple, dict] = {}
    for row in done.stdout.decode().splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or not cols[11].strip() or float(cols[10]) < 0:
            continue
        key = (cols[2], cols[3], cols[4])  # block, paragraph, line
        left, top, width, height = map(int, cols[6:10])
        line = lines.setdefault(
            key, {"words": [], "conf": [], "box": [left, top, left + width, top + height]}
        )
        line["words"].append(cols[11])
        line["conf"].append(float(cols[10]) / 100)
        box = line["box"]
        line["box"] = [
            min(box[0], left),
            min(box[1], top),
            max(box[2], left + width),
            max(box[3], top + height),
        ]
    return [
        [{"text": " ".join(line["words"]), "confidence": round(sum(line["conf"]) / len(line["conf"]), 4),
          "box": [[line["box"][0], line["box"][1]], [line["box"][2], line["box"][1]], [line["box"][2], line["box"][3]], [line["box"][0], line["box"][3]]]}]
        for line in lines.values()
    ]  # fmt: skip


def run(template, image: Image.Image, params: dict) -> EngineResult:
    language = params.get("language", "auto")
    if language in BUILTIN_LANGUAGES:
        rows = _lines_rapidocr(image)
    elif language in tesseract_languages():
        rows = _lines_tesseract(image, language)
    else:
        raise EngineError(f"No OCR engine here reads {language!r}")
    text = "\n".join(" ".join(segment["text"] for segment in row) for row in rows)
    data = {"language": language, "text": text}
    if params.get("outputFormat") == "json":
        data["lines"] = [segment for row in rows for segment in row]
    return EngineResult(data=data)
