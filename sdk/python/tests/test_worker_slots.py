"""The worker's GPU slots and metrics, no server needed: device ids from --gpus / FLYWHEEL_GPU_DEVICES / nvidia-smi,
one slot per device handed out and given back however an attempt ends, and /metrics from Temporal's runtime with
Flywheel's series under the TypeScript workers' names."""

from __future__ import annotations

import asyncio
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import List

import pytest

from flywheel._slots import DeviceSlots, detect_devices, parse_devices
from flywheel.worker import QUEUES, parse_options, startup_line

ENV = {"FLYWHEEL_TOKEN": "fw_write_secret"}
NVIDIA_SMI = """GPU 0: NVIDIA H200 (UUID: GPU-5d3c0b6a-1111-2222-3333-444455556666)
GPU 1: NVIDIA H200 (UUID: GPU-0a1b2c3d-1111-2222-3333-444455556666)
  MIG 1g.18gb     Device  0: (UUID: MIG-9f8e7d6c-1111-2222-3333-444455556666)
"""


def test_device_ids_parse_and_bad_lists_are_refused_naming_where_they_came_from() -> None:
    assert parse_devices("0,1") == ["0", "1"]
    assert parse_devices(" 2 , 0 ") == ["2", "0"]
    assert parse_devices("GPU-5d3c0b6a-1111-2222,MIG-9f8e7d6c-1111") == ["GPU-5d3c0b6a-1111-2222", "MIG-9f8e7d6c-1111"]
    with pytest.raises(ValueError, match="--gpus names no device"):
        parse_devices(" , ")
    with pytest.raises(ValueError, match="FLYWHEEL_GPU_DEVICES: 'cuda:1' is not a device id"):
        parse_devices("0,cuda:1", "FLYWHEEL_GPU_DEVICES")
    with pytest.raises(ValueError, match="names device 1 twice"):
        parse_devices("1,0,1")


def test_detected_devices_are_the_gpus_nvidia_smi_lists_and_none_without_it() -> None:
    assert detect_devices(lambda: NVIDIA_SMI) == ["0", "1"]

    def missing() -> str:
        raise FileNotFoundError("nvidia-smi")

    assert detect_devices(missing) == []


def test_each_slot_owns_one_device_until_given_back() -> None:
    slots = DeviceSlots(["0", "1"])
    assert slots.take() == "0"
    assert slots.take() == "1"
    assert slots.take() is None
    slots.give_back("0")
    assert slots.busy == ["1"]
    assert slots.take() == "0"
    with pytest.raises(ValueError, match="device 3 is not taken"):
        slots.give_back("3")
    with pytest.raises(ValueError, match="at least one device"):
        DeviceSlots([])


def test_a_device_is_freed_when_its_attempt_fails_or_is_cancelled_and_a_waiting_attempt_gets_it() -> None:
    async def scenario() -> List[str]:
        slots = DeviceSlots(["0", "1"])
        seen: List[str] = []
        hold = asyncio.Event()

        async def attempt(fail: bool = False) -> None:
            async with slots.device() as device:
                seen.append(device)
                await hold.wait()
                if fail:
                    raise RuntimeError("diverged")

        running = asyncio.ensure_future(attempt())
        failing = asyncio.ensure_future(attempt(fail=True))
        await asyncio.sleep(0)
        assert sorted(seen) == ["0", "1"] and sorted(slots.busy) == ["0", "1"]
        waiting = asyncio.ensure_future(attempt())  # a third attempt waits for a device
        await asyncio.sleep(0)
        assert len(seen) == 2
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        await asyncio.sleep(0)
        assert seen[2] == "0"  # the cancelled attempt's device went to the waiting one
        hold.set()
        with pytest.raises(RuntimeError, match="diverged"):
            await failing
        await waiting
        assert slots.busy == []
        return seen

    assert asyncio.run(scenario()) == ["0", "1", "0"]


def test_a_gpu_queue_runs_one_attempt_per_device_from_the_flag_the_environment_or_the_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = ["--path", str(tmp_path)]
    options = parse_options(["--queue", "gpu", "--gpus", "0,1", *root], ENV, detect=lambda: ["0"])
    assert options.queue == QUEUES["gpu"] and options.devices == ("0", "1") and options.max_concurrent == 2
    assert "one attempt per GPU: 0,1" in startup_line(options, "http://127.0.0.1:9464/metrics")
    from_env = parse_options(["--queue", "gpu", *root], {**ENV, "FLYWHEEL_GPU_DEVICES": "3"}, detect=lambda: ["0"])
    assert from_env.devices == ("3",) and from_env.max_concurrent == 1
    detected = parse_options(["--queue", "gpu", *root], ENV, detect=lambda: ["0", "1", "2"])
    assert detected.devices == ("0", "1", "2") and detected.max_concurrent == 3
    no_gpu = parse_options(["--queue", "gpu", *root], ENV, detect=lambda: [])
    assert no_gpu.devices == () and no_gpu.max_concurrent == 1
    assert "no GPU found" in startup_line(no_gpu)
    # A CPU queue owns no device, whatever the environment says.
    cpu = parse_options(root, {**ENV, "FLYWHEEL_GPU_DEVICES": "0,1"}, detect=lambda: ["0"])
    assert cpu.devices == () and cpu.max_concurrent == 1

    for argv, message in [
        (["--gpus", "0,1"], "--gpus applies to a GPU queue"),
        (["--queue", "gpu", "--gpus", "0,0"], "names device 0 twice"),
        (["--queue", "gpu", "--gpus", "0,1", "--max-concurrent", "4"], "--max-concurrent 4 does not apply"),
    ]:
        with pytest.raises(SystemExit):
            parse_options([*argv, *root], ENV, detect=lambda: [])
        assert message in capsys.readouterr().err


def test_metrics_port_and_host_come_from_the_flag_or_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = ["--path", str(tmp_path)]
    assert parse_options(root, ENV).metrics_port == 0
    assert parse_options(root, ENV).metrics_host == "127.0.0.1"
    env = {**ENV, "FLYWHEEL_WORKER_METRICS_PORT": "9464", "FLYWHEEL_WORKER_METRICS_HOST": "0.0.0.0"}
    assert (parse_options(root, env).metrics_port, parse_options(root, env).metrics_host) == (9464, "0.0.0.0")
    assert parse_options(["--metrics-port", "9500", *root], env).metrics_port == 9500
    with pytest.raises(SystemExit):
        parse_options(root, {**ENV, "FLYWHEEL_WORKER_METRICS_PORT": "http"})
    assert "FLYWHEEL_WORKER_METRICS_PORT is a port number" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_options(["--metrics-port", "70000", *root], ENV)
    assert "0 (a free one) to 65535" in capsys.readouterr().err


def test_metrics_are_served_by_temporals_runtime_under_the_typescript_workers_names() -> None:
    pytest.importorskip("temporalio")
    from flywheel._metrics import MetricsUnavailable, queue_wait_seconds, start_metrics

    now = datetime.now(timezone.utc)
    assert queue_wait_seconds(now - timedelta(seconds=2), now) == 2.0
    assert queue_wait_seconds(now + timedelta(seconds=1), now) == 0.0  # clocks differ: never negative
    assert queue_wait_seconds(None, now) == 0.0

    metrics = start_metrics("127.0.0.1", 0)
    assert metrics.url.startswith("http://127.0.0.1:") and metrics.url.endswith("/metrics")
    metrics.attempt_started("trainPython", "team-python-gpu", datetime.now(timezone.utc) - timedelta(milliseconds=30))
    metrics.attempt_ended("trainPython", "completed", 1.5)
    metrics.attempt_ended("trainPython", "cancelled", 0.2)
    text = urllib.request.urlopen(metrics.url, timeout=10).read().decode()
    assert "# TYPE flywheel_stage_duration_seconds histogram" in text
    assert 'flywheel_stage_duration_seconds_bucket{outcome="completed",stage="trainPython",le="2.5"} 1' in text
    assert 'flywheel_stage_duration_seconds_bucket{outcome="completed",stage="trainPython",le="1"} 0' in text
    assert 'flywheel_stage_duration_seconds_count{outcome="cancelled",stage="trainPython"} 1' in text
    assert "# TYPE flywheel_activity_queue_wait_seconds histogram" in text
    labels = 'activity_type="trainPython",task_queue="team-python-gpu"'
    assert f'flywheel_activity_queue_wait_seconds_bucket{{{labels},le="0.025"}} 0' in text  # waited ≥ 30 ms
    assert f'flywheel_activity_queue_wait_seconds_bucket{{{labels},le="+Inf"}} 1' in text
    assert f"flywheel_activity_queue_wait_seconds_count{{{labels}}} 1" in text
    assert "service_name" not in text

    port = int(metrics.url.rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(MetricsUnavailable, match=f"metrics on 127.0.0.1:{port}: .*in use"):
        start_metrics("127.0.0.1", port)
