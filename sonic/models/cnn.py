"""DeepAudioCNN: four double-conv blocks, a pool and a fully connected head.

The conv blocks follow PANNs' conv-BN-ReLU ×2 pattern. The pool fixes the size of the flattened
features whatever the clip length or mel count, so one set of weights serves any input: either an
adaptive average over a small (mels, frames) grid, which keeps where in the clip a sound sits, or
PANNs' global pool (mean over mels, then mean + max over frames), which does not.
"""
from __future__ import annotations

import torch
from torch import nn

from sonic.config import CNNConfig


class ConvBlock(nn.Module):
    """Conv3x3 → BN → ReLU → Conv3x3 → BN → ReLU → MaxPool2d(2) → Dropout.

    Parameters
    ----------
    in_ch, out_ch : int
        Input and output channels.
    dropout : float
        Dropout probability after the pool.

    Shapes: (B, in_ch, H, W) → (B, out_ch, H // 2, W // 2).
    """

    def __init__(self, in_ch: int, out_ch: int, dropout: float):
        super().__init__()
        # No conv bias: the BatchNorm right after it has its own shift, so a bias would be unused.
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (B, out_ch, H, W)
        x = self.relu(self.bn2(self.conv2(x)))  # (B, out_ch, H, W)
        return self.dropout(self.pool(x))  # (B, out_ch, H // 2, W // 2)


class DeepAudioCNN(nn.Module):
    """Log-mel classifier: ``len(cfg.widths)`` conv blocks, adaptive pool, MLP head.

    Parameters
    ----------
    cfg : CNNConfig
        ``widths`` (conv channels per block), ``fc`` (hidden FC sizes), ``head`` (``grid``: an
        adaptive average pool to ``pool`` = (H, W), flattened; ``avgmax``: mean over mels, then
        mean + max over frames, ``pool`` unused), ``dropout`` (after each conv block),
        ``fc_dropout`` (between FC layers).
    n_classes : int
        Number of output classes.

    Input ``x``: (B, 1, n_mels, T), a normalised log-mel spectrogram; any n_mels and T work.
    ``forward`` returns ``{"logits": (B, n_classes), "embedding": (B, cfg.fc[-1])}``, the
    embedding being the last hidden FC layer's activation (after ReLU, before dropout).
    """

    def __init__(self, cfg: CNNConfig, n_classes: int):
        super().__init__()
        self.cfg = cfg
        self.n_classes = n_classes
        pooled = cfg.widths[-1] * (cfg.pool[0] * cfg.pool[1] if cfg.head == "grid" else 1)
        self.embedding_dim = cfg.fc[-1] if cfg.fc else pooled

        chans = (1, *cfg.widths)
        self.blocks = nn.Sequential(
            *(ConvBlock(a, b, cfg.dropout) for a, b in zip(chans[:-1], chans[1:]))
        )
        self.pool = nn.AdaptiveAvgPool2d(tuple(cfg.pool))

        # Each hidden layer is Linear → ReLU → Dropout. The last one's dropout is kept apart
        # (`self.dropout`) so the embedding is read before it, the same in train and eval.
        sizes = (pooled, *cfg.fc)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            if i:
                layers.append(nn.Dropout(cfg.fc_dropout))
            layers += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        self.fc = nn.Sequential(*layers)
        self.dropout = nn.Dropout(cfg.fc_dropout)
        self.classifier = nn.Linear(sizes[-1], n_classes)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.blocks(x)  # (B, widths[-1], n_mels // 16, T // 16)
        if self.cfg.head == "avgmax":  # PANNs: a short loud event is not averaged away
            x = x.mean(dim=2)  # (B, widths[-1], T // 16)
            x = x.mean(dim=2) + x.amax(dim=2)  # (B, widths[-1])
        else:
            x = self.pool(x)  # (B, widths[-1], *pool)
            # flatten follows the logical (C, H, W) order, channels_last input included
            x = torch.flatten(x, 1)  # (B, widths[-1] * pool_h * pool_w)
        emb = self.fc(x)  # (B, fc[-1])
        logits = self.classifier(self.dropout(emb))  # (B, n_classes)
        return {"logits": logits, "embedding": emb}


def _init_weights(m: nn.Module) -> None:
    # Kaiming (fan_out) suits the ReLU after every conv; it is also what the ResNet uses, so the
    # two models start from comparable scales.
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


if __name__ == "__main__":  # smoke run: python -m sonic.models.cnn
    model = DeepAudioCNN(CNNConfig(), n_classes=10).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 128, 108))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"DeepAudioCNN: {n_params:,} params, logits {tuple(out['logits'].shape)}, "
          f"embedding {tuple(out['embedding'].shape)}")
