"""bench:train-python's training function: examples/demand-torch/train.py's ``fit`` with torch's thread count pinned.

Both sides of the bench call this very function: Flywheel's Python worker as the entrypoint ``demand_fit.py:fit``
(code root bench/python), and bench/python/train_plain.py directly with a stand-in context. ``ctx.params["threads"]``
(default 1) goes to ``torch.set_num_threads`` before the example's own code runs, so both sides use the same threads.
"""
import importlib.util
from pathlib import Path

import torch

_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "demand-torch" / "train.py"
_spec = importlib.util.spec_from_file_location("bench_demand_torch_example", _EXAMPLE)
assert _spec is not None and _spec.loader is not None, f"cannot load {_EXAMPLE}"
example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(example)


def fit(ctx):
    torch.set_num_threads(int(ctx.params.get("threads", 1)))
    return example.fit(ctx)
