"""Runs, metrics, params, tags, artifacts and search against a live Flywheel server (see conftest.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import flywheel
from flywheel import Client, FlywheelError

from conftest import Live


def test_a_run_logs_params_metrics_tags_and_artifacts_and_search_finds_it(live: Live, fw: Client, tmp_path: Path) -> None:
    experiment = live.name("tracking")
    (tmp_path / "notes.txt").write_text("trained on synthetic data\n")
    model = tmp_path / "model"
    (model / "weights").mkdir(parents=True)
    (model / "MLmodel").write_text("flavors: {}\n")
    (model / "weights" / "layer0.bin").write_bytes(bytes(range(256)) * 8192)  # 2 MiB

    sent: list = []  # the metric count of each log-batch request
    fw._http.event_hooks["request"].append(
        lambda request: sent.append(len(json.loads(request.content).get("metrics", []))) if request.url.path.endswith("/runs/log-batch") else None)
    with flywheel.start_run(experiment=experiment, name="sdk-run", tags={"team": "forecast"}) as run:
        assert flywheel.active_run() is run and run.status == "RUNNING"
        flywheel.log_params({"lr": 0.01, "optimizer": "adam"})
        flywheel.log_param("epochs", 1500)
        for step in range(1500):
            flywheel.log_metric("loss", 1.0 / (step + 1), step=step)
        flywheel.log_metrics({"rmse": 0.25, "mae": 0.125}, step=1500)
        flywheel.set_tags({"stage": "candidate", "dataset": "demand-v3"})
        assert flywheel.log_artifact(tmp_path / "notes.txt") == ["notes.txt"]
        assert flywheel.log_artifact(model) == ["model/MLmodel", "model/weights/layer0.bin"]
        assert flywheel.log_artifact(tmp_path / "notes.txt", "docs/extra") == ["docs/extra/notes.txt"]
    # 1,502 points in two batches: 1,000 when the buffer filled, the rest with the tags; params went at once.
    assert [n for n in sent if n] == [1000, 502] and len(sent) == 4
    assert flywheel.active_run() is None and run.status == "FINISHED" and run.end_time

    stored = flywheel.get_run(run.run_id)
    assert stored.status == "FINISHED" and stored.name == "sdk-run"
    assert stored.params == {"lr": "0.01", "optimizer": "adam", "epochs": "1500"}
    assert stored.metrics["loss"] == pytest.approx(1.0 / 1500)  # the latest step's value
    assert stored.metrics["rmse"] == 0.25
    assert {"team": "forecast", "stage": "candidate", "dataset": "demand-v3"}.items() <= stored.tags.items()

    # Every one of the 1,500 points arrived, over more than one batch.
    history = fw._request("GET", "/api/2.0/mlflow/metrics/get-history", params={"run_id": run.run_id, "metric_key": "loss"})["metrics"]
    assert [p["step"] for p in history] == list(range(1500))
    assert history[10]["value"] == pytest.approx(1.0 / 11)

    top = {f.path: f for f in flywheel.list_artifacts(run_id=run.run_id)}
    assert set(top) == {"notes.txt", "model", "docs"} and top["model"].is_dir and top["notes.txt"].file_size == 26
    weights = flywheel.list_artifacts("model/weights", run_id=run.run_id)
    assert [(f.path, f.file_size) for f in weights] == [("model/weights/layer0.bin", 2 * 1024 * 1024)]
    copy = flywheel.download_artifact("model/weights/layer0.bin", tmp_path / "copy.bin", run_id=run.run_id)
    assert copy.read_bytes() == (model / "weights" / "layer0.bin").read_bytes()

    found = flywheel.search_runs("params.optimizer = 'adam' and metrics.rmse < 0.5 and tags.team = 'forecast'", experiment=experiment)
    assert [r.run_id for r in found] == [run.run_id]
    assert found[0].params["lr"] == "0.01"
    assert flywheel.search_runs("metrics.rmse > 0.5", experiment=experiment) == []
    # By experiment id too, and across all experiments with the run's own tag.
    assert [r.run_id for r in flywheel.search_runs(experiment=int(stored.experiment_id))] == [run.run_id]
    assert run.run_id in [r.run_id for r in flywheel.search_runs(f"attributes.run_id = '{run.run_id}'")]


def test_search_orders_and_limits(live: Live, fw: Client) -> None:
    experiment = live.name("order")
    ids = []
    for rmse in (0.3, 0.1, 0.2):
        with flywheel.start_run(experiment=experiment) as run:
            flywheel.log_metric("rmse", rmse)
        ids.append(run.run_id)
    best_first = flywheel.search_runs(order_by="metrics.rmse ASC", experiment=experiment)
    assert [r.metrics["rmse"] for r in best_first] == [0.1, 0.2, 0.3]
    assert [r.run_id for r in flywheel.search_runs(order_by=["metrics.rmse DESC"], experiment=experiment, max_results=2)] == [ids[0], ids[2]]
    with pytest.raises(FlywheelError) as bad:
        flywheel.search_runs("metrics.rmse <<< 1", experiment=experiment)
    assert bad.value.code == "INVALID_PARAMETER_VALUE" and bad.value.status == 400


def test_the_context_manager_marks_the_run_failed_when_the_block_raises(live: Live, fw: Client) -> None:
    experiment = live.name("failed")
    with pytest.raises(ValueError, match="diverged"):
        with flywheel.start_run(experiment=experiment) as run:
            flywheel.log_metric("loss", float("nan"), step=0)
            raise ValueError("loss diverged")
    assert flywheel.active_run() is None
    stored = flywheel.get_run(run.run_id)
    assert stored.status == "FAILED" and stored.end_time
    assert str(stored.metrics["loss"]) == "nan"  # the buffered point was flushed before the run ended
    assert [r.run_id for r in flywheel.search_runs("attributes.status = 'FAILED'", experiment=experiment)] == [run.run_id]


def test_end_run_with_a_status_and_explicit_clients(live: Live, fw: Client) -> None:
    experiment = live.name("explicit")
    flywheel.set_experiment(experiment)
    run = flywheel.start_run()
    flywheel.end_run("KILLED")
    assert flywheel.get_run(run.run_id).status == "KILLED"
    flywheel.end_run()  # no active run: nothing to do

    with Client(live.url, live.token) as client:
        other = client.create_run(experiment=experiment, name="background")
        client.log_metrics({"a": 1.0, "b": 2.0}, step=7, run_id=other.run_id)
        client.set_tag("kind", "explicit", run_id=other.run_id)
        client.end_run("FINISHED", run_id=other.run_id)
        stored = client.get_run(other.run_id)
    assert stored.status == "FINISHED" and stored.metrics == {"a": 1.0, "b": 2.0} and stored.tags["kind"] == "explicit"
    assert {r.run_id for r in flywheel.search_runs()} == {run.run_id, other.run_id}  # the experiment set above


def test_a_logged_param_cannot_change(live: Live, fw: Client) -> None:
    with flywheel.start_run(experiment=live.name("params")):
        flywheel.log_param("lr", 0.1)
        flywheel.log_param("lr", 0.1)  # the same value again is fine
        with pytest.raises(FlywheelError) as changed:
            flywheel.log_param("lr", 0.2)
    assert changed.value.code == "INVALID_PARAMETER_VALUE" and "lr" in changed.value.message


def test_a_read_token_cannot_log(live: Live, fw: Client, read_client: Client) -> None:
    with flywheel.start_run(experiment=live.name("readonly")) as run:
        flywheel.log_metric("x", 1.0)
    with pytest.raises(FlywheelError) as denied:
        read_client.create_run(experiment=int(run.experiment_id))
    assert denied.value.code == "PERMISSION_DENIED" and denied.value.status == 403
    with pytest.raises(FlywheelError) as denied_batch:
        read_client.log_metric("x", 2.0, run_id=run.run_id)
        read_client.flush()
    assert denied_batch.value.code == "PERMISSION_DENIED"
    with pytest.raises(FlywheelError) as denied_artifact:
        read_client.log_artifact(__file__, run_id=run.run_id)
    assert denied_artifact.value.code == "PERMISSION_DENIED"
    # Reading is what a read token is for.
    assert read_client.get_run(run.run_id).metrics == {"x": 1.0}
    assert [r.run_id for r in read_client.search_runs(experiment=int(run.experiment_id))] == [run.run_id]


def test_unknown_runs_and_experiments_and_bad_tokens(live: Live, fw: Client) -> None:
    with pytest.raises(FlywheelError) as missing:
        flywheel.get_run("0123456789abcdef0123456789abcdef")
    assert missing.value.code == "RESOURCE_DOES_NOT_EXIST" and missing.value.status == 404
    with pytest.raises(FlywheelError) as missing_log:
        fw.log_metric("x", 1.0, run_id="0123456789abcdef0123456789abcdef")
        fw.flush()
    assert missing_log.value.code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(FlywheelError) as missing_experiment:
        flywheel.search_runs(experiment=live.name("never-created"))
    assert missing_experiment.value.code == "RESOURCE_DOES_NOT_EXIST"
    with Client(live.url, "fw_not_a_real_token") as stranger:
        with pytest.raises(FlywheelError) as unknown:
            stranger.search_runs()
    assert unknown.value.code == "UNAUTHENTICATED" and unknown.value.status == 401
