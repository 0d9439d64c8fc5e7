"""The Python SDK's GPU path on a real CUDA device: a check run by hand on a machine with a GPU and torch, never by
`npm test` (CI has no GPU; tests/integration/gpuSlots.test.ts covers the slots there with device ids only).

    PYTHONPATH=sdk/python/src python3 tests/device/cuda_torch.py [--rows N] [--epochs N]

It checks, on the GPU:
1. the worker's devices: ``detect_devices`` reads the real ``nvidia-smi -L``; ``parse_devices`` takes both its index
   and its UUID; a slot's training process (CUDA_VISIBLE_DEVICES=<id>, as ``flywheel-worker --gpus`` starts it) sees
   exactly that one device and ``choose_device`` picks "cuda"; a slot naming a device that is not there trains on the
   CPU and says so;
2. examples/demand-torch/train.py, the example's own ``fit``, on "cuda" in a ``TrainingContext``: an attempt that dies
   after its second checkpoint, a retry on the GPU that resumes from it (``load_checkpoint`` maps the saved CUDA
   tensors and optimiser state back onto the device), and a retry on a CPU worker that resumes from the same
   checkpoint;
3. ``flywheel.onnx.from_torch`` exporting the module while it lives on the GPU, with the torch version there, by the
   TorchScript exporter (the default) and by ``exporter="dynamo"``; each ONNX model, scored by onnxruntime on the CPU,
   matches the module on the GPU, and the example's r2 gate holds.

The run's server side (metrics, artifacts) is a folder here: ``FolderClient`` answers the handful of calls that
``TrainingContext`` makes, so that the check needs no Flywheel server, Postgres or S3 on the GPU machine. Everything
between the user's code and those calls is the SDK's own. Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from flywheel._errors import FlywheelError
from flywheel._slots import DeviceSlots, detect_devices, parse_devices
from flywheel.training import TrainingContext

FEATURES = ["price", "promo", "is_holiday", "day_of_week", "month"]


class FolderClient:
    """Runs' metrics, tags and artifacts in a local folder (``<root>/<run id>/<artifact path>``), for the calls that
    ``TrainingContext`` makes."""

    url = "folder:"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.metrics: Dict[str, List[Tuple[str, float, int]]] = {}
        self.tags: Dict[str, Dict[str, str]] = {}

    def download_artifact(self, artifact_path: str, dst_path: Any, *, run_id: Optional[str] = None) -> Path:
        source = self.root / str(run_id) / artifact_path
        if not source.is_file():
            raise FlywheelError("RESOURCE_DOES_NOT_EXIST", f"{artifact_path} not found", 404)
        shutil.copyfile(source, dst_path)
        return Path(dst_path)

    def _artifact_root(self, run_id: str) -> Tuple[str, str]:
        return "folder", run_id

    def _upload(self, root: str, path: Path, destination: str) -> None:
        target = self.root / root / destination
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)

    def get_run(self, run_id: str) -> Any:
        return SimpleNamespace(metrics={key: value for key, value, _ in self.metrics.get(run_id, [])})

    def _request(self, method: str, path: str, params: Dict[str, Any]) -> Dict[str, Any]:
        assert method == "GET" and path.endswith("/metrics/get-history"), path
        logged = self.metrics.get(params["run_id"], [])
        return {"metrics": [{"key": k, "value": v, "step": s} for k, v, s in logged if k == params["metric_key"]]}

    def log_metrics(self, metrics: Dict[str, Any], step: int, *, run_id: str) -> None:
        self.metrics.setdefault(run_id, []).extend((key, float(value), step) for key, value in metrics.items())

    def flush(self, run_id: str) -> None:
        pass

    def set_tags(self, tags: Dict[str, str], *, run_id: str) -> None:
        self.tags.setdefault(run_id, {}).update(tags)

    def copy_run(self, source: str, target: str) -> None:
        """A second run with the first one's artifacts and metrics so far."""
        shutil.copytree(self.root / source, self.root / target)
        self.metrics[target] = list(self.metrics.get(source, []))


def demand_csv(path: Path, rows: int, seed: int) -> None:
    """Retail demand rows: units sold fall with price, rise with a promotion, on holidays and at weekends."""
    rng = np.random.default_rng(seed)
    price = rng.uniform(2, 20, rows).round(2)
    promo = rng.integers(0, 2, rows)
    holiday = (rng.random(rows) < 0.05).astype(int)
    day = rng.integers(0, 7, rows)
    month = rng.integers(1, 13, rows)
    units = 120 - 4.5 * price + 25 * promo + 30 * holiday + 12 * (day >= 5) + 6 * np.sin(month / 12 * 2 * np.pi)
    units = np.maximum(0, units + rng.normal(0, 8, rows)).round()
    with open(path, "w") as handle:
        handle.write(",".join(FEATURES + ["units_sold"]) + "\n")
        for row in zip(price, promo, holiday, day, month, units):
            handle.write(",".join(str(v) for v in row) + "\n")


def slot_children(devices: List[str]) -> List[Dict[str, Any]]:
    """What a training process started with CUDA_VISIBLE_DEVICES=<id> sees, for each id."""
    probe = (
        "import json, torch; from flywheel._child import choose_device; d = choose_device(True); "
        "print(json.dumps({'count': torch.cuda.device_count(), 'device': d, "
        "'name': torch.cuda.get_device_name(0) if d == 'cuda' else None}))"
    )
    seen = []
    for device in devices:
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=device)
        done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"CUDA_VISIBLE_DEVICES={device}: the probe failed:\n{done.stderr}")
        seen.append({"visible": device, **json.loads(done.stdout.strip().splitlines()[-1]), "stderr": done.stderr})
    return seen


def check_devices() -> str:
    """Part 1: the worker's devices (``nvidia-smi -L``) and what each slot's training process sees; the GPU's name."""
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=True).stdout
    print(listed.strip())
    devices = detect_devices()
    assert devices and devices[0] == "0", f"detect_devices read {devices!r} from nvidia-smi -L"
    uuid = listed.split("(UUID: ")[1].split(")")[0]
    assert parse_devices(f"0,{uuid}") == ["0", uuid]
    slots = DeviceSlots(devices)
    assert [slots.take() for _ in devices] == devices and slots.take() is None
    seen = slot_children(["0", uuid, str(len(devices))])
    for child in seen:
        print(f"CUDA_VISIBLE_DEVICES={child['visible']}: {child['count']} device(s), trains on {child['device']}")
    assert [c["count"] for c in seen[:2]] == [1, 1] and [c["device"] for c in seen[:2]] == ["cuda", "cuda"], seen
    assert seen[2]["device"] == "cpu" and "torch sees no GPU" in seen[2]["stderr"], seen[2]
    return str(seen[0]["name"])


def activity_input(run_id: str, rows: int, params: Dict[str, Any]) -> Dict[str, Any]:
    """The ``trainPython`` input for the demand example on the dataset cached under content hash "demand"."""
    return {
        "runId": run_id,
        "experimentId": "1",
        "entrypoint": "train.py:fit",
        "params": params,
        "seed": 42,
        "task": "regression",
        "target": "units_sold",
        "features": {"numeric": FEATURES, "categorical": []},
        "dataset": {"versionId": "demand", "contentPath": "unused: cached", "rows": rows, "contentHash": "demand"},
        "splitPath": "flywheel/split.bin",
        "modelName": "demand-torch",
    }


class AttemptDied(BaseException):
    """Stands for a worker killed mid-run: raised right after the attempt's second checkpoint is saved."""


def attempt(
    fit: Any, client: FolderClient, spec: Dict[str, Any], device: str, die_after: int = 0
) -> Tuple[TrainingContext, Any, Optional[str]]:
    """One attempt of ``fit``: its context, the module it exported (None when it died first) and the device of the
    checkpoint's tensors as ``load_checkpoint`` handed them over (None on a fresh start)."""
    import flywheel.onnx

    ctx = TrainingContext.from_input(spec, client, device=device)
    exported: List[Any] = []
    export = flywheel.onnx.from_torch
    load, loaded = ctx.load_checkpoint, [None]

    def load_and_look() -> Any:
        resumed = load()
        if resumed is not None:
            loaded[0] = str(next(iter(resumed[1]["net"].values())).device)
        return resumed

    ctx.load_checkpoint = load_and_look  # type: ignore[method-assign]

    def export_and_keep(module: Any, *args: Any, **kwargs: Any) -> Any:
        exported.append(module)
        return export(module, *args, **kwargs)

    if die_after:
        save, saved = ctx.save_checkpoint, [0]

        def save_then_die(step: int, state: Any) -> None:
            save(step, state)
            saved[0] += 1
            if saved[0] == die_after:
                raise AttemptDied(f"died after checkpoint {step}")

        ctx.save_checkpoint = save_then_die  # type: ignore[method-assign]
    flywheel.onnx.from_torch = export_and_keep
    try:
        fit(ctx)
    except AttemptDied:
        pass
    finally:
        flywheel.onnx.from_torch = export
    return ctx, exported[0] if exported else None, loaded[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--cpu-rehearsal", action="store_true", help="no GPU: parts 2 and 3 with 'cpu' for 'cuda'")
    parser.add_argument("--no-dynamo", action="store_true", help="skip exporter='dynamo' (torch < 2.5, no onnxscript)")
    args = parser.parse_args()
    import onnxruntime
    import torch

    figures: Dict[str, Any] = {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__}
    gpu = "cpu" if args.cpu_rehearsal else "cuda"
    if not args.cpu_rehearsal:
        if not torch.cuda.is_available():
            sys.exit("cuda_torch.py: torch sees no GPU here; run it on a machine with one (or --cpu-rehearsal)")
        figures["gpu"] = check_devices()

    # 2. The example's fit: an attempt on the GPU dies after 2 checkpoints; a GPU retry and a CPU retry resume from
    # them; whole runs on each for the timings.
    work = Path(tempfile.mkdtemp(prefix="flywheel-cuda-"))
    os.environ["FLYWHEEL_CACHE_DIR"] = str(work / "cache")
    csv_path = work / "cache" / "datasets" / "demand.csv"  # where the context looks for content hash "demand"
    csv_path.parent.mkdir(parents=True)
    demand_csv(csv_path, args.rows, seed=7)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "demand-torch"))
    from train import fit  # examples/demand-torch/train.py

    params = {"epochs": args.epochs, "hidden": 64, "lr": 0.003, "batch_size": 512}
    roles = np.random.default_rng(1).choice([0, 1, 2], size=args.rows, p=[0.7, 0.15, 0.15]).astype(np.uint8)
    client = FolderClient(work / "runs")
    for run_id in ("resumed", "gpu-whole", "cpu-whole"):
        split = work / "runs" / run_id / "flywheel" / "split.bin"
        split.parent.mkdir(parents=True)
        split.write_bytes(roles.tobytes())
    plan = [
        ("gpu-died", "resumed", gpu, 2),
        ("gpu-retry", "resumed", gpu, 0),
        ("cpu-retry", "resumed-on-cpu", "cpu", 0),
        ("gpu-whole", "gpu-whole", gpu, 0),
        ("cpu-whole", "cpu-whole", "cpu", 0),
    ]
    timings: Dict[str, float] = {}
    done: Dict[str, Tuple[TrainingContext, Any, Optional[str]]] = {}
    for name, run_id, device, die_after in plan:
        if name == "gpu-retry":  # the CPU retry starts from the same checkpoints as the GPU retry
            client.copy_run("resumed", "resumed-on-cpu")
            index = json.loads((work / "runs" / "resumed" / "checkpoints" / "latest.json").read_text())
            assert index["slots"][str(index["latest"])]["step"] == 1, f"the died attempt's checkpoints: {index}"
        started = time.perf_counter()
        done[name] = attempt(fit, client, activity_input(run_id, args.rows, params), device, die_after)
        if device == "cuda":
            torch.cuda.synchronize()
        timings[name] = round(time.perf_counter() - started, 2)
        ctx, _module, loaded_on = done[name]
        print(
            f"{name} ({device}): start_step {ctx.start_step}, checkpoint loaded on {loaded_on}, "
            f"model saved {ctx.model_saved}, {timings[name]} s"
        )
    assert not done["gpu-died"][0].model_saved
    for name in ("gpu-retry", "cpu-retry"):
        ctx, _module, loaded_on = done[name]
        assert ctx.start_step == 2 and ctx.model_saved, name
        assert loaded_on is not None and loaded_on.startswith(ctx.device), f"{name}: checkpoint loaded on {loaded_on}"
    for run_id in ("resumed", "resumed-on-cpu"):
        steps = sorted(s for k, _, s in client.metrics[run_id] if k == "val_loss")
        assert steps == list(range(1, args.epochs + 1)), f"{run_id}: val_loss logged at steps {steps}"

    # 3. Each exported ONNX model against its module where it was trained, and the example's gate.
    x, y = done["cpu-whole"][0].xy("holdout")  # parsed by the SDK once already, for the example's fit
    r2: Dict[str, float] = {}
    gap: Dict[str, float] = {}
    for name in ("gpu-retry", "cpu-retry", "gpu-whole", "cpu-whole"):
        ctx, module, _loaded = done[name]
        session = onnxruntime.InferenceSession(str(work / "runs" / ctx.run_id / "model" / "model.onnx"))
        predicted = session.run(None, {"input": x})[0].reshape(-1)
        parameter = next(module.parameters())
        assert parameter.device.type == ctx.device, f"{name}: the module is on {parameter.device}"
        with torch.no_grad():
            native = module.eval()(torch.from_numpy(x).to(parameter.device)).reshape(-1).cpu().numpy()
        gap[name] = float(np.abs(predicted - native).max() / max(1.0, float(np.abs(native).max())))
        r2[name] = round(float(1 - ((y - predicted) ** 2).sum() / ((y - y.mean()) ** 2).sum()), 4)
    # The torch.export-based exporter too, from the module where it was trained (needs torch 2.5+ and onnxscript).
    import flywheel.onnx

    ctx, module, _loaded = done["gpu-whole"]
    if not args.no_dynamo:
        dynamo, _signature = flywheel.onnx.from_torch(module, ctx, kind="value", exporter="dynamo")
        predicted = onnxruntime.InferenceSession(dynamo).run(None, {"input": x})[0].reshape(-1)
        with torch.no_grad():
            native = module(torch.from_numpy(x).to(ctx.device)).reshape(-1).cpu().numpy()
        gap["dynamo"] = float(np.abs(predicted - native).max() / max(1.0, float(np.abs(native).max())))
    figures.update({"rows": args.rows, "epochs": args.epochs, "fit_seconds": timings, "holdout_r2": r2})
    figures["onnx_vs_module_max_rel_diff"] = gap
    assert max(gap.values()) < 1e-4, f"ONNX and torch disagree: {gap}"
    assert all(value > 0.3 for value in r2.values()), f"r2 below the example's gate: {r2}"
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
