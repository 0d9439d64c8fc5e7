"""flywheel-worker end to end on a real Temporal server and a live Flywheel server: a small workflow (this file's own,
on its own task queue) calls the trainPython activity on a unique Python queue that a ``python -m flywheel.worker``
process serves. Shows the result, a TrainingError that is not retried, the worker's own heartbeats during a long silent
fit, cancellation stopping the training process, and a killed training process resumed from its checkpoint.

Needs TEMPORAL_ADDRESS plus the live-server settings (conftest.py); tests/integration/pythonWorkerUnits.test.ts runs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Iterator, Tuple

import pytest

pytest.importorskip("numpy")
pytest.importorskip("skl2onnx")
pytest.importorskip("temporalio")

from temporalio import workflow  # noqa: E402
from temporalio.client import Client as TemporalClient, WorkflowFailureError  # noqa: E402
from temporalio.common import RetryPolicy  # noqa: E402
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402

import flywheel  # noqa: E402

from conftest import Live  # noqa: E402
from test_training_live import history, run_input  # noqa: E402,F401  (run_input is a fixture)

TRAIN_SCRIPT = '''
import os, signal, time
import numpy as np
import flywheel.onnx
from sklearn.linear_model import LogisticRegression

def fit(ctx):
    mode = ctx.params.get("mode")
    if mode == "fail":
        raise RuntimeError("diverged: loss is nan at epoch 0")
    if mode == "silent":
        time.sleep(ctx.params["sleep"])  # no heartbeat, no metrics: the worker must keep the activity alive
    if mode == "endless":
        open(ctx.params["pidfile"], "w").write(str(os.getpid()))
        while True:
            time.sleep(0.2)
    for epoch in range(ctx.start_step, 4):
        ctx.log_metrics({"loss": 1.0 / (epoch + 1)}, step=epoch)
        ctx.save_checkpoint(epoch, {"epoch": epoch})
        if mode == "crash" and epoch == 1 and not os.path.exists(ctx.params["marker"]):
            open(ctx.params["marker"], "w").write("crashed once")
            os.kill(os.getpid(), signal.SIGKILL)
    x, y = ctx.xy("fit")
    model = LogisticRegression().fit(np.nan_to_num(x), y)
    ctx.save_model(*flywheel.onnx.from_sklearn(model, ctx))
'''


@workflow.defn(name="PythonWorkerProbe")
class PythonWorkerProbe:
    """Calls trainPython on the queue given, with the heartbeat timeout given, at most 3 attempts."""

    @workflow.run
    async def run(self, args: Dict[str, Any]) -> Dict[str, Any]:
        result: Dict[str, Any] = await workflow.execute_activity(
            "trainPython",
            args["input"],
            task_queue=args["queue"],
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(seconds=args["heartbeatSeconds"]),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_attempts=3,
                non_retryable_error_types=["TrainingError", "EntrypointError"],
            ),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        return result


@pytest.fixture(scope="module")
def temporal_address() -> str:
    address = os.environ.get("TEMPORAL_ADDRESS")
    if not address:
        pytest.skip("needs a Temporal server: set TEMPORAL_ADDRESS (tests/integration/pythonWorkerUnits.test.ts does)")
    return address


#: The /metrics URL each worker process printed, by its queue.
WORKER_METRICS: Dict[str, str] = {}


@pytest.fixture(scope="module")
def python_worker(live: Live, temporal_address: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A flywheel-worker process on a queue of its own; yields the queue."""
    root = tmp_path_factory.mktemp("code")
    (root / "jobs").mkdir()
    (root / "jobs" / "train.py").write_text(TRAIN_SCRIPT)
    queue = f"{live.prefix}-{uuid.uuid4().hex[:6]}-python-cpu"
    env = dict(
        os.environ,
        FLYWHEEL_URL=live.url,
        FLYWHEEL_TOKEN=live.token,
        TEMPORAL_ADDRESS=temporal_address,
        PYTHONUNBUFFERED="1",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "flywheel.worker", "--queue", queue, "--path", str(root)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith(f"flywheel-worker: polling task queue {queue} (cpu)"), line
    assert live.token not in line
    assert "; metrics on http://127.0.0.1:" in line, line  # no FLYWHEEL_WORKER_METRICS_PORT: a free port
    WORKER_METRICS[queue] = line.split("; metrics on ", 1)[1].strip()
    yield queue
    process.terminate()
    assert process.wait(timeout=60) == 0


def probe(
    temporal_address: str,
    queue: str,
    activity_input: Dict[str, Any],
    heartbeat_seconds: int = 30,
    during: Callable[[Any], Awaitable[None]] = None,
) -> Any:  # type: ignore[assignment]
    """Runs the probe workflow to its end on a worker of this test's own; returns its result or the failure raised."""

    async def scenario() -> Any:
        client = await TemporalClient.connect(temporal_address)
        probe_queue = f"{queue}-probe-{uuid.uuid4().hex[:6]}"
        async with Worker(
            client, task_queue=probe_queue, workflows=[PythonWorkerProbe], workflow_runner=UnsandboxedWorkflowRunner()
        ):
            handle = await client.start_workflow(
                PythonWorkerProbe.run,
                {"input": activity_input, "queue": queue, "heartbeatSeconds": heartbeat_seconds},
                id=f"{probe_queue}-wf",
                task_queue=probe_queue,
                execution_timeout=timedelta(minutes=8),
            )
            if during is not None:
                await during(handle)
            try:
                return await handle.result()
            except WorkflowFailureError as failure:
                return failure

    return asyncio.run(scenario())


def cause_of(failure: Any) -> ApplicationError:
    assert isinstance(failure, WorkflowFailureError), failure
    assert isinstance(failure.cause, ActivityError), failure.cause
    assert isinstance(failure.cause.cause, ApplicationError), failure.cause.cause
    return failure.cause.cause


def test_the_worker_trains_and_returns_the_contract_result(
    temporal_address: str, python_worker: str, run_input: Tuple[flywheel.Client, Dict[str, Any]]
) -> None:
    client, spec = run_input
    result = probe(temporal_address, python_worker, spec)
    assert result["modelPath"] == "model/model.onnx" and result["steps"] == 4 and result["framework"] == "sklearn"
    assert result["device"] == "cpu" and result["metrics"]["loss"] == 0.25 and "resumedFromStep" not in result
    assert {f.path for f in client.list_artifacts("model", run_id=spec["runId"])} == {
        "model/model.onnx",
        "model/signature.json",
    }


def test_a_training_error_fails_at_once_with_the_traceback(
    temporal_address: str, python_worker: str, run_input: Tuple[flywheel.Client, Dict[str, Any]]
) -> None:
    _client, spec = run_input
    error = cause_of(probe(temporal_address, python_worker, {**spec, "params": {"mode": "fail"}}))
    assert error.type == "TrainingError" and error.non_retryable
    assert error.message.startswith("jobs/train.py:fit raised RuntimeError: diverged: loss is nan at epoch 0\n")
    assert "train.py" in error.message.split("\n", 1)[1]
    missing = cause_of(probe(temporal_address, python_worker, {**spec, "entrypoint": "jobs.nothing:fit"}))
    assert missing.type == "EntrypointError" and "no module jobs.nothing" in missing.message


def test_a_long_silent_fit_is_kept_alive_by_the_worker(
    temporal_address: str, python_worker: str, run_input: Tuple[flywheel.Client, Dict[str, Any]]
) -> None:
    _client, spec = run_input
    # Silent for twice the heartbeat timeout: only the worker's own heartbeats keep the attempt alive.
    result = probe(
        temporal_address, python_worker, {**spec, "params": {"mode": "silent", "sleep": 12}}, heartbeat_seconds=6
    )
    assert not isinstance(result, WorkflowFailureError), result
    assert result["steps"] == 4


def test_cancelling_stops_the_training_process(
    temporal_address: str, python_worker: str, tmp_path: Path, run_input: Tuple[flywheel.Client, Dict[str, Any]]
) -> None:
    _client, spec = run_input
    pidfile = tmp_path / "fit.pid"

    async def cancel_once_training(handle: Any) -> None:
        while not pidfile.exists() or not pidfile.read_text():
            await asyncio.sleep(0.2)
        await handle.cancel()

    failure = probe(
        temporal_address,
        python_worker,
        {**spec, "params": {"mode": "endless", "pidfile": str(pidfile)}},
        during=cancel_once_training,
    )
    assert isinstance(failure, WorkflowFailureError) and isinstance(failure.cause, CancelledError), failure
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the training process {pid} still runs after the cancellation")


def test_the_worker_serves_stage_durations_and_queue_waits_at_metrics(
    temporal_address: str, python_worker: str, run_input: Tuple[flywheel.Client, Dict[str, Any]]
) -> None:
    _client, spec = run_input
    assert probe(temporal_address, python_worker, spec)["steps"] == 4
    cause_of(probe(temporal_address, python_worker, {**spec, "params": {"mode": "fail"}}))
    text = urllib.request.urlopen(WORKER_METRICS[python_worker], timeout=10).read().decode()
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    for outcome in ("completed", "failed"):
        assert values[f'flywheel_stage_duration_seconds_count{{outcome="{outcome}",stage="trainPython"}}'] >= 1
    waits = f'flywheel_activity_queue_wait_seconds_count{{activity_type="trainPython",task_queue="{python_worker}"}}'
    assert values[waits] >= 2
    # Temporal's own worker series come from the same exporter, durations in seconds.
    assert any(name.startswith("temporal_activity_execution_latency_seconds_count{") for name in values), text[:2000]


def test_a_killed_training_process_is_retried_and_resumes_from_its_checkpoint(
    temporal_address: str, python_worker: str, tmp_path: Path, run_input: Tuple[flywheel.Client, Dict[str, Any]]
) -> None:
    client, spec = run_input
    marker = tmp_path / "crashed"
    result = probe(temporal_address, python_worker, {**spec, "params": {"mode": "crash", "marker": str(marker)}})
    assert marker.read_text() == "crashed once"
    assert not isinstance(result, WorkflowFailureError), result
    assert result["resumedFromStep"] == 1 and result["steps"] == 4
    assert history(client, spec["runId"], "loss") == {0: 1.0, 1: 0.5, 2: pytest.approx(1 / 3), 3: 0.25}
    index = json.loads(
        client.download_artifact("checkpoints/latest.json", tmp_path / "i.json", run_id=spec["runId"]).read_text()
    )
    assert max(entry["step"] for entry in index["slots"].values()) == 3
