"""Talks to mlserve with the official Triton HTTP client (tritonclient.http), as users would.

Usage: triton_client.py HOST:PORT
Prints one JSON object with what the client saw; the Rust test checks it. Exits non-zero if
the client raises where it should not.
"""
import json
import sys

import numpy as np
import tritonclient.http as http
from tritonclient.utils import InferenceServerException

url = sys.argv[1]
client = http.InferenceServerClient(url=url)
out = {
    "live": client.is_server_live(),
    "ready": client.is_server_ready(),
    "model_ready": client.is_model_ready("iris"),
    "server": client.get_server_metadata(),
    "metadata": client.get_model_metadata("iris"),
}

rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.9, 3.1, 5.4, 2.1], [5.9, 3.0, 4.2, 1.5]], dtype=np.float32)


def infer(binary_in, binary_out, outputs=True, dtype=np.float32):
    tensor = http.InferInput("input", list(rows.shape), "FP32" if dtype == np.float32 else "FP64")
    tensor.set_data_from_numpy(rows.astype(dtype), binary_data=binary_in)
    requested = None
    if outputs:
        requested = [
            http.InferRequestedOutput("label", binary_data=binary_out),
            http.InferRequestedOutput("probabilities", binary_data=binary_out),
        ]
    result = client.infer("iris", [tensor], outputs=requested, request_id="req-7")
    labels = [x.decode() if isinstance(x, bytes) else x for x in result.as_numpy("label").tolist()]
    return {
        "labels": labels,
        "probabilities": result.as_numpy("probabilities").tolist(),
        "id": result.get_response().get("id"),
    }


out["binary_default"] = infer(True, True)
out["json"] = infer(False, False)
out["binary_in_json_out"] = infer(True, False, dtype=np.float64)
out["all_outputs_binary"] = infer(True, True, outputs=False)

# Per-feature tensors and classification.
inputs = []
for index, name in enumerate(["sepal_length", "sepal_width", "petal_length", "petal_width"]):
    tensor = http.InferInput(name, [3], "FP64")
    tensor.set_data_from_numpy(rows[:, index].astype(np.float64))
    inputs.append(tensor)
result = client.infer("iris", inputs, outputs=[http.InferRequestedOutput("probabilities", class_count=1)])
out["per_feature_top1"] = [x.decode() for x in result.as_numpy("probabilities").reshape(-1).tolist()]

# Explanations: the request parameter explain, the output contributions [N, C, F + 1], binary.
tensor = http.InferInput("input", list(rows.shape), "FP32")
tensor.set_data_from_numpy(rows)
result = client.infer(
    "iris",
    [tensor],
    outputs=[http.InferRequestedOutput("probabilities"), http.InferRequestedOutput("contributions")],
    parameters={"explain": True},
)
out["explained"] = {
    "probabilities": result.as_numpy("probabilities").tolist(),
    "contributions": result.as_numpy("contributions").tolist(),
}

# Errors the client reports.
errors = {}
bad = http.InferInput("input", [1, 3], "FP32")
bad.set_data_from_numpy(np.array([[1.0, 2.0, 3.0]], dtype=np.float32))
try:
    client.infer("iris", [bad])
except InferenceServerException as error:
    errors["shape"] = {"status": error.status(), "message": error.message()}
unknown = http.InferInput("petals", [1], "FP32")
unknown.set_data_from_numpy(np.array([1.0], dtype=np.float32))
try:
    client.infer("iris", [unknown])
except InferenceServerException as error:
    errors["unknown_input"] = {"status": error.status(), "message": error.message()}
try:
    client.get_model_metadata("nope")
except InferenceServerException as error:
    errors["unknown_model"] = {"status": error.status(), "message": error.message()}
out["errors"] = errors

# Model repository extension.
out["index"] = client.get_model_repository_index()
client.unload_model("iris")
out["ready_after_unload"] = client.is_model_ready("iris")
client.load_model("iris")
out["ready_after_load"] = client.is_model_ready("iris")

print(json.dumps(out))
