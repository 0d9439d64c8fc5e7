"""Flywheel's Python SDK: log runs (params, metrics, tags, artifacts) to a Flywheel server, search them, register models
and move aliases, start pipelines and wait for them.

The module-level functions work on a default :class:`Client` built from ``FLYWHEEL_URL`` and ``FLYWHEEL_TOKEN`` on first
use (:func:`configure` replaces it); they follow MLflow's fluent API::

    import flywheel

    with flywheel.start_run(experiment="demand", name="baseline") as run:
        flywheel.log_params({"lr": 0.01, "epochs": 20})
        for step in range(20):
            flywheel.log_metric("loss", 1 / (step + 1), step=step)
        flywheel.log_artifact("model/")
    version = flywheel.register_model(run.run_id, "demand-forecast")
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

from ._client import (
    MAX_METRICS_PER_BATCH,
    Client,
    ExperimentRef,
    FileInfo,
    ModelVersion,
    PathLike,
    Run,
)
from ._config import ConfigSource, load_pipeline_config
from ._errors import FlywheelError, FlywheelTimeout
from ._version import __version__

__all__ = [
    "Client", "Run", "ModelVersion", "FileInfo", "FlywheelError", "FlywheelTimeout", "MAX_METRICS_PER_BATCH", "__version__",
    "configure", "default_client", "set_experiment",
    "start_run", "active_run", "end_run", "get_run", "search_runs",
    "log_params", "log_param", "log_metrics", "log_metric", "set_tags", "set_tag", "flush",
    "log_artifact", "log_artifacts", "list_artifacts", "download_artifact",
    "register_model", "set_alias", "get_model_version", "get_model_version_by_alias",
    "start_pipeline", "get_pipeline", "cancel_pipeline", "wait", "load_pipeline_config",
]

_default: Optional[Client] = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The client the module-level functions use (built from FLYWHEEL_URL / FLYWHEEL_TOKEN on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


def configure(url: Optional[str] = None, token: Optional[str] = None, **options: Any) -> Client:
    """Replaces the default client (arguments as :class:`Client`'s); refused while a run is active on the current one."""
    global _default
    with _default_lock:
        previous = _default
        if previous is not None and previous.active_run() is not None:
            raise FlywheelError("INVALID_STATE", f"run {previous.active_run().run_id} is active: end it before configure()")  # type: ignore[union-attr]
        _default = Client(url, token, **options)
    if previous is not None:
        previous.close()
    return _default


def _run_id() -> str:
    """The active run's id, starting a run when none is active (as MLflow's fluent API does)."""
    client = default_client()
    run = client.active_run()
    return (run or client.start_run()).run_id


def set_experiment(experiment: ExperimentRef) -> str:
    """Runs start in ``experiment`` (a name, created when missing, or an id) from now on; returns its id."""
    return default_client().set_experiment(experiment)


def start_run(experiment: Optional[ExperimentRef] = None, name: Optional[str] = None, tags: Optional[Mapping[str, Any]] = None,
              *, nested: bool = False) -> Run:
    """Starts a run and makes it active. Use it as a context manager to end it FINISHED, or FAILED on an exception."""
    return default_client().start_run(experiment, name, tags, nested=nested)


def active_run() -> Optional[Run]:
    return default_client().active_run()


def end_run(status: str = "FINISHED") -> None:
    """Flushes and ends the active run (no-op without one)."""
    default_client().end_run(status)


def get_run(run_id: str) -> Run:
    return default_client().get_run(run_id)


def search_runs(filter: Optional[str] = None, order_by: Optional[Union[str, Sequence[str]]] = None,
                experiment: Optional[Union[ExperimentRef, Sequence[ExperimentRef]]] = None, max_results: int = 100) -> List[Run]:
    return default_client().search_runs(filter, order_by, experiment, max_results)


def log_params(params: Mapping[str, Any]) -> None:
    default_client().log_params(params, run_id=_run_id())


def log_param(key: str, value: Any) -> None:
    default_client().log_param(key, value, run_id=_run_id())


def log_metrics(metrics: Mapping[str, Any], step: Optional[int] = None) -> None:
    default_client().log_metrics(metrics, step, run_id=_run_id())


def log_metric(key: str, value: Any, step: Optional[int] = None) -> None:
    default_client().log_metric(key, value, step, run_id=_run_id())


def set_tags(tags: Mapping[str, Any]) -> None:
    default_client().set_tags(tags, run_id=_run_id())


def set_tag(key: str, value: Any) -> None:
    default_client().set_tag(key, value, run_id=_run_id())


def flush() -> None:
    """Sends every buffered metric point now."""
    default_client().flush()


def log_artifact(local_path: PathLike, artifact_path: Optional[str] = None) -> List[str]:
    return default_client().log_artifact(local_path, artifact_path, run_id=_run_id())


def log_artifacts(local_dir: PathLike, artifact_path: Optional[str] = None) -> List[str]:
    return default_client().log_artifacts(local_dir, artifact_path, run_id=_run_id())


def list_artifacts(path: Optional[str] = None, run_id: Optional[str] = None) -> List[FileInfo]:
    return default_client().list_artifacts(path, run_id=run_id)


def download_artifact(artifact_path: str, dst_path: PathLike, run_id: Optional[str] = None) -> Any:
    return default_client().download_artifact(artifact_path, dst_path, run_id=run_id)


def register_model(run_id: str, name: str, artifact_path: str = "model", tags: Optional[Mapping[str, Any]] = None) -> ModelVersion:
    return default_client().register_model(run_id, name, artifact_path, tags)


def set_alias(name: str, alias: str, version: Union[int, str]) -> None:
    default_client().set_alias(name, alias, version)


def get_model_version(name: str, version: Union[int, str]) -> ModelVersion:
    return default_client().get_model_version(name, version)


def get_model_version_by_alias(name: str, alias: str) -> ModelVersion:
    return default_client().get_model_version_by_alias(name, alias)


def start_pipeline(config: ConfigSource, workflow_id: Optional[str] = None) -> str:
    return default_client().start_pipeline(config, workflow_id=workflow_id)


def get_pipeline(workflow_id: str) -> Dict[str, Any]:
    return default_client().get_pipeline(workflow_id)


def cancel_pipeline(workflow_id: str) -> Dict[str, Any]:
    return default_client().cancel_pipeline(workflow_id)


def wait(workflow_id: str, timeout: Optional[float] = None, *, poll_interval: float = 2.0,
         on_status: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
    return default_client().wait(workflow_id, timeout, poll_interval=poll_interval, on_status=on_status)
