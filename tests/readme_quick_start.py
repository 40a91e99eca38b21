"""The README's quick start as data: its shell blocks, command by command, for the tests that hold it to the truth
(tests/test_readme_quick_start.py checks what it names exists; tests/test_newcomer_walk.py runs it)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
HEADING = "## Quick start (from a clone)"


def quick_start_section(text: str | None = None) -> str:
    """The README from the quick start's heading to the next second-level heading."""
    text = README.read_text(encoding="utf-8") if text is None else text
    start = text.index(HEADING)
    end = text.find("\n## ", start + len(HEADING))
    return text[start : end if end >= 0 else len(text)]


def quick_start_blocks(text: str | None = None) -> list[list[str]]:
    """Each ```sh block of the quick start, as its command lines (exactly as written, comments included)."""
    blocks = re.findall(r"```sh\n(.*?)```", quick_start_section(text), flags=re.DOTALL)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]
