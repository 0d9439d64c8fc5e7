"""flywheel.training's pure parts: the checkpoint slot choice, the activity input, data helpers, the signature check
and traceback trimming. No server needed."""

from __future__ import annotations

from typing import Any, Dict

import pytest

np = pytest.importorskip("numpy", reason="flywheel.training needs numpy (the worker's environment has it)")

from flywheel.training import (  # noqa: E402
    TrainingInput,
    TrainingSetupError,
    check_signature,
    checkpoint_candidates,
    checkpoint_slot_path,
    next_checkpoint_slot,
    numeric_column,
    part_mask,
    record_checkpoint,
    trim_traceback,
)


def activity_input(**overrides: Any) -> Dict[str, Any]:
    base: Dict[str, Any] = {
        "runId": "r1",
        "experimentId": "7",
        "entrypoint": "models.churn:fit",
        "params": {"lr": 0.1},
        "seed": 42,
        "task": "classification",
        "target": "churned",
        "features": {"numeric": ["tenure"], "categorical": ["plan"]},
        "dataset": {
            "versionId": "v1",
            "contentPath": "/api/v1/datasets/versions/v1/content",
            "rows": 10,
            "contentHash": "ab" * 32,
        },
        "splitPath": "flywheel/split.bin",
        "modelName": "churn",
        "maxEpochs": 5,
    }
    base.update(overrides)
    return base


def test_checkpoints_alternate_slots_and_never_overwrite_the_latest() -> None:
    index = None
    written = []
    for step in range(4):
        slot = next_checkpoint_slot(index)
        written.append(slot)
        index = record_checkpoint(index, slot, step, f"sha-{step}", 100 + step, "pickle")
        assert index["latest"] == slot and index["slots"][str(slot)]["step"] == step
        assert index["slots"][str(slot)]["path"] == checkpoint_slot_path(slot)
    assert written == [0, 1, 0, 1]
    # After step 3 (slot 1), the fallback is step 2 in slot 0; the next save goes to slot 0, never to the latest.
    assert [(slot, entry["step"]) for slot, entry in checkpoint_candidates(index)] == [(1, 3), (0, 2)]
    assert next_checkpoint_slot(index) == 0


def test_resume_candidates_handle_missing_and_odd_indexes() -> None:
    assert checkpoint_candidates(None) == [] and checkpoint_candidates({"latest": 0}) == []
    one = record_checkpoint(None, 0, 9, "sha", 1, "torch")
    assert [(s, e["step"], e["serializer"]) for s, e in checkpoint_candidates(one)] == [(0, 9, "torch")]
    assert next_checkpoint_slot(one) == 1
    assert next_checkpoint_slot({"latest": "garbage"}) == 0
    stray = {"latest": 0, "slots": {"0": {"step": 1}, "5": {"step": 99}}}
    assert [s for s, _ in checkpoint_candidates(stray)] == [0]


def test_activity_input_reads_camel_case_and_names_missing_fields() -> None:
    spec = TrainingInput.from_json(activity_input())
    assert (spec.run_id, spec.seed, spec.numeric, spec.categorical, spec.max_epochs) == (
        "r1",
        42,
        ("tenure",),
        ("plan",),
        5,
    )
    assert spec.content_path.endswith("/content") and spec.rows == 10 and spec.params == {"lr": 0.1}
    with pytest.raises(TrainingSetupError, match="runId is missing"):
        TrainingInput.from_json(activity_input(runId=""))
    with pytest.raises(TrainingSetupError, match="dataset.contentPath is missing"):
        TrainingInput.from_json(activity_input(dataset={"versionId": "v1"}))
    with pytest.raises(TrainingSetupError, match="task is 'regression' or 'classification'"):
        TrainingInput.from_json(activity_input(task="ranking"))
    with pytest.raises(TrainingSetupError, match="JSON object"):
        TrainingInput.from_json([1, 2])  # type: ignore[arg-type]


def test_numeric_cells_parse_like_the_dataset_reader() -> None:
    values = numeric_column(["1.5", "", "NA", "null", "-2e3", "true", "False", "abc", " 7 "])
    expected = [1.5, np.nan, np.nan, np.nan, -2000.0, 1.0, 0.0, np.nan, 7.0]
    assert values.dtype == np.float64
    np.testing.assert_array_equal(values, np.asarray(expected))


def test_parts_select_split_roles() -> None:
    split = np.asarray([0, 1, 2, 0, 1], dtype=np.uint8)
    assert part_mask(split, "train").tolist() == [True, False, False, True, False]
    assert part_mask(split, "fit").tolist() == [True, True, False, True, True]
    assert part_mask(split, "holdout").tolist() == [False, False, True, False, False]
    assert part_mask(split, "all").all()
    with pytest.raises(ValueError, match="part is one of train, validation, holdout, fit, all"):
        part_mask(split, "test")


def test_traceback_keeps_the_last_lines_within_4_kb() -> None:
    text = "\n".join(f"line {i}" for i in range(100))
    assert trim_traceback(text).split("\n") == [f"line {i}" for i in range(80, 100)]
    long = "x" * 10000
    trimmed = trim_traceback(long)
    assert len(trimmed.encode("utf-8")) <= 4096 and trimmed.startswith("…") and trimmed.endswith("x")


def test_signature_check_names_the_field() -> None:
    good = {
        "format": "flywheel-onnx-v1",
        "task": "classification",
        "target": "churned",
        "classes": ["no", "yes"],
        "inputs": {"layout": "tensor", "name": "input", "columns": ["tenure"], "dtype": "float32"},
        "output": {"name": "probabilities", "kind": "probabilities"},
    }
    check_signature(good)
    bad = [
        ({"format": "other"}, "signature.format"),
        ({"classes": ["only"]}, "signature.classes"),
        ({"inputs": {"layout": "grid"}}, "signature.inputs.layout"),
        (
            {"inputs": {"layout": "tensor", "name": "input", "columns": ["tenure"], "dtype": "int8"}},
            "signature.inputs.dtype",
        ),
        ({"inputs": {"layout": "columns", "columns": [{"name": "plan", "type": "text"}]}}, "signature.inputs.columns"),
        ({"output": {"name": "p", "kind": "scores"}}, "signature.output"),
        ({"target": ""}, "signature.target"),
    ]
    for change, message in bad:
        with pytest.raises(ValueError, match=message):
            check_signature({**good, **change})
