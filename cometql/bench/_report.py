"""Showing benchmark results: live progress, the summary table, JSON, docs/performance.md.

Progress goes to stderr (so ``--json`` output on stdout stays machine-readable);
the table goes to stdout. ``write_performance_md`` rewrites only the block
between ``<!-- bench:start -->`` and ``<!-- bench:end -->``, keeping the prose
around it.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._results import Result

__all__ = ["BLOCK_END", "BLOCK_START", "Reporter", "print_json", "print_table", "results_json", "write_performance_md"]

BLOCK_START = "<!-- bench:start -->"
BLOCK_END = "<!-- bench:end -->"
SCALE_BLOCK_START = "<!-- bench:scale:start -->"
SCALE_BLOCK_END = "<!-- bench:scale:end -->"


class _Phase:
    """Handle on one progress line; ``advance`` is cheap enough to call per batch."""

    def __init__(self, progress: Progress | None, task: Any) -> None:
        self._progress = progress
        self._task = task

    def advance(self, amount: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, amount)

    def update(self, completed: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=completed)


class Reporter:
    """Rich progress on stderr while scenarios run; silent when ``quiet``."""

    def __init__(self, quiet: bool = False, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self._progress: Progress | None = None

    @contextmanager
    def running(self) -> Iterator[Reporter]:
        if self.quiet:
            yield self
            return
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), console=self.console,
                                  refresh_per_second=5, transient=False)
        with self._progress:
            yield self
        self._progress = None

    @contextmanager
    def phase(self, description: str, total: float | None = None) -> Iterator[_Phase]:
        if self._progress is None:
            yield _Phase(None, None)
            return
        task = self._progress.add_task(description, total=total)
        try:
            yield _Phase(self._progress, task)
        finally:
            self._progress.stop_task(task)

    def log(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, highlight=False)


def print_table(results: Sequence[Result], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title="CometQL benchmark", title_justify="left")
    for column, justify in (("scenario", "left"), ("figure", "left"), ("measured", "right"),
                            ("target", "right"), ("", "center")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for result in results:
        for i, figure in enumerate(result.figures):
            mark = {True: "[green]ok[/]", False: "[red]missed[/]", None: ""}[figure.ok]
            table.add_row(result.label if i == 0 else "", figure.name, figure.value_text(), figure.target_text(),
                          mark, end_section=i == len(result.figures) - 1)
    console.print(table)
    for result in results:
        for note in result.notes:
            console.print(f"[bold]{result.label}[/]: {note}", highlight=False)


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "system": platform.platform(terse=True),
            "date": date.today().isoformat()}


def results_json(results: Sequence[Result]) -> str:
    return json.dumps({"machine": machine(), "time": time.time(), "results": [r.to_json() for r in results]},
                      indent=2)


def _markers(results: Sequence[Result]) -> tuple[str, str]:
    """The standard set and ``scale`` keep separate blocks, so writing one never erases the other."""
    if results and all(r.scenario == "scale" for r in results):
        return SCALE_BLOCK_START, SCALE_BLOCK_END
    return BLOCK_START, BLOCK_END


def _markdown(results: Sequence[Result]) -> str:
    info = machine()
    start, end = _markers(results)
    lines = [
        start,
        f"Measured with `cometql bench` on {info['date']}: {info['cpus']} CPUs, Python {info['python']}, "
        "loopback; the load clients run on the same machine.",
        "",
        "| scenario | figure | measured | target | |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        for figure in result.figures:
            mark = {True: "ok", False: "**missed**", None: ""}[figure.ok]
            cells = (result.label, figure.name, figure.value_text(), figure.target_text(), mark)
            lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {r.label}: {note}" for r in results for note in r.notes]
    if notes:
        lines += ["", "Notes:", "", *notes]
    lines.append(end)
    return "\n".join(lines)


def write_performance_md(results: Sequence[Result], path: str | Path) -> None:
    """Put the results table into ``path`` between the bench markers; keep everything else.

    Without markers the block is appended under a "Benchmark" heading; a missing file is created.
    """
    path = Path(path)
    block = _markdown(results)
    start_marker, end_marker = _markers(results)
    text = path.read_text() if path.exists() else "# Performance\n"
    start, end = text.find(start_marker), text.find(end_marker)
    if start >= 0 and end > start:
        text = text[:start] + block + text[end + len(end_marker):]
    else:
        heading = "Scale-out (`cometql bench scale`)" if start_marker == SCALE_BLOCK_START else \
            "Benchmark (`cometql bench`)"
        text = text.rstrip("\n") + f"\n\n## {heading}\n\n" + block + "\n"
    path.write_text(text)


def print_json(results: Sequence[Result]) -> None:
    sys.stdout.write(results_json(results) + "\n")
