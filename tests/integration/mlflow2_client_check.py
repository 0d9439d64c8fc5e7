"""Drives an MLflow 2 client (mlflow-skinny 2.22) against a Flywheel server, as teams that have not moved to MLflow 3
do: params, metrics in batches, a scikit-learn model logged (its metadata through runs/log-model, not MLflow 3's logged
models), registered and loaded back by version. MLflow swallows a refused metadata call with a warning, so warnings
are captured and must not name a failure. The last line printed is a JSON summary mlflow-client.test.ts reads."""

import json
import logging
import sys

import mlflow
from mlflow import MlflowClient
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from mlflow_client_check import Captured  # this script's folder is first on sys.path


def main():
    experiment_name, registered_name = sys.argv[1], sys.argv[2]
    assert mlflow.__version__.startswith("2."), mlflow.__version__
    captured = Captured()
    logging.getLogger("mlflow").addHandler(captured)
    client = MlflowClient()
    experiment_id = mlflow.create_experiment(experiment_name)
    features, labels = make_classification(n_samples=200, n_features=5, random_state=2)
    with mlflow.start_run(experiment_id=experiment_id, run_name="mlflow-2") as run:
        mlflow.log_params({"C": "1.0", "solver": "lbfgs"})
        mlflow.log_metrics({f"m{i}": float(i) for i in range(1200)})
        classifier = LogisticRegression(max_iter=200).fit(features, labels)
        mlflow.log_metric("accuracy", float(classifier.score(features, labels)))
        mlflow.sklearn.log_model(classifier, artifact_path="model", registered_model_name=registered_name)
    failures = [m for m in captured.messages if "fail" in m.lower() or "error" in m.lower()]
    assert not failures, failures

    got = client.get_run(run.info.run_id)
    assert len(got.data.metrics) == 1201 and got.data.params["solver"] == "lbfgs"
    history = json.loads(got.data.tags["mlflow.log-model.history"])
    assert [(m["artifact_path"], "python_function" in m["flavors"]) for m in history] == [("model", True)], history
    loaded = mlflow.pyfunc.load_model(f"models:/{registered_name}/1")
    assert list(loaded.predict(features[:5])) == list(classifier.predict(features[:5]))
    print(json.dumps({"run_id": run.info.run_id, "warnings": len(captured.messages)}))


if __name__ == "__main__":
    main()
