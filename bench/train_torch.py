"""bench:train, the PyTorch peer: the same MLP on the same encoded matrices as Flywheel's fitModel.

Usage: python3 bench/train_torch.py <data dir> <epochs> <threads>   (threads 0 = leave PyTorch's default)

<data dir> holds meta.json ({train_rows, validation_rows, width}) and little-endian float32 row-major files
x_train.f32, y_train.f32, x_val.f32, y_val.f32 written by bench/train.ts: the training and validation rows after
Flywheel's own preprocessing (standardised features, scaled target), so both sides train on identical numbers.

Model and loop, mirroring training/fit.ts + training/model.ts: Linear(w,64) ReLU Linear(64,64) ReLU Linear(64,1),
Glorot-uniform kernels and zero biases (Keras' defaults), Adam(lr 0.001, betas 0.9/0.999, eps 1e-7 as TF.js), MSE,
batch 256 including the last partial batch; per epoch a seeded shuffle (one gather of the whole matrix, as fitModel
does), the minibatch loop, then the validation loss under no_grad.

Timed: the whole epoch loop (shuffle + batches + validation loss), from the first epoch to the last; not the
interpreter start, the import of torch or reading the files. Prints one JSON line on stdout.
"""
import json
import os
import sys
import time

import numpy as np
import torch


def main() -> None:
    data_dir, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    default_threads = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    torch.manual_seed(42)

    with open(os.path.join(data_dir, "meta.json")) as f:
        meta = json.load(f)
    n, nv, width = meta["train_rows"], meta["validation_rows"], meta["width"]

    def load(name: str, rows: int, cols: int) -> torch.Tensor:
        array = np.fromfile(os.path.join(data_dir, name), dtype="<f4")
        assert array.size == rows * cols, f"{name}: {array.size} values, expected {rows} x {cols}"
        return torch.from_numpy(array.reshape(rows, cols).copy())

    x_train, y_train = load("x_train.f32", n, width), load("y_train.f32", n, 1)
    x_val, y_val = load("x_val.f32", nv, width), load("y_val.f32", nv, 1)

    model = torch.nn.Sequential(
        torch.nn.Linear(width, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 1),
    )
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = torch.nn.MSELoss()
    batch = 256
    generator = torch.Generator().manual_seed(42)

    epoch_seconds, losses, val_losses = [], [], []
    started = time.perf_counter()
    last = started
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        x, y = x_train[order], y_train[order]
        model.train()
        total, seen = 0.0, 0
        for start in range(0, n, batch):
            xb, yb = x[start:start + batch], y[start:start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * xb.shape[0]
            seen += xb.shape[0]
        model.eval()
        with torch.no_grad():
            val_losses.append(loss_fn(model(x_val), y_val).item() if nv > 0 else float("nan"))
        losses.append(total / seen)
        now = time.perf_counter()
        epoch_seconds.append(now - last)
        last = now
    seconds = time.perf_counter() - started

    print(json.dumps({
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "default_threads": default_threads,
        "train_rows": n,
        "validation_rows": nv,
        "epochs": epochs,
        "seconds": seconds,
        "epoch_seconds": epoch_seconds,
        "loss": losses,
        "val_loss": val_losses,
    }))


if __name__ == "__main__":
    main()
