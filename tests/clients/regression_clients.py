"""Calls models that predict a number with the official clients, as users would: Triton's
HTTP client (tritonclient.http) and KServe's SDK (kserve.InferenceRESTClient, V2 and V1).

Usage: regression_clients.py HOST:PORT MODEL[,MODEL…] ROWS_JSON
ROWS_JSON is a list of rows, each the feature values in schema order (the same for every model).
Prints one JSON object, per model what each client decoded; the Rust test checks it. Exits
non-zero if a client raises.
"""
import asyncio
import json
import sys

import numpy as np
import tritonclient.http as http
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput

url, models, rows = sys.argv[1], sys.argv[2].split(","), np.array(json.loads(sys.argv[3]), dtype=np.float64)
base = "http://" + url
out = {model: {} for model in models}

triton = http.InferenceServerClient(url=url)
for model in models:
    seen = out[model]
    seen["triton_metadata"] = triton.get_model_metadata(model)
    for binary in (True, False):
        tensor = http.InferInput("input", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows, binary_data=binary)
        result = triton.infer(
            model, [tensor], outputs=[http.InferRequestedOutput("prediction", binary_data=binary)]
        )
        values = result.as_numpy("prediction")
        seen["triton_binary" if binary else "triton_json"] = {
            "dtype": str(values.dtype),
            "shape": list(values.shape),
            "values": values.tolist(),
        }
    tensor = http.InferInput("input", list(rows.shape), "FP64")
    tensor.set_data_from_numpy(rows)
    result = triton.infer(model, [tensor])
    seen["triton_default_outputs"] = [o["name"] for o in result.get_response()["outputs"]]


async def kserve():
    v2 = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30))
    v1 = InferenceRESTClient(RESTConfig(protocol="v1", retries=0, timeout=30))
    try:
        for model in models:
            seen = out[model]
            request = InferRequest(model, [InferInput("input", list(rows.shape), "FP64", data=rows.tolist())])
            response = await v2.infer(base, request, model_name=model)
            output = response.outputs[0]
            seen["kserve_v2"] = {
                "name": output.name,
                "datatype": output.datatype,
                "shape": list(output.shape),
                "values": output.as_numpy().tolist(),
            }
            tensor = InferInput("input", list(rows.shape), "FP64")
            tensor.set_data_from_numpy(rows)
            request = InferRequest(
                model,
                [tensor],
                request_outputs=[RequestedOutput("prediction", parameters={"binary_data": True})],
            )
            response = await v2.infer(base, request, model_name=model)
            seen["kserve_v2_binary"] = response.outputs[0].as_numpy().tolist()
            seen["kserve_v1"] = await v1.infer(base, {"instances": rows.tolist()}, model_name=model)
    finally:
        await v2.close()
        await v1.close()


asyncio.run(kserve())
print(json.dumps(out))
