"""The params section ``train``: the classifiers' training recipe."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sonic.config.parse import PROBABILITY, bounded


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 42
    device: str = "auto"  # auto | cuda | mps | cpu
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    channels_last: bool = True
    epochs: int = bounded(15, 1)
    batch_size: int = bounded(32, 1)
    lr: float = bounded(1e-3, 0.0, open_low=True)
    weight_decay: float = bounded(0.01, 0.0)
    schedule: Literal["onecycle", "cosine"] = "onecycle"
    pct_start: float = bounded(0.2, 0.0, 1.0, open_low=True, open_high=True)
    label_smoothing: float = bounded(0.1, 0.0, 1.0, open_high=True)
    mixup_alpha: float = bounded(0.2, 0.0)
    mixup_prob: float = bounded(0.3, **PROBABILITY)  # fraction of batches mixed
    mixing: Literal["mixup", "bc"] = "mixup"  # bc: between-class mixing in the power domain
    ema: float = bounded(0.0, 0.0, 1.0, open_high=True)  # weight-average decay per step; 0 = off
    time_shift: int = bounded(0, 0)  # shift each training clip by up to ± this many frames; 0 = off
    crop_frames: int = bounded(0, 0)  # random training crops of this many frames; 0 = whole clip
    test_crops: int = bounded(1, 1)  # crops averaged at inference when crop_frames > 0
    freq_masks: int = bounded(2, 0)
    freq_mask_width: int = bounded(16, 0)  # mel bins, max
    time_masks: int = bounded(2, 0)
    time_mask_width: int = bounded(20, 0)  # frames, max
    grad_clip: float = bounded(5.0, 0.0)
    monitor: Literal["val_accuracy", "val_loss"] = "val_accuracy"
    patience: int = bounded(5, 1)
    use_augmented: bool = True
    workers: int = bounded(0, 0)  # DataLoader processes; 0 reads batches in the training process
    nproc: int = bounded(1, 1)  # DDP processes on this machine (torchrun); batch_size is global

    def problems(self) -> list[tuple[str, str]]:
        if self.batch_size % self.nproc:
            return [("batch_size", f"must be a multiple of train.nproc ({self.nproc}): it is "
                                   f"the global batch, split evenly, got {self.batch_size}")]
        return []
