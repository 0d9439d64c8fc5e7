"""``flywheel-worker`` (also ``python -m flywheel.worker``): a Temporal worker that runs teams' own Python training
functions as the ``trainPython`` activity on Flywheel's Python task queues (BYOM §3).

Each attempt runs the user's function in a child process (``flywheel._child``), so a segfault or an out-of-memory kill
in user code costs one attempt, never the worker; the activity heartbeats every few seconds while the child runs and,
when cancelled, stops the child (SIGTERM, then SIGKILL after 10 s).

On a GPU queue each attempt owns one device (``--gpus 0,1`` or FLYWHEEL_GPU_DEVICES, else every GPU ``nvidia-smi -L``
lists): one attempt runs per device, its training process sees only that device (CUDA_VISIBLE_DEVICES) and tags the run
``flywheel.device`` = ``cuda:<id>``; the device is free again when the attempt ends, however it ends.

Prometheus metrics (Temporal's worker series and Flywheel's stage duration and queue wait) are served at ``/metrics`` on
``--metrics-port`` / FLYWHEEL_WORKER_METRICS_PORT (default: a free port, printed at start) on
FLYWHEEL_WORKER_METRICS_HOST (default 127.0.0.1).

Environment: FLYWHEEL_URL and FLYWHEEL_TOKEN (a write-scope token) for the Flywheel server; TEMPORAL_ADDRESS
(default localhost:7233), TEMPORAL_NAMESPACE (default ``default``), TEMPORAL_API_KEY / TEMPORAL_TLS /
TEMPORAL_TLS_CLIENT_CERT_PATH + TEMPORAL_TLS_CLIENT_KEY_PATH (mTLS), TEMPORAL_TLS_SERVER_CA_PATH (a private CA) and
TEMPORAL_TLS_SERVER_NAME for Temporal, read as the TypeScript workers read them; FLYWHEEL_TRAIN_PYTHON_CPU_QUEUE /
FLYWHEEL_TRAIN_PYTHON_GPU_QUEUE rename the queues.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._metrics import MetricsUnavailable, start_metrics
from ._slots import DeviceSlots, detect_devices, parse_devices

ACTIVITY_NAME = "trainPython"
QUEUES = {"cpu": "flywheel-train-python-cpu", "gpu": "flywheel-train-python-gpu"}
QUEUE_ENV = {"cpu": "FLYWHEEL_TRAIN_PYTHON_CPU_QUEUE", "gpu": "FLYWHEEL_TRAIN_PYTHON_GPU_QUEUE"}
#: Seconds between the worker's own heartbeats while the child trains (the contract's heartbeat timeout is 30 s).
HEARTBEAT_EVERY = 2.0
#: Seconds a cancelled child has between SIGTERM and SIGKILL.
TERMINATE_GRACE = 10.0
_TAIL_LINES = 40


@dataclass(frozen=True)
class TemporalTls:
    """TLS to Temporal with files' contents: a client certificate and key (mTLS), a private CA, the server's name."""

    client_cert: Optional[bytes] = None
    client_key: Optional[bytes] = None
    server_ca: Optional[bytes] = None
    domain: Optional[str] = None


def _read_tls_file(path: str, what: str, variable: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read Temporal's {what} {path} ({variable}): {error.strerror or error}") from None


def temporal_tls(env: Mapping[str, str]) -> Union[bool, TemporalTls]:
    """TLS to Temporal from the environment, as config/env.ts resolves it for the TypeScript workers: the
    TEMPORAL_TLS_* files (mTLS, a private CA) and server name, else plain TLS for an API key or TEMPORAL_TLS=true,
    else none. A certificate without its key (or the other way round) and an unreadable file raise ValueError."""
    cert = env.get("TEMPORAL_TLS_CLIENT_CERT_PATH") or None
    key = env.get("TEMPORAL_TLS_CLIENT_KEY_PATH") or None
    if bool(cert) != bool(key):
        given = "TEMPORAL_TLS_CLIENT_CERT_PATH" if cert else "TEMPORAL_TLS_CLIENT_KEY_PATH"
        raise ValueError(
            "environment variables TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH go together "
            f"(mTLS needs the certificate and its key), but only {given} is set"
        )
    flag = env.get("TEMPORAL_TLS") or None
    if flag not in (None, "true", "false"):
        raise ValueError(f'environment variable TEMPORAL_TLS must be true or false, got "{flag}"')
    ca = env.get("TEMPORAL_TLS_SERVER_CA_PATH") or None
    domain = env.get("TEMPORAL_TLS_SERVER_NAME") or None
    if cert or ca or domain:
        return TemporalTls(
            client_cert=_read_tls_file(cert, "client certificate", "TEMPORAL_TLS_CLIENT_CERT_PATH") if cert else None,
            client_key=_read_tls_file(key, "client key", "TEMPORAL_TLS_CLIENT_KEY_PATH") if key else None,
            server_ca=_read_tls_file(ca, "server CA certificate", "TEMPORAL_TLS_SERVER_CA_PATH") if ca else None,
            domain=domain,
        )
    return bool(env.get("TEMPORAL_API_KEY")) or flag == "true"


@dataclass(frozen=True)
class WorkerOptions:
    """The resolved command line and environment."""

    queue: str
    gpu: bool
    roots: Sequence[Path]
    max_concurrent: int
    flywheel_url: str
    temporal_address: str
    temporal_namespace: str
    #: The GPUs a GPU-queue worker owns, one attempt each; empty on a CPU queue (or with no GPU found).
    devices: Tuple[str, ...] = ()
    metrics_host: str = "127.0.0.1"
    #: 0: a free port.
    metrics_port: int = 0
    #: TLS to Temporal (``temporal_tls``): False, True (the system's roots) or the files' contents.
    temporal_tls: Union[bool, TemporalTls] = False


def resolve_queue(value: str, env: Mapping[str, str]) -> tuple:
    """``cpu`` / ``gpu`` to the queue name (env overrides apply); any other value is a queue name, GPU when it is the
    GPU queue's name or ends in ``-gpu``."""
    if value in QUEUES:
        return env.get(QUEUE_ENV[value]) or QUEUES[value], value == "gpu"
    gpu_queue = env.get(QUEUE_ENV["gpu"]) or QUEUES["gpu"]
    return value, value == gpu_queue or value.endswith("-gpu")


def parse_options(
    argv: Optional[Sequence[str]] = None,
    env: Optional[Mapping[str, str]] = None,
    detect: Callable[[], List[str]] = detect_devices,
) -> WorkerOptions:
    """The command line over the environment; ``detect`` lists the machine's GPUs (for a GPU queue without --gpus)."""
    environ = os.environ if env is None else env
    parser = argparse.ArgumentParser(
        prog="flywheel-worker",
        description="Runs Flywheel's trainPython activity: "
        "teams' own training functions (def fit(ctx)), each in a child process.",
    )
    parser.add_argument("--queue", default="cpu", help="cpu, gpu, or a task queue name (default: cpu)")
    parser.add_argument(
        "--path",
        action="append",
        default=None,
        metavar="DIR",
        help="a code root entrypoints are found in (repeatable; default: the current directory)",
    )
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=None,
        metavar="N",
        help="training attempts run at once on a CPU queue (default: 1)",
    )
    parser.add_argument(
        "--gpus",
        default=None,
        metavar="IDS",
        help="GPU queue: the devices this worker owns, one attempt each (e.g. 0,1; default: FLYWHEEL_GPU_DEVICES, "
        "else every GPU nvidia-smi -L lists)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="where /metrics is served (default: FLYWHEEL_WORKER_METRICS_PORT, else a free port)",
    )
    args = parser.parse_args(argv)
    if args.max_concurrent is not None and args.max_concurrent < 1:
        parser.error("--max-concurrent is at least 1")
    roots = [Path(p).resolve() for p in (args.path or [os.getcwd()])]
    missing = [str(r) for r in roots if not r.is_dir()]
    if missing:
        parser.error(f"--path {missing[0]} is not a directory")
    if not environ.get("FLYWHEEL_TOKEN"):
        parser.error("FLYWHEEL_TOKEN is not set: the worker needs a write-scope token for the Flywheel server")
    queue, gpu = resolve_queue(args.queue, environ)
    devices: List[str] = []
    if not gpu and args.gpus is not None:
        parser.error(f"--gpus applies to a GPU queue (--queue gpu); {queue} is a CPU queue")
    if gpu:
        try:
            if args.gpus is not None:
                devices = parse_devices(args.gpus, "--gpus")
            elif environ.get("FLYWHEEL_GPU_DEVICES"):
                devices = parse_devices(environ["FLYWHEEL_GPU_DEVICES"], "FLYWHEEL_GPU_DEVICES")
            else:
                devices = detect()
        except ValueError as error:
            parser.error(str(error))
        if devices and args.max_concurrent is not None and args.max_concurrent != len(devices):
            parser.error(
                f"--max-concurrent {args.max_concurrent} does not apply to a GPU queue: it runs one attempt per device "
                f"({len(devices)}: {','.join(devices)}); choose the devices with --gpus"
            )
    metrics_port = args.metrics_port
    if metrics_port is None:
        text = environ.get("FLYWHEEL_WORKER_METRICS_PORT") or "0"
        if not text.isdigit():
            parser.error(f"FLYWHEEL_WORKER_METRICS_PORT is a port number, not {text!r}")
        metrics_port = int(text)
    if not 0 <= metrics_port <= 65535:
        parser.error(f"the metrics port is 0 (a free one) to 65535, not {metrics_port}")
    try:
        tls = temporal_tls(environ)
    except ValueError as error:
        parser.error(str(error))
    return WorkerOptions(
        queue=queue,
        gpu=gpu,
        roots=roots,
        max_concurrent=len(devices) or args.max_concurrent or 1,
        devices=tuple(devices),
        metrics_host=environ.get("FLYWHEEL_WORKER_METRICS_HOST") or "127.0.0.1",
        metrics_port=metrics_port,
        flywheel_url=(environ.get("FLYWHEEL_URL") or "http://127.0.0.1:8470").rstrip("/"),
        temporal_address=environ.get("TEMPORAL_ADDRESS") or "localhost:7233",
        temporal_namespace=environ.get("TEMPORAL_NAMESPACE") or "default",
        temporal_tls=tls,
    )


def startup_line(options: WorkerOptions, metrics_url: Optional[str] = None) -> str:
    """The one line the worker prints once it polls (never the token)."""
    if options.devices:
        slots = f"one attempt per GPU: {','.join(options.devices)}"
    elif options.gpu:
        slots = f"max concurrent {options.max_concurrent} (no GPU found: attempts own no device)"
    else:
        slots = f"max concurrent {options.max_concurrent}"
    tls = options.temporal_tls
    security = " (mTLS)" if isinstance(tls, TemporalTls) and tls.client_cert else " (TLS)" if tls else ""
    return (
        f"flywheel-worker: polling task queue {options.queue} ({'gpu' if options.gpu else 'cpu'}) on "
        f"{options.temporal_address}/{options.temporal_namespace}{security}, {slots}; "
        f"code roots: {', '.join(map(str, options.roots))}; Flywheel server: {options.flywheel_url}"
        + (f"; metrics on {metrics_url}" if metrics_url else "")
    )


class TrainingActivity:
    """The ``trainPython`` activity, bound to the worker's code roots and queue kind."""

    def __init__(self, options: WorkerOptions) -> None:
        self.options = options
        self.slots = DeviceSlots(options.devices) if options.devices else None

    async def train_python(self, request: Dict[str, Any]) -> Dict[str, Any]:
        if self.slots is None:
            return await self._attempt(request, None)
        async with self.slots.device() as device:
            return await self._attempt(request, device)

    async def _attempt(self, request: Dict[str, Any], device: Optional[str]) -> Dict[str, Any]:
        """One attempt in a training process of its own; ``device``: the GPU it alone sees (CUDA_VISIBLE_DEVICES)."""
        from temporalio import activity
        from temporalio.exceptions import ApplicationError

        info = activity.info()
        run_id = str(request.get("runId", "?")) if isinstance(request, Mapping) else "?"
        folder = Path(tempfile.mkdtemp(prefix=f"flywheel-train-{run_id[:12]}-"))
        try:
            (folder / "request.json").write_text(
                json.dumps(
                    {
                        "input": request,
                        "roots": [str(r) for r in self.options.roots],
                        "gpu": self.options.gpu,
                        "cudaDevice": device,
                        "attempt": info.attempt,
                    }
                )
            )
            env = dict(os.environ, PYTHONUNBUFFERED="1", FLYWHEEL_URL=self.options.flywheel_url)
            if device is not None:
                env["CUDA_VISIBLE_DEVICES"] = device
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "flywheel._child",
                str(folder),
                cwd=str(self.options.roots[0]),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )  # its own process group: cancellation reaches the user's subprocesses too
            tail: Deque[str] = collections.deque(maxlen=_TAIL_LINES)
            pump = asyncio.ensure_future(_pump(process, f"[{run_id[:8]} #{info.attempt}] ", tail))
            try:
                while True:
                    try:
                        await asyncio.wait_for(asyncio.shield(process.wait()), HEARTBEAT_EVERY)
                        break
                    except asyncio.TimeoutError:
                        activity.heartbeat(_progress(folder))
            except asyncio.CancelledError:
                await _terminate(process)
                raise
            finally:
                if process.returncode is None:  # the worker is shutting down or something above failed
                    await _terminate(process)
                try:
                    await asyncio.wait_for(pump, 5.0)
                except asyncio.TimeoutError:  # a grandchild still holds the pipe open
                    pump.cancel()
            code = process.returncode
            if code == 0 and (folder / "result.json").is_file():
                result: Dict[str, Any] = json.loads((folder / "result.json").read_text())
                return result
            if (folder / "error.json").is_file():
                failure = json.loads((folder / "error.json").read_text())
                raise ApplicationError(
                    str(failure["message"]), type=str(failure["type"]), non_retryable=bool(failure.get("nonRetryable"))
                )
            if code == 4:
                raise ApplicationError("the training process was stopped (SIGTERM)", type="TrainingInterrupted")
            raise ApplicationError(
                f"the training process died ({_describe_exit(code)}); its last output:\n" + "\n".join(tail)[-3000:],
                type="TrainingProcessDied",
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def _describe_exit(code: Optional[int]) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed: out of memory?)" if -code == signal.SIGKILL else ""
        return f"{name}{hint}"
    return f"exit {code}"


def _progress(folder: Path) -> Any:
    try:
        return json.loads((folder / "heartbeat.json").read_text())
    except (OSError, ValueError):
        return None


async def _pump(process: asyncio.subprocess.Process, prefix: str, tail: Deque[str]) -> None:
    """Copies the child's output to the worker's stderr, line by line, keeping the last lines for a crash message."""
    assert process.stdout is not None
    while True:
        line = await process.stdout.readline()
        if not line:
            return
        text = line.decode("utf-8", "replace").rstrip("\n")
        tail.append(text)
        sys.stderr.write(f"{prefix}{text}\n")
        sys.stderr.flush()


async def _terminate(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to the child's process group (the user's code raises TrainingCancelled), SIGKILL after the grace."""
    for sig, wait in ((signal.SIGTERM, TERMINATE_GRACE), (signal.SIGKILL, 5.0)):
        if process.returncode is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), wait)
        except asyncio.TimeoutError:
            continue
    # The leader is gone; make sure nothing it started lingers in its group.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def _connect(options: WorkerOptions, runtime: Any = None) -> Any:
    from temporalio.client import Client, TLSConfig

    api_key = os.environ.get("TEMPORAL_API_KEY") or None
    tls: Any = options.temporal_tls
    if isinstance(tls, TemporalTls):
        tls = TLSConfig(
            server_root_ca_cert=tls.server_ca,
            domain=tls.domain,
            client_cert=tls.client_cert,
            client_private_key=tls.client_key,
        )
    return await Client.connect(
        options.temporal_address, namespace=options.temporal_namespace, api_key=api_key, tls=tls, runtime=runtime
    )


async def run_worker(options: WorkerOptions, *, stop: Optional[asyncio.Event] = None) -> None:
    """Polls ``options.queue`` until ``stop`` is set (or SIGINT / SIGTERM), then finishes or cancels what runs."""
    from temporalio import activity
    from temporalio.worker import Worker

    metrics = start_metrics(options.metrics_host, options.metrics_port)
    client = await _connect(options, metrics.runtime)
    training = TrainingActivity(options)

    @activity.defn(name=ACTIVITY_NAME)
    async def train_python(request: Dict[str, Any]) -> Dict[str, Any]:
        info = activity.info()
        metrics.attempt_started(info.activity_type, info.task_queue, info.current_attempt_scheduled_time)
        started, outcome = time.monotonic(), "failed"
        try:
            result = await training.train_python(request)
            outcome = "completed"
            return result
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            metrics.attempt_ended(info.activity_type, outcome, time.monotonic() - started)

    worker = Worker(
        client,
        task_queue=options.queue,
        activities=[train_python],
        max_concurrent_activities=options.max_concurrent,
        # Heartbeats reach the server (and cancellations come back) within seconds, whatever the heartbeat timeout.
        max_heartbeat_throttle_interval=timedelta(seconds=HEARTBEAT_EVERY),
        default_heartbeat_throttle_interval=timedelta(seconds=HEARTBEAT_EVERY),
        graceful_shutdown_timeout=timedelta(seconds=TERMINATE_GRACE + 5),
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    async with worker:
        print(startup_line(options, metrics.url), flush=True)
        await stop.wait()
        print("flywheel-worker: stopping (running attempts are cancelled)", file=sys.stderr, flush=True)


def main(argv: Optional[List[str]] = None) -> None:
    options = parse_options(argv)
    code = 0
    try:
        asyncio.run(run_worker(options))
    except KeyboardInterrupt:
        pass
    except MetricsUnavailable as error:  # the metrics port is taken or the host does not parse
        print(f"flywheel-worker: {error}", file=sys.stderr)
        code = 1
    except RuntimeError as error:  # a failed connection to Temporal: say where, without a traceback
        print(
            f"flywheel-worker: {error} (Temporal at {options.temporal_address}, "
            f"namespace {options.temporal_namespace})",
            file=sys.stderr,
        )
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Skips interpreter teardown, where the Temporal core's threads can abort the process (temporalio/sdk-python#300).
    os._exit(code)


if __name__ == "__main__":
    main()
