"""Demand: a PyTorch MLP on price, promotion and calendar features; checkpointed every epoch, exported to ONNX."""
import torch
from torch import nn

import flywheel.onnx


def fit(ctx):
    torch.manual_seed(ctx.seed)
    p = ctx.params
    x, y = (torch.from_numpy(a).float().to(ctx.device) for a in ctx.xy("train"))
    xv, yv = (torch.from_numpy(a).float().to(ctx.device) for a in ctx.xy("validation"))
    # Inputs standardised and the output scaled back to units inside the network: the ONNX model takes raw features.
    scale_in = Affine(-x.mean(0) / x.std(0).clamp_min(1e-6), 1 / x.std(0).clamp_min(1e-6))
    hidden = nn.Sequential(nn.Linear(x.shape[1], p["hidden"]), nn.ReLU(), nn.Linear(p["hidden"], 1))
    net = nn.Sequential(scale_in, hidden, Affine(y.mean(), y.std())).to(ctx.device)
    opt = torch.optim.Adam(net.parameters(), lr=p["lr"])
    if (saved := ctx.load_checkpoint()) is not None:
        net.load_state_dict(saved[1]["net"]), opt.load_state_dict(saved[1]["opt"])
    for epoch in range(ctx.start_step, p["epochs"]):
        for batch in torch.randperm(len(x), device=ctx.device).split(p["batch_size"]):
            opt.zero_grad()
            loss = nn.functional.mse_loss(net(x[batch]).squeeze(1), y[batch])
            loss.backward(), opt.step()
            ctx.heartbeat()
        with torch.no_grad():
            val = nn.functional.mse_loss(net(xv).squeeze(1), yv).item()
        ctx.log_metrics({"loss": loss.item(), "val_loss": val}, step=epoch + 1)
        ctx.save_checkpoint(epoch, {"net": net.state_dict(), "opt": opt.state_dict()})
    ctx.save_model(*flywheel.onnx.from_torch(net, ctx, kind="value"))


class Affine(nn.Module):
    def __init__(self, shift, scale):
        super().__init__()
        self.register_buffer("shift", shift), self.register_buffer("scale", scale)

    def forward(self, x):
        return x * self.scale + self.shift
