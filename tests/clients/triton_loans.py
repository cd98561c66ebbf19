"""Sends the loans rows to an imported ONNX model with the official Triton HTTP client:
text columns as BYTES tensors, missing incomes as NaN in binary FP32 tensors.

Usage: triton_loans.py HOST:PORT ROWS.json
Prints one JSON object with the probabilities the client got per row; the Rust test compares
them with scikit-learn's.
"""
import json
import sys

import numpy as np
import tritonclient.http as http
from tritonclient.utils import InferenceServerException

client = http.InferenceServerClient(url=sys.argv[1])
with open(sys.argv[2]) as source:
    rows = json.load(source)


def tensors(chosen, binary):
    def column(name, dtype):
        values = [rows[i][name] for i in chosen]
        if dtype == "BYTES":
            array = np.array(values, dtype=object).reshape(-1, 1)
        else:
            array = np.array([np.nan if v is None else v for v in values], dtype=np.float32).reshape(-1, 1)
        tensor = http.InferInput(name, list(array.shape), dtype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        return tensor

    return [column("age", "FP32"), column("income", "FP32"), column("plan", "BYTES"), column("region", "BYTES")]


def infer(chosen, binary):
    result = client.infer(
        "loans",
        tensors(chosen, binary),
        outputs=[http.InferRequestedOutput("probabilities", binary_data=binary)],
    )
    probabilities = result.as_numpy("probabilities").tolist()
    return [{"row": row, "probabilities": p} for row, p in zip(chosen, probabilities)]


out = {
    "binary": infer(list(range(len(rows))), True),
    # JSON has no NaN: the rows without a missing income.
    "json_without_missing": infer([i for i, r in enumerate(rows) if r["income"] is not None], False),
}
rows.append({"age": 40.0, "income": 50000.0, "plan": "gold", "region": "east"})
try:
    infer([len(rows) - 1], True)
except InferenceServerException as error:
    out["unknown_category"] = {"status": error.status(), "message": error.message()}
print(json.dumps(out))
