"""Soundscapes with known answers: long recordings built from held-out clips, and their scores.

``build`` places clips of known classes at random, non-overlapping times over a background
(pink noise, or a recording) at signal-to-noise ratios drawn from a list, and writes each
soundscape as ``scene_NNN.wav`` with its reference annotation ``scene_NNN.csv``
(``filename,onset,offset,event_label,snr_db,source``; an event spans the clip's sound: the clip
trimmed of what is more than ``trim_db`` below its loudest frame). ``score`` runs the models on
every soundscape, detects events (:mod:`sonic.inference.events`) and scores them against the
references with ``sed_eval``: segment-based F1 (1 s segments) and event-based F1 (onset collar
200 ms, offsets not scored), beside the plain per-window top-1 baseline. ``--tune`` also tries a
small grid of event parameters and reports the best by segment-based F1 — how the defaults of
:class:`~sonic.inference.events.EventParams` are measured.

::

    python -m sonic.inference.soundscape build --clips CLIPS --out DIR [--scenes 10]
        [--duration 60] [--events 8] [--snr 0 6 12] [--seed 0] [--background FILE]
    python -m sonic.inference.soundscape score DIR [--model ...] [--tune] [--out FILE.json]

Modules: :mod:`~sonic.inference.soundscape.scenes` (building), :mod:`~.scoring` (sed_eval
scores and the parameter search), :mod:`~.plots` (timelines), :mod:`~.cli`.
"""
