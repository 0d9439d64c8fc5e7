"""bench:serve's Python peer: the deployed Flywheel model served the way a Python team would, FastAPI + uvicorn.

Started by bench/serve.ts as `/usr/bin/python3 bench/serve_fastapi.py <model.json> <port>`; the bench stops it.

<model.json> (written by the bench from the model Flywheel serves): name, version, the fitted preprocessor (numeric
means/stds, categorical vocabularies, target mean/std) and the dense layers' kernels, biases and activations. The
same weights go into a scikit-learn MLPRegressor (coefs_/intercepts_), so both servers run the very same network of
the very same size, and the same preprocessing: numerics standardised (null → mean, i.e. 0), categoricals one-hot
over the training vocabulary (unknown or null → all zeros), the prediction scaled back to the target's units.

The contract is Flywheel's: POST /predict {"model", "instances": [{feature: value, ...}, ...]} → 200 {model, version,
request_id, predictions}; `x-request-id` sets request_id. Request validation is pydantic's (every feature required,
numbers for numerics, unknown fields refused with 422), as Flywheel's encodeInstance does. GET /health answers
{"live": true}. uvicorn runs one worker (Flywheel's server is one Node process) on uvloop + httptools (what
`uvicorn[standard]` installs), access log off. Nothing is logged per prediction.
"""
import json
import sys
import uuid
from typing import Any, List, Optional

import numpy as np
import pydantic
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, conlist, create_model
from sklearn.neural_network import MLPRegressor

spec = json.load(open(sys.argv[1]))
port = int(sys.argv[2])
http = sys.argv[3] if len(sys.argv) > 3 else "httptools"
loop = sys.argv[4] if len(sys.argv) > 4 else "uvloop"

NAME = spec["name"]
VERSION = spec["version"]
pre = spec["preprocessor"]
if pre["target"]["task"] != "regression":
    sys.exit("serve_fastapi.py serves regression models only")
NUMERIC = [n["name"] for n in pre["numeric"]]
MEANS = np.array([n["mean"] for n in pre["numeric"]], dtype=np.float64)
STDS = np.array([n["std"] for n in pre["numeric"]], dtype=np.float64)
CATEGORICAL = []
offset = len(NUMERIC)
for c in pre["categorical"]:
    CATEGORICAL.append((c["name"], {v: i for i, v in enumerate(c["vocabulary"])}, offset))
    offset += len(c["vocabulary"])
WIDTH = offset
TARGET = pre["target"]

# The network: Flywheel's dense layers, weights copied into scikit-learn's MLP.
layers = spec["layers"]
ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic", "linear": "identity"}
hidden = [l["shape"][1] for l in layers[:-1]]
hidden_activations = {l["activation"] for l in layers[:-1]}
if not hidden or len(hidden_activations) > 1 or layers[-1]["activation"] != "linear" or layers[-1]["shape"][1] != 1:
    sys.exit(f"unsupported layer stack: {[(l['shape'], l['activation']) for l in layers]}")
mlp = MLPRegressor(hidden_layer_sizes=tuple(hidden), activation=ACTIVATIONS[hidden_activations.pop()])
mlp.partial_fit(np.zeros((2, WIDTH)), np.zeros(2))  # sets the fitted attributes; the weights are replaced below
mlp.coefs_ = [np.asarray(l["kernel"], dtype=np.float64).reshape(l["shape"]) for l in layers]
mlp.intercepts_ = [np.asarray(l["bias"], dtype=np.float64) for l in layers]
if mlp.coefs_[0].shape[0] != WIDTH:
    sys.exit(f"first kernel has {mlp.coefs_[0].shape[0]} inputs, the preprocessor {WIDTH} features")

# Every feature required (null allowed, as Flywheel allows it), the target optional, anything else refused.
fields = {name: (Optional[float], ...) for name in NUMERIC}
fields.update({name: (Optional[str], ...) for name, _, _ in CATEGORICAL})
fields[TARGET["name"]] = (Optional[Any], None)


class Forbid:
    extra = pydantic.Extra.forbid


Instance = create_model("Instance", __config__=Forbid, **fields)


class PredictRequest(BaseModel):
    model: Optional[str] = None
    version: Optional[int] = None
    instances: conlist(Instance, min_items=1, max_items=10_000)


def encode(instances: List[BaseModel]) -> np.ndarray:
    n = len(instances)
    x = np.zeros((n, WIDTH), dtype=np.float64)
    rows = [i.__dict__ for i in instances]
    numeric = np.array([[r[name] for name in NUMERIC] for r in rows], dtype=np.float64)  # None → nan
    x[:, : len(NUMERIC)] = np.nan_to_num((numeric - MEANS) / STDS, nan=0.0)
    hot_rows, hot_cols = [], []
    for name, lookup, off in CATEGORICAL:
        for r, row in enumerate(rows):
            index = lookup.get(row[name])
            if index is not None:
                hot_rows.append(r)
                hot_cols.append(off + index)
    x[hot_rows, hot_cols] = 1.0
    return x


app = FastAPI()


@app.get("/health")
async def health():
    return {"live": True}


@app.post("/predict")
async def predict(body: PredictRequest, x_request_id: Optional[str] = Header(None)):
    if body.model is not None and body.model != NAME:
        raise HTTPException(status_code=404, detail=f"model {body.model} is not deployed here (serving: {NAME})")
    if body.version is not None and body.version != VERSION:
        raise HTTPException(status_code=404, detail=f"model {NAME} has no version {body.version} here")
    scaled = mlp.predict(encode(body.instances))
    values = (scaled * TARGET["std"] + TARGET["mean"]).tolist()
    return {"model": NAME, "version": VERSION, "request_id": x_request_id or str(uuid.uuid4()), "predictions": values}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, http=http, loop=loop, log_level="warning", access_log=False)
