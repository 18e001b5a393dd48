"""The params section ``demo``: the synthetic demo data set stage ``prepare`` renders."""
from __future__ import annotations

from dataclasses import dataclass

from sonic.config.parse import PROBABILITY, bounded


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 7
    classes: tuple[str, ...] = ("dog_bark", "drilling", "siren", "engine_idling", "rain",
                                "car_horn", "jackhammer", "street_music")
    train_per_class: int = bounded(75, 1)
    test_per_class: int = bounded(20, 0)
    snr_db: tuple[float, float] = (-5.0, 20.0)  # event over background, drawn per clip
    overlap_p: float = bounded(0.5, **PROBABILITY)  # chance a clip has a second, quieter event
    # its level re the labelled event; below 0 dB, so the label's event stays the loudest
    overlap_db: tuple[float, float] = bounded((-15.0, -5.0), None, 0.0, open_high=True)
    workers: int = bounded(2, 1)  # rendering processes

    def problems(self) -> list[tuple[str, str]]:
        """(field, why) for values that are each fine but do not fit together."""
        return [(k, f"must be [low, high] with low ≤ high, got {list(v)}")
                for k, v in (("snr_db", self.snr_db), ("overlap_db", self.overlap_db))
                if v[0] > v[1]]
