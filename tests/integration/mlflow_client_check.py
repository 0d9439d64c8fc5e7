"""Drives the real MLflow client against a Flywheel server (MLFLOW_TRACKING_URI, MLFLOW_TRACKING_TOKEN); run by
mlflow-client.test.ts. Each step asserts what MLflow's own server would answer; the last line printed is a JSON
summary the test reads."""

import json
import logging
import os
import sys
import tempfile
import time

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

METRIC_STEPS = 1000


def step(message):
    print(f"[check] {message}", file=sys.stderr, flush=True)


def log_and_search_run(experiment_id, client):
    with mlflow.start_run(experiment_id=experiment_id, run_name="client-run") as run:
        run_id = run.info.run_id
        mlflow.log_params({"p": "v", "alpha": "0.5"})
        started = time.monotonic()
        for i in range(METRIC_STEPS):
            mlflow.log_metric("x", float(i + 1), step=i)
        step(f"logged {METRIC_STEPS} metric steps in {time.monotonic() - started:.1f} s")
        with tempfile.TemporaryDirectory() as scratch:
            notes = os.path.join(scratch, "notes.txt")
            with open(notes, "w") as f:
                f.write("trained on synthetic data\n")
            mlflow.log_artifact(notes)
            mlflow.log_artifact(notes, artifact_path="reports")
    assert client.get_run(run_id).info.status == "FINISHED"

    listed = sorted((f.path, f.is_dir) for f in client.list_artifacts(run_id))
    assert listed == [("notes.txt", False), ("reports", True)], listed
    assert [f.path for f in client.list_artifacts(run_id, "reports")] == ["reports/notes.txt"]
    with tempfile.TemporaryDirectory() as scratch:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="notes.txt", dst_path=scratch)
        with open(local) as f:
            assert f.read() == "trained on synthetic data\n"
    step("artifacts listed and downloaded")

    history = client.get_metric_history(run_id, "x")
    assert len(history) == METRIC_STEPS, len(history)
    assert sorted(m.step for m in history) == list(range(METRIC_STEPS))

    found = mlflow.search_runs(experiment_ids=[experiment_id], filter_string="metrics.x > 0 and params.p = 'v'")
    assert list(found["run_id"]) == [run_id], found
    assert float(found["metrics.x"].iloc[0]) == float(METRIC_STEPS)
    assert mlflow.search_runs(experiment_ids=[experiment_id], filter_string="params.p = 'other'").empty
    step("run searched back")
    return run_id


def log_register_and_load_model(experiment_id, client, registered_name):
    features, labels = make_classification(n_samples=200, n_features=4, random_state=7)
    classifier = LogisticRegression(max_iter=200).fit(features, labels)
    with mlflow.start_run(experiment_id=experiment_id, run_name="client-model") as run:
        model_run_id = run.info.run_id
        mlflow.log_metric("accuracy", float(classifier.score(features, labels)))
        model_info = mlflow.sklearn.log_model(classifier, name="model")
    step(f"model logged as {model_info.model_uri}")

    logged = mlflow.get_logged_model(model_info.model_id)
    assert logged.source_run_id == model_run_id, logged
    assert str(logged.status) in ("READY", "LoggedModelStatus.READY"), logged.status
    loaded = mlflow.sklearn.load_model(model_info.model_uri)
    assert np.array_equal(loaded.predict(features), classifier.predict(features))
    step("model loaded back with equal predictions")

    version = mlflow.register_model(model_info.model_uri, registered_name)
    client.set_registered_model_alias(registered_name, "champion", version.version)
    by_alias = client.get_model_version_by_alias(registered_name, "champion")
    assert str(by_alias.version) == str(version.version), (by_alias.version, version.version)
    champion = mlflow.sklearn.load_model(f"models:/{registered_name}@champion")
    assert np.array_equal(champion.predict(features), classifier.predict(features))
    step(f"registered {registered_name} v{version.version}, aliased champion, loaded by alias")
    return model_run_id, model_info.model_id, str(version.version)


class Captured(logging.Handler):
    """MLflow's own warnings, e.g. autologging's "Encountered unexpected error": a refused call it swallowed."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def log_batches_inputs_and_autolog(experiment_id, client):
    """The calls a notebook makes most after log_metric: log_metrics (MLflow 3 names the run in every metric, and
    splits more than 1000 into batches), log_input, and scikit-learn autologging, which uses both."""
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    train = mlflow.data.from_pandas(frame, source="s3://team-data/train.csv", name="train", targets="y")
    with mlflow.start_run(experiment_id=experiment_id, run_name="inputs") as run:
        mlflow.log_metrics({f"m{i}": float(i) for i in range(1500)}, step=3)
        mlflow.log_input(train, context="training")
        mlflow.log_input(train, context="training")  # the same dataset again: kept once
        mlflow.log_input(mlflow.data.from_pandas(frame.head(2), name="holdout"), context="eval", tags={"k": "v"})
    got = client.get_run(run.info.run_id)
    assert len(got.data.metrics) == 1500 and got.data.metrics["m1499"] == 1499.0, len(got.data.metrics)
    inputs = [(i.dataset.name, sorted((t.key, t.value) for t in i.tags)) for i in got.inputs.dataset_inputs]
    assert inputs == [
        ("train", [("mlflow.data.context", "training")]),
        ("holdout", [("k", "v"), ("mlflow.data.context", "eval")]),
    ], inputs
    first = got.inputs.dataset_inputs[0].dataset
    assert (first.digest, first.source_type) == (train.digest, "s3"), (first.digest, first.source_type)
    assert mlflow.data.get_source(got.inputs.dataset_inputs[0]).uri == "s3://team-data/train.csv"
    searched = client.search_runs([experiment_id], f"attributes.run_id = '{run.info.run_id}'")
    assert len(searched[0].inputs.dataset_inputs) == 2
    step("log_metrics in two batches and log_input, read back by get_run and search_runs")

    captured = Captured()
    logging.getLogger("mlflow").addHandler(captured)
    try:
        mlflow.sklearn.autolog(log_models=False, silent=False)
        features, labels = make_classification(n_samples=200, n_features=5, random_state=1)
        with mlflow.start_run(experiment_id=experiment_id, run_name="autolog") as autologged:
            LogisticRegression(max_iter=200).fit(features, labels)
    finally:
        mlflow.sklearn.autolog(disable=True)
        logging.getLogger("mlflow").removeHandler(captured)
    failures = [m for m in captured.messages if "autologging" in m.lower() and "error" in m.lower()]
    assert not failures, failures
    got = client.get_run(autologged.info.run_id)
    assert "training_score" in got.data.metrics and "C" in got.data.params, (got.data.metrics, got.data.params)
    assert [i.dataset.source_type for i in got.inputs.dataset_inputs] == ["code"], got.inputs
    step("scikit-learn autologging: metrics, params and its training dataset, no swallowed error")
    return run.info.run_id, autologged.info.run_id


def main():
    experiment_name, registered_name = sys.argv[1], sys.argv[2]
    client = MlflowClient()
    experiment_id = mlflow.create_experiment(experiment_name)
    assert client.get_experiment_by_name(experiment_name).experiment_id == experiment_id
    step(f"experiment {experiment_name} is {experiment_id}")
    run_id = log_and_search_run(experiment_id, client)
    model_run_id, model_id, version = log_register_and_load_model(experiment_id, client, registered_name)
    # Their own experiment: the test counts the runs of the first one.
    inputs_run_id, autolog_run_id = log_batches_inputs_and_autolog(
        mlflow.create_experiment(f"{experiment_name}-inputs"), client
    )
    print(
        json.dumps(
            {
                "experiment_id": experiment_id,
                "run_id": run_id,
                "model_run_id": model_run_id,
                "model_id": model_id,
                "version": version,
                "inputs_run_id": inputs_run_id,
                "autolog_run_id": autolog_run_id,
            }
        )
    )


if __name__ == "__main__":
    main()
