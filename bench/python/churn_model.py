"""bench:serve's ONNX model: examples/churn-sklearn/train.py's ``fit`` (a scikit-learn Pipeline: one-hot contract and
plan, GradientBoostingClassifier with the example's params) exported by ``flywheel.onnx.from_sklearn``.

Usage: python churn_model.py <churn.csv> <out dir>   (the Python worker's venv: scikit-learn, skl2onnx, pandas, the SDK)

The example's function runs with a stand-in for Flywheel's training context (pandas frames of a seeded split: 20 %
holdout, 10 % of the rest validation; metrics kept in memory): the same function, the same model, no server. Writes
<out dir>/model.onnx and <out dir>/signature.json (flywheel-onnx-v1, the columns layout); bench/serveOnnx.ts imports
them into Flywheel (``training.runner: import``) and gives the same file to the FastAPI peer. Prints one JSON line.
"""
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"n_estimators": 150, "max_depth": 3, "learning_rate": 0.1}
FEATURES = {
    "numeric": ["tenure_months", "monthly_charges", "support_calls", "paperless"],
    "categorical": ["contract", "internet"],
}
PARTS = {"train": (0,), "validation": (1,), "holdout": (2,), "fit": (0, 1), "all": (0, 1, 2)}


class LocalContext:
    """The part of Flywheel's TrainingContext the churn example and from_sklearn use, over a local CSV."""

    def __init__(self, frame, roles, out):
        self.params = dict(PARAMS)
        self.seed = 7
        self.task = "classification"
        self.target = "churned"
        self.features = {k: list(v) for k, v in FEATURES.items()}
        self.framework = None
        self.metrics = {}
        self._frame = frame
        self._roles = roles
        self._out = out

    @property
    def classes(self):
        return sorted(self._frame[self.target].astype(str).unique())

    def columns(self, part="fit"):
        rows = self._frame[np.isin(self._roles, PARTS[part])]
        names = [*self.features["numeric"], *self.features["categorical"], self.target]
        return {c: rows[c].to_numpy() for c in names}

    def frame(self, part="fit"):
        return pd.DataFrame(self.columns(part))

    def log_metrics(self, metrics, step=0):
        self.metrics.update({k: float(v) for k, v in metrics.items()})

    def save_model(self, model, signature):
        full = {"format": "flywheel-onnx-v1", "task": self.task, "target": self.target, **signature}
        (self._out / "model.onnx").write_bytes(model)
        (self._out / "signature.json").write_text(json.dumps(full, indent=2))


def main():
    csv_path, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    example_file = ROOT / "examples" / "churn-sklearn" / "train.py"
    spec = importlib.util.spec_from_file_location("bench_churn_example", example_file)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    frame = pd.read_csv(csv_path, dtype={"contract": str, "internet": str, "churned": str})
    for column in FEATURES["numeric"]:
        frame[column] = frame[column].astype(np.float64)
    n = len(frame)
    holdout = max(1, round(n * 0.2))
    validation = round((n - holdout) * 0.1)
    order = np.random.default_rng(7).permutation(n)
    roles = np.zeros(n, dtype=np.uint8)
    roles[order[:holdout]] = 2
    roles[order[holdout : holdout + validation]] = 1
    ctx = LocalContext(frame, roles, out)
    started = time.perf_counter()
    example.fit(ctx)
    size = (out / "model.onnx").stat().st_size
    print(json.dumps({"fit_s": time.perf_counter() - started, "rows": n, "metrics": ctx.metrics, "bytes": size}))


if __name__ == "__main__":
    main()
