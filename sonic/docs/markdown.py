"""Markdown pieces shared by the generated pages: tables, sections with their source line."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sonic.docs.provenance import Source


def table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def section(title: str, body: str, source: Source, note: str = "") -> str:
    return "\n\n".join(p for p in (f"### {title}", note, body, source.line()) if p)


def load(path: Path) -> Any:
    return json.loads(Path(path).read_text())
