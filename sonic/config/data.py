"""The params section ``data``: where the clips are and how their folder is laid out."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DataConfig:
    layout: Literal["demo", "folder", "esc50", "urbansound8k"] = "demo"
    root: str = "data/demo"
    on_bad_file: Literal["skip", "fail"] = "skip"
    group_regex: str | None = None  # first capture group of the file stem names the clip's group
    answers: str | None = None  # answers CSV for folder layouts; default <root>/test_labels.csv
    subset: Literal["all", "esc10"] = "all"  # esc50 layout: esc10 keeps the ESC-10 clips only
    classes: tuple[str, ...] | None = None  # keep only clips of these labels (None: every class)

    def problems(self) -> list[tuple[str, str]]:
        """(field, why) for values that are each fine but do not fit together."""
        if self.subset != "all" and self.layout != "esc50":
            return [("subset", f"{self.subset} is a subset of the esc50 layout, but "
                               f"data.layout is {self.layout}")]
        if self.classes is not None and not self.classes:
            return [("classes", "must name at least one class, or be null for all")]
        return []
