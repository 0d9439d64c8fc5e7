"""The Flywheel client: runs over MLflow's REST API (which the Flywheel server implements), artifacts through its
artifact proxy, the model registry, and pipelines over Flywheel's own /api/v1."""
from __future__ import annotations

import atexit
import math
import mimetypes
import operator
import os
import re
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple, Union
from urllib.parse import quote

import httpx

from ._version import __version__
from ._config import ConfigSource, load_pipeline_config
from ._errors import FlywheelError, FlywheelTimeout, error_from_response

DEFAULT_URL = "http://127.0.0.1:8470"

#: The server's per-request limits for runs/log-batch (MLflow's).
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100

_MLFLOW = "/api/2.0/mlflow"
_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
_PIPELINES = "/api/v1/pipelines"
_PIPELINE_FAILED = ("FAILED", "CANCELED", "TERMINATED", "TIMED_OUT")
_CHUNK = 1 << 20

ExperimentRef = Union[str, int]
PathLike = Union[str, "os.PathLike[str]"]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


@dataclass
class Run:
    """A run: its info and (for runs read from the server) its latest metrics, params and tags.

    Usable as a context manager: ``with flywheel.start_run() as run:`` ends the run FINISHED, or FAILED when the block
    raises (KILLED on KeyboardInterrupt).
    """

    run_id: str
    experiment_id: str
    name: str
    status: str
    start_time: Optional[int] = None
    end_time: Optional[int] = None
    artifact_uri: str = ""
    user_id: str = ""
    lifecycle_stage: str = "active"
    params: Dict[str, str] = field(default_factory=dict)
    metrics: Dict[str, float] = field(default_factory=dict)
    tags: Dict[str, str] = field(default_factory=dict)
    _client: Optional["Client"] = field(default=None, repr=False, compare=False)
    _ended: bool = field(default=False, repr=False, compare=False)

    @classmethod
    def _from_json(cls, data: Mapping[str, Any], client: Optional["Client"] = None) -> "Run":
        info = data.get("info") or {}
        body = data.get("data") or {}
        return cls(
            run_id=str(info.get("run_id") or info.get("run_uuid") or ""),
            experiment_id=str(info.get("experiment_id", "")),
            name=str(info.get("run_name") or ""),
            status=str(info.get("status") or "RUNNING"),
            start_time=info.get("start_time"),
            end_time=info.get("end_time"),
            artifact_uri=str(info.get("artifact_uri") or ""),
            user_id=str(info.get("user_id") or ""),
            lifecycle_stage=str(info.get("lifecycle_stage") or "active"),
            params={str(p["key"]): str(p.get("value", "")) for p in body.get("params") or []},
            metrics={str(m["key"]): _number(m.get("value")) for m in body.get("metrics") or []},
            tags={str(t["key"]): str(t.get("value", "")) for t in body.get("tags") or []},
            _client=client,
        )

    @property
    def id(self) -> str:
        return self.run_id

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._client is not None and not self._ended and self.run_id not in self._client._ended_ids:
            status = "FINISHED" if exc_type is None else "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"
            self._client.end_run(status, run_id=self.run_id)


@dataclass
class ModelVersion:
    """A registered model version (MLflow's fields)."""

    name: str
    version: int
    source: str = ""
    run_id: Optional[str] = None
    status: str = "READY"
    current_stage: str = "None"
    description: Optional[str] = None
    aliases: List[str] = field(default_factory=list)
    tags: Dict[str, str] = field(default_factory=dict)
    user_id: Optional[str] = None
    creation_timestamp: Optional[int] = None
    last_updated_timestamp: Optional[int] = None

    @classmethod
    def _from_json(cls, data: Mapping[str, Any]) -> "ModelVersion":
        return cls(
            name=str(data.get("name", "")),
            version=int(data.get("version", 0)),
            source=str(data.get("source") or ""),
            run_id=data.get("run_id") or None,
            status=str(data.get("status") or "READY"),
            current_stage=str(data.get("current_stage") or "None"),
            description=data.get("description"),
            aliases=[str(a) for a in data.get("aliases") or []],
            tags={str(t["key"]): str(t.get("value", "")) for t in data.get("tags") or []},
            user_id=data.get("user_id"),
            creation_timestamp=data.get("creation_timestamp"),
            last_updated_timestamp=data.get("last_updated_timestamp"),
        )


@dataclass
class FileInfo:
    """One entry of an artifact listing: a path relative to the run's artifact root."""

    path: str
    is_dir: bool
    file_size: Optional[int] = None


#: The server's metric keys: letters, digits, ``_ - . space / :`` (no ``..`` segment), at most 250 characters.
_METRIC_KEY = re.compile(r"^[A-Za-z0-9_\-. /:]{1,250}$")
#: Steps are kept as 32-bit integers.
_STEP_LIMIT = 2**31 - 1


def _metric_key(key: str) -> str:
    """Checked when logged, not when the buffer is sent: the error belongs to the call that made it."""
    if not _METRIC_KEY.match(key) or ".." in key.split("/"):
        raise FlywheelError(
            "INVALID_PARAMETER_VALUE",
            f"metric {key!r}: a key is 1 to 250 letters, digits, _ - . space / and :",
            field=f"metrics.{key}",
        )
    return key


def _metric_step(step: Any) -> int:
    if step is None:
        return 0
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    try:
        if isinstance(step, bool):
            raise TypeError
        number = operator.index(step)  # int and numpy's integers; not str, a fractional float or a bool
    except TypeError:
        raise FlywheelError("INVALID_PARAMETER_VALUE", f"step {step!r} is not an integer", field="step") from None
    if abs(number) > _STEP_LIMIT:
        raise FlywheelError(
            "INVALID_PARAMETER_VALUE", f"step {number} is outside the 32-bit range steps are kept in (±{_STEP_LIMIT})", field="step"
        )
    return number


def _metric_value(key: str, value: Any) -> Union[float, str]:
    if isinstance(value, (str, bytes)):
        raise FlywheelError("INVALID_PARAMETER_VALUE", f"metric {key!r}: {value!r} is not a number", field=f"metrics.{key}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FlywheelError("INVALID_PARAMETER_VALUE", f"metric {key!r}: {value!r} is not a number", field=f"metrics.{key}") from None
    # JSON has no NaN or Infinity; MLflow's protobuf JSON spells them as strings, which the server reads.
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return number


def _key_values(values: Mapping[str, Any]) -> List[Dict[str, str]]:
    return [{"key": str(k), "value": "" if v is None else str(v)} for k, v in values.items()]


def _clean_artifact_path(path: Optional[str]) -> str:
    if not path:
        return ""
    text = str(path).replace("\\", "/").strip("/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise FlywheelError("INVALID_PARAMETER_VALUE", f"artifact path {path!r} climbs out with '..'", field="artifact_path")
    return "/".join(parts)


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


_PROXIED = re.compile(r"^mlflow-artifacts:(?://[^/]*)?/?(.*)$")


class Client:
    """A connection to a Flywheel server.

    Args:
        url: The server, e.g. ``http://127.0.0.1:8470``. Default: ``FLYWHEEL_URL``.
        token: A bearer token (``read``, ``write`` or ``admin`` scope). Default: ``FLYWHEEL_TOKEN``.
        timeout: Seconds per network operation (connect, each read and write).
        flush_every: Buffered metric points that trigger a flush (batches carry at most 1,000 points).
        flush_interval: Seconds after which the next logged metric flushes the buffer, so a live run stays visible.
        experiment: The experiment that runs start in and searches look at. Default: ``FLYWHEEL_EXPERIMENT``.
        transport: An ``httpx`` transport (tests).
    """

    def __init__(
        self,
        url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        timeout: float = 60.0,
        flush_every: int = MAX_METRICS_PER_BATCH,
        flush_interval: float = 10.0,
        experiment: Optional[ExperimentRef] = None,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        self.url = (url or os.environ.get("FLYWHEEL_URL") or DEFAULT_URL).rstrip("/")
        resolved_token = token if token is not None else os.environ.get("FLYWHEEL_TOKEN")
        if flush_every < 1:
            raise ValueError("flush_every must be at least 1")
        self._flush_every = flush_every
        self._flush_interval = flush_interval
        self._experiment: Optional[ExperimentRef] = experiment if experiment is not None else (os.environ.get("FLYWHEEL_EXPERIMENT") or None)
        headers = {"User-Agent": f"flywheel-python/{__version__}", "Accept": "application/json"}
        if resolved_token:
            headers["Authorization"] = f"Bearer {resolved_token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), transport=transport)
        self._lock = threading.RLock()
        self._active: List[Run] = []
        self._pending: Dict[str, List[Dict[str, Any]]] = {}
        self._last_flush: Dict[str, float] = {}
        self._experiment_ids: Dict[str, str] = {}
        self._artifact_roots: Dict[str, str] = {}
        self._ended_ids: Set[str] = set()
        self._closed = False
        # Runs left active when the interpreter exits are flushed and ended, as MLflow's fluent API does.
        self._exit_hook = _ExitHook(weakref.ref(self))
        atexit.register(self._exit_hook)

    # -- plumbing ---------------------------------------------------------------------------------------------------

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Ends the runs still active (FINISHED), flushes what is buffered and closes the connection pool."""
        if self._closed:
            return
        try:
            self._end_all("FINISHED")
        finally:
            self._closed = True
            atexit.unregister(self._exit_hook)
            self._http.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Optional[Mapping[str, Any]] = None,
        content: Any = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Any:
        attempts = 3 if content is None else 1
        for attempt in range(attempts):
            try:
                response = self._http.request(method, path, json=json, params=params, content=content, headers=headers)
                break
            except httpx.ConnectError as error:
                # Nothing was sent: safe to try again, whatever the method.
                if attempt + 1 < attempts:
                    time.sleep(0.5 * (attempt + 1))
                    continue
                raise FlywheelError("UNAVAILABLE", f"cannot reach the Flywheel server at {self.url}: {error}") from error
            except httpx.TimeoutException as error:
                raise FlywheelError("DEADLINE_EXCEEDED", f"{method} {path}: no answer from {self.url} in time ({error})") from error
            except httpx.TransportError as error:
                raise FlywheelError("UNAVAILABLE", f"{method} {path} to {self.url} failed: {error}") from error
        if response.is_success:
            if not response.content:
                return {}
            try:
                return response.json()
            except ValueError:
                return {}
        raise error_from_response(response)

    # -- experiments ------------------------------------------------------------------------------------------------

    def set_experiment(self, experiment: ExperimentRef) -> str:
        """Makes ``experiment`` (a name, created when missing, or an id) the one runs start in and searches look at; returns its id."""
        experiment_id = self._experiment_id(experiment, create=True)
        self._experiment = experiment
        return experiment_id

    def _experiment_id(self, experiment: Optional[ExperimentRef], *, create: bool) -> str:
        if experiment is None:
            experiment = self._experiment
        if experiment is None:
            return "0"  # MLflow's Default experiment
        if isinstance(experiment, bool):
            raise FlywheelError("INVALID_PARAMETER_VALUE", f"experiment: {experiment!r} is neither a name nor an id", field="experiment")
        if isinstance(experiment, int):
            return str(experiment)
        name = str(experiment)
        cached = self._experiment_ids.get(name)
        if cached is not None:
            return cached
        try:
            found = self._request("GET", f"{_MLFLOW}/experiments/get-by-name", params={"experiment_name": name})
            experiment_id = str(found["experiment"]["experiment_id"])
        except FlywheelError as error:
            if error.code != "RESOURCE_DOES_NOT_EXIST":
                raise
            if name.isdigit():  # an id given as a string (Run.experiment_id is one)
                return name
            if not create:
                raise
            try:
                experiment_id = str(self._request("POST", f"{_MLFLOW}/experiments/create", json={"name": name})["experiment_id"])
            except FlywheelError as race:
                if race.code != "RESOURCE_ALREADY_EXISTS":
                    raise
                found = self._request("GET", f"{_MLFLOW}/experiments/get-by-name", params={"experiment_name": name})
                experiment_id = str(found["experiment"]["experiment_id"])
        self._experiment_ids[name] = experiment_id
        return experiment_id

    # -- runs -------------------------------------------------------------------------------------------------------

    def create_run(self, experiment: Optional[ExperimentRef] = None, name: Optional[str] = None, tags: Optional[Mapping[str, Any]] = None) -> Run:
        """Creates a run without making it the active one (log to it with ``run_id=``)."""
        body: Dict[str, Any] = {"experiment_id": self._experiment_id(experiment, create=True), "start_time": _now_ms()}
        if name:
            body["run_name"] = name
        if tags:
            body["tags"] = _key_values(tags)
        run = Run._from_json(self._request("POST", f"{_MLFLOW}/runs/create", json=body)["run"], self)
        with self._lock:
            self._last_flush[run.run_id] = time.monotonic()
        return run

    def start_run(
        self,
        experiment: Optional[ExperimentRef] = None,
        name: Optional[str] = None,
        tags: Optional[Mapping[str, Any]] = None,
        *,
        nested: bool = False,
    ) -> Run:
        """Creates a run and makes it the active one; with ``nested=True`` inside another (tagged ``mlflow.parentRunId``)."""
        with self._lock:
            parent = self._active[-1] if self._active else None
        if parent is not None and not nested:
            raise FlywheelError("INVALID_STATE", f"run {parent.run_id} is already active: end it first (flywheel.end_run()) or pass nested=True")
        all_tags: Dict[str, Any] = dict(tags or {})
        if parent is not None:
            all_tags.setdefault("mlflow.parentRunId", parent.run_id)
        if experiment is None and parent is not None and parent.experiment_id.isdigit():
            experiment = int(parent.experiment_id)  # a nested run starts in its parent's experiment
        run = self.create_run(experiment, name, all_tags)
        with self._lock:
            self._active.append(run)
        return run

    def active_run(self) -> Optional[Run]:
        """The innermost active run, or None."""
        with self._lock:
            return self._active[-1] if self._active else None

    def end_run(self, status: str = "FINISHED", *, run_id: Optional[str] = None) -> None:
        """Flushes the run's buffered points and marks it ``status`` (FINISHED, FAILED or KILLED). Without ``run_id``,
        ends the active run (nothing happens when there is none)."""
        run: Optional[Run]
        with self._lock:
            if run_id is None:
                if not self._active:
                    return
                run = self._active.pop()
            else:
                run = next((r for r in self._active if r.run_id == run_id), None)
                if run is not None:
                    self._active.remove(run)
        target = run.run_id if run is not None else run_id
        assert target is not None
        try:
            self.flush(target)
        finally:
            info = self._request("POST", f"{_MLFLOW}/runs/update", json={"run_id": target, "status": status.upper(), "end_time": _now_ms()})
            with self._lock:
                self._last_flush.pop(target, None)
                self._ended_ids.add(target)
            if run is not None:
                run._ended = True
                run_info = info.get("run_info") or {}
                run.status = str(run_info.get("status") or status.upper())
                run.end_time = run_info.get("end_time", run.end_time)

    def get_run(self, run_id: str) -> Run:
        """The run as the server has it: info, latest metric values, params and tags."""
        return Run._from_json(self._request("GET", f"{_MLFLOW}/runs/get", params={"run_id": run_id})["run"], self)

    def search_runs(
        self,
        filter: Optional[str] = None,
        order_by: Optional[Union[str, Sequence[str]]] = None,
        experiment: Optional[Union[ExperimentRef, Sequence[ExperimentRef]]] = None,
        max_results: int = 100,
    ) -> List[Run]:
        """Runs matching an MLflow filter (``metrics.rmse < 1 and params.lr = '0.1' and tags.team = 'x'``; Flywheel also takes
        ``or`` and parentheses), in ``order_by`` order (``["metrics.rmse ASC"]``). ``experiment``: a name or id, or a list
        of them; default the client's experiment, else all experiments."""
        if experiment is None:
            experiment = self._experiment
        refs: List[ExperimentRef] = [] if experiment is None else [experiment] if isinstance(experiment, (str, int)) else list(experiment)
        ids = [self._experiment_id(ref, create=False) for ref in refs]
        orders = [order_by] if isinstance(order_by, str) else list(order_by or [])
        runs: List[Run] = []
        token: Optional[str] = None
        while len(runs) < max_results:
            body: Dict[str, Any] = {"experiment_ids": ids, "max_results": min(max_results - len(runs), 1000)}
            if filter:
                body["filter"] = filter
            if orders:
                body["order_by"] = orders
            if token:
                body["page_token"] = token
            page = self._request("POST", f"{_MLFLOW}/runs/search", json=body)
            runs.extend(Run._from_json(r, self) for r in page.get("runs") or [])
            token = page.get("next_page_token")
            if not token:
                break
        return runs[:max_results]

    def _run_id(self, run_id: Optional[str]) -> str:
        if run_id:
            return run_id
        active = self.active_run()
        if active is None:
            raise FlywheelError("INVALID_STATE", "no active run: call flywheel.start_run() first, or pass run_id=")
        return active.run_id

    # -- logging ----------------------------------------------------------------------------------------------------

    def log_metrics(self, metrics: Mapping[str, Any], step: Optional[int] = None, *, run_id: Optional[str] = None, timestamp: Optional[int] = None) -> None:
        """Buffers one point per metric (at ``step``, default 0); sent in batches of at most 1,000 points when
        ``flush_every`` points are waiting, when ``flush_interval`` has passed, on :meth:`flush` and :meth:`end_run`."""
        target = self._run_id(run_id)
        at = _now_ms() if timestamp is None else int(timestamp)
        number = _metric_step(step)
        points = [{"key": _metric_key(str(k)), "value": _metric_value(str(k), v), "timestamp": at, "step": number} for k, v in metrics.items()]
        with self._lock:
            buffer = self._pending.setdefault(target, [])
            buffer.extend(points)
            last = self._last_flush.setdefault(target, time.monotonic())
            due = len(buffer) >= self._flush_every or time.monotonic() - last >= self._flush_interval
        if due:
            self.flush(target)

    def log_metric(self, key: str, value: Any, step: Optional[int] = None, *, run_id: Optional[str] = None, timestamp: Optional[int] = None) -> None:
        """Buffers one metric point; see :meth:`log_metrics`."""
        self.log_metrics({key: value}, step, run_id=run_id, timestamp=timestamp)

    def log_params(self, params: Mapping[str, Any], *, run_id: Optional[str] = None) -> None:
        """Logs params (values as strings; a logged param cannot change). Sent at once, with any buffered metrics."""
        self._send(self._run_id(run_id), params=_key_values(params))

    def log_param(self, key: str, value: Any, *, run_id: Optional[str] = None) -> None:
        self.log_params({key: value}, run_id=run_id)

    def set_tags(self, tags: Mapping[str, Any], *, run_id: Optional[str] = None) -> None:
        """Sets tags (values as strings). Sent at once, with any buffered metrics."""
        self._send(self._run_id(run_id), tags=_key_values(tags))

    def set_tag(self, key: str, value: Any, *, run_id: Optional[str] = None) -> None:
        self.set_tags({key: value}, run_id=run_id)

    def flush(self, run_id: Optional[str] = None) -> None:
        """Sends the buffered metric points of ``run_id`` (default: of every run)."""
        if run_id is not None:
            self._send(run_id)
            return
        with self._lock:
            targets = list(self._pending)
        for target in targets:
            self._send(target)

    def _send(self, run_id: str, params: Sequence[Dict[str, str]] = (), tags: Sequence[Dict[str, str]] = ()) -> None:
        """log-batch requests for what is buffered for the run plus ``params`` and ``tags``, within the server's limits.
        On a transient failure (no connection, 5xx) the unsent points go back into the buffer for the next flush; a point
        the server refuses (4xx) is dropped with its batch, and the error raised."""
        with self._lock:
            metrics = self._pending.pop(run_id, [])
            self._last_flush[run_id] = time.monotonic()
        i = j = k = 0
        while i < len(metrics) or j < len(params) or k < len(tags):
            chunk = metrics[i:i + MAX_METRICS_PER_BATCH]
            body: Dict[str, Any] = {"run_id": run_id}
            if chunk:
                body["metrics"] = chunk
            if j < len(params):
                body["params"] = list(params[j:j + MAX_PARAMS_PER_BATCH])
            if k < len(tags):
                body["tags"] = list(tags[k:k + MAX_TAGS_PER_BATCH])
            try:
                self._request("POST", f"{_MLFLOW}/runs/log-batch", json=body)
            except FlywheelError as error:
                transient = error.status is None or error.status >= 500 or error.status == 429
                unsent = metrics[i:] if transient else metrics[i + len(chunk):]
                if unsent:
                    with self._lock:
                        self._pending[run_id] = unsent + self._pending.get(run_id, [])
                raise
            i += len(chunk)
            j += MAX_PARAMS_PER_BATCH
            k += MAX_TAGS_PER_BATCH

    def pending_points(self, run_id: Optional[str] = None) -> int:
        """How many metric points wait in the buffer (for ``run_id``, or for all runs)."""
        with self._lock:
            if run_id is not None:
                return len(self._pending.get(run_id, []))
            return sum(len(v) for v in self._pending.values())

    # -- artifacts --------------------------------------------------------------------------------------------------

    def _artifact_root(self, run_id: Optional[str]) -> Tuple[str, str]:
        target = self._run_id(run_id)
        root = self._artifact_roots.get(target)
        if root is None:
            with self._lock:
                known = next((r for r in self._active if r.run_id == target), None)
            run = known if known is not None and known.artifact_uri else self.get_run(target)
            match = _PROXIED.match(run.artifact_uri)
            root = match.group(1).strip("/") if match else f"{run.experiment_id}/{run.run_id}/artifacts"
            self._artifact_roots[target] = root
        return target, root

    def log_artifact(self, local_path: PathLike, artifact_path: Optional[str] = None, *, run_id: Optional[str] = None) -> List[str]:
        """Uploads a file, or a directory with everything under it, as ``<artifact_path>/<its name>``; streamed, so
        memory stays flat whatever the size. Returns the artifact paths written, relative to the run's artifact root."""
        source = Path(os.fspath(local_path))
        if not source.exists():
            raise FlywheelError("INVALID_PARAMETER_VALUE", f"{source}: no such file or directory", field="local_path")
        destination = _join(_clean_artifact_path(artifact_path), source.resolve().name)
        if source.is_dir():
            return self.log_artifacts(source, destination, run_id=run_id)
        target, root = self._artifact_root(run_id)
        self._upload(root, source, destination)
        return [destination]

    def log_artifacts(self, local_dir: PathLike, artifact_path: Optional[str] = None, *, run_id: Optional[str] = None) -> List[str]:
        """Uploads the contents of a directory under ``artifact_path`` (MLflow's ``log_artifacts``)."""
        source = Path(os.fspath(local_dir))
        if not source.is_dir():
            raise FlywheelError("INVALID_PARAMETER_VALUE", f"{source}: not a directory", field="local_dir")
        prefix = _clean_artifact_path(artifact_path)
        target, root = self._artifact_root(run_id)
        written: List[str] = []
        for folder, dirs, files in os.walk(source):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder) / name
                relative = path.relative_to(source).as_posix()
                destination = _join(prefix, relative)
                self._upload(root, path, destination)
                written.append(destination)
        return written

    def _upload(self, root: str, path: Path, destination: str) -> None:
        size = path.stat().st_size
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"

        def chunks() -> Iterator[bytes]:
            with open(path, "rb") as handle:
                while True:
                    block = handle.read(_CHUNK)
                    if not block:
                        return
                    yield block

        # With a content-length, httpx streams the generator as the body instead of using chunked encoding.
        self._request("PUT", f"{_ARTIFACTS}/{quote(_join(root, destination), safe='/')}", content=chunks() if size else b"",
                      headers={"content-type": content_type, "content-length": str(size)})

    def list_artifacts(self, path: Optional[str] = None, *, run_id: Optional[str] = None) -> List[FileInfo]:
        """One level of the run's artifacts (under ``path``)."""
        target = self._run_id(run_id)
        query = {"run_id": target}
        clean = _clean_artifact_path(path)
        if clean:
            query["path"] = clean
        listing = self._request("GET", f"{_MLFLOW}/artifacts/list", params=query)
        return [FileInfo(str(f["path"]), bool(f.get("is_dir")), f.get("file_size")) for f in listing.get("files") or []]

    def download_artifact(self, artifact_path: str, dst_path: PathLike, *, run_id: Optional[str] = None) -> Path:
        """Streams one artifact file to ``dst_path`` (a file path, or an existing directory to write it into)."""
        _target, root = self._artifact_root(run_id)
        clean = _clean_artifact_path(artifact_path)
        destination = Path(os.fspath(dst_path))
        if destination.is_dir():
            destination = destination / PurePosixPath(clean).name
        url = f"{_ARTIFACTS}/{quote(_join(root, clean), safe='/')}"
        try:
            with self._http.stream("GET", url) as response:
                if not response.is_success:
                    response.read()
                    raise error_from_response(response)
                partial = destination.with_name(destination.name + ".part")
                with open(partial, "wb") as handle:
                    for block in response.iter_bytes(_CHUNK):
                        handle.write(block)
                os.replace(partial, destination)
        except httpx.TransportError as error:
            raise FlywheelError("UNAVAILABLE", f"GET {url} from {self.url} failed: {error}") from error
        return destination

    # -- model registry ---------------------------------------------------------------------------------------------

    def register_model(
        self,
        run_id: str,
        name: str,
        artifact_path: str = "model",
        tags: Optional[Mapping[str, Any]] = None,
        description: Optional[str] = None,
    ) -> ModelVersion:
        """Registers ``runs:/<run_id>/<artifact_path>`` as a new version of model ``name`` (created when missing)."""
        if self.pending_points(run_id):
            self.flush(run_id)
        try:
            self._request("POST", f"{_MLFLOW}/registered-models/create", json={"name": name})
        except FlywheelError as error:
            if error.code != "RESOURCE_ALREADY_EXISTS":
                raise
        clean = _clean_artifact_path(artifact_path)
        body: Dict[str, Any] = {"name": name, "source": f"runs:/{run_id}/{clean}" if clean else f"runs:/{run_id}", "run_id": run_id}
        if tags:
            body["tags"] = _key_values(tags)
        if description:
            body["description"] = description
        return ModelVersion._from_json(self._request("POST", f"{_MLFLOW}/model-versions/create", json=body)["model_version"])

    def set_alias(self, name: str, alias: str, version: Union[int, str]) -> None:
        """Points ``alias`` (e.g. ``champion``) of model ``name`` at ``version``. Needs an admin token: the alias is what
        serving answers with, and the move is audited."""
        self._request("POST", f"{_MLFLOW}/registered-models/alias", json={"name": name, "alias": alias, "version": str(version)})

    def get_model_version(self, name: str, version: Union[int, str]) -> ModelVersion:
        return ModelVersion._from_json(self._request("GET", f"{_MLFLOW}/model-versions/get", params={"name": name, "version": str(version)})["model_version"])

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return ModelVersion._from_json(self._request("GET", f"{_MLFLOW}/registered-models/alias", params={"name": name, "alias": alias})["model_version"])

    # -- pipelines --------------------------------------------------------------------------------------------------

    def start_pipeline(self, config: ConfigSource, *, workflow_id: Optional[str] = None) -> str:
        """Starts a pipeline from a config (a dict, or a JSON or YAML file; YAML needs PyYAML) and returns its workflow id."""
        body: Dict[str, Any] = {"config": load_pipeline_config(config)}
        if workflow_id:
            body["workflowId"] = workflow_id
        return str(self._request("POST", _PIPELINES, json=body)["workflowId"])

    def get_pipeline(self, workflow_id: str) -> Dict[str, Any]:
        """The pipeline's status (RUNNING, COMPLETED, FAILED, CANCELED, TERMINATED, TIMED_OUT), stages, and result or failure."""
        result: Dict[str, Any] = self._request("GET", f"{_PIPELINES}/{quote(workflow_id, safe='')}")
        return result

    def cancel_pipeline(self, workflow_id: str) -> Dict[str, Any]:
        """Asks a running pipeline to cancel; :meth:`wait` then raises with code CANCELED once it has."""
        result: Dict[str, Any] = self._request("POST", f"{_PIPELINES}/{quote(workflow_id, safe='')}/cancel")
        return result

    def wait(self, workflow_id: str, timeout: Optional[float] = None, *, poll_interval: float = 2.0,
             on_status: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
        """Polls the pipeline until it ends and returns its final status (with ``result``) when it COMPLETED. Raises
        :class:`FlywheelError` with the failure message (code FAILED, CANCELED, TERMINATED or TIMED_OUT) when it did not,
        and :class:`FlywheelTimeout` when ``timeout`` seconds pass first (the pipeline runs on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = min(0.5, poll_interval)
        unreachable_since: Optional[float] = None
        status: Dict[str, Any] = {}
        while True:
            try:
                status = self.get_pipeline(workflow_id)
                unreachable_since = None
            except FlywheelError as error:
                transient = error.status is None or error.status in (502, 503, 504)
                now = time.monotonic()
                unreachable_since = unreachable_since or now
                # A restarting server is waited out (up to the deadline, or two minutes without one).
                if not transient or (deadline is None and now - unreachable_since > 120) or (deadline is not None and now >= deadline):
                    raise
            else:
                if on_status is not None:
                    on_status(status)
                state = str(status.get("status", ""))
                if state == "COMPLETED":
                    return status
                if state in _PIPELINE_FAILED:
                    raise FlywheelError(state, f"pipeline {workflow_id} {state.lower().replace('_', ' ')}: {_failure_text(status)}", details=status)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                stage = _current_stage(status)
                raise FlywheelTimeout("DEADLINE_EXCEEDED",
                                      f"pipeline {workflow_id} is still {status.get('status', 'unknown')}{f' ({stage})' if stage else ''} after {timeout:g} s",
                                      details=status)
            time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - now)))
            delay = min(delay * 1.5, poll_interval)

    # -- exit -------------------------------------------------------------------------------------------------------

    def _end_all(self, status: str) -> None:
        while True:
            with self._lock:
                run = self._active[-1] if self._active else None
            if run is None:
                break
            self.end_run(status, run_id=run.run_id)
        self.flush()


def _failure_text(status: Mapping[str, Any]) -> str:
    failure = status.get("failure")
    if isinstance(failure, Mapping):
        return str(failure.get("message") or failure)
    if failure:
        return str(failure)
    return "no failure message (see the pipeline in the Temporal UI)" if not status.get("uiUrl") else f"see {status['uiUrl']}"


def _current_stage(status: Mapping[str, Any]) -> str:
    stages = status.get("stages")
    if isinstance(stages, list) and stages:
        last = stages[-1]
        if isinstance(last, Mapping):
            name = last.get("stage") or last.get("name")
            state = last.get("status") or last.get("state")
            return " ".join(str(x) for x in (name, state) if x)
    return ""


class _ExitHook:
    """Ends a client's active runs at interpreter exit: FAILED when an uncaught exception is ending the program."""

    def __init__(self, ref: "weakref.ReferenceType[Client]") -> None:
        self._ref = ref

    def __call__(self) -> None:
        client = self._ref()
        if client is None or client._closed:
            return
        crashed = getattr(sys, "last_value", None) is not None and not hasattr(sys, "ps1")
        try:
            client._end_all("FAILED" if crashed else "FINISHED")
        except Exception as error:  # the interpreter is going away: say so, do not raise
            print(f"flywheel: could not end the active run at exit: {error}", file=sys.stderr)
        finally:
            client._http.close()
