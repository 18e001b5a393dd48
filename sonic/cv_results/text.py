"""How the page writes its figures."""
from __future__ import annotations


def wall_time(t: dict) -> str:
    """A training's wall time for a table; a resumed one says which epochs it counts."""
    text = f"{t['wall_time_s'] / 60:.1f} min"
    if t.get("resumed_after_epoch"):
        text += f" (epochs after {t['resumed_after_epoch']} only: resumed)"
    return text


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"
