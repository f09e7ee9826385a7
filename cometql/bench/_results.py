"""What a scenario reports: figures (with their targets), notes, and the raw numbers.

Kept apart from the scenarios and the report so both can use it without
importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Figure", "Result", "Target"]


@dataclass(frozen=True)
class Target:
    """A goal for one figure: ``op`` is "<=" (at most) or ">=" (at least)."""

    op: str
    value: float

    def met(self, value: float) -> bool:
        return value <= self.value if self.op == "<=" else value >= self.value

    def text(self, unit: str) -> str:
        sign = "≤" if self.op == "<=" else "≥"
        return f"{sign} {_number(self.value)} {unit}".rstrip()


@dataclass
class Figure:
    name: str
    value: float | None
    unit: str
    target: Target | None = None

    @property
    def ok(self) -> bool | None:
        if self.target is None or self.value is None:
            return None
        return self.target.met(self.value)

    def value_text(self) -> str:
        return "n/a" if self.value is None else f"{_number(self.value)} {self.unit}".rstrip()

    def target_text(self) -> str:
        return self.target.text(self.unit) if self.target else ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit,
                "target": None if self.target is None else {"op": self.target.op, "value": self.target.value},
                "ok": self.ok}


@dataclass
class Result:
    """One run of one scenario with one set of parameters (e.g. fanout at N=1000)."""

    scenario: str
    label: str
    params: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: raw measurements for machines (counts, CPU shares, per-round values)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, name: str, value: float | None, unit: str, target: Target | None = None) -> Figure:
        figure = Figure(name, value, unit, target)
        self.figures.append(figure)
        return figure

    def figure(self, name: str) -> Figure:
        return next(f for f in self.figures if f.name == name)

    @property
    def ok(self) -> bool | None:
        """False when a target was missed, True when all were met, None without targets."""
        checks = [f.ok for f in self.figures if f.ok is not None]
        return all(checks) if checks else None

    def to_json(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "label": self.label, "params": self.params,
                "figures": [f.to_json() for f in self.figures], "notes": self.notes, "details": self.details,
                "ok": self.ok}


def _number(value: float) -> str:
    """Readable without false precision: 12,345 / 123 / 12.3 / 1.23 / 0.123."""
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100 or value == int(value):
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"
