"""``sonic predict``'s three output formats, each written one file at a time as results arrive.

- ``table``: per file its top-k, then one line per window when the file has more than one.
- ``json``: a JSON array of :meth:`Prediction.to_dict` objects (what ``POST /api/predict``
  returns for one file), written element by element.
- ``csv``: one ``clip`` row per file and one ``window`` row per window of a multi-window file:
  ``file,status,scope,start_s,end_s,label_1,probability_1,…,label_k,probability_k,error,
  label,confidence`` (``label``: the top class, or ``unknown`` under ``--unknown-threshold``;
  ``confidence``: its max softmax probability).
"""
from __future__ import annotations

import csv
import json
from typing import TextIO

from sonic.inference.prediction import UNKNOWN, Prediction


class Writer:
    """Base: ``write(prediction)`` per file, ``close()`` at the end."""

    def __init__(self, out: TextIO, top_k: int):
        self.out, self.top_k = out, top_k

    def write(self, prediction: Prediction) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.out.flush()


class TableWriter(Writer):
    def write(self, p: Prediction) -> None:
        d = p.to_dict(self.top_k)
        if not p.ok:
            print(f"{p.path}\n  error: {p.error}", file=self.out)
            return
        n = len(d["windows"])
        span = f"{d['duration_s']:.2f} s, {n} window{'s' * (n > 1)} of {p.window:g} s"
        print(f"{p.path}  ({span}, {p.model})", file=self.out)
        for rank, t in enumerate(d["top"], 1):
            print(f"  {rank}. {t['label']:<24} {t['probability']:6.3f}", file=self.out)
        if p.unknown_threshold is not None and d["label"] == UNKNOWN:
            print(f"  → unknown: confidence {d['confidence']:.3f} is below "
                  f"{p.unknown_threshold:g}", file=self.out)
        if n > 1:
            for w in d["windows"]:
                tops = ", ".join(f"{t['label']} {t['probability']:.2f}" for t in w["top"])
                span = f"{w['start_s']:.2f}-{w['end_s']:.2f} s"
                print(f"     {span:>15}  {tops}", file=self.out)
        self.out.flush()


class JSONWriter(Writer):
    def __init__(self, out: TextIO, top_k: int):
        super().__init__(out, top_k)
        self.first = True
        self.out.write("[")

    def write(self, p: Prediction) -> None:
        self.out.write(("\n" if self.first else ",\n") + json.dumps(p.to_dict(self.top_k)))
        self.first = False
        self.out.flush()

    def close(self) -> None:
        self.out.write("\n]\n")
        super().close()


class CSVWriter(Writer):
    def __init__(self, out: TextIO, top_k: int):
        super().__init__(out, top_k)
        self.csv = csv.writer(out, lineterminator="\n")
        ranks = [c for k in range(1, top_k + 1) for c in (f"label_{k}", f"probability_{k}")]
        self.csv.writerow(["file", "status", "scope", "start_s", "end_s", *ranks, "error",
                           "label", "confidence"])

    def _row(self, path: str, scope: str, start, end, d: dict) -> list:
        cells = [c for t in d["top"] for c in (t["label"], t["probability"])]
        cells += [""] * (2 * self.top_k - len(cells))
        return [path, "ok", scope, start, end, *cells, "", d["label"], d["confidence"]]

    def write(self, p: Prediction) -> None:
        d = p.to_dict(self.top_k)
        if not p.ok:
            self.csv.writerow([p.path, "error", "clip", "", "", *[""] * (2 * self.top_k), p.error,
                               "", ""])
            return
        self.csv.writerow(self._row(p.path, "clip", 0.0, d["duration_s"], d))
        if len(d["windows"]) > 1:
            for w in d["windows"]:
                self.csv.writerow(self._row(p.path, "window", w["start_s"], w["end_s"], w))
        self.out.flush()


WRITERS: dict[str, type[Writer]] = {"table": TableWriter, "json": JSONWriter, "csv": CSVWriter}
