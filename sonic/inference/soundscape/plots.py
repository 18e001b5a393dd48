"""One soundscape's detected events drawn over its reference annotation."""
from __future__ import annotations

from pathlib import Path

from sonic.inference.events import Event, EventParams, prediction_events
from sonic.inference.soundscape.scoring import read_reference

def timeline_png(reference: list[dict], events: list[Event], duration: float, path: Path,
                 title: str = "") -> None:
    """One lane per class: the reference events (grey, upper half) over the detected ones
    (coloured, lower half, shaded by confidence) along the recording's time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = sorted({e["event_label"] for e in reference} | {e.label for e in events})
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(classes) + 1.2), dpi=110)
    for row, label in enumerate(classes):
        ref = [(e["event_onset"], e["event_offset"] - e["event_onset"]) for e in reference
               if e["event_label"] == label]
        ax.broken_barh(ref, (row + 0.05, 0.4), color="0.6")
        for e in (e for e in events if e.label == label):
            ax.broken_barh([(e.onset, e.offset - e.onset)], (row - 0.45, 0.4), color="C0",
                           alpha=0.35 + 0.65 * e.confidence)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    ax.set_ylim(-0.6, len(classes) - 0.4)
    ax.set_xlim(0, duration)
    ax.set_xlabel("time (s) — grey: reference, blue: detected (darker: more confident)")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def plot(scene: Path, predictor, params: EventParams = EventParams(), window=None,
         hop=None, out: Path = Path("events_timeline.png")) -> list[Event]:
    """Detect the events of one soundscape and draw them against its reference
    (``reference.csv`` beside it); returns the events."""
    reference = [e for e in read_reference(scene.parent / "reference.csv")
                 if e["file"] == scene.name]
    result = predictor.predict_file(scene, windowing=predictor.windowing(window, hop))
    if not result.ok:
        raise ValueError(f"{scene}: {result.error}")
    events = prediction_events(result, params)
    rule = (f"activity on {params.on_db:g} / off {params.off_db:g} dB"
            if params.detector == "activity" else f"on {params.on:g} / off {params.off:g}")
    timeline_png(reference, events, result.duration, out,
                 f"{scene.name}: {result.model}, window {result.window:g} s, hop "
                 f"{predictor.windowing(window, hop).hop:g} s, {rule}")
    return events
