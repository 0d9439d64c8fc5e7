"""The training process the worker starts for each ``trainPython`` attempt: ``python -m flywheel._child <folder>``.

It reads ``request.json`` from the folder, loads the entrypoint, builds a :class:`~flywheel.training.TrainingContext`
and calls the user's function; it writes ``heartbeat.json`` as training goes, then ``result.json`` (exit 0) or
``error.json`` (exit 3), and exits 4 when cancelled (SIGTERM). It never talks to Temporal: the Flywheel server is
reached with FLYWHEEL_URL / FLYWHEEL_TOKEN from the environment.
"""

from __future__ import annotations

import json
import os
import platform
import random
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

EXIT_OK, EXIT_FAILED, EXIT_CANCELLED = 0, 3, 4
# Codes of a FlywheelError that a later attempt may not meet (the server restarting, a network fault).
_TRANSIENT_CODES = {
    "UNAVAILABLE",
    "DEADLINE_EXCEEDED",
    "TEMPORARILY_UNAVAILABLE",
    "TOO_MANY_REQUESTS",
    "INTERNAL_ERROR",
}


def _write_json(path: Path, value: Any) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(value, default=str))
    os.replace(partial, path)


def _failure(kind: str, error: BaseException, non_retryable: bool, prefix: str = "") -> Dict[str, Any]:
    from .training import trim_traceback

    line = f"{prefix}{type(error).__name__}: {error}".strip()
    trace = trim_traceback("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    return {"type": kind, "message": f"{line}\n{trace}"[:4096], "nonRetryable": non_retryable}


def _transient(error: BaseException) -> bool:
    from ._errors import FlywheelError

    return isinstance(error, FlywheelError) and (
        error.code in _TRANSIENT_CODES or error.status is None or error.status >= 500
    )


def choose_device(gpu: bool) -> str:
    """'cuda' on a GPU queue when torch sees a GPU, else 'cpu' (torch is imported only on GPU queues)."""
    if not gpu:
        return "cpu"
    try:
        import torch  # type: ignore[import-not-found]
    except ImportError:
        print("flywheel: GPU queue, but torch is not importable: training on the CPU", file=sys.stderr)
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    print("flywheel: GPU queue, but torch sees no GPU: training on the CPU", file=sys.stderr)
    return "cpu"


def _seed(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2**32))
    except ImportError:
        pass
    torch = sys.modules.get("torch")  # only when the user's module loaded it: importing torch costs seconds
    if torch is not None:
        torch.manual_seed(seed)


def _final_metrics(ctx: Any, returned: Any) -> Dict[str, float]:
    metrics = dict(ctx.final_metrics)
    if isinstance(returned, Mapping):
        for key, value in returned.items():
            try:
                metrics[str(key)] = float(value)
            except (TypeError, ValueError):
                continue
    return metrics


def _watch_parent(parent: int) -> None:
    """A worker killed outright (SIGKILL, the OOM killer) cannot stop its child, which runs in its own process group:
    the child notices it was orphaned and stops itself, as a cancellation would, so a retried attempt on another worker
    never races this one for the run's metrics and checkpoints."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        os._exit(EXIT_CANCELLED)

    threading.Thread(target=watch, name="flywheel-parent-watch", daemon=True).start()


def run(folder: Path) -> int:
    """One attempt in ``folder``; returns the exit code."""
    from ._client import Client
    from ._entrypoint import EntrypointError, load_entrypoint
    from .training import TrainingCancelled, TrainingContext, TrainingInput, TrainingSetupError, install_cancel_handler

    cancelled: List[bool] = [False]
    install_cancel_handler(cancelled)
    _watch_parent(os.getppid())
    request = json.loads((folder / "request.json").read_text())
    roots = [Path(r) for r in request.get("roots") or []]

    last: Dict[str, Any] = {"at": 0.0, "step": None}

    def on_progress(step: Optional[int], details: Any) -> None:
        # A heartbeat per batch must cost nothing: the file changes on a new step, else at most once a second.
        now = time.monotonic()
        if step == last["step"] and now - last["at"] < 1.0:
            return
        last.update(at=now, step=step)
        _write_json(folder / "heartbeat.json", {"step": step, "details": details})

    stage = "setup"
    try:
        spec = TrainingInput.from_json(request["input"])
        fit = load_entrypoint(spec.entrypoint, roots)
        _seed(spec.seed)
        device = choose_device(bool(request.get("gpu")))
        ctx = TrainingContext(
            spec,
            Client(),
            work_dir=folder / "fit",
            device=device,
            on_progress=on_progress,
            cancelled=lambda: cancelled[0],
        )
        if request.get("cudaDevice") is not None:
            # The GPU this attempt's slot owns (CUDA_VISIBLE_DEVICES), on the run; a retry elsewhere overwrites it.
            ctx.client.set_tags({"flywheel.device": f"cuda:{request['cudaDevice']}"}, run_id=spec.run_id)
        stage = "fit"
        returned = fit(ctx)
        stage = "finish"
        ctx.client.flush()
        if not ctx.model_saved:
            raise TrainingSetupError(
                f"{spec.entrypoint} returned without saving a model: call ctx.save_model(model, signature) "
                f"(flywheel.onnx.from_sklearn / from_torch make both)"
            )
        last = ctx.last_step if ctx.last_step is not None else -1
        result = {
            "modelPath": "model/model.onnx",
            "signaturePath": "model/signature.json",
            "steps": max(ctx.start_step, last + 1),
            "metrics": _final_metrics(ctx, returned),
            "device": device,
            "pythonVersion": platform.python_version(),
        }
        if ctx.resumed_from_step is not None:
            result["resumedFromStep"] = ctx.resumed_from_step
        if ctx.framework:
            result["framework"] = ctx.framework
        _write_json(folder / "result.json", result)
        return EXIT_OK
    except TrainingCancelled:
        return EXIT_CANCELLED
    except EntrypointError as error:
        failure = {
            "type": "EntrypointError",
            "message": f"{error} (code roots: {', '.join(map(str, roots)) or 'none'})",
            "nonRetryable": True,
        }
    except TrainingSetupError as error:
        failure = (
            _failure("TrainingError", error, True) if stage == "finish" else _failure("TrainingSetupError", error, True)
        )
    except Exception as error:
        if _transient(error):
            failure = _failure("FlywheelUnavailable", error, False)
        elif stage == "fit":
            failure = _failure("TrainingError", error, True, prefix=f"{request['input'].get('entrypoint')} raised ")
        else:
            from ._errors import FlywheelError

            # A refused request while preparing (a missing split, a bad token) will not pass on a retry either.
            failure = _failure("TrainingSetupError", error, isinstance(error, FlywheelError))
    _write_json(folder / "error.json", failure)
    return EXIT_FAILED


def main(argv: Optional[List[str]] = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m flywheel._child <attempt folder>", file=sys.stderr)
        sys.exit(2)
    code = run(Path(args[0]))
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
