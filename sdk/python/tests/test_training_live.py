"""TrainingContext and the training process against a live Flywheel server (see conftest.py): the dataset read through
its content path and cached, the split, metrics that appear once per step across a resume, two-slot checkpoints
(including a damaged slot), save_model, and the child process's result and failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import pytest

np = pytest.importorskip("numpy")

import flywheel  # noqa: E402
from flywheel.training import CHECKPOINT_INDEX, TrainingContext, checkpoint_slot_path  # noqa: E402

from conftest import Live  # noqa: E402

ROWS = 40
PLANS = ["basic", "plus", "pro"]


def dataset_csv() -> str:
    lines = ["tenure,charges,plan,churned,notes"]
    for i in range(ROWS):
        charges = "" if i == 5 else f"{20 + (i * 7) % 50}.5"  # one empty numeric cell
        churned = "yes" if (i * 7) % 50 > 25 else "no"
        lines.append(f'{i},{charges},{PLANS[i % 3]},{churned},"note, {i}"')
    return "\n".join(lines) + "\n"


@pytest.fixture
def run_input(
    live: Live, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Tuple[flywheel.Client, Dict[str, Any]]]:
    """A run holding a dataset CSV and its split as artifacts, and the trainPython input that points at them (the CSV's
    content path is its artifact URL: any path on the server, read with the client's token, will do)."""
    monkeypatch.setenv("FLYWHEEL_CACHE_DIR", str(tmp_path / "cache"))
    client = flywheel.Client(live.url, live.token)
    run = client.create_run(live.name("training"))
    data = tmp_path / "upload"
    data.mkdir()
    (data / "dataset.csv").write_text(dataset_csv())
    (data / "split.bin").write_bytes(bytes(i % 5 == 3 and 1 or (2 if i % 10 == 9 else 0) for i in range(ROWS)))
    client.log_artifact(data / "dataset.csv", "inputs", run_id=run.run_id)
    client.log_artifact(data / "split.bin", "flywheel", run_id=run.run_id)
    _target, root = client._artifact_root(run.run_id)
    activity_input = {
        "runId": run.run_id,
        "experimentId": run.experiment_id,
        "entrypoint": "jobs/train.py:fit",
        "params": {"epochs": 3, "lr": 0.5},
        "seed": 7,
        "task": "classification",
        "target": "churned",
        "features": {"numeric": ["tenure", "charges"], "categorical": ["plan"]},
        "dataset": {
            "versionId": run.run_id,
            "contentPath": f"/api/2.0/mlflow-artifacts/artifacts/{root}/inputs/dataset.csv",
            "rows": ROWS,
            "contentHash": f"test-{run.run_id}",
        },
        "splitPath": "flywheel/split.bin",
        "modelName": "churn",
    }
    yield client, activity_input
    client.close()


def history(client: flywheel.Client, run_id: str, key: str) -> Dict[int, float]:
    points = client._request(
        "GET", "/api/2.0/mlflow/metrics/get-history", params={"run_id": run_id, "metric_key": key}
    )["metrics"]
    steps = [int(p["step"]) for p in points]
    assert len(steps) == len(set(steps)), f"{key}: a step logged twice: {sorted(steps)}"
    return {int(p["step"]): float(p["value"]) for p in points}


def test_the_context_reads_the_dataset_once_and_splits_it(
    run_input: Tuple[flywheel.Client, Dict[str, Any]], tmp_path: Path
) -> None:
    client, spec = run_input
    ctx = TrainingContext.from_input(spec, client, work_dir=tmp_path / "a")
    assert ctx.start_step == 0 and ctx.load_checkpoint() is None and ctx.params == {"epochs": 3, "lr": 0.5}
    assert ctx.dataset_path.read_text() == dataset_csv()
    assert ctx.dataset_path.parent == tmp_path / "cache" / "datasets"
    assert ctx.split.dtype == np.uint8 and len(ctx.split) == ROWS
    validation = ctx.columns("validation")
    assert len(validation["tenure"]) == int((ctx.split == 1).sum()) == 8
    assert validation["tenure"].tolist() == [3, 8, 13, 18, 23, 28, 33, 38]
    fit = ctx.columns("fit")
    assert np.isnan(fit["charges"][5]) and fit["plan"].dtype.kind == "U" and fit["churned"][0] in ("yes", "no")
    x, y = ctx.xy("train")
    assert x.dtype == np.float32 and x.shape == (int((ctx.split == 0).sum()), 2) and set(y) <= {"no", "yes"}
    assert ctx.classes == ["no", "yes"]
    _x, encoded = ctx.xy("holdout", encode_target=True)
    assert encoded.dtype == np.int64 and set(encoded.tolist()) <= {0, 1} and len(encoded) == 4
    # A second context for the same content hash reads the cached file: the download is not repeated.
    before = ctx.dataset_path.stat().st_mtime_ns
    again = TrainingContext.from_input(spec, client, work_dir=tmp_path / "b")
    assert again.dataset_path == ctx.dataset_path and again.dataset_path.stat().st_mtime_ns == before
    try:
        import pandas  # noqa: F401
    except ImportError:
        return
    assert list(ctx.frame("fit").columns) == ["tenure", "charges", "plan", "churned"]


def test_a_resumed_attempt_starts_after_its_checkpoint_and_logs_each_step_once(
    run_input: Tuple[flywheel.Client, Dict[str, Any]], tmp_path: Path
) -> None:
    client, spec = run_input
    first = TrainingContext.from_input(spec, client, work_dir=tmp_path / "first")
    for step in range(3):
        first.log_metrics({"loss": 1.0 / (step + 1), "accuracy": 0.5 + step / 10}, step=step)
        first.save_checkpoint(step, {"weights": [step] * 3, "epoch": step})
    index = json.loads(
        client.download_artifact(CHECKPOINT_INDEX, tmp_path / "index.json", run_id=spec["runId"]).read_text()
    )
    assert index["latest"] == 0 and {k: v["step"] for k, v in index["slots"].items()} == {"0": 2, "1": 1}
    listed = sorted(f.path for f in client.list_artifacts("checkpoints", run_id=spec["runId"]))
    assert listed == [CHECKPOINT_INDEX, checkpoint_slot_path(0), checkpoint_slot_path(1)]

    # The worker died after step 2; the retry resumes at step 3 and repeats steps 1-2 (as an unsaved epoch would).
    second = TrainingContext.from_input(spec, client, work_dir=tmp_path / "second")
    assert (second.start_step, second.resumed_from_step) == (3, 2)
    assert second.load_checkpoint() == (2, {"weights": [2, 2, 2], "epoch": 2})
    for step in range(1, 5):
        second.log_metrics({"loss": 10.0 + step}, step=step)
    assert history(client, spec["runId"], "loss") == {0: 1.0, 1: 0.5, 2: pytest.approx(1 / 3), 3: 13.0, 4: 14.0}
    assert sorted(history(client, spec["runId"], "accuracy")) == [0, 1, 2]
    assert second.final_metrics["loss"] == 14.0 and second.last_step == 4


def test_a_damaged_slot_falls_back_to_the_other(
    run_input: Tuple[flywheel.Client, Dict[str, Any]], tmp_path: Path
) -> None:
    client, spec = run_input
    ctx = TrainingContext.from_input(spec, client, work_dir=tmp_path / "a")
    ctx.save_checkpoint(4, {"epoch": 4})
    ctx.save_checkpoint(5, {"epoch": 5})  # slot 1, the latest
    junk = tmp_path / "junk.ckpt"
    # A kill mid-upload leaves the slot being written (never the latest) damaged: the latest still resumes.
    junk.write_bytes(b"half a checkpoint")
    ctx._upload(junk, checkpoint_slot_path(0))
    assert TrainingContext.from_input(spec, client, work_dir=tmp_path / "b").load_checkpoint() == (5, {"epoch": 5})
    # Should the latest slot itself be damaged, the other one (when whole) is used.
    ctx.save_checkpoint(6, {"epoch": 6})  # slot 0 again, now the latest; slot 1 holds step 5
    ctx._upload(junk, checkpoint_slot_path(0))
    resumed = TrainingContext.from_input(spec, client, work_dir=tmp_path / "c")
    assert resumed.start_step == 6 and resumed.load_checkpoint() == (5, {"epoch": 5})


def test_save_model_uploads_the_model_and_its_signature(
    run_input: Tuple[flywheel.Client, Dict[str, Any]], tmp_path: Path
) -> None:
    pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LogisticRegression

    import flywheel.onnx

    client, spec = run_input
    ctx = TrainingContext.from_input(spec, client, work_dir=tmp_path / "a")
    x, y = ctx.xy("fit")
    model = LogisticRegression().fit(np.nan_to_num(x), y)
    data, signature = flywheel.onnx.from_sklearn(model, ctx)
    with pytest.raises(ValueError, match="signature.inputs.layout"):
        ctx.save_model(data, {**signature, "inputs": {"layout": "grid"}})
    assert ctx.save_model(data, signature) == ["model/model.onnx", "model/signature.json"] and ctx.model_saved
    stored = client.download_artifact("model/model.onnx", tmp_path / "model.onnx", run_id=spec["runId"]).read_bytes()
    assert stored == data
    saved = json.loads(
        client.download_artifact("model/signature.json", tmp_path / "s.json", run_id=spec["runId"]).read_text()
    )
    assert saved["format"] == "flywheel-onnx-v1" and saved["target"] == "churned" and saved["classes"] == ["no", "yes"]
    assert saved["inputs"]["columns"] == ["tenure", "charges"]


TRAIN_SCRIPT = '''
import numpy as np
import flywheel.onnx
from sklearn.linear_model import LogisticRegression

def fit(ctx):
    if ctx.params.get("fail"):
        raise ValueError("the learning rate must be positive, got " + str(ctx.params["lr"]))
    x, y = ctx.xy("fit")
    x = np.nan_to_num(x)
    for epoch in range(ctx.start_step, ctx.params["epochs"]):
        ctx.log_metrics({"epoch_loss": 1.0 / (epoch + 1)}, step=epoch)
        ctx.save_checkpoint(epoch, {"epoch": epoch})
        ctx.heartbeat({"epoch": epoch})
    if ctx.params.get("no_model"):
        return {"accuracy": 0.0}
    model = LogisticRegression().fit(x, y)
    ctx.save_model(*flywheel.onnx.from_sklearn(model, ctx))
    return {"accuracy": float((model.predict(x) == y).mean()), "note": "not a number"}
'''


def child(live: Live, folder: Path, spec: Dict[str, Any], roots: Any) -> Tuple[int, Dict[str, Any]]:
    folder.mkdir(parents=True)
    (folder / "request.json").write_text(json.dumps({"input": spec, "roots": [str(r) for r in roots], "gpu": False}))
    env = dict(os.environ, FLYWHEEL_URL=live.url, FLYWHEEL_TOKEN=live.token)
    done = subprocess.run(
        [sys.executable, "-m", "flywheel._child", str(folder)], env=env, capture_output=True, text=True, timeout=300
    )
    name = "result.json" if done.returncode == 0 else "error.json"
    assert (folder / name).is_file(), done.stderr
    return done.returncode, json.loads((folder / name).read_text())


def test_the_training_process_reports_its_result_and_failures(
    live: Live, run_input: Tuple[flywheel.Client, Dict[str, Any]], tmp_path: Path
) -> None:
    pytest.importorskip("skl2onnx")
    client, spec = run_input
    code_root = tmp_path / "code"
    (code_root / "jobs").mkdir(parents=True)
    (code_root / "jobs" / "train.py").write_text(TRAIN_SCRIPT)

    code, result = child(live, tmp_path / "ok", spec, [code_root])
    assert code == 0, result
    assert result["modelPath"] == "model/model.onnx" and result["signaturePath"] == "model/signature.json"
    assert result["steps"] == 3 and result["device"] == "cpu" and result["framework"] == "sklearn"
    assert "resumedFromStep" not in result and result["pythonVersion"].count(".") == 2
    assert set(result["metrics"]) == {"epoch_loss", "accuracy"} and result["metrics"]["epoch_loss"] == pytest.approx(
        1 / 3
    )
    assert history(client, spec["runId"], "epoch_loss") == {0: 1.0, 1: 0.5, 2: pytest.approx(1 / 3)}

    # A second attempt on the same run resumes after the last checkpoint and trains one more epoch.
    code, again = child(live, tmp_path / "again", {**spec, "params": {**spec["params"], "epochs": 4}}, [code_root])
    assert code == 0 and again["resumedFromStep"] == 2 and again["steps"] == 4
    assert sorted(history(client, spec["runId"], "epoch_loss")) == [0, 1, 2, 3]

    code, failure = child(live, tmp_path / "fail", {**spec, "params": {"fail": True, "lr": -1}}, [code_root])
    assert code == 3 and failure["type"] == "TrainingError" and failure["nonRetryable"] is True
    first_line, *trace = failure["message"].split("\n")
    assert first_line == "jobs/train.py:fit raised ValueError: the learning rate must be positive, got -1"
    assert any("train.py" in line for line in trace) and len(trace) <= 20 and len(failure["message"]) <= 4096

    code, failure = child(live, tmp_path / "nomodel", {**spec, "params": {"epochs": 0, "no_model": True}}, [code_root])
    assert code == 3 and failure["type"] == "TrainingError" and "without saving a model" in failure["message"]

    code, failure = child(live, tmp_path / "missing", {**spec, "entrypoint": "jobs/other.py:fit"}, [code_root])
    assert code == 3 and failure["type"] == "EntrypointError" and failure["nonRetryable"] is True
    assert "jobs/other.py" in failure["message"] and str(code_root) in failure["message"]
