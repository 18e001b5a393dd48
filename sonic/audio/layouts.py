"""Finding the clips of a data set, in each input layout Sonic accepts.

Layouts (``data.layout``):

``demo`` / ``folder``
    ``<root>/train/<class>/<clip>`` plus optional ``<root>/test/<clip>`` and an optional answers CSV
    (``filename,label``; ``data.answers`` or ``<root>/test_labels.csv``). The demo set is written
    in this layout by the ``prepare`` stage.
``esc50``
    The official ESC-50 layout: ``<root>/meta/esc50.csv`` (filename, fold, target, category,
    esc10, src_file, take) and ``<root>/audio/<filename>``.
``urbansound8k``
    The official UrbanSound8K layout: ``<root>/metadata/UrbanSound8K.csv`` (slice_file_name,
    fsID, start, end, salience, fold, classID, class) and ``<root>/audio/fold<N>/<slice>``. The
    slices of one Freesound recording (``fsID``) form one group.

In the two fold layouts every clip is in the labelled pool; ``split.val_fold`` holds one fold out.

Groups in the folder layouts: a clip's group is its path below the root without the suffix
(``train/dog/001``), so same-named files in two class folders are two groups. With
``data.group_regex`` the pattern is searched (``re.search``) in the file's stem, the name without
folder or suffix, and its first capture group is the group, shared by every file whose stem
yields it, in any class folder; a stem it does not match keeps the path group.

``discover`` walks the root itself, or, given stage ``scan``'s manifest, takes the files from it
and never looks for others; a clip the manifest marks unusable (a broken link, an unreadable
file) is reported with the manifest's reason, as is every other unusable entry it lists.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Collection, Mapping
from pathlib import Path, PurePosixPath

import pandas as pd

from sonic.audio.io import audio_extensions
from sonic.audio.manifest import OK, Entry
from sonic.config import DataConfig


class LayoutError(Exception):
    """The data root does not look like the layout named in params."""


@dataclass(frozen=True)
class Clip:
    """One source file. ``label`` is None for unanswered test clips; ``fold`` is 0 outside the
    fold layouts (ESC-50, UrbanSound8K)."""

    clip_id: str  # path relative to the root, unique
    path: Path
    label: str | None
    group: str  # clips of one group never straddle the train/validation split
    role: str  # "train" (labelled pool, split later into train/val) or "test"
    fold: int = 0


@dataclass(frozen=True)
class BadFile:
    """A file that cannot be used, and why; ``clip`` is the clip it was meant to be, if any."""

    path: str
    reason: str
    clip: Clip | None = None


class _Files:
    """The files below a root: walked, or taken from a manifest's listing."""

    def __init__(self, root: Path, listing: Collection[str] | None):
        self.root, self.listing = root, None if listing is None else set(listing)

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file() if self.listing is None else rel in self.listing

    def audio(self, sub: str) -> list[Path]:
        """Audio files below ``root/sub``, sorted."""
        exts = audio_extensions()
        if self.listing is None:
            found = (p for p in (self.root / sub).rglob("*") if p.is_file())
        else:
            found = (self.root / rel for rel in self.listing if rel.startswith(f"{sub}/"))
        return sorted(p for p in found if p.suffix.lower() in exts)


def discover(cfg: DataConfig, manifest: Mapping[str, Entry] | None = None
             ) -> tuple[list[Clip], list[BadFile]]:
    """List the clips under ``cfg.root`` in ``cfg.layout``, plus files that cannot be clips.

    ``manifest`` (relative path → entry, from :func:`sonic.audio.manifest.read_manifest`): take
    the files from it instead of walking the root; the clips it marks unusable and its other
    unusable entries are returned as bad files with its reasons.
    """
    root = Path(cfg.root)
    if not root.is_dir():
        raise LayoutError(f"data.root {root} does not exist; for data.layout={cfg.layout} point "
                          "it at the folder that holds the data set")
    files = _Files(root, manifest)
    if cfg.layout == "esc50":
        clips, bad = _discover_esc50(root, files, esc10=cfg.subset == "esc10")
    elif cfg.layout == "urbansound8k":
        clips, bad = _discover_urbansound8k(root, files)
    else:
        clips, bad = _discover_folder(root, cfg, files)
    if cfg.classes is not None:
        clips = _keep_classes(clips, cfg.classes)
    return (clips, bad) if manifest is None else _check(root, clips, bad, manifest)


def _keep_classes(clips: list[Clip], classes: tuple[str, ...]) -> list[Clip]:
    """The clips labelled with one of ``classes`` (``data.classes``), plus unanswered test clips
    (their label is unknown); a listed class with no clip is an error that names it."""
    found = {c.label for c in clips}
    missing = [c for c in classes if c not in found]
    if missing:
        raise LayoutError(f"data.classes: no clip is labelled {missing[0]!r} (labels found: "
                          f"{', '.join(sorted(str(x) for x in found if x is not None))})")
    wanted = set(classes)
    return [c for c in clips if c.label in wanted or c.label is None]


def _check(root: Path, clips: list[Clip], bad: list[BadFile], manifest: Mapping[str, Entry]
           ) -> tuple[list[Clip], list[BadFile]]:
    """Move the clips ``manifest`` marks unusable into ``bad``, then add its other unusable
    entries (those no clip or bad file stands for already)."""
    usable = [c for c in clips if manifest[c.clip_id].status == OK]
    bad = bad + [BadFile(str(c.path), manifest[c.clip_id].reason, c) for c in clips
                 if manifest[c.clip_id].status != OK]
    named = {b.path for b in bad}
    bad += [BadFile(str(root / e.path), e.reason) for e in manifest.values()
            if e.status != OK and str(root / e.path) not in named]
    return usable, bad


def _group_of(rel: PurePosixPath, pattern: re.Pattern | None) -> str:
    """The path without suffix, or ``pattern``'s first capture group in the stem (module doc)."""
    match = pattern.search(rel.stem) if pattern is not None else None
    return match.group(1) if match and match.groups() else str(rel.with_suffix(""))


def _discover_folder(root: Path, cfg: DataConfig, files: _Files
                     ) -> tuple[list[Clip], list[BadFile]]:
    train = root / "train"
    if not train.is_dir():
        raise LayoutError(f"expected {train}/<class>/<clip>.wav for data.layout={cfg.layout} "
                          f"(and optionally {root}/test/*.wav); found no train/ folder in {root}")
    pattern = re.compile(cfg.group_regex) if cfg.group_regex else None
    clips, bad = [], []
    for path in files.audio("train"):
        rel = path.relative_to(train)
        if len(rel.parts) != 2:
            where = "directly in train/" if len(rel.parts) == 1 else "nested below a class folder"
            bad.append(BadFile(str(path), f"{where}; expected train/<class>/{path.name}: "
                                          "move it into exactly one class folder"))
            continue
        clip_id = PurePosixPath(path.relative_to(root))
        clips.append(Clip(str(clip_id), path, rel.parts[0], _group_of(clip_id, pattern), "train"))
    if not clips:
        raise LayoutError(f"{train} holds no audio files in class folders; expected "
                          f"{train}/<class>/<clip>.wav")
    clips += _discover_test(root, cfg, files)
    return clips, bad


def _discover_test(root: Path, cfg: DataConfig, files: _Files) -> list[Clip]:
    test = root / "test"
    if not test.is_dir():
        return []
    answers_path = Path(cfg.answers) if cfg.answers else root / "test_labels.csv"
    answers: dict[str, str] = {}
    if answers_path.is_file():
        table = pd.read_csv(answers_path, dtype=str)
        if not {"filename", "label"} <= set(table.columns):
            raise LayoutError(f"{answers_path}: expected columns filename,label; got "
                              f"{','.join(table.columns)}")
        answers = dict(zip(table["filename"], table["label"]))
    elif cfg.answers:
        raise LayoutError(f"data.answers={cfg.answers} does not exist")
    return [
        Clip(str(path.relative_to(root)), path, answers.get(str(path.relative_to(test))),
             str(PurePosixPath(path.relative_to(root)).with_suffix("")), "test")
        for path in files.audio("test")
    ]


ESC50_COLUMNS = ("filename", "fold", "target", "category", "src_file")


def _discover_esc50(root: Path, files: _Files, esc10: bool = False
                    ) -> tuple[list[Clip], list[BadFile]]:
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        raise LayoutError(f"expected the ESC-50 index at {meta} (columns filename, fold, target, "
                          f"category, esc10, src_file, take) and the clips in {root}/audio/")
    table = pd.read_csv(meta, dtype={"filename": str, "src_file": str})
    missing = [c for c in ESC50_COLUMNS if c not in table.columns]
    if missing:
        raise LayoutError(f"{meta}: missing column(s) {', '.join(missing)}")
    if esc10:  # data.subset: esc10, the ten-class subset the index marks
        if "esc10" not in table.columns:
            raise LayoutError(f"{meta}: data.subset esc10 needs the esc10 column")
        table = table[table["esc10"].astype(str).str.lower() == "true"]
    clips, bad = [], []
    for row in table.itertuples(index=False):
        path = root / "audio" / row.filename
        if not files.exists(f"audio/{row.filename}"):
            bad.append(BadFile(str(path), "listed in meta/esc50.csv but missing from audio/; "
                                          "restore it or remove its row"))
            continue
        clips.append(Clip(f"audio/{row.filename}", path, row.category, str(row.src_file),
                          "train", int(row.fold)))
    return clips, bad


US8K_COLUMNS = ("slice_file_name", "fsID", "fold", "class")


def _discover_urbansound8k(root: Path, files: _Files) -> tuple[list[Clip], list[BadFile]]:
    meta = root / "metadata" / "UrbanSound8K.csv"
    if not meta.is_file():
        raise LayoutError(f"expected the UrbanSound8K index at {meta} (columns slice_file_name, "
                          f"fsID, start, end, salience, fold, classID, class) and the clips in "
                          f"{root}/audio/fold1 … fold10/")
    table = pd.read_csv(meta, dtype={"slice_file_name": str, "fsID": str, "class": str})
    missing = [c for c in US8K_COLUMNS if c not in table.columns]
    if missing:
        raise LayoutError(f"{meta}: missing column(s) {', '.join(missing)}")
    clips, bad = [], []
    for name, fs_id, fold, label in table[list(US8K_COLUMNS)].itertuples(index=False):
        rel = f"audio/fold{int(fold)}/{name}"
        if not files.exists(rel):
            bad.append(BadFile(str(root / rel), f"listed in metadata/UrbanSound8K.csv but missing "
                                                f"from audio/fold{int(fold)}/; restore it or "
                                                "remove its row"))
            continue
        clips.append(Clip(rel, root / rel, label, f"fsID {fs_id}", "train", int(fold)))
    return clips, bad
