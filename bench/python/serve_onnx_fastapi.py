"""bench:serve's ONNX peer: the same ONNX file Flywheel serves, served the way a Python team would, FastAPI + uvicorn
with onnxruntime.

Usage: python serve_onnx_fastapi.py <model.onnx> <signature.json> <name> <version> <port>
(the venv bench/serveOnnx.ts builds: fastapi, uvicorn, uvloop, httptools, onnxruntime, numpy)

The contract is Flywheel's: POST /predict {"model", "instances": [{feature: value, ...}, ...]} → 200 {model, version,
request_id, predictions (class labels), probabilities ([N, classes])}; ``x-request-id`` sets request_id. Request
validation is pydantic's (every feature required, numbers for numeric features, strings for categorical ones, unknown
fields refused with 422). The signature's ``columns`` layout: one [N, 1] input per feature, float32 or string, as
Flywheel's inference/onnx.ts feeds it. The session runs as Flywheel's does: one intra-op and one inter-op thread, all
graph optimisations. One uvicorn worker on uvloop + httptools, access log off; nothing is logged per prediction.
GET /health answers {"live": true}.
"""
import json
import sys
import uuid
from typing import List, Optional

import numpy as np
import onnxruntime as ort
import pydantic
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, Field, create_model

model_path, signature_path, NAME, VERSION, port = sys.argv[1:6]
VERSION = int(VERSION)
signature = json.load(open(signature_path))
if signature["inputs"]["layout"] != "columns" or signature["task"] != "classification":
    sys.exit("serve_onnx_fastapi.py serves classification models with the columns layout")
COLUMNS = [(c["name"], c["type"]) for c in signature["inputs"]["columns"]]
CLASSES = signature["classes"]
OUTPUT = (signature.get("output") or {}).get("name") or "probabilities"

options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
NUMERIC_DTYPE = {i.name: np.float64 if i.type == "tensor(double)" else np.float32 for i in session.get_inputs()}

fields = {name: ((Optional[float] if kind == "numeric" else Optional[str]), ...) for name, kind in COLUMNS}
fields[signature["target"]] = (Optional[str], None)
Instance = create_model("Instance", __config__=pydantic.ConfigDict(extra="forbid"), **fields)


class PredictRequest(BaseModel):
    model: Optional[str] = None
    version: Optional[int] = None
    instances: List[Instance] = Field(min_length=1, max_length=10_000)  # type: ignore[valid-type]


def feed(instances: List[BaseModel]) -> dict:
    n = len(instances)
    out = {}
    for name, kind in COLUMNS:
        values = [getattr(i, name) for i in instances]
        if kind == "numeric":
            out[name] = np.array([np.nan if v is None else v for v in values], dtype=NUMERIC_DTYPE[name]).reshape(n, 1)
        else:
            out[name] = np.array(["" if v is None else v for v in values], dtype=object).reshape(n, 1)
    return out


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
    (probabilities,) = session.run([OUTPUT], feed(body.instances))
    labels = [CLASSES[i] for i in np.argmax(probabilities, axis=1)]
    return {
        "model": NAME,
        "version": VERSION,
        "request_id": x_request_id or str(uuid.uuid4()),
        "predictions": labels,
        "probabilities": probabilities.tolist(),
    }


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        app, host="127.0.0.1", port=int(port), http="httptools", loop="uvloop", log_level="warning", access_log=False
    )
