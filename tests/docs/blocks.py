"""Fenced code blocks of the README and docs/, with where they are and their language tag."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: The documents a user follows. Other Markdown (issue notes, tests) is not user documentation.
DOCUMENTS = ("README.md", "docs/*.md", "examples/**/README.md")

_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)


@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository
    line: int  # of the opening fence
    lang: str
    text: str

    @property
    def head(self) -> str:
        """The block's first non-empty line: with ``path``, what names it in the skip list."""
        return next((line.strip() for line in self.text.splitlines() if line.strip()), "")

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.lang or 'untagged'}"


def documents() -> list[Path]:
    return sorted({p for pattern in DOCUMENTS for p in REPO.glob(pattern)})


def blocks_of(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    rel = path.relative_to(REPO).as_posix()
    found = []
    for m in _FENCE.finditer(text):
        indent = len(m.group("indent"))
        body = "".join(line[indent:] if line[:indent].isspace() else line
                       for line in m.group("body").splitlines(keepends=True))
        found.append(Block(rel, text.count("\n", 0, m.start()) + 1, m.group("lang"), body))
    return found


def all_blocks() -> list[Block]:
    return [block for path in documents() for block in blocks_of(path)]
