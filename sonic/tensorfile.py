"""Checkpoint files whose bytes depend on their contents alone: safetensors plus JSON.

``torch.save`` writes a random record id into every archive, so the same weights saved twice
give two files with different md5s, and DVC re-runs every stage below a forced re-run of a
training stage. :func:`save_payload` writes a nested dict instead as one safetensors file: the
tensors under their key paths (``state_dict/conv.0.weight``), everything else as JSON in the
file's metadata header. Neither writing nor reading unpickles anything.

:func:`load_payload` gives back the same nested dict, and still reads an archive written by
``torch.save`` (with ``weights_only=True``), so checkpoints made before the change keep working.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from sonic.runtime import atomic_path

SEP = "/"  # joins the key path of a tensor inside the payload
META_KEY = "sonic"  # the one metadata entry: several would be written in hash-map order
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's archive format


def _split(tree: dict[str, Any], path: tuple[str, ...], tensors: dict[str, torch.Tensor],
           where: str) -> dict[str, Any]:
    """The JSON part of ``tree``; its tensors go into ``tensors`` under their joined key path."""
    rest: dict[str, Any] = {}
    for key, value in tree.items():
        if not isinstance(key, str) or SEP in key:
            raise TypeError(f"{where}: key {key!r} at {SEP.join(path) or 'top'} must be a str "
                            f"without {SEP!r}")
        if isinstance(value, torch.Tensor):
            tensors[SEP.join((*path, key))] = value.detach().cpu().contiguous().clone()
        elif isinstance(value, dict):
            rest[key] = _split(value, (*path, key), tensors, where)
        else:
            rest[key] = value.item() if hasattr(value, "item") else value  # NumPy scalars
    return rest


def save_payload(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (nested dicts of str keys; leaves tensors or JSON values) atomically.

    The same payload always gives the same bytes: safetensors orders tensors by dtype and name,
    and the JSON keeps the payload's own key order.
    """
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    rest = _split(payload, (), tensors, str(path))
    try:
        meta = json.dumps(rest, separators=(",", ":"))
    except TypeError as e:
        raise TypeError(f"{path}: checkpoint metadata must be JSON values: {e}") from None
    data = save(tensors, metadata={META_KEY: meta})
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def load_payload(path: str | Path) -> dict[str, Any]:
    """The dict :func:`save_payload` wrote (tuples come back as lists); a ``torch.save``
    archive is read as ``torch.load(weights_only=True)`` reads it."""
    from safetensors import SafetensorError, safe_open

    with open(path, "rb") as f:  # FileNotFoundError names the path
        if f.read(4) == ZIP_MAGIC:
            return torch.load(path, map_location="cpu", weights_only=True)
    try:
        with safe_open(path, "pt") as f:
            tree = json.loads((f.metadata() or {})[META_KEY])
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, ValueError, KeyError) as e:
        raise ValueError(f"{path}: not a Sonic checkpoint (safetensors with a {META_KEY!r} "
                         f"entry, or a torch.save archive): {e!r}; rebuild it with "
                         "`dvc repro`") from None
    for name, tensor in tensors.items():
        *parents, leaf = name.split(SEP)
        node = tree
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = tensor
    return tree
