"""AudioResNet: a one-channel ResNet (BasicBlock) whose module names match torchvision's.

Because every parameter has torchvision's name (``conv1``, ``layer1.0.bn2``, ``downsample.0`` …),
a torchvision ImageNet state dict maps onto it key for key; :func:`load_pretrained` only has to
fold the RGB stem kernels into one channel and leave the classifier out.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from sonic.config import ResNetConfig


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (torchvision's ``BasicBlock``).

    Parameters
    ----------
    in_ch, out_ch : int
        Input and output channels.
    stride : int
        Stride of the first conv; >1 halves the feature map.

    Shapes: (B, in_ch, H, W) → (B, out_ch, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        # The identity cannot be added when the shape changes: project it with a strided 1x1 conv.
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # (B, out_ch, H', W')
        out = self.relu(self.bn1(self.conv1(x)))  # (B, out_ch, H', W')
        out = self.bn2(self.conv2(out))  # (B, out_ch, H', W')
        return self.relu(out + identity)


class AudioResNet(nn.Module):
    """ResNet over log-mels: 7x7/2 stem, max-pool, stages of BasicBlocks, avg-pool, dropout, fc.

    Parameters
    ----------
    cfg : ResNetConfig
        ``blocks`` (BasicBlocks per stage: (2, 2, 2, 2) is ResNet-18, (3, 4, 6, 3) ResNet-34),
        ``widths`` (channels per stage), ``dropout`` (before fc), ``pool`` (``avg``: global
        average; ``avgmax``: mean over mels, then mean + max over frames), ``stem_pool`` (the
        max-pool after the stem; without it every later map is 4x larger, as is its compute, and
        the last stage sees n_mels / 16 x T / 16), ``pretrained`` (path
        of a local torchvision state dict loaded by :func:`load_pretrained`, or None).
    n_classes : int
        Number of output classes.

    Input ``x``: (B, 1, n_mels, T). ``forward`` returns ``{"logits": (B, n_classes),
    "embedding": (B, widths[-1])}``, the embedding being the globally pooled feature vector.
    """

    def __init__(self, cfg: ResNetConfig, n_classes: int):
        super().__init__()
        if len(cfg.blocks) != len(cfg.widths):
            raise ValueError(f"resnet: blocks {cfg.blocks} and widths {cfg.widths} differ in size")
        self.cfg = cfg
        self.n_classes = n_classes
        self.embedding_dim = cfg.widths[-1]

        stem = cfg.widths[0]
        self.conv1 = nn.Conv2d(1, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1) if cfg.stem_pool else nn.Identity()
        in_ch = stem
        for i, (n, width) in enumerate(zip(cfg.blocks, cfg.widths)):
            stride = 1 if i == 0 else 2  # the stem already downsampled (by 4, or 2 without its pool)
            stage = [BasicBlock(in_ch, width, stride)]
            stage += [BasicBlock(width, width) for _ in range(n - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
            in_ch = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(in_ch, n_classes)
        self._init_weights()
        if cfg.pretrained:
            load_pretrained(self, cfg.pretrained)

    def _init_weights(self) -> None:
        # torchvision's init: Kaiming (fan_out) for the ReLU convs, BN as the identity map.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def stages(self) -> list[nn.Sequential]:
        return [getattr(self, f"layer{i + 1}") for i in range(len(self.cfg.blocks))]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))  # (B, widths[0], n_mels / 2, T / 2)
        x = self.maxpool(x)  # (B, widths[0], n_mels / 4, T / 4); / 2 without the stem's pool
        for stage in self.stages:
            x = stage(x)  # (B, widths[-1], n_mels / 32, T / 32) after the last of four (/ 16)
        if self.cfg.pool == "avgmax":  # PANNs: a short loud event is not averaged away
            x = x.mean(dim=2)  # (B, widths[-1], T / 32)
            emb = x.mean(dim=2) + x.amax(dim=2)  # (B, widths[-1])
        else:
            emb = torch.flatten(self.avgpool(x), 1)  # (B, widths[-1])
        logits = self.fc(self.dropout(emb))  # (B, n_classes)
        return {"logits": logits, "embedding": emb}


# ------------------------------------------------------------------------------ pretrained
def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from ``path``: bare, or wrapped under ``state_dict`` / ``model``."""
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(sd.get(wrapper), dict):
                sd = sd[wrapper]
                break
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError(f"{path}: not a state dict (a mapping of names to tensors)")
    return sd


def _describe_layout(sd: dict[str, torch.Tensor]) -> str:
    """Which ResNet a torchvision-style state dict looks like, e.g. 'blocks (3, 4, 6, 3)'."""
    counts: dict[int, set[int]] = {}
    for key in sd:
        m = re.match(r"layer(\d+)\.(\d+)\.", key)
        if m:
            counts.setdefault(int(m[1]), set()).add(int(m[2]))
    if not counts:
        return "no layerN.* keys (not a torchvision ResNet)"
    blocks = tuple(len(counts[i]) for i in sorted(counts))
    kind = "Bottleneck blocks, not supported" if any(".conv3." in k for k in sd) else "BasicBlocks"
    return f"blocks {blocks} ({kind})"


def load_pretrained(model: AudioResNet, path: str | Path) -> None:
    """Load a local torchvision ResNet state dict into ``model`` in place.

    conv1's RGB kernels (C, 3, 7, 7) are averaged to one input channel (C, 1, 7, 7); ``fc.*`` is
    skipped, so the classifier keeps its fresh initialisation. Every other key must exist on both
    sides with the same shape.

    Raises
    ------
    ValueError
        Naming the file, the first missing / unexpected / mis-shaped keys, and the blocks layout
        the file looks like, when it does not fit ``model``.
    """
    path = Path(path)
    sd = _read_state_dict(path)
    if "conv1.weight" in sd and sd["conv1.weight"].ndim == 4 and sd["conv1.weight"].shape[1] == 3:
        # A grey image: the mean keeps the response to a constant input what it was for RGB.
        sd = {**sd, "conv1.weight": sd["conv1.weight"].mean(dim=1, keepdim=True)}

    own = model.state_dict()
    wanted = {k for k in own if not k.startswith("fc.")}
    given = {k for k in sd if not k.startswith("fc.")}
    # Missing and mis-shaped keys first: they say more about the mismatch than surplus blocks do.
    problems = [f"missing {k}" for k in own if k in wanted - given]
    problems += [
        f"shape of {k}: file {tuple(sd[k].shape)}, model {tuple(own[k].shape)}"
        for k in own
        if k in wanted & given and sd[k].shape != own[k].shape
    ]
    problems += [f"unexpected {k}" for k in sd if k in given - wanted]
    if problems:
        shown = "; ".join(problems[:4])
        if len(problems) > 4:
            shown += f"; … {len(problems) - 4} more"
        raise ValueError(
            f"{path}: does not fit AudioResNet(blocks={tuple(model.cfg.blocks)}, "
            f"widths={tuple(model.cfg.widths)}): {shown}. "
            f"The file looks like {_describe_layout(sd)}."
        )
    merged = {k: (own[k] if k.startswith("fc.") else sd[k].to(own[k].dtype)) for k in own}
    model.load_state_dict(merged, strict=True)


if __name__ == "__main__":  # smoke run: python -m sonic.models.resnet
    model = AudioResNet(ResNetConfig(), n_classes=10).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 128, 108))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"AudioResNet-18: {n_params:,} params, logits {tuple(out['logits'].shape)}, "
          f"embedding {tuple(out['embedding'].shape)}")
