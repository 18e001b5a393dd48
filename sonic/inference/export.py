"""ONNX export of a trained classifier: ``sonic export --format onnx``.

The exported graph takes what Sonic's feature stage makes and returns what ``sonic predict``
reports, so it can run without Sonic or PyTorch (onnxruntime alone):

- input ``log_mel_db``: float32 (batch, n_mels, frames), a log-mel spectrogram in dB relative to
  the clip's peak, floored at ``-top_db``; batch and frames are dynamic.
- outputs ``logits`` and ``probabilities`` (their softmax): float32 (batch, n_classes), columns
  in the order of the ``classes`` metadata.

The normalisation ``(db - mean) / std`` and the channel axis are inside the graph. The file's
``metadata_props`` hold what a caller needs: ``classes`` (JSON list), ``features`` (JSON of the
checkpoint's :class:`~sonic.config.FeatureConfig`), ``model``, ``mean`` and ``std`` (dB, already
applied in the graph), ``sonic_version``.

Making the input. With Sonic: :func:`sonic.inference.windows.load_windows` (mono, resample,
trim, cut into windows of ``duration``, :class:`sonic.features.mel.LogMel`). Without it, librosa
with the stored feature params (``f``) does the same maths: on a 1.7 s test tone the result was
within 3.6e-4 dB of Sonic's and gave the same probabilities::

    y, sr = librosa.load(path, sr=f["sample_rate"])  # mono, resampled
    y = librosa.effects.trim(y, top_db=f["trim_db"])[0] if f["trim"] else y
    y = librosa.util.fix_length(y, size=round(f["duration"] * sr))
    S = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=f["n_fft"], hop_length=f["hop_length"],
                                       n_mels=f["n_mels"], fmin=f["f_min"], fmax=f["f_max"])
    db = librosa.power_to_db(S, ref=np.max, top_db=f["top_db"])[None]  # (1, n_mels, frames)

(``fix_length`` crops a long clip's end where Sonic scores windows across it; any length
runs, the time axis is dynamic.)

Why the pooling is swapped. PyTorch's exporter (``dynamo=True``, torch 2.11) lowers the CNN's
non-global ``nn.AdaptiveAvgPool2d((4, 6))`` to a fixed ``AveragePool`` whose kernel comes from
the example input's size: with another number of frames the graph either fails (a Gemm size
mismatch) or silently returns wrong logits (the test-size CNN traced at 32 frames: off by up to
0.017 at 36-47 frames, with logits of at most 0.17; 48 frames fail).
:class:`ExportableAdaptiveAvgPool2d` computes the same bins from the runtime size, and only the
exported copy of the model uses it.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

import sonic
from sonic.config import to_dict
from sonic.inference.predictor import UnknownModelError, resolve_checkpoint
from sonic.models.checkpoint import Classifier, load_classifier
from sonic.runtime import atomic_path

INPUT = "log_mel_db"
OUTPUTS = ("logits", "probabilities")
MIN_OPSET = 18  # torch's exporter writes no older opset itself
EXIT_OK, EXIT_UNUSABLE = 0, 2


# ------------------------------------------------------------------------------ the graph
def bin_weights(length: int | torch.SymInt, size: int) -> torch.Tensor:
    """Averaging matrix (size, length) of adaptive pooling ``length`` positions into ``size`` bins.

    Bin ``i`` spans PyTorch's ``[floor(i * L / size), ceil((i + 1) * L / size))``. For an integer
    position ``l`` that is ``(l + 1) * size > i * L`` and ``l * size < (i + 1) * L``: integer
    comparisons only, so they export with a symbolic ``L`` (no division, no data-dependent
    slicing). Row ``i`` holds ``1 / len(bin i)`` over its bin and 0 elsewhere.
    """
    pos = torch.arange(length)  # (L,)
    idx = torch.arange(size).unsqueeze(1)  # (size, 1)
    inside = ((pos + 1) * size > idx * length) & (pos * size < (idx + 1) * length)  # (size, L)
    weights = inside.float()
    return weights / weights.sum(1, keepdim=True)


class ExportableAdaptiveAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d`` as two matrix products whose bins follow the runtime size.

    Parameters
    ----------
    output_size : int or (int | None, int | None)
        As for ``nn.AdaptiveAvgPool2d``; ``None`` keeps that axis as it is.

    Shapes: (B, C, H, W) → (B, C, out_h, out_w). Equal to PyTorch's pool up to float rounding
    (a weighted sum instead of sum-then-divide): max abs difference 2.4e-7 on unit-variance
    input over every W from 1 to 200, which ``tests/test_export.py`` sweeps.
    """

    def __init__(self, output_size: int | tuple[int | None, int | None]):
        super().__init__()
        self.output_size = nn.modules.utils._pair(output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_h, out_w = self.output_size
        if out_h is not None:
            x = bin_weights(x.shape[-2], out_h) @ x  # (B, C, out_h, W)
        if out_w is not None:
            x = x @ bin_weights(x.shape[-1], out_w).T  # (B, C, out_h, out_w)
        return x


def swap_adaptive_pools(module: nn.Module) -> int:
    """Replace, in place, every non-global ``nn.AdaptiveAvgPool2d`` under ``module``; the count.

    A global pool (output 1 × 1) is left alone: it exports as a mean over the whole axis, which
    is right at every size.
    """
    swapped = 0
    for name, child in module.named_children():
        size = nn.modules.utils._pair(getattr(child, "output_size", None))
        if isinstance(child, nn.AdaptiveAvgPool2d) and size != (1, 1):
            setattr(module, name, ExportableAdaptiveAvgPool2d(child.output_size))
            swapped += 1
        else:
            swapped += swap_adaptive_pools(child)
    return swapped


class OnnxClassifier(nn.Module):
    """What the ONNX graph computes: dB log-mel in, logits and probabilities out.

    Holds an fp32 CPU copy of ``classifier.model`` in eval mode with its adaptive pools swapped
    (:func:`swap_adaptive_pools`); the classifier itself is not touched.

    Shapes: (B, n_mels, T) dB → ((B, C) logits, (B, C) probabilities).
    """

    def __init__(self, classifier: Classifier):
        super().__init__()
        self.model = copy.deepcopy(classifier.model).float().cpu().eval()
        swap_adaptive_pools(self.model)
        self.mean, self.std = float(classifier.mean), float(classifier.std)
        self.eval()  # the exporter warns about (and would trace) train-mode layers otherwise

    def forward(self, log_mel_db: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = ((log_mel_db - self.mean) / self.std).unsqueeze(1)  # (B, 1, n_mels, T)
        logits = self.model(x)["logits"]  # (B, C)
        return logits, logits.softmax(-1)


# ------------------------------------------------------------------------------ the file
def metadata(classifier: Classifier, checkpoint: Path | None = None) -> dict[str, str]:
    """The ``metadata_props`` of the exported file: strings, JSON where structured."""
    props = {
        "classes": json.dumps(classifier.classes),
        "features": json.dumps(to_dict(classifier.features)),
        "model": classifier.name,
        "mean": repr(float(classifier.mean)),
        "std": repr(float(classifier.std)),
        "input": f"{INPUT}: float32 (batch, n_mels, frames) log-mel dB; normalised in the graph",
        "sonic_version": sonic.__version__,
    }
    if checkpoint is not None:
        props["checkpoint"] = checkpoint.name
    return props


def to_onnx(classifier: Classifier, opset: int = 18) -> onnx.ModelProto:
    """Trace :class:`OnnxClassifier` with ``torch.export`` (dynamic batch and frames) to ONNX."""
    wrapper = OnnxClassifier(classifier)
    # Batch 2, not 1: torch.export specialises a size-1 example axis to the constant 1.
    example = torch.full((2, classifier.features.n_mels, classifier.features.n_frames),
                         -classifier.features.top_db / 2)
    dims = {"log_mel_db": {0: torch.export.Dim("batch"), 2: torch.export.Dim("frames")}}
    with warnings.catch_warnings():  # torch.export's deprecation notices about its own internals
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(wrapper, (example,), dynamo=True, verbose=False,
                                    dynamic_shapes=dims, input_names=[INPUT],
                                    output_names=list(OUTPUTS), opset_version=opset)
    return program.model_proto


def export_onnx(classifier: Classifier, out: str | Path, opset: int = 18,
                checkpoint: Path | None = None) -> onnx.ModelProto:
    """Export ``classifier`` to ``out`` (written atomically) with its metadata; the model.

    Raises ``onnx.checker.ValidationError`` (and writes nothing) if the graph is not valid ONNX.
    """
    proto = to_onnx(classifier, opset)
    for key, value in metadata(classifier, checkpoint).items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = (f"Sonic {classifier.name} classifier over {len(classifier.classes)} "
                        f"classes; see metadata_props for the classes and feature params.")
    onnx.checker.check_model(proto, full_check=True)  # full_check: shape inference as well
    with atomic_path(out) as tmp:
        onnx.save_model(proto, tmp)  # one self-contained file: the classifiers are far below 2 GB
    return proto


# ------------------------------------------------------------------------------ the command
def check_opset(opset: int) -> None:
    """Raise ``ValueError`` unless the exporter can write ``opset`` itself.

    Below 18 torch's exporter falls back on ONNX's version converter, which fails on these graphs
    (an ``axes_input_to_attribute`` assertion with torch 2.11 / onnx 1.23) and then quietly
    writes opset 18 all the same.
    """
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset {opset}: use {MIN_OPSET} to {newest} (the oldest torch's "
                         "exporter writes, the newest this onnx package knows)")


def run(args: argparse.Namespace) -> int:
    """``sonic export``: 0 on success, 2 (with the reason on stderr) when nothing was written."""
    try:
        check_opset(args.opset)
        checkpoint = resolve_checkpoint(args.model, args.models_dir)
        classifier = load_classifier(checkpoint)
    except (FileNotFoundError, ValueError, UnknownModelError) as err:
        print(f"sonic export: {err}", file=sys.stderr)
        return EXIT_UNUSABLE
    proto = export_onnx(classifier, args.out, args.opset, checkpoint)
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    size_mb = Path(args.out).stat().st_size / 1e6
    print(f"sonic export: {args.out} ({size_mb:.3g} MB, opset {opset}): {classifier.name} from "
          f"{checkpoint}, input {INPUT} (batch, {classifier.features.n_mels}, frames) dB → "
          f"{', '.join(OUTPUTS)} (batch, {len(classifier.classes)} classes)")
    return EXIT_OK
