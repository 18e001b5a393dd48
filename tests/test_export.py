"""``sonic export``: the ONNX graph of each trained classifier against PyTorch, on the real
validation clips and on other batch sizes and clip lengths; its metadata; its errors."""
from __future__ import annotations

import contextlib
import io
import json
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from sonic.cli import main
from sonic.config import FeatureConfig
from sonic.inference.export import ExportableAdaptiveAvgPool2d, OnnxClassifier
from sonic.models.checkpoint import Classifier, load_classifier

# Max abs difference allowed between ONNX Runtime's and PyTorch's logits (and probabilities).
# Measured on the fixture's models (logits up to 1.6): 3.6e-7 (CNN) and 2.4e-7 (ResNet) on the
# validation clips, 4.8e-7 at worst over the batch sizes and lengths below: a 20x margin.
LOGIT_TOL = 1e-5


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny tensors gain nothing from more threads, and on a busy shared CPU their spin-waits
    cost: the 200-width pool sweep took 1.35 s with 2 threads on a loaded 2-core machine, 18 ms
    with one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cli(*argv: str) -> tuple[int, str]:
    """Run ``sonic *argv``; its exit status and stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exit_:
        main(list(argv))
    return exit_.value.code, out.getvalue()


@pytest.fixture(scope="module", params=["cnn", "resnet"])
def exported(request: pytest.FixtureRequest, trained: SimpleNamespace,
             tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One classifier exported through the CLI, with its PyTorch twin and an ORT session."""
    checkpoint = trained.models / f"{request.param}.pt"
    path = tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx"
    status, stdout = cli("export", "--model", str(checkpoint), "--out", str(path))
    assert status == 0, stdout
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # tiny graphs; the CI machine's cores are shared
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return SimpleNamespace(name=request.param, path=path, stdout=stdout, session=session,
                           classifier=load_classifier(checkpoint))


@torch.no_grad()
def torch_logits(classifier: Classifier, db: np.ndarray) -> np.ndarray:
    """(N, n_mels, T) dB → (N, C) logits of the trained model itself (its own pooling)."""
    return classifier.model(classifier.normalize(db))["logits"].numpy()


def onnx_outputs(session: ort.InferenceSession, db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits, probs = session.run(["logits", "probabilities"], {"log_mel_db": db.astype(np.float32)})
    return logits, probs


def test_matches_pytorch_on_every_validation_clip(exported, trained):
    logits, probs = onnx_outputs(exported.session, trained.val_db)
    expected = exported.classifier.predict(trained.val_db)["probs"]
    assert (probs.argmax(1) == expected.argmax(1)).all()
    assert np.abs(logits - torch_logits(exported.classifier, trained.val_db)).max() < LOGIT_TOL
    assert np.abs(probs - expected).max() < LOGIT_TOL


@pytest.mark.parametrize("batch", [1, 5])
def test_dynamic_batch_and_frames(exported, trained, batch):
    # Real clips cut shorter or tiled longer than the 32 training frames; 4 is the shortest the
    # two-block test CNN accepts, and the odd lengths give unequal adaptive-pool bins.
    tiled = np.tile(trained.val_db[:batch], (1, 1, 4))  # (batch, n_mels, 128)
    for frames in (4, 7, 13, 19, 32, 47, 101, 128):
        db = np.ascontiguousarray(tiled[..., :frames])
        logits, probs = onnx_outputs(exported.session, db)
        assert logits.shape == probs.shape == (batch, len(trained.classes))
        err = np.abs(logits - torch_logits(exported.classifier, db)).max()
        assert err < LOGIT_TOL, f"{exported.name}, {frames} frames: logits differ by {err:.2g}"


def test_metadata_round_trip(exported, trained):
    model = onnx.load(exported.path)
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["classes"]) == trained.classes
    assert FeatureConfig(**json.loads(props["features"])) == trained.features
    assert props["model"] == exported.name
    assert float(props["mean"]) == exported.classifier.mean
    # onnxruntime exposes the same map, which is how a user without Sonic reads it
    assert exported.session.get_modelmeta().custom_metadata_map == props
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", trained.features.n_mels, "frames"]
    assert str(exported.path) in exported.stdout and "opset 18" in exported.stdout
    assert f"{len(trained.classes)} classes" in exported.stdout


def test_exportable_pool_matches_pytorch_at_every_length():
    x = torch.randn(2, 3, 9, 200)
    for size in [(4, 6), (2, 2), (3, 1), (9, 7)]:
        native, ours = nn.AdaptiveAvgPool2d(size), ExportableAdaptiveAvgPool2d(size)
        for width in range(1, 201):
            part = x[..., :width]
            err = (ours(part) - native(part)).abs().max().item()
            assert err < 1e-6, f"pool {size}, width {width}: differs by {err:.2g}"


def test_export_copy_leaves_the_trained_model_alone(trained):
    classifier = load_classifier(trained.models / "cnn.pt")
    wrapper = OnnxClassifier(classifier)
    assert isinstance(classifier.model.pool, nn.AdaptiveAvgPool2d)
    assert isinstance(wrapper.model.pool, ExportableAdaptiveAvgPool2d)
    with torch.no_grad():
        logits, _ = wrapper(torch.from_numpy(trained.val_db))
    assert np.abs(logits.numpy() - torch_logits(classifier, trained.val_db)).max() < 1e-5


@pytest.mark.parametrize("args, message", [
    (["--model", "{tmp}/missing.pt"], "{tmp}/missing.pt: no such checkpoint file"),
    (["--model", "cnn", "--models-dir", "{tmp}/models"], "{tmp}/models/cnn.pt: no checkpoint"),
    (["--model", "vgg"], "unknown model 'vgg'"),
    (["--opset", "17"], "opset 17: use 18 to"),
])
def test_errors_exit_2_and_name_the_problem(tmp_path, capsys, args, message):
    out = tmp_path / "model.onnx"
    status, _ = cli("export", *(a.format(tmp=tmp_path) for a in args), "--out", str(out))
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("sonic export: ") and message.format(tmp=tmp_path) in err
    assert not out.exists()
