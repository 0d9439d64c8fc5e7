"""flywheel.onnx: scikit-learn and torch models exported with their signatures, and run by onnxruntime with the shapes
the signature promises. The run's data comes from a small in-memory table shaped like TrainingContext's."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any, Dict, List, Optional

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("sklearn", reason="the ONNX tests need scikit-learn (the worker's environment has it)")
pytest.importorskip("skl2onnx")
ort = pytest.importorskip("onnxruntime")

from flywheel import onnx as fw_onnx  # noqa: E402
from flywheel.training import check_signature, part_mask  # noqa: E402


class Table:
    """The parts of TrainingContext the export helpers read: task, target, features, classes and columns(part)."""

    def __init__(self, task: str, numeric: List[str], categorical: List[str], rows: int = 120, seed: int = 3) -> None:
        rng = np.random.default_rng(seed)
        self.task, self.target = task, "label" if task == "classification" else "amount"
        self.features = {"numeric": numeric, "categorical": categorical}
        self.framework: Optional[str] = None
        self.data: Dict[str, np.ndarray] = {c: rng.normal(size=rows) for c in numeric}
        for c in categorical:
            self.data[c] = rng.choice(["basic", "plus", "pro"], size=rows).astype(str)
        signal = sum(self.data[c] for c in numeric) + sum((self.data[c] == "pro") * 2.0 for c in categorical)
        self.data[self.target] = np.where(signal > 0, "yes", "no") if task == "classification" else 3 * signal + 1
        self.split = (np.arange(rows) % 5 == 4).astype(np.uint8)  # every fifth row validation

    @property
    def classes(self) -> List[str]:
        return sorted(set(self.data[self.target].tolist()))

    def columns(self, part: str = "fit") -> Dict[str, np.ndarray]:
        mask = part_mask(self.split, part)
        return {k: v[mask] for k, v in self.data.items()}

    def xy(self) -> Any:
        cols = self.columns()
        return np.column_stack([cols[c] for c in self.features["numeric"]]).astype(np.float32), cols[self.target]


def run(model: bytes, feed: Dict[str, np.ndarray], output: str) -> np.ndarray:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run([output], feed)[0]


def test_a_sklearn_classifier_exports_a_tensor_input_and_class_probabilities() -> None:
    from sklearn.linear_model import LogisticRegression

    table = Table("classification", ["tenure", "charges"], [])
    x, y = table.xy()
    model = LogisticRegression().fit(x, y)
    data, signature = fw_onnx.from_sklearn(model, table)  # type: ignore[arg-type]
    check_signature(signature)
    assert signature["classes"] == ["no", "yes"] and table.framework == "sklearn"
    assert signature["inputs"] == {
        "layout": "tensor",
        "name": "input",
        "columns": ["tenure", "charges"],
        "dtype": "float32",
    }
    assert signature["output"] == {"name": "probabilities", "kind": "probabilities"}
    json.dumps(signature)
    probabilities = run(data, {"input": x[:7]}, "probabilities")
    assert probabilities.shape == (7, 2)
    np.testing.assert_allclose(probabilities, model.predict_proba(x[:7]), atol=1e-5)


def test_a_sklearn_regressor_exports_one_value_per_row() -> None:
    from sklearn.ensemble import RandomForestRegressor

    table = Table("regression", ["price", "promo", "day"], [])
    x, y = table.xy()
    model = RandomForestRegressor(n_estimators=5, max_depth=4, random_state=0).fit(x, y)
    data, signature = fw_onnx.from_sklearn(model, table)  # type: ignore[arg-type]
    check_signature(signature)
    assert "classes" not in signature and signature["output"]["kind"] == "value"
    values = run(data, {"input": x[:5]}, signature["output"]["name"])
    assert values.shape in ((5,), (5, 1))
    np.testing.assert_allclose(values.reshape(-1), model.predict(x[:5]), rtol=1e-4, atol=1e-4)


def test_a_pipeline_with_a_categorical_column_exports_one_input_per_column() -> None:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    table = Table("classification", ["tenure"], ["plan"])
    frame = pd.DataFrame(table.columns())
    pipeline = Pipeline(
        [
            (
                "prepare",
                ColumnTransformer(
                    [
                        ("scale", StandardScaler(), ["tenure"]),
                        ("encode", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
                    ]
                ),
            ),
            ("classify", LogisticRegression()),
        ]
    ).fit(frame[["tenure", "plan"]], frame["label"])
    data, signature = fw_onnx.from_sklearn(pipeline, table)  # type: ignore[arg-type]
    check_signature(signature)
    assert signature["inputs"] == {
        "layout": "columns",
        "columns": [{"name": "tenure", "type": "numeric"}, {"name": "plan", "type": "categorical"}],
    }
    feed = {
        "tenure": frame["tenure"].to_numpy(np.float32)[:4].reshape(4, 1),
        "plan": frame["plan"].to_numpy(str)[:4].reshape(4, 1),
    }
    probabilities = run(data, feed, "probabilities")
    assert probabilities.shape == (4, 2)
    np.testing.assert_allclose(probabilities, pipeline.predict_proba(frame[["tenure", "plan"]][:4]), atol=1e-5)
    # A category never seen in training still scores (handle_unknown="ignore").
    assert run(
        data, {"tenure": np.zeros((1, 1), np.float32), "plan": np.asarray([["enterprise"]])}, "probabilities"
    ).shape == (1, 2)


def test_classes_that_are_not_the_targets_values_are_refused() -> None:
    from sklearn.linear_model import LogisticRegression

    table = Table("classification", ["tenure", "charges"], [])
    x, y = table.xy()
    model = LogisticRegression().fit(x, (y == "yes").astype(int))
    with pytest.raises(ValueError, match=r"classes \['0', '1'\] are not the values of target label"):
        fw_onnx.from_sklearn(model, table)  # type: ignore[arg-type]
    _data, signature = fw_onnx.from_sklearn(model, table, classes=["no", "yes"])  # type: ignore[arg-type]
    assert signature["classes"] == ["no", "yes"]


def test_an_estimator_fitted_on_other_columns_is_refused() -> None:
    from sklearn.linear_model import LinearRegression

    table = Table("regression", ["price", "promo"], [])
    x, y = table.xy()
    with pytest.raises(ValueError, match="takes 1 features, the run has 2 numeric features"):
        fw_onnx.from_sklearn(LinearRegression().fit(x[:, :1], y), table)  # type: ignore[arg-type]


def test_a_torch_mlp_exports_with_a_dynamic_batch() -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed here (Debian's python3-torch gives it)")

    table = Table("classification", ["tenure", "charges", "calls"], [])
    x, _y = table.xy()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    data, signature = fw_onnx.from_torch(net, table, kind="logits")  # type: ignore[arg-type]
    check_signature(signature)
    assert signature["output"] == {"name": "logits", "kind": "logits"} and signature["classes"] == ["no", "yes"]
    assert table.framework == "torch" and net.training  # the module is handed back in the mode it came in
    for rows in (1, 9):
        logits = run(data, {"input": x[:rows]}, "logits")
        assert logits.shape == (rows, 2)
        np.testing.assert_allclose(logits, net(torch.from_numpy(x[:rows])).detach().numpy(), atol=1e-5)

    regression = Table("regression", ["a", "b"], [])
    head = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    data, signature = fw_onnx.from_torch(head, regression, kind="value")  # type: ignore[arg-type]
    assert run(data, {"input": regression.xy()[0][:6]}, "value").shape == (6, 1)
    with pytest.raises(ValueError, match="a regression model's kind is not 'logits'"):
        fw_onnx.from_torch(head, regression, kind="logits")  # type: ignore[arg-type]


def test_the_exporter_is_one_of_two_and_dynamo_says_what_it_needs() -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed here (Debian's python3-torch gives it)")

    table = Table("regression", ["a", "b"], [])
    head = torch.nn.Sequential(torch.nn.Linear(2, 1))
    with pytest.raises(ValueError, match="exporter is one of torchscript, dynamo, not 'jit'"):
        fw_onnx.from_torch(head, table, kind="value", exporter="jit")  # type: ignore[arg-type]
    has_dynamo = "dynamo" in inspect.signature(torch.onnx.export).parameters
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        onnxscript = None
    if not has_dynamo:
        expected = f"exporter='dynamo' needs torch 2.5 or later, not {torch.__version__}"
    elif onnxscript is None:
        expected = "exporter='dynamo' needs onnxscript"
    else:
        expected = "exporter='dynamo' writes opset 18 or later, not 15"
    with pytest.raises(ValueError, match=re.escape(expected)):
        fw_onnx.from_torch(head, table, kind="value", exporter="dynamo", opset=15)  # type: ignore[arg-type]
    assert head.training  # handed back in the mode it came in, refused or not


def test_a_torch_mlp_exports_with_the_dynamo_exporter() -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed here (Debian's python3-torch gives it)")
    pytest.importorskip("onnxscript", reason="torch's dynamo exporter needs onnxscript, not installed here")
    if "dynamo" not in inspect.signature(torch.onnx.export).parameters:
        pytest.skip(f"torch {torch.__version__} has no torch.export-based ONNX exporter")
    import onnx

    table = Table("classification", ["tenure", "charges", "calls"], [])
    x, _y = table.xy()
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).to(device)
    data, signature = fw_onnx.from_torch(net, table, kind="logits", exporter="dynamo")  # type: ignore[arg-type]
    check_signature(signature)
    assert max(o.version for o in onnx.load_from_string(data).opset_import if o.domain in ("", "ai.onnx")) >= 18
    for rows in (1, 9):
        logits = run(data, {"input": x[:rows]}, "logits")
        assert logits.shape == (rows, 2)
        native = net(torch.from_numpy(x[:rows]).to(device)).detach().cpu().numpy()
        np.testing.assert_allclose(logits, native, atol=1e-5)
