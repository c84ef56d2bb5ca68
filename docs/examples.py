"""The API examples the docs show, read from docs/examples/<name>/ (where the tests run them).

The files address the placeholder host; the docs show the site's own base URL instead, and
the tests point them at the live test server. Keys always come from $NANO_API_KEY.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
PLACEHOLDER_BASE_URL = "https://studio.example.com"
LANGUAGES = [
    # (file, tab label, language for the code block)
    ("request.sh", "curl", "shell"),
    ("request.py", "Python (requests)", "python"),
    ("request.mjs", "JavaScript (fetch)", "javascript"),
    ("request.axios.mjs", "Node (axios)", "javascript"),
]


@dataclass
class Snippet:
    id: str
    label: str
    language: str
    code: str


def source(name: str, filename: str, base_url: str) -> str:
    """An example file as it runs against `base_url`."""
    return (EXAMPLES_DIR / name / filename).read_text().replace(PLACEHOLDER_BASE_URL, base_url)


def snippets(name: str, base_url: str) -> list[Snippet]:
    return [
        Snippet(
            f"ex-{name}-{filename.replace('.', '-')}",
            label,
            language,
            source(name, filename, base_url),
        )
        for filename, label, language in LANGUAGES
        if (EXAMPLES_DIR / name / filename).exists()
    ]


def response_sample(name: str) -> str | None:
    path = EXAMPLES_DIR / name / "response.json"
    return path.read_text() if path.exists() else None
