"""Progress bars on a terminal, whole lines everywhere else.

A tqdm bar redraws itself with carriage returns; written into a file (``dvc exp run … > log``,
``dvc queue logs``) that is thousands of partial lines per epoch. :func:`progress` draws the bar
only when its stream is a terminal; into a pipe or a file it writes ``lines`` whole lines, one
each time another ``1/lines`` of the total is done (the last one at 100 %), in tqdm's words::

    decode: 30% 300/1000 [00:04<00:09, 71.2clip/s]

Every loop in ``sonic`` that shows progress goes through it; messages between bars still go
through ``tqdm.write``, which prints a plain line when no bar is drawn.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Iterable, Iterator, TextIO

from tqdm import tqdm

LINE = ("{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} "
        "[{elapsed}<{remaining}, {rate_fmt}{postfix}]")
LINE_NO_TOTAL = "{desc}: {n_fmt} [{elapsed}, {rate_fmt}{postfix}]"


def on_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress(iterable: Iterable | None = None, *, desc: str = "", total: int | None = None,
             unit: str = "it", lines: int = 10, disable: bool = False,
             file: TextIO | None = None, **bar: Any):
    """``tqdm(iterable, desc=…, total=…, unit=…, **bar)`` on a terminal; elsewhere a
    :class:`LineProgress` writing ``lines`` lines (0: none, for loops that print their own line
    per epoch; 1: one line when done). Either supports iteration, ``update`` and
    ``set_postfix``."""
    stream = sys.stderr if file is None else file
    if disable or on_terminal(stream):
        return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable, file=stream,
                    dynamic_ncols=True, **bar)
    return LineProgress(iterable, desc, total, unit, lines, stream)


class LineProgress:
    """A progress report as whole lines: one each time another ``1/lines`` of ``total`` is
    done, or, without a total, one at the end."""

    def __init__(self, iterable: Iterable | None, desc: str, total: int | None, unit: str,
                 lines: int, stream: TextIO):
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.iterable, self.desc, self.total, self.unit = iterable, desc, total, unit
        self.lines, self.stream = lines, stream
        self.n, self.postfix, self.shown, self.shown_n = 0, "", 0, -1
        self.start = time.monotonic()

    def __len__(self) -> int:
        return self.total or 0

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update()
        self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.total and self.lines > 0:
            step = min(self.lines, self.lines * self.n // self.total)
            if step > self.shown:
                self.shown = step
                self._write()

    def close(self) -> None:
        """The closing line, unless the last line already showed this count."""
        if self.lines > 0 and self.shown_n != self.n:
            self._write()

    def _write(self) -> None:
        text = tqdm.format_meter(
            self.n, self.total, time.monotonic() - self.start, prefix=self.desc, unit=self.unit,
            postfix=self.postfix or None, bar_format=LINE if self.total else LINE_NO_TOTAL)
        print(text, file=self.stream, flush=True)
        self.shown_n = self.n
