"""ONNX export for :meth:`flywheel.training.TrainingContext.save_model`: a fitted scikit-learn estimator (skl2onnx) or a
torch module (``torch.onnx.export``), each returned as (model bytes, signature dict per BYOM §1), checked with
``onnx.checker`` and, when onnxruntime is installed, run on two rows of the run's data.

    model, signature = flywheel.onnx.from_sklearn(pipeline, ctx)
    ctx.save_model(model, signature)
"""

from __future__ import annotations

import inspect
import io
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

if TYPE_CHECKING:
    from .training import TrainingContext

SIGNATURE_FORMAT = "flywheel-onnx-v1"
TORCH_KINDS = ("probabilities", "logits", "value")
TORCH_EXPORTERS = ("torchscript", "dynamo")
#: The opset used when none is given: old enough for torch 1.13 and for onnxruntime-node 1.x.
DEFAULT_OPSET = 15


def _contains_column_transformer(estimator: Any) -> bool:
    from sklearn.compose import ColumnTransformer

    if isinstance(estimator, ColumnTransformer):
        return True
    steps = getattr(estimator, "steps", None)
    return bool(steps) and any(_contains_column_transformer(step) for _name, step in steps)


def _check_classes(classes: List[str], ctx: "TrainingContext") -> None:
    if ctx.task != "classification":
        return
    unknown = [c for c in classes if c not in set(ctx.classes)]
    if unknown:
        raise ValueError(
            f"the model's classes {classes} are not the values of target {ctx.target} ({ctx.classes}): train on the "
            f"text "
            f"labels (ctx.xy() gives them), or pass classes= in the model's output order"
        )


def from_sklearn(
    estimator: Any,
    ctx: "TrainingContext",
    *,
    classes: Optional[Sequence[str]] = None,
    target_opset: Optional[int] = None,
) -> Tuple[bytes, Dict[str, Any]]:
    """A fitted estimator or Pipeline as ONNX (classifiers without zipmap: ``probabilities`` is [N, classes]).

    Fitted on a numpy array (``ctx.xy()``): one float32 ``input`` tensor over the numeric features (tensor layout).
    Fitted on a DataFrame with a categorical column, or holding a ColumnTransformer (``ctx.frame()``): one input per
    column, numeric float32 and categorical string, each [N, 1] (columns layout).
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    categorical = set(ctx.features["categorical"])
    names = getattr(estimator, "feature_names_in_", None)
    names = [str(n) for n in names] if names is not None else None
    columns_layout = names is not None and (
        any(n in categorical for n in names) or _contains_column_transformer(estimator)
    )
    if columns_layout:
        assert names is not None
        known = set(ctx.features["numeric"]) | categorical
        strange = [n for n in names if n not in known]
        if strange:
            raise ValueError(
                f"from_sklearn: the estimator was fitted on {strange[0]}, which is not one of the run's features"
            )
        initial_types: List[Tuple[str, Any]] = [
            (n, StringTensorType([None, 1]) if n in categorical else FloatTensorType([None, 1])) for n in names
        ]
        inputs: Dict[str, Any] = {
            "layout": "columns",
            "columns": [{"name": n, "type": "categorical" if n in categorical else "numeric"} for n in names],
        }
    else:
        feature_names = names if names is not None else list(ctx.features["numeric"])
        expected = getattr(estimator, "n_features_in_", len(feature_names))
        if expected != len(feature_names):
            raise ValueError(
                f"from_sklearn: the estimator takes {expected} features, the run has {len(feature_names)} numeric "
                f"features ({', '.join(feature_names)}); fit it on ctx.xy() or a DataFrame from ctx.frame()"
            )
        initial_types = [("input", FloatTensorType([None, len(feature_names)]))]
        inputs = {"layout": "tensor", "name": "input", "columns": feature_names, "dtype": "float32"}

    signature: Dict[str, Any] = {"format": SIGNATURE_FORMAT, "task": ctx.task, "target": ctx.target}
    options: Dict[Any, Any] = {}
    if ctx.task == "classification":
        if classes is None:
            if not hasattr(estimator, "classes_"):
                raise ValueError(
                    "from_sklearn: a classification run needs a classifier (the estimator has no classes_)"
                )
            classes = [str(c) for c in estimator.classes_]
        _check_classes(list(classes), ctx)
        signature["classes"] = [str(c) for c in classes]
        options = {id(estimator): {"zipmap": False}}
    signature["inputs"] = inputs
    model = convert_sklearn(estimator, initial_types=initial_types, options=options or None, target_opset=target_opset)
    output_names = [o.name for o in model.graph.output]
    if ctx.task == "classification":
        name = "probabilities" if "probabilities" in output_names else output_names[-1]
        signature["output"] = {"name": name, "kind": "probabilities"}
    else:
        signature["output"] = {"name": output_names[0], "kind": "value"}
    data = model.SerializeToString()
    validate(data, signature, ctx)
    ctx.framework = "sklearn"
    return data, signature


def from_torch(
    module: Any,
    ctx: "TrainingContext",
    kind: str = "probabilities",
    *,
    classes: Optional[Sequence[str]] = None,
    opset: Optional[int] = None,
    exporter: str = "torchscript",
) -> Tuple[bytes, Dict[str, Any]]:
    """A torch module taking float32 [N, numeric features] (``ctx.xy()``'s X) as ONNX with a dynamic batch axis.

    ``kind``: what the module outputs — ``probabilities`` or ``logits`` ([N, classes], classification; logits get a
    softmax when scored) or ``value`` (regression, [N] or [N, 1]). ``classes`` default to ``ctx.classes`` (the order of
    ``ctx.xy(encode_target=True)``'s indices).

    ``exporter``: ``torchscript``, torch.onnx's TorchScript exporter (any torch from 1.13, nothing else to install;
    torch 2.9 and later warn that it will be removed), or ``dynamo``, the torch.export-based exporter (torch 2.5 and
    later with ``onnxscript`` installed; opset 18 at least).
    """
    import torch

    if kind not in TORCH_KINDS:
        raise ValueError(f"from_torch: kind is one of {', '.join(TORCH_KINDS)}, not {kind!r}")
    if exporter not in TORCH_EXPORTERS:
        raise ValueError(f"from_torch: exporter is one of {', '.join(TORCH_EXPORTERS)}, not {exporter!r}")
    if (ctx.task == "classification") != (kind != "value"):
        raise ValueError(f"from_torch: a {ctx.task} model's kind is not {kind!r}")
    numeric = list(ctx.features["numeric"])
    if not numeric:
        raise ValueError(
            "from_torch: the run has no numeric features; a torch model here takes a float32 tensor of them"
        )
    parameter = next(iter(module.parameters()), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dummy = torch.zeros(2, len(numeric), dtype=torch.float32, device=device)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            if exporter == "dynamo":
                data = _export_dynamo(torch, module, dummy, kind, opset)
            else:
                data = _export_torchscript(torch, module, dummy, kind, opset)
    finally:
        module.train(was_training)
    signature: Dict[str, Any] = {"format": SIGNATURE_FORMAT, "task": ctx.task, "target": ctx.target}
    if ctx.task == "classification":
        labels = [str(c) for c in (classes if classes is not None else ctx.classes)]
        _check_classes(labels, ctx)
        signature["classes"] = labels
    signature["inputs"] = {"layout": "tensor", "name": "input", "columns": numeric, "dtype": "float32"}
    signature["output"] = {"name": kind, "kind": kind}
    validate(data, signature, ctx)
    ctx.framework = "torch"
    return data, signature


def _has_dynamo_exporter(torch: Any) -> bool:
    """Whether this torch's ``torch.onnx.export`` takes ``dynamo=`` (torch 2.5 and later)."""
    return "dynamo" in inspect.signature(torch.onnx.export).parameters


def _export_torchscript(torch: Any, module: Any, dummy: Any, kind: str, opset: Optional[int]) -> bytes:
    buffer = io.BytesIO()
    extra: Dict[str, Any] = {}
    if _has_dynamo_exporter(torch):
        extra["dynamo"] = False  # torch 2.9 made the torch.export-based exporter the default; it needs onnxscript
    torch.onnx.export(
        module,
        dummy,
        buffer,
        input_names=["input"],
        output_names=[kind],
        dynamic_axes={"input": {0: "batch"}, kind: {0: "batch"}},
        opset_version=opset or DEFAULT_OPSET,
        **extra,
    )
    return buffer.getvalue()


def _export_dynamo(torch: Any, module: Any, dummy: Any, kind: str, opset: Optional[int]) -> bytes:
    if not _has_dynamo_exporter(torch):
        raise ValueError(f"from_torch: exporter='dynamo' needs torch 2.5 or later, not {torch.__version__}")
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter's own dependency, which torch does not install)
    except ImportError:
        raise ValueError("from_torch: exporter='dynamo' needs onnxscript (pip install onnxscript)") from None
    if opset is not None and opset < 18:
        raise ValueError(f"from_torch: exporter='dynamo' writes opset 18 or later, not {opset}")
    program = torch.onnx.export(
        module,
        (dummy,),
        input_names=["input"],
        output_names=[kind],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        opset_version=opset or 18,
        dynamo=True,
        verbose=False,
    )
    return bytes(program.model_proto.SerializeToString())


def _smoke_feed(signature: Dict[str, Any], ctx: Optional["TrainingContext"]) -> Dict[str, np.ndarray]:
    """Two rows for a trial run: the run's first two training rows when its data is at hand, else zeros and 'a'."""
    inputs = signature["inputs"]
    rows: Optional[Dict[str, np.ndarray]] = None
    if ctx is not None:
        try:
            cols = ctx.columns("fit")
            if len(cols[ctx.target]) >= 2:
                rows = {k: v[:2] for k, v in cols.items()}
        except Exception:  # no server or data (a unit test's context): zeros will do
            rows = None
    if inputs["layout"] == "tensor":
        if rows is not None:
            x = np.column_stack([rows[c] for c in inputs["columns"]])
        else:
            x = np.zeros((2, len(inputs["columns"])))
        return {inputs["name"]: x.astype(np.float64 if inputs.get("dtype") == "float64" else np.float32)}
    feed: Dict[str, np.ndarray] = {}
    for column in inputs["columns"]:
        name = column["name"]
        if column["type"] == "categorical":
            values = rows[name] if rows is not None else np.asarray(["a", "b"])
            feed[name] = np.asarray(values, dtype=object).astype(str).reshape(2, 1)
        else:
            values = rows[name] if rows is not None else np.zeros(2)
            feed[name] = np.asarray(values, dtype=np.float32).reshape(2, 1)
    return feed


def validate(data: bytes, signature: Dict[str, Any], ctx: Optional["TrainingContext"] = None) -> None:
    """``onnx.checker`` on the model, its inputs against the signature, and (with onnxruntime) a two-row run whose
    output has the signature's shape."""
    import onnx

    model = onnx.load_from_string(data)
    onnx.checker.check_model(model)
    graph_inputs = [i.name for i in model.graph.input if i.name not in {init.name for init in model.graph.initializer}]
    inputs = signature["inputs"]
    wanted = [inputs["name"]] if inputs["layout"] == "tensor" else [c["name"] for c in inputs["columns"]]
    if sorted(graph_inputs) != sorted(wanted):
        raise ValueError(f"the ONNX model's inputs {graph_inputs} are not the signature's {wanted}")
    try:
        import onnxruntime
    except ImportError:
        return
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    output_name = signature.get("output", {}).get("name") or session.get_outputs()[0].name
    (result,) = session.run([output_name], _smoke_feed(signature, ctx))
    shape = tuple(np.asarray(result).shape)
    if signature["task"] == "classification":
        expected: Tuple[Tuple[int, ...], ...] = ((2, len(signature["classes"])),)
    else:
        expected = ((2,), (2, 1))
    if shape not in expected:
        raise ValueError(
            f"the ONNX model's output {output_name} has shape {list(shape)} on 2 rows, not {list(expected[0])}"
        )
