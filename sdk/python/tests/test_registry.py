"""Registering a run's model and moving an alias, against a live Flywheel server (see conftest.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

import flywheel
from flywheel import Client, FlywheelError

from conftest import Live


@pytest.fixture
def registry(live: Live, fw: Client) -> Client:
    """Skips while the server has no registry routes (server/mlflow/registry.ts)."""
    try:
        fw._request("GET", "/api/2.0/mlflow/registered-models/get", params={"name": live.name("probe")})
    except FlywheelError as error:
        if error.code == "ENDPOINT_NOT_FOUND":
            pytest.skip("the server has no MLflow registry routes yet (POST /api/2.0/mlflow/registered-models/create answers ENDPOINT_NOT_FOUND)")
        if error.code != "RESOURCE_DOES_NOT_EXIST":
            raise
    return fw


def test_register_model_and_set_alias(live: Live, registry: Client, tmp_path: Path, read_client: Client) -> None:
    name = live.name("model")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "MLmodel").write_text("flavors: {}\n")
    with flywheel.start_run(experiment=live.name("registry")) as run:
        flywheel.log_metric("rmse", 0.2)
        flywheel.log_artifact(tmp_path / "model")
    first = flywheel.register_model(run.run_id, name, tags={"gate": "passed"})
    assert (first.name, first.version, first.run_id, first.source) == (name, 1, run.run_id, f"runs:/{run.run_id}/model")
    assert first.tags == {"gate": "passed"} and first.status == "READY"
    # The registered model exists now: the second registration adds a version instead of failing.
    second = flywheel.register_model(run.run_id, name, artifact_path="model/")
    assert second.version == 2

    flywheel.set_alias(name, "champion", first.version)
    assert flywheel.get_model_version_by_alias(name, "champion").version == 1
    flywheel.set_alias(name, "champion", "2")
    champion = flywheel.get_model_version_by_alias(name, "champion")
    assert champion.version == 2 and champion.aliases == ["champion"]
    assert flywheel.get_model_version(name, 1).aliases == []

    # Moving an alias needs an admin token; a read token cannot even register.
    with pytest.raises(FlywheelError) as denied:
        read_client.set_alias(name, "champion", 1)
    assert denied.value.code == "PERMISSION_DENIED"
    with pytest.raises(FlywheelError) as denied_register:
        read_client.register_model(run.run_id, name)
    assert denied_register.value.code == "PERMISSION_DENIED"
    if live.write_token:
        with Client(live.url, live.write_token) as writer:
            assert writer.register_model(run.run_id, name).version == 3
            with pytest.raises(FlywheelError) as needs_admin:
                writer.set_alias(name, "champion", 3)
        assert needs_admin.value.code == "PERMISSION_DENIED" and "admin" in needs_admin.value.message
        assert flywheel.get_model_version_by_alias(name, "champion").version == 2
    with pytest.raises(FlywheelError) as missing_version:
        flywheel.set_alias(name, "champion", 9)
    assert missing_version.value.code == "RESOURCE_DOES_NOT_EXIST"


def test_registering_an_unknown_run_fails(live: Live, registry: Client) -> None:
    with pytest.raises(FlywheelError) as missing:
        flywheel.register_model("0123456789abcdef0123456789abcdef", live.name("model"))
    assert missing.value.code == "RESOURCE_DOES_NOT_EXIST"
