"""Talks to mlserve with KServe's own Python SDK (kserve.InferenceRESTClient), as users would,
over the Open Inference Protocol V2 (REST) and KServe's V1 protocol.

Usage: kserve_client.py HOST:PORT
Prints one JSON object with what the client saw; the Rust test checks it. Every call is made
even if an earlier one failed: a call that raised where it should not is recorded as
{"raised": ..., "message": ...}, its traceback goes to stderr, and the script exits 1.

The client is async-only (httpx.AsyncClient), hence asyncio.
"""
import asyncio
import json
import sys
import traceback

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.errors import UnsupportedProtocol
from kserve.protocol.infer_type import RequestedOutput

base = "http://" + sys.argv[1]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.9, 3.1, 5.4, 2.1], [5.9, 3.0, 4.2, 1.5]]
failed = []


async def call(name, coroutine):
    """The call's result, or what it raised (recorded as a failure)."""
    try:
        return await coroutine
    except Exception as error:  # noqa: BLE001 - we report whatever the client raises
        failed.append(name)
        print(f"--- {name} raised:", file=sys.stderr)
        traceback.print_exc()
        return {"raised": type(error).__name__, "message": str(error).replace(base, "BASE")}


async def expect_error(coroutine):
    """What the client raises for a call that must fail (an HTTP status error, as a dict)."""
    try:
        result = await coroutine
    except httpx.HTTPStatusError as error:
        response = error.response
        body = None
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
        return {
            "status": response.status_code,
            "content_type": response.headers.get("content-type"),
            "body": body,
            # The client's own message: "{error}, '{status} {reason}' for url '{url}'"; it carries
            # the server's "error" text only when content-type is exactly application/json.
            "message": str(error).replace(base, "BASE"),
        }
    except Exception as error:  # noqa: BLE001
        return {"raised": type(error).__name__, "message": str(error).replace(base, "BASE")}
    return {"no_error": repr(result)}


def response_dict(response):
    """An InferResponse as plain data (outputs decoded by the client itself)."""
    outputs = {}
    for output in response.outputs:
        data = output.as_numpy().tolist()
        outputs[output.name] = {
            "datatype": output.datatype,
            "shape": list(output.shape),
            "data": [x.decode() if isinstance(x, bytes) else x for x in _flat(data)],
        }
    return {
        "model_name": response.model_name,
        "model_version": response.model_version,  # from_bytes never fills it: always None
        "id": response.id,
        "outputs": outputs,
    }


def _flat(data):
    if isinstance(data, list):
        return [y for x in data for y in _flat(x)]
    return [data]


async def v2(out):
    client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30))
    try:
        out["live"] = await call("v2.live", client.is_server_live(base))
        out["ready"] = await call("v2.ready", client.is_server_ready(base))
        out["model_ready"] = await call("v2.model_ready", client.is_model_ready(base, "iris"))
        # V2: is_model_ready returns response.is_success, so an unknown model is False, no raise.
        out["unknown_model_ready"] = await call(
            "v2.unknown_model_ready", client.is_model_ready(base, "nope")
        )

        async def infer(name, request, headers=None):
            seen = {}
            result = await call(
                name,
                client.infer(base, request, model_name="iris", response_headers=seen),
            )
            if isinstance(result, dict):  # raised
                return result
            answer = response_dict(result)
            answer["content_type"] = seen.get("content-type")
            answer["binary"] = "inference-header-content-length" in seen
            return answer

        # JSON in, JSON out: data as a list, default outputs (all of them).
        tensor = InferInput("input", [3, 4], "FP64", data=[x for row in ROWS for x in row])
        out["json"] = await infer("v2.infer_json", InferRequest("iris", [tensor], request_id="req-7"))

        # JSON in with named outputs.
        tensor = InferInput("input", [3, 4], "FP64", data=[x for row in ROWS for x in row])
        request = InferRequest(
            "iris",
            [tensor],
            request_id="req-8",
            request_outputs=[RequestedOutput("label"), RequestedOutput("probabilities")],
        )
        out["json_outputs"] = await infer("v2.infer_json_outputs", request)

        # Binary in (set_data_from_numpy defaults to binary_data=True: the client then sends
        # application/octet-stream with inference-header-content-length), binary out.
        tensor = InferInput("input", [3, 4], "FP32")
        tensor.set_data_from_numpy(np.array(ROWS, dtype=np.float32))
        request = InferRequest(
            "iris",
            [tensor],
            request_id="req-9",
            request_outputs=[
                RequestedOutput("label", parameters={"binary_data": True}),
                RequestedOutput("probabilities", parameters={"binary_data": True}),
            ],
        )
        out["binary"] = await infer("v2.infer_binary", request)

        # Errors the client raises (httpx.HTTPStatusError).
        tensor = InferInput("input", [1, 4], "FP64", data=ROWS[0])
        out["errors"] = {
            "unknown_model": await expect_error(
                client.infer(base, InferRequest("nope", [tensor]), model_name="nope")
            ),
            "bad_shape": await expect_error(
                client.infer(
                    base,
                    InferRequest("iris", [InferInput("input", [1, 3], "FP64", data=[1.0, 2.0, 3.0])]),
                    model_name="iris",
                )
            ),
        }
    finally:
        await client.close()


async def v1(out):
    client = InferenceRESTClient(RESTConfig(protocol="v1", retries=0, timeout=30))
    try:
        # V1 liveness is GET {base}/ and needs {"status": "alive"} (any case).
        out["live"] = await call("v1.live", client.is_server_live(base))
        # V1 has no server readiness: the client raises UnsupportedProtocol without a request.
        try:
            await client.is_server_ready(base)
            out["ready"] = "no error"
        except UnsupportedProtocol as error:
            out["ready"] = {"raised": "UnsupportedProtocol", "message": str(error)}
        out["model_ready"] = await call("v1.model_ready", client.is_model_ready(base, "iris"))
        # V1: 503 -> False; any other non-2xx raises.
        out["unknown_model_ready"] = await expect_error(client.is_model_ready(base, "nope"))
        # V1 infer posts the dict as JSON to /v1/models/iris:predict and returns the parsed JSON.
        instances = [dict(zip(FEATURES, ROWS[0])), ROWS[1], dict(zip(FEATURES, ROWS[2]))]
        out["predict"] = await call(
            "v1.predict", client.infer(base, {"instances": instances}, model_name="iris")
        )
        # V1 explain posts to /v1/models/iris:explain and returns the parsed JSON.
        out["explain"] = await call(
            "v1.explain", client.explain(base, "iris", {"instances": [ROWS[0], ROWS[1]]})
        )
        out["errors"] = {
            "unknown_model": await expect_error(
                client.infer(base, {"instances": [ROWS[0]]}, model_name="nope")
            ),
            "bad_instance": await expect_error(
                client.infer(base, {"instances": [[1.0, 2.0]]}, model_name="iris")
            ),
            "explain_unknown_model": await expect_error(
                client.explain(base, "nope", {"instances": [ROWS[0]]})
            ),
        }
    finally:
        await client.close()


async def main():
    out = {"v2": {}, "v1": {}}
    await v2(out["v2"])
    await v1(out["v1"])
    out["failed"] = failed
    print(json.dumps(out))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
