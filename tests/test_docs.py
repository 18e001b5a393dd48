"""The README and docs/: generated pages up to date, links and paths that exist, words that
describe the project, and a `dvc exp show` invocation that fits a 120-column terminal."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sonic import cv
from sonic.docs import EXP_SHOW, exp_show_command, params, results
from sonic.docs.__main__ import stale
from sonic.docs.provenance import NOT_RECORDED, PROVENANCE, Provenance

REPO = Path(__file__).resolve().parents[1]
PAGES_CHECKED = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Top-level folders and files whose paths the docs name; data/ holds outputs, never committed.
REPO_PREFIXES = ("sonic/", "stages/", "tests/", "docs/", "metrics/", "plots/", ".dvc/", ".ci/")
REPO_FILES = {"params.yaml", "dvc.yaml", "dvc.lock", "pyproject.toml", "requirements.lock",
              "README.md"}
LOCAL_FILES = {".dvc/config.local"}  # a user's own, never committed
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)|<img [^>]*src=\"([^\"]+)\"")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
# How the project was made is not what it is: words that narrate development.
NARRATION = re.compile(r"this session|helper|no GPU was lent|this release|previous release|"
                       r"another agent|the lead\b|was lent|at the end of th", re.I)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def prose(page: Path) -> str:
    return FENCE.sub("", page.read_text())


# ----------------------------------------------------------------------- generated pages
def test_generated_pages_match_what_python_m_sonic_docs_writes():
    assert stale(REPO) == [], "out of date: run `python -m sonic.docs` and commit docs/"


def test_every_results_table_names_its_files_machine_date_and_command():
    page = (REPO / "docs/results.md").read_text()
    sections = re.split(r"^### ", page, flags=re.M)[1:]
    assert len(sections) >= 4  # classifiers, submission, generation, inversion at least
    for body in sections:
        source = re.findall(r"^\*\[`metrics/.+ · .+ · \d{4}-\d\d-\d\d.* · `.+`\*$", body, re.M)
        assert len(source) == 1, f"section {body.splitlines()[0]!r} has no source line"
        assert NOT_RECORDED not in source[0], (
            f"{body.splitlines()[0]}: run `python -m sonic.docs --stamp` where it was produced")


def test_results_page_shows_the_committed_figures():
    page = results.render(REPO)
    evaluation = json.loads((REPO / "metrics/evaluate/metrics.json").read_text())
    for model in ("cnn", "resnet", "ensemble"):
        assert f"**{evaluation['test'][model]['accuracy']:.3f}**" in page
    run = json.loads((REPO / "metrics/train_resnet/run.json").read_text())
    assert f"{run['parameters'] / 1e6:.2f} M" in page
    assert f"{run['samples_per_s']:.0f} samples/s" in page
    report = json.loads((REPO / "metrics/synthesize/report.json").read_text())
    assert results.ci(report["judge_accuracy"]) in page
    assert f"{report['per_class']['siren']['judge_accuracy']:.3f}" in page


def test_a_cross_validation_summary_gets_its_own_table(tmp_path):
    """What `python -m sonic.cv --out metrics/esc50_cv/summary` writes becomes a section."""
    rows = [{"name": f"fold{k}", "rev": f"r{k}", "baseline": "b", "baseline_name": None,
             "timestamp": f"2026-12-0{k}T10:00:00", "layout": "esc50", "val_fold": k,
             "other_params": "{}", "model": model, "accuracy": acc + k / 100, "macro_f1": acc}
            for k in (1, 2) for model, acc in (("cnn", 0.70), ("resnet", 0.80))]
    table = pd.DataFrame(rows, columns=cv.COLUMNS)
    table["timestamp"] = pd.to_datetime(table["timestamp"])
    summary, kept, warnings = cv.aggregate(table, [1, 2])
    out = tmp_path / "metrics/esc50_cv/summary.json"
    out.parent.mkdir(parents=True)
    out.write_text(json.dumps(cv.to_json(summary, kept, warnings)))

    page = results.render(tmp_path)
    assert "## ESC-50 cross-validation" in page
    section = page.split("### Cross-validation: `metrics/esc50_cv/summary.json`")[1]
    assert "| `resnet` | accuracy | 0.810 | 0.820 | **0.815** ± 0.007 |" in section
    assert "2026-12-02 · `python -m sonic.cv --out metrics/esc50_cv/summary`" in section


def test_stamp_records_the_machine_until_the_figures_change(tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    shutil.copy(REPO / "metrics/submit.json", metrics / "submit.json")
    assert Provenance(tmp_path).machine("metrics/submit.json") == NOT_RECORDED
    assert Provenance(tmp_path).stamp(["metrics/submit.json"], "Some CPU") == ["metrics/submit.json"]
    assert Provenance(tmp_path).machine("metrics/submit.json") == "Some CPU"
    assert Provenance(tmp_path).stamp(["metrics/submit.json"], "Other CPU") == []  # same content
    assert "Some CPU" in results.render(tmp_path)
    (metrics / "submit.json").write_text('{"model": "cnn", "n_test": 1, "n_fallback": 0}')
    assert Provenance(tmp_path).machine("metrics/submit.json") == NOT_RECORDED
    assert yaml.safe_load((tmp_path / PROVENANCE).read_text())["metrics/submit.json"][
        "machine"] == "Some CPU"


def test_params_page_lists_every_key_of_params_yaml_with_its_default():
    page = params.render(REPO)
    raw = yaml.safe_load((REPO / "params.yaml").read_text())

    def keys(tree: dict, prefix: str = ""):
        for key, value in tree.items():
            if isinstance(value, dict) and key not in ("time_stretch", "pitch_shift", "speed",
                                                       "noise", "time_shift", "reverb"):
                yield from keys(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", value

    for key, value in keys(raw):
        if not isinstance(value, dict):
            assert f"| `{key}` | `{params.yaml_value(value)}` |" in page, key
        else:
            assert f"| `{key}` |" in page, key
    assert "| `train.lr` | `0.001` | float, > 0 | AdamW; the peak LR" in page
    assert "| `data.layout` | `demo` | one of `demo`, `folder`, `esc50`, `urbansound8k` |" in page


# --------------------------------------------------------------------- README and links
def test_readme_is_short_and_keeps_the_ci_test_command():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    assert ".venv/bin/pytest -q -n auto" in text  # .ci/run runs exactly this
    assert ".venv/bin/pytest -q -n auto" in (REPO / ".ci/run").read_text()
    assert exp_show_command() in text


@pytest.mark.parametrize("page", PAGES_CHECKED, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_exists(page):
    for match in LINK.finditer(prose(page)):
        target = match[1] or match[2]
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: link to {target}: {resolved} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{page.name}: no heading #{anchor} in {path}"


def named_paths(text: str) -> set[str]:
    """Repository paths in code spans: `sonic/x.py`, `tests/test_y.py::test_z`, `params.yaml`."""
    out = set()
    for span in CODE_SPAN.findall(FENCE.sub("", text)):
        for token in span.split():
            token = token.split("::")[0].rstrip(",;:)")
            if token.startswith(REPO_PREFIXES) or token in REPO_FILES:
                out.add(token)
    return out


@pytest.mark.parametrize("page", PAGES_CHECKED, ids=lambda p: p.name)
def test_every_repository_path_named_exists(page):
    for path in sorted(named_paths(page.read_text()) - LOCAL_FILES):
        if any(c in path for c in "*<{…"):  # a pattern: at least one file must match it
            pattern = re.sub(r"<[^>]*>|\{[^}]*\}|…", "*", path)
            assert list(REPO.glob(pattern.rstrip("/"))), f"{page.name}: nothing matches {path}"
        else:
            assert (REPO / path).exists(), f"{page.name}: {path} does not exist"


def test_python_modules_named_in_commands_exist():
    for page in PAGES_CHECKED:
        for module in re.findall(r"python -m ([\w.]+)", page.read_text()):
            parts = module.split(".")
            assert ((REPO.joinpath(*parts).with_suffix(".py")).exists()
                    or (REPO.joinpath(*parts) / "__main__.py").exists()
                    or parts[0] in ("dvc", "pytest", "venv", "pip")), f"{page.name}: {module}"


@pytest.mark.parametrize("page", PAGES_CHECKED, ids=lambda p: p.name)
def test_no_sentence_narrates_how_the_project_was_made(page):
    found = [m[0] for m in NARRATION.finditer(page.read_text())]
    assert found == [], f"{page.name}: {found}"


# --------------------------------------------------------------------------- dvc exp show
METRIC_FILES = ["metrics/evaluate/metrics.json", "metrics/train_cnn/metrics.json",
                "metrics/train_resnet/metrics.json", "metrics/train_cgan/metrics.json",
                "metrics/train_inverter/metrics.json", "metrics/synthesize/metrics.json"]
# One stage writing the pipeline's metrics files with their real keys, values from two params.
WRITE = """\
import json, os, yaml
p = yaml.safe_load(open("params.yaml"))
acc, epochs = 0.5 + p["train"]["lr"] * 100, p["cgan"]["epochs"]
def w(path, d):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    json.dump(d, open(path, "w"))
w("metrics/evaluate/metrics.json", {s: {m: {"accuracy": acc, "macro_f1": acc - 0.01}
  for m in ("cnn", "resnet", "ensemble")} for s in ("test", "val")})
for m in ("cnn", "resnet"):
    w(f"metrics/train_{m}/metrics.json", {"best_epoch": 3, "epochs": 5,
      "val": {"accuracy": acc, "loss": 1 - acc}, "step": 5})
w("metrics/train_cgan/metrics.json", {"cgan": {"d_loss": 0.6, "g_loss": 2.9}, "step": epochs})
w("metrics/train_inverter/metrics.json", {"spectral_convergence": {"lstsq_gl": 0.5,
  "network_fgl": 0.4}})
w("metrics/synthesize/metrics.json", {"inception_score": 2.6, "inception_score_real": 4.6,
  "judge_accuracy": epochs / 100, "roundtrip_accuracy": 0.7, "cas": epochs / 80,
  "cas_real": 0.67, "frechet": 104.0, "frechet_floor": 23.6, "copy_rate": 0.006})
"""


@pytest.mark.slow
def test_exp_show_invocation_fits_120_columns(tmp_path):
    """Two experiments in a one-stage project with the real params.yaml, metric files and a few
    code and data deps: the README's `dvc exp show` shows their headline figures and changed
    params, unfolded, in 120 columns (plain `dvc exp show` folds every cell there)."""
    def run(*args: str, env: dict | None = None) -> str:
        proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    dvc = (sys.executable, "-m", "dvc")
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    for dep in ("stages/write.py", "sonic/x.py", "data/in.txt"):
        (tmp_path / dep).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / dep).write_text("1\n")
    (tmp_path / "write.py").write_text(WRITE)
    sections = list(yaml.safe_load((REPO / "params.yaml").read_text()))
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"all": {
        "cmd": f"{sys.executable} write.py",
        "deps": ["write.py", "stages/write.py", "sonic/x.py", "data/in.txt"],
        "params": sections, "outs": [{f: {"cache": False}} for f in METRIC_FILES]}},
        "metrics": METRIC_FILES}, sort_keys=False))
    run("git", "init", "-q")
    run("git", "config", "user.email", "test@example.com")
    run("git", "config", "user.name", "test")
    run(*dvc, "init", "-q")
    run(*dvc, "config", "core.analytics", "false")
    run(*dvc, "repro", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "baseline")
    run(*dvc, "exp", "run", "-q", "-n", "fast", "-S", "train.lr=0.002", "-S", "cgan.epochs=30")
    run(*dvc, "exp", "run", "-q", "-n", "long", "-S", "train.lr=0.001", "-S", "cgan.epochs=48")

    env = {"COLUMNS": "120", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = run(*dvc, *EXP_SHOW[1:], "--no-pager", env=env)
    lines = out.splitlines()
    assert max(map(len, lines)) <= 120 and "…" not in out, out
    header = next(line for line in lines if "Experiment" in line).split()
    assert header == ["Experiment", "test.ensemble.accuracy", "judge_accuracy", "cas",
                      "train.lr", "cgan.epochs"], out
    fast = next(line for line in lines if "[fast]" in line).split()
    long = next(line for line in lines if "[long]" in line).split()
    assert fast[-5:] == ["0.7", "0.3", "0.375", "0.002", "30"], out
    assert long[-5:] == ["0.6", "0.48", "0.6", "0.001", "48"], out
    plain = run(*dvc, "exp", "show", "--no-pager", env=env)
    assert "…" in plain  # what the invocation is for


def test_the_esc50_line_gives_each_model_and_the_ensemble_the_development_fold_ranks_first():
    """The README's ESC-50 sentence: every model's five-fold mean ± sd, then the ensemble over
    the same folds scored on the same machine (not one of another machine's runs, nor a
    development-fold ensemble) that the development fold ranks first — not the best five-fold
    mean, which would let the other folds choose; a tie goes to the cheaper."""
    from sonic.docs.results import esc50_line

    run = {"folds": [1, 2], "machine": "CPU A", "date": "2026-12-07", "models": {
        "cnn": {"accuracy": {"mean": 0.77, "sd": 0.03},
                "compute": {"params_m": 0.5, "mflops": 255.0}}}}

    def ens(name, folds, machine, dev, mean, mflops=617.0):
        return {"name": name, "model": "cnn + resnet", "folds": folds, "machine": machine,
                "dev_fold": 1, "accuracy": {"mean": mean, "sd": 0.036,
                                            "per_fold": {"1": dev}},
                "compute": {"mflops": mflops}}

    line = esc50_line(run, [ens("best_mean", [1, 2], "CPU A", 0.78, 0.80),
                            ens("dev_first", [1, 2], "CPU A", 0.81, 0.785),
                            ens("dev_tie_dearer", [1, 2], "CPU A", 0.81, 0.79, 900.0),
                            ens("elsewhere", [1, 2], "CPU B", 0.9, 0.9),
                            ens("dev", [1], "CPU A", 0.95, 0.95)])
    assert "`cnn` **77.0 ± 3.0 %** (0.5 M parameters, 255 MFLOPs per clip)" in line
    assert ("averaged (cnn + resnet, `dev_first`, the development fold's pick) "
            "**78.5 ± 3.6 %** (617 MFLOPs per clip)") in line
    assert not any(f"`{n}`" in line for n in ("best_mean", "dev_tie_dearer", "elsewhere", "dev"))
    assert "averaged" not in esc50_line(run)
