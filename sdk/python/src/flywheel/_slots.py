"""GPU devices of a ``flywheel-worker`` on a GPU queue: which devices it owns (``--gpus`` / FLYWHEEL_GPU_DEVICES, else
what ``nvidia-smi -L`` lists) and the slots training attempts take, one device each, for as long as the attempt runs.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable, List, Optional, Sequence

#: What CUDA_VISIBLE_DEVICES accepts: an index, or a GPU / MIG UUID as ``nvidia-smi -L`` prints it.
_DEVICE_ID = re.compile(r"^(\d+|(GPU|MIG)-[0-9A-Za-z/-]+)$")
_LISTED_GPU = re.compile(r"^GPU (\d+):")


def parse_devices(text: str, source: str = "--gpus") -> List[str]:
    """``"0,1"`` to ``["0", "1"]``; an empty list, a malformed or a repeated id raises ValueError naming ``source``."""
    ids = [part.strip() for part in text.split(",")]
    if not any(ids):
        raise ValueError(f"{source} names no device: give device ids such as 0,1")
    for device in ids:
        if not _DEVICE_ID.match(device):
            raise ValueError(
                f"{source}: {device!r} is not a device id (CUDA_VISIBLE_DEVICES ids: 0, 1, … or GPU-<uuid>)"
            )
    repeated = sorted({device for device in ids if ids.count(device) > 1})
    if repeated:
        raise ValueError(f"{source} names device {repeated[0]} twice: each slot owns its own device")
    return ids


def detect_devices(list_gpus: Optional[Callable[[], str]] = None) -> List[str]:
    """The indexes ``nvidia-smi -L`` lists (``GPU 0: …``); none when it is missing or fails."""

    def nvidia_smi() -> str:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True)
        return listed.stdout

    try:
        text = (list_gpus or nvidia_smi)()
    except (OSError, subprocess.SubprocessError):
        return []
    return [match.group(1) for match in map(_LISTED_GPU.match, text.splitlines()) if match]


class DeviceSlots:
    """One slot per device. An attempt takes the first free device (in the order given) and gives it back when it ends,
    however it ends; with every device busy it waits (Temporal's concurrency limit, one attempt per device, keeps that
    from happening: it guards against a slot handed out twice)."""

    def __init__(self, devices: Sequence[str]) -> None:
        if not devices:
            raise ValueError("a GPU worker needs at least one device")
        self.devices = tuple(devices)
        self._busy: List[str] = []
        self._free: Optional[asyncio.Semaphore] = None

    def take(self) -> Optional[str]:
        """The first free device, now busy; None when all are busy."""
        for device in self.devices:
            if device not in self._busy:
                self._busy.append(device)
                return device
        return None

    def give_back(self, device: str) -> None:
        if device not in self._busy:
            raise ValueError(f"device {device} is not taken (devices: {', '.join(self.devices)})")
        self._busy.remove(device)

    @property
    def busy(self) -> List[str]:
        return list(self._busy)

    @asynccontextmanager
    async def device(self) -> AsyncIterator[str]:
        """A device for the length of the ``async with`` block."""
        if self._free is None:  # made on first use, inside the worker's event loop
            self._free = asyncio.Semaphore(len(self.devices))
        await self._free.acquire()
        device = self.take()
        assert device is not None, "the semaphore counts free devices"
        try:
            yield device
        finally:  # synchronous: a second cancellation arriving here cannot keep the device
            self.give_back(device)
            self._free.release()
