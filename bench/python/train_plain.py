"""bench:train-python's plain side: the same training function called by a plain Python script, no Flywheel around it.

Usage: python train_plain.py <data.csv> <spec.json> <out dir>

<spec.json> (written by bench/trainPython.ts): ``params``, ``seed``, ``task``, ``target``, ``features``
({numeric, categorical}) and ``holdout_fraction`` — what the pipeline config gives Flywheel's run. The script does
what a lean script of a team's own would: reads the CSV's feature and target columns with numpy (``np.loadtxt``),
splits it with a seeded shuffle into the same numbers of holdout, validation and training rows as Flywheel's split
(training/split.ts: holdout = round(n × fraction), validation = 10 % of the rest), and calls
bench/python/demand_fit.py's ``fit`` (examples/demand-torch/train.py's) with a minimal stand-in for Flywheel's
context: metrics kept in memory, heartbeats ignored, checkpoints ``torch.save``d to a local file, the ONNX model and
its signature written to <out dir>. Seeded as Flywheel's child process seeds (random, numpy, torch).

Prints one JSON line: seconds spent importing, loading + splitting the data, and in ``fit``; epochs logged; the final
metrics. The bench times the whole process (interpreter start to exit) from outside, as it times Flywheel's activity.
"""
import json
import random
import sys
import time
from pathlib import Path

started = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demand_fit  # noqa: E402

PARTS = {"train": (0,), "validation": (1,), "holdout": (2,), "fit": (0, 1), "all": (0, 1, 2)}


class PlainContext:
    """The part of Flywheel's TrainingContext the example's ``fit`` uses, with nothing behind it but local files."""

    def __init__(self, table, roles, spec, out):
        self.params = dict(spec["params"])
        self.seed = int(spec["seed"])
        self.task = spec["task"]
        self.target = spec["target"]
        features = spec["features"]
        self.features = {"numeric": list(features["numeric"]), "categorical": list(features["categorical"])}
        self.device = "cpu"
        self.run_id = "plain"
        self.max_epochs = None
        self.start_step = 0
        self.framework = None
        self.metrics = []
        self._table = table
        self._roles = roles
        self._out = out

    def columns(self, part="fit"):
        mask = np.isin(self._roles, PARTS[part])
        return {name: values[mask] for name, values in self._table.items()}

    def xy(self, part="fit"):
        mask = np.isin(self._roles, PARTS[part])
        x = np.column_stack([self._table[name][mask] for name in self.features["numeric"]]).astype(np.float32)
        return x, self._table[self.target][mask]

    def heartbeat(self, details=None):
        pass

    def log_metrics(self, metrics, step=0):
        self.metrics.append((int(step), {k: float(v) for k, v in metrics.items()}))

    def save_checkpoint(self, step, state):
        torch.save(state, self._out / "checkpoint.pt")

    def load_checkpoint(self):
        return None

    def save_model(self, model, signature):
        (self._out / "model.onnx").write_bytes(model if isinstance(model, bytes) else model.SerializeToString())
        (self._out / "signature.json").write_text(json.dumps(signature))
        return ["model.onnx", "signature.json"]


def main():
    csv_path, spec_path, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    imported = time.perf_counter()
    spec = json.loads(Path(spec_path).read_text())
    with open(csv_path) as handle:
        header = handle.readline().rstrip("\n").split(",")
    names = [*spec["features"]["numeric"], spec["target"]]
    matrix = np.loadtxt(csv_path, delimiter=",", skiprows=1, usecols=[header.index(c) for c in names], ndmin=2)
    table = {name: matrix[:, i] for i, name in enumerate(names)}
    n = len(matrix)
    holdout = max(1, round(n * float(spec["holdout_fraction"])))
    validation = round((n - holdout) * 0.1) if n - holdout >= 20 else 0
    order = np.random.default_rng(int(spec["seed"])).permutation(n)
    roles = np.zeros(n, dtype=np.uint8)
    roles[order[:holdout]] = 2
    roles[order[holdout : holdout + validation]] = 1
    seed = int(spec["seed"])
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    ctx = PlainContext(table, roles, spec, out)
    loaded = time.perf_counter()
    demand_fit.fit(ctx)
    finished = time.perf_counter()
    final = ctx.metrics[-1][1] if ctx.metrics else {}
    print(
        json.dumps(
            {
                "import_s": imported - started,
                "load_s": loaded - imported,
                "fit_s": finished - loaded,
                "rows": n,
                "train_rows": int((roles == 0).sum()),
                "epochs_logged": len(ctx.metrics),
                "metrics": final,
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
