"""What a team's training function receives on Flywheel's Python queues: ``def fit(ctx): ...`` gets a
:class:`TrainingContext` with the run's params, seed, features and data (the dataset version's CSV, downloaded once per
content hash, and the run's split), metric logging that survives a resume, heartbeats, two-slot checkpoints and
``save_model`` for the ONNX model and its ``signature.json``.

The worker (``flywheel-worker``) builds the context in a child process; tests and notebooks may build one with
:meth:`TrainingContext.from_input`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import pickle
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

import httpx
import numpy as np

from ._client import Client
from ._errors import FlywheelError, error_from_response

#: Split roles, one byte per dataset row in the run's split file.
ROLE_TRAIN, ROLE_VALIDATION, ROLE_HOLDOUT = 0, 1, 2
#: The parts ``columns``/``xy``/``frame`` take, and the roles each covers (``fit`` = train + validation).
PARTS: Dict[str, Tuple[int, ...]] = {
    "train": (ROLE_TRAIN,),
    "validation": (ROLE_VALIDATION,),
    "holdout": (ROLE_HOLDOUT,),
    "fit": (ROLE_TRAIN, ROLE_VALIDATION),
    "all": (ROLE_TRAIN, ROLE_VALIDATION, ROLE_HOLDOUT),
}
MODEL_PATH = "model/model.onnx"
SIGNATURE_PATH = "model/signature.json"
SIGNATURE_FORMAT = "flywheel-onnx-v1"
CHECKPOINT_INDEX = "checkpoints/latest.json"
CHECKPOINT_FORMAT = "flywheel-checkpoint-v1"
# The dataset's null spellings (ml/formats/numbers.ts): an empty numeric cell, or one of these, is NaN.
_NULL_TOKENS = frozenset(["", "NA", "N/A", "null", "NULL"])


class TrainingCancelled(BaseException):
    """The activity was cancelled: raised in the training process by :meth:`TrainingContext.heartbeat` and on SIGTERM.
    A BaseException, like KeyboardInterrupt, so that ``except Exception`` in user code does not swallow it."""


class TrainingSetupError(Exception):
    """The run's input, dataset or split is unusable (not the user's code): a contract or data problem."""


# -- the activity's input ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingInput:
    """The ``trainPython`` activity's input (BYOM §3), camelCase JSON read into snake_case fields."""

    run_id: str
    experiment_id: str
    entrypoint: str
    task: str
    target: str
    numeric: Tuple[str, ...]
    categorical: Tuple[str, ...]
    dataset_version_id: str
    content_path: str
    rows: Optional[int]
    content_hash: str
    split_path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    model_name: str = ""
    max_epochs: Optional[int] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TrainingInput":
        """Reads and checks the activity input; a missing or mistyped field raises naming it."""

        def need(obj: Mapping[str, Any], key: str, where: str = "") -> Any:
            value = obj.get(key)
            if value is None or value == "":
                raise TrainingSetupError(f"trainPython input: {where}{key} is missing")
            return value

        if not isinstance(data, Mapping):
            raise TrainingSetupError(f"trainPython input is a JSON object, not {type(data).__name__}")
        features = data.get("features") or {}
        dataset = need(data, "dataset")
        if not isinstance(features, Mapping) or not isinstance(dataset, Mapping):
            raise TrainingSetupError("trainPython input: features and dataset are objects")
        task = str(need(data, "task"))
        if task not in ("regression", "classification"):
            raise TrainingSetupError(f"trainPython input: task is 'regression' or 'classification', not {task!r}")
        params = data.get("params") or {}
        if not isinstance(params, Mapping):
            raise TrainingSetupError(f"trainPython input: params is an object, not {type(params).__name__}")
        max_epochs = data.get("maxEpochs")
        rows = dataset.get("rows")
        return cls(
            run_id=str(need(data, "runId")),
            experiment_id=str(need(data, "experimentId")),
            entrypoint=str(need(data, "entrypoint")),
            task=task,
            target=str(need(data, "target")),
            numeric=tuple(str(c) for c in features.get("numeric") or []),
            categorical=tuple(str(c) for c in features.get("categorical") or []),
            dataset_version_id=str(dataset.get("versionId") or ""),
            content_path=str(need(dataset, "contentPath", "dataset.")),
            rows=int(rows) if rows is not None else None,
            content_hash=str(dataset.get("contentHash") or dataset.get("versionId") or ""),
            split_path=str(need(data, "splitPath")),
            params=dict(params),
            seed=int(data.get("seed") or 0),
            model_name=str(data.get("modelName") or ""),
            max_epochs=int(max_epochs) if max_epochs is not None else None,
        )


# -- checkpoints: two slots and an index (pure) -----------------------------------------------------------------------


def checkpoint_slot_path(slot: int) -> str:
    """The run artifact a slot's state is written to."""
    return f"checkpoints/slot-{slot}.ckpt"


def next_checkpoint_slot(index: Optional[Mapping[str, Any]]) -> int:
    """The slot the next checkpoint goes to: never the one the index calls latest, so that a kill mid-upload leaves the
    latest checkpoint whole."""
    if not index or index.get("latest") not in (0, 1):
        return 0
    return 1 - int(index["latest"])


def record_checkpoint(
    index: Optional[Mapping[str, Any]], slot: int, step: int, sha256: str, size: int, serializer: str
) -> Dict[str, Any]:
    """The index after ``slot`` was uploaded: it becomes latest; the other slot's entry stays as the fallback."""
    slots = {str(k): dict(v) for k, v in ((index or {}).get("slots") or {}).items() if str(k) in ("0", "1")}
    slots[str(slot)] = {
        "step": int(step),
        "sha256": sha256,
        "bytes": int(size),
        "serializer": serializer,
        "path": checkpoint_slot_path(slot),
    }
    return {"format": CHECKPOINT_FORMAT, "latest": slot, "slots": slots}


def checkpoint_candidates(index: Optional[Mapping[str, Any]]) -> List[Tuple[int, Dict[str, Any]]]:
    """(slot, entry) to try when resuming, newest first: the latest slot, then the other (whose bytes may have been
    overwritten by an interrupted upload; the SHA-256 check tells)."""
    if not index or not isinstance(index.get("slots"), Mapping):
        return []
    slots = index["slots"]
    entries = [(int(k), dict(v)) for k, v in slots.items() if str(k) in ("0", "1") and isinstance(v, Mapping)]
    latest = index.get("latest")
    return sorted(entries, key=lambda e: (e[0] != latest, -int(e[1].get("step", -1))))


# -- data helpers (pure) ----------------------------------------------------------------------------------------------


def numeric_column(values: Sequence[str]) -> np.ndarray:
    """Text cells as float64: null spellings and unparsable cells are NaN; true/false are 1/0."""
    try:
        # numpy parses a clean column in C; a null or a word anywhere sends it to the cell-by-cell path below.
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        pass
    out = np.empty(len(values), dtype=np.float64)
    for i, raw in enumerate(values):
        if raw in _NULL_TOKENS:
            out[i] = np.nan
            continue
        try:
            out[i] = float(raw)
        except ValueError:
            lower = raw.strip().lower()
            out[i] = 1.0 if lower == "true" else 0.0 if lower == "false" else np.nan
    return out


def part_mask(split: np.ndarray, part: str) -> np.ndarray:
    """Rows of ``part`` (train, validation, holdout, fit = train + validation, all) as a boolean mask."""
    roles = PARTS.get(part)
    if roles is None:
        raise ValueError(f"part is one of {', '.join(PARTS)}, not {part!r}")
    return np.isin(split, np.asarray(roles, dtype=np.uint8))


def trim_traceback(text: str, max_lines: int = 20, max_bytes: int = 4096) -> str:
    """The last ``max_lines`` lines of a traceback, at most ``max_bytes`` (UTF-8), cut at the front."""
    lines = text.rstrip("\n").split("\n")
    tail = "\n".join(lines[-max_lines:])
    encoded = tail.encode("utf-8")
    if len(encoded) > max_bytes:
        tail = "…" + encoded[-(max_bytes - 3) :].decode("utf-8", "ignore")
    return tail


def cache_dir() -> Path:
    """Flywheel's cache folder, as the TS side resolves it (FLYWHEEL_CACHE_DIR, else XDG_CACHE_HOME/flywheel)."""
    explicit = os.environ.get("FLYWHEEL_CACHE_DIR")
    if explicit:
        return Path(explicit).resolve()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "flywheel"


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:100] or "dataset"


def _write_json_atomic(path: Path, value: Any) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(value))
    os.replace(partial, path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- the context ------------------------------------------------------------------------------------------------------


class TrainingContext:
    """What ``fit(ctx)`` receives. Attributes: ``params``, ``seed``, ``task``, ``target``, ``features``
    (``{"numeric": [...], "categorical": [...]}``), ``device`` ("cuda" or "cpu"), ``run_id``, ``max_epochs`` and
    ``start_step`` (0, or the last checkpoint's step + 1 after a resume).

    Args:
        spec: The activity input.
        client: A client for the Flywheel server (write scope). Default: one from FLYWHEEL_URL / FLYWHEEL_TOKEN.
        work_dir: A folder for this attempt's files. Default: a new temporary folder.
        device: "cuda" or "cpu". Default: "cpu".
        on_progress: Called with (step, details) on heartbeats, metrics and checkpoints (the worker passes these on
            to Temporal).
        cancelled: Returns True once the activity is cancelled (the worker's SIGTERM handler sets it).
    """

    def __init__(
        self,
        spec: TrainingInput,
        client: Optional[Client] = None,
        *,
        work_dir: Optional[Path] = None,
        device: str = "cpu",
        on_progress: Optional[Callable[[Optional[int], Any], None]] = None,
        cancelled: Optional[Callable[[], bool]] = None,
    ) -> None:
        self.spec = spec
        self.client = client or Client()
        self.run_id = spec.run_id
        self.params: Dict[str, Any] = dict(spec.params)
        self.seed = spec.seed
        self.task = spec.task
        self.target = spec.target
        self.features: Dict[str, List[str]] = {"numeric": list(spec.numeric), "categorical": list(spec.categorical)}
        self.max_epochs = spec.max_epochs
        self.device = device
        self.work_dir = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="flywheel-fit-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._on_progress = on_progress
        self._cancelled = cancelled or (lambda: False)
        self._dataset_path: Optional[Path] = None
        self._split: Optional[np.ndarray] = None
        self._raw: Optional[Dict[str, List[str]]] = None
        self._parsed: Dict[str, np.ndarray] = {}
        self._classes: Optional[List[str]] = None
        self._logged: Optional[Set[Tuple[str, int]]] = None
        self.final_metrics: Dict[str, float] = {}
        self.last_step: Optional[int] = None
        self.framework: Optional[str] = None
        self.model_saved = False
        self._checkpoint_index: Optional[Dict[str, Any]] = None
        self._resume: Optional[Tuple[int, Path, str]] = None
        self._find_checkpoint()
        self.resumed_from_step: Optional[int] = self._resume[0] if self._resume else None
        self.start_step = (self._resume[0] + 1) if self._resume else 0

    @classmethod
    def from_input(cls, data: Mapping[str, Any], client: Optional[Client] = None, **options: Any) -> "TrainingContext":
        """A context from the activity's JSON input (for tests and notebooks; the worker builds its own)."""
        return cls(TrainingInput.from_json(data), client, **options)

    # -- data ---------------------------------------------------------------------------------------------------------

    @property
    def dataset_path(self) -> Path:
        """The dataset version's CSV on local disk: downloaded once per content hash into the cache folder."""
        if self._dataset_path is None:
            self._dataset_path = self._download_dataset()
        return self._dataset_path

    def _download_dataset(self) -> Path:
        folder = cache_dir() / "datasets"
        folder.mkdir(parents=True, exist_ok=True)
        destination = folder / f"{_safe_name(self.spec.content_hash or self.spec.dataset_version_id)}.csv"
        if destination.is_file():
            return destination
        partial = folder / f"{destination.name}.{os.getpid()}.part"
        url = self.spec.content_path
        try:
            with self.client._http.stream("GET", url) as response:
                if not response.is_success:
                    response.read()
                    raise error_from_response(response)
                with open(partial, "wb") as handle:
                    for block in response.iter_bytes(1 << 20):
                        handle.write(block)
            os.replace(partial, destination)  # atomic: concurrent workers on one machine never see half a file
        except httpx.TransportError as error:
            raise FlywheelError("UNAVAILABLE", f"GET {url} from {self.client.url} failed: {error}") from error
        finally:
            partial.unlink(missing_ok=True)
        return destination

    @property
    def split(self) -> np.ndarray:
        """One uint8 role per dataset row: 0 train, 1 validation, 2 holdout."""
        if self._split is None:
            local = self.client.download_artifact(self.spec.split_path, self.work_dir / "split.bin", run_id=self.run_id)
            self._split = np.frombuffer(Path(local).read_bytes(), dtype=np.uint8).copy()
            bad = np.setdiff1d(np.unique(self._split), np.asarray([0, 1, 2], dtype=np.uint8))
            if bad.size:
                raise TrainingSetupError(f"{self.spec.split_path}: role {int(bad[0])} is not 0, 1 or 2")
            if self.spec.rows is not None and len(self._split) != self.spec.rows:
                raise TrainingSetupError(
                    f"{self.spec.split_path} has {len(self._split)} roles but the dataset has {self.spec.rows} rows"
                )
        return self._split

    def _columns_raw(self) -> Dict[str, List[str]]:
        if self._raw is None:
            wanted = [*self.features["numeric"], *self.features["categorical"], self.target]
            with open(self.dataset_path, newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle)
                header = next(reader, None)
                if header is None:
                    raise TrainingSetupError(f"{self.spec.content_path}: the dataset is empty (no header row)")
                missing = [c for c in wanted if c not in header]
                if missing:
                    raise TrainingSetupError(f"{self.spec.content_path}: no column {', '.join(missing)} in the dataset")
                positions = [header.index(c) for c in dict.fromkeys(wanted)]
                names = list(dict.fromkeys(wanted))
                values: List[List[str]] = [[] for _ in names]
                for line, row in enumerate(reader, start=2):
                    if not row:
                        continue
                    if len(row) != len(header):
                        raise TrainingSetupError(
                            f"{self.spec.content_path} line {line}: {len(row)} fields, header has {len(header)}"
                        )
                    for column, position in zip(values, positions):
                        column.append(row[position])
            self._raw = dict(zip(names, values))
            rows = len(values[0]) if values else 0
            if rows != len(self.split):
                raise TrainingSetupError(
                    f"the dataset has {rows} rows but {self.spec.split_path} has {len(self.split)} roles"
                )
        return self._raw

    @property
    def classes(self) -> List[str]:
        """Classification: the target's distinct non-empty values over the whole dataset, sorted (sklearn's order)."""
        if self.task != "classification":
            raise ValueError(f"classes: the task is {self.task}, not classification")
        if self._classes is None:
            self._classes = sorted({v for v in self._columns_raw()[self.target] if v not in _NULL_TOKENS})
        return self._classes

    def columns(self, part: str = "fit") -> Dict[str, np.ndarray]:
        """Features and target of ``part`` (train, validation, holdout, fit, all): numeric columns as float64 (NaN for
        empty cells), categorical columns and a classification target as str; a regression target as float64."""
        raw = self._columns_raw()
        mask = part_mask(self.split, part)
        out: Dict[str, np.ndarray] = {}
        for name in [*self.features["numeric"], *self.features["categorical"], self.target]:
            # Each column is parsed once for the whole dataset; a part is a masked copy of it.
            parsed = self._parsed.get(name)
            if parsed is None:
                numeric = name in self.features["numeric"] or (name == self.target and self.task == "regression")
                parsed = numeric_column(raw[name]) if numeric else np.asarray(raw[name], dtype=str)
                self._parsed[name] = parsed
            out[name] = parsed[mask]
        return out

    def xy(self, part: str = "fit", *, encode_target: bool = False) -> Tuple[np.ndarray, np.ndarray]:
        """(X, y) of ``part``: X float32 [n, numeric features] in ``features["numeric"]`` order (categorical features
        are
        left out: use :meth:`columns` or :meth:`frame`); y float64 (regression) or str labels (classification; int64
        indices into :attr:`classes` with ``encode_target=True``)."""
        cols = self.columns(part)
        numeric = self.features["numeric"]
        n = len(cols[self.target])
        x = np.column_stack([cols[c] for c in numeric]).astype(np.float32) if numeric else np.zeros((n, 0), np.float32)
        y = cols[self.target]
        if encode_target and self.task == "classification":
            lookup = {c: i for i, c in enumerate(self.classes)}
            y = np.asarray([lookup.get(v, -1) for v in y], dtype=np.int64)
        return x, y

    def frame(self, part: str = "fit") -> Any:
        """``part`` as a pandas DataFrame (features then target), when pandas is installed."""
        try:
            import pandas as pd  # type: ignore[import-untyped]
        except ImportError as error:
            raise ImportError(
                "ctx.frame() needs pandas (pip install pandas); ctx.columns() gives numpy arrays"
            ) from error
        return pd.DataFrame(self.columns(part))

    # -- progress -----------------------------------------------------------------------------------------------------

    def heartbeat(self, details: Any = None) -> None:
        """Tells the worker the training is alive (it heartbeats on its own too) and passes ``details`` on to Temporal;
        raises :class:`TrainingCancelled` when the activity was cancelled."""
        if self._cancelled():
            raise TrainingCancelled("the trainPython activity was cancelled")
        self._progress(None, details)

    def _progress(self, step: Optional[int], details: Any = None) -> None:
        if step is not None:
            self.last_step = step if self.last_step is None else max(self.last_step, step)
        if self._on_progress is not None:
            self._on_progress(self.last_step, details)

    def _already_logged(self) -> Set[Tuple[str, int]]:
        """(key, step) pairs the run has: what an earlier attempt logged before it died."""
        if self._logged is None:
            logged: Set[Tuple[str, int]] = set()
            run = self.client.get_run(self.run_id)
            for key in run.metrics:
                token: Optional[str] = None
                while True:
                    query: Dict[str, Any] = {"run_id": self.run_id, "metric_key": key, "max_results": 25000}
                    if token:
                        query["page_token"] = token
                    page = self.client._request("GET", "/api/2.0/mlflow/metrics/get-history", params=query)
                    logged.update((key, int(p.get("step") or 0)) for p in page.get("metrics") or [])
                    token = page.get("next_page_token")
                    if not token:
                        break
            self._logged = logged
        return self._logged

    def log_metrics(self, metrics: Mapping[str, Any], step: int = 0) -> None:
        """Logs scalar metrics at ``step`` to the run and sends them at once; a (key, step) the run already has (logged
        before a resume) is skipped, so each epoch appears once."""
        step = int(step)
        logged = self._already_logged()
        fresh = {str(k): v for k, v in metrics.items() if (str(k), step) not in logged}
        for key, value in metrics.items():
            try:
                self.final_metrics[str(key)] = float(value)
            except (TypeError, ValueError):
                raise FlywheelError(
                    "INVALID_PARAMETER_VALUE", f"metric {key!r}: {value!r} is not a number", field=f"metrics.{key}"
                ) from None
        if fresh:
            self.client.log_metrics(fresh, step, run_id=self.run_id)
            self.client.flush(self.run_id)
            logged.update((k, step) for k in fresh)
        self._progress(step)

    # -- checkpoints --------------------------------------------------------------------------------------------------

    def _find_checkpoint(self) -> None:
        """Reads the checkpoint index and downloads the newest slot whose bytes match it (the resume point)."""
        index_file = self.work_dir / "checkpoint-index.json"
        try:
            self.client.download_artifact(CHECKPOINT_INDEX, index_file, run_id=self.run_id)
        except FlywheelError as error:
            if error.status == 404:
                return
            raise
        try:
            self._checkpoint_index = json.loads(index_file.read_text())
        except ValueError:
            print(f"flywheel: {CHECKPOINT_INDEX} is not JSON; starting from step 0", file=sys.stderr)
            return
        for slot, entry in checkpoint_candidates(self._checkpoint_index):
            local = self.work_dir / f"resume-slot-{slot}.ckpt"
            try:
                self.client.download_artifact(str(entry["path"]), local, run_id=self.run_id)
            except FlywheelError as error:
                if error.status == 404:
                    continue
                raise
            if _sha256(local) == entry.get("sha256"):
                self._resume = (int(entry["step"]), local, str(entry.get("serializer") or "pickle"))
                return
            print(
                f"flywheel: checkpoint slot {slot} does not match its index (an interrupted upload); trying the other",
                file=sys.stderr,
            )

    def save_checkpoint(self, step: int, state: Any) -> None:
        """Saves ``state`` (anything picklable; ``torch.save`` when torch is loaded) as the checkpoint after ``step``,
        into the slot that is not the latest, then points ``checkpoints/latest.json`` at it."""
        step = int(step)
        slot = next_checkpoint_slot(self._checkpoint_index)
        local = self.work_dir / f"checkpoint-{slot}.ckpt"
        torch = sys.modules.get("torch")
        serializer = "torch" if torch is not None else "pickle"
        with open(local, "wb") as handle:
            if torch is not None:
                torch.save(state, handle)
            else:
                pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)
        self._upload(local, checkpoint_slot_path(slot))
        index = record_checkpoint(self._checkpoint_index, slot, step, _sha256(local), local.stat().st_size, serializer)
        index_file = self.work_dir / "latest.json"
        _write_json_atomic(index_file, index)
        self._upload(index_file, CHECKPOINT_INDEX)
        self._checkpoint_index = index
        local.unlink(missing_ok=True)
        self._progress(step, {"checkpoint": step})

    def _upload(self, local: Path, artifact_path: str) -> None:
        _target, root = self.client._artifact_root(self.run_id)
        self.client._upload(root, local, artifact_path)

    def load_checkpoint(self) -> Optional[Tuple[int, Any]]:
        """(step, state) of the checkpoint this attempt resumes from, or None on a fresh start."""
        if self._resume is None:
            return None
        step, local, serializer = self._resume
        if serializer == "torch":
            import torch  # type: ignore[import-not-found]

            try:
                state = torch.load(local, map_location=self.device, weights_only=False)
            except TypeError:  # torch before 1.13 has no weights_only
                state = torch.load(local, map_location=self.device)
        else:
            with open(local, "rb") as handle:
                state = pickle.load(handle)
        return step, state

    # -- the model ----------------------------------------------------------------------------------------------------

    def save_model(self, model: Union[bytes, str, "os.PathLike[str]", Any], signature: Mapping[str, Any]) -> List[str]:
        """Uploads the ONNX model (a ``ModelProto``, its bytes, or a file) as ``model/model.onnx`` and its signature
        (BYOM §1; ``format``, ``task`` and ``target`` default to the run's) as ``model/signature.json``."""
        if isinstance(model, (bytes, bytearray)):
            data = bytes(model)
        elif isinstance(model, (str, os.PathLike)):
            data = Path(model).read_bytes()
        elif hasattr(model, "SerializeToString"):
            data = model.SerializeToString()
        else:
            raise TypeError(f"save_model takes an ONNX ModelProto, bytes or a path, not {type(model).__name__}")
        full = {"format": SIGNATURE_FORMAT, "task": self.task, "target": self.target, **dict(signature)}
        check_signature(full, self)
        folder = self.work_dir / "model"
        folder.mkdir(exist_ok=True)
        (folder / "model.onnx").write_bytes(data)
        (folder / "signature.json").write_text(json.dumps(full, indent=2))
        self._upload(folder / "model.onnx", MODEL_PATH)
        self._upload(folder / "signature.json", SIGNATURE_PATH)
        self.model_saved = True
        return [MODEL_PATH, SIGNATURE_PATH]


def check_signature(signature: Mapping[str, Any], ctx: Optional[TrainingContext] = None) -> None:
    """Raises ValueError naming the field when ``signature`` breaks BYOM §1 (or disagrees with the run's features)."""
    if signature.get("format") != SIGNATURE_FORMAT:
        raise ValueError(f"signature.format is {SIGNATURE_FORMAT!r}, not {signature.get('format')!r}")
    task = signature.get("task")
    if task not in ("regression", "classification"):
        raise ValueError(f"signature.task is 'regression' or 'classification', not {task!r}")
    if not signature.get("target"):
        raise ValueError("signature.target is missing")
    if task == "classification":
        classes = signature.get("classes")
        if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
            raise ValueError(
                "signature.classes: a classification signature lists its class labels (strings), at least 2"
            )
    inputs = signature.get("inputs")
    if not isinstance(inputs, Mapping):
        raise ValueError("signature.inputs is missing")
    categorical = set(ctx.features["categorical"]) if ctx is not None else set()
    if inputs.get("layout") == "tensor":
        columns = inputs.get("columns")
        if not inputs.get("name") or not isinstance(columns, list) or not columns:
            raise ValueError("signature.inputs: the tensor layout has a name and a list of columns")
        bad = [c for c in columns if c in categorical]
        if bad:
            raise ValueError(
                f"signature.inputs: the tensor layout takes numeric features only; {bad[0]} is categorical"
            )
        if inputs.get("dtype", "float32") not in ("float32", "float64"):
            raise ValueError(f"signature.inputs.dtype is float32 or float64, not {inputs.get('dtype')!r}")
    elif inputs.get("layout") == "columns":
        columns = inputs.get("columns")
        if not isinstance(columns, list) or not columns:
            raise ValueError("signature.inputs: the columns layout lists its columns")
        for column in columns:
            if (
                not isinstance(column, Mapping)
                or not column.get("name")
                or column.get("type") not in ("numeric", "categorical")
            ):
                raise ValueError(f"signature.inputs.columns: {column!r} is not {{name, type: numeric|categorical}}")
    else:
        raise ValueError(f"signature.inputs.layout is 'tensor' or 'columns', not {inputs.get('layout')!r}")
    output = signature.get("output")
    if output is not None and (
        not isinstance(output, Mapping) or output.get("kind") not in ("probabilities", "logits", "value", "label")
    ):
        raise ValueError(f"signature.output: {{name, kind: probabilities|logits|value|label}}, not {output!r}")


def install_cancel_handler(flag: List[bool]) -> None:
    """SIGTERM (the worker's cancellation) sets ``flag[0]`` and raises :class:`TrainingCancelled` in the main thread."""

    def on_term(signum: int, frame: Any) -> None:
        if flag[0]:
            return
        flag[0] = True
        raise TrainingCancelled("the trainPython activity was cancelled")

    signal.signal(signal.SIGTERM, on_term)
