"""Classification accuracy score (CAS, Ravuri & Vinyals, 2019): train a classifier on generated
spectrograms only, test it on real held-out clips, and read it beside the same classifier, same
schedule, trained on the real training clips.

A generator that covers each class's real variety scores near the real-trained figure; one that
makes convincing but narrow samples (mode collapse) fools a judge yet scores low here.
"""
from __future__ import annotations

import numpy as np
import torch

from sonic.config.cnn import CNNConfig
from sonic.config.synthesize import CASConfig
from sonic.config.train import TrainConfig
from sonic.models import build_model
from sonic.training.data import MelSet
from sonic.training.loop import fit


def train_and_test(train_db: np.ndarray, train_y: np.ndarray, test_db: np.ndarray,
                   n_classes: int, cfg: CASConfig, mean: float, std: float, seed: int,
                   device: torch.device | str = "cpu", desc: str = "cas") -> np.ndarray:
    """Train a small :class:`~sonic.models.cnn.DeepAudioCNN` on dB spectrograms (N, M, T) with
    labels (N,) for ``cfg.epochs`` (last epoch kept, no selection) and return its predicted
    class for each test spectrogram (K, M, T), as (K,) ints.

    Both sets are normalised with the real training clips' ``mean``/``std`` (dB), as every
    classifier here is. The model's weights and batch order come from ``seed``.
    """
    device = torch.device(device)
    model_cfg = CNNConfig(widths=cfg.widths, fc=(cfg.widths[-1],), pool=(1, 1), dropout=0.1,
                          fc_dropout=0.2)
    train_cfg = TrainConfig(seed=seed, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                            precision="fp32", channels_last=False, mixup_prob=0.0,
                            freq_mask_width=max(1, train_db.shape[1] // 8),
                            time_mask_width=max(1, train_db.shape[2] // 8))
    empty = MelSet.of(np.zeros((0, *train_db.shape[1:]), np.float32), np.zeros(0), mean, std)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model("cnn", model_cfg, n_classes)
        fit(model, MelSet.of(train_db, train_y, mean, std), empty, train_cfg, device,
            select=False, desc=desc)
    test = MelSet.of(test_db, np.zeros(len(test_db)), mean, std)
    model.eval()
    preds = []
    with torch.no_grad():
        for start in range(0, len(test), 128):
            x, _ = test[list(range(start, min(start + 128, len(test))))]
            preds.append(model(x.to(device))["logits"].argmax(-1).cpu())
    return torch.cat(preds).numpy()
