"""Sends rows to a Flywheel serving process with tritonclient, the OIP v2 client of Triton and KServe users: once with
binary tensor data both ways (the client's default), once as JSON. Run by onnx.test.ts with the served URL, the model
name and a JSON file of the rows ({"tenure": [...], "monthly_charges": [...], "plan": [...]}); prints both answers."""

import json
import sys

import numpy as np
import tritonclient.http as triton


def inputs(rows, binary):
    tensors = []
    for name, datatype in (("tenure", "FP32"), ("monthly_charges", "FP32"), ("plan", "BYTES")):
        values = np.array(rows[name], dtype=np.float32 if datatype == "FP32" else object).reshape(-1, 1)
        if datatype == "BYTES":
            values = np.array([s.encode() for s in rows[name]], dtype=object).reshape(-1, 1)
        tensor = triton.InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        tensors.append(tensor)
    return tensors


def main():
    url, model, rows_file = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(rows_file) as f:
        rows = json.load(f)
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    assert client.is_server_live() and client.is_model_ready(model)
    metadata = client.get_model_metadata(model)
    binary = client.infer(model, inputs(rows, binary=True))  # outputs come back binary too, unless asked otherwise
    as_json = client.infer(
        model, inputs(rows, binary=False), outputs=[triton.InferRequestedOutput("churned", binary_data=False)]
    )
    decode = lambda result: [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("churned").tolist()]
    print(json.dumps({"inputs": [i["name"] for i in metadata["inputs"]], "binary": decode(binary), "json": decode(as_json)}))


if __name__ == "__main__":
    main()
