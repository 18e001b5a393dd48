"""The DVC benchmark: the pipeline's wall time in a temporary git copy of the repository."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

UPSTREAM = ("prepare", "extract_mels", "split", "augment")  # never re-run by a train.* change


def copy_repository(repo: Path, dest: Path) -> None:
    """Copy the files git tracks or would track (untracked, not ignored), without DVC outputs,
    into ``dest`` and commit them in a fresh git repository."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=repo, capture_output=True, text=True, check=True).stdout
    for name in listed.splitlines():
        if name.startswith(("data/", "metrics/", "plots/")) or name == "dvc.lock":
            continue
        if (repo / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, dest / name)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    commit(dest, "benchmark copy")


def commit(root: Path, message: str) -> None:
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit",
                    "-qm", message], cwd=root, check=True)


def run_dvc(root: Path, *args: str) -> tuple[float, str]:
    """Run ``dvc *args`` with this interpreter's bin folder first on PATH (stages call
    ``python``); return its wall time (s) and output. Raises on failure."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
        raise RuntimeError(f"dvc {' '.join(args)} failed: {' '.join(errors) or 'see below'}\n"
                           f"{proc.stdout}\n{proc.stderr}")
    return seconds, proc.stdout + proc.stderr


def stages_run(output: str) -> list[str]:
    """Stage names of the ``Running stage '<name>':`` lines of DVC's output."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def time_pipeline(repo: Path, params: dict | None = None) -> dict:
    """``dvc repro`` from nothing, a no-op ``dvc repro`` and ``dvc exp run -S train.lr=<lr/2>``.

    ``params`` (a whole params mapping) replaces the copy's ``params.yaml`` when given.
    """
    with tempfile.TemporaryDirectory(prefix="sonic-bench-dvc-") as tmp:
        root = Path(tmp)
        copy_repository(repo, root)
        if params is not None:
            (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            commit(root, "benchmark params")
        lr = yaml.safe_load((root / "params.yaml").read_text())["train"]["lr"]
        repro_s, out = run_dvc(root, "repro")
        noop_s, noop = run_dvc(root, "repro")
        commit(root, "benchmark results")
        exp_set = f"train.lr={lr / 2:g}"
        exp_s, exp = run_dvc(root, "exp", "run", "-S", exp_set)
    ran = stages_run(exp)
    return {"repro_s": repro_s, "repro_ran": stages_run(out), "noop_s": noop_s,
            "noop_ran": stages_run(noop), "exp_run_s": exp_s, "exp_set": exp_set,
            "exp_ran": ran, "exp_skipped_upstream": not set(UPSTREAM) & set(ran)}
