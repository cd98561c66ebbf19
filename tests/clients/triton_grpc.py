"""Talks to mlserve's gRPC listener with the official clients, as users would: Triton's
(tritonclient.grpc), KServe's (InferenceGRPCClient), and grpcio's health and reflection stubs.

Usage: triton_grpc.py HOST:PORT MODE [KEY]
  MODE main    every RPC, raw and typed contents, BYTES inputs, batches, errors
  MODE health  grpc.health.v1 Check, and server reflection v1alpha and v1
  MODE kserve  KServe's gRPC client (in a process of its own: its generated messages and
               tritonclient's claim the same names in protobuf's default pool)
  MODE auth    with auth on: KEY is a valid API key
Prints one JSON object with what the clients saw; the Rust test checks it. Exits non-zero if a
client raises where it should not.
"""
import asyncio
import json
import sys

import grpc
import numpy as np

if sys.argv[2] != "kserve":
    import tritonclient.grpc as tg
    from tritonclient.utils import InferenceServerException
else:
    InferenceServerException = grpc.RpcError

url, mode = sys.argv[1], sys.argv[2]
out = {}

IRIS = np.array(
    [[5.1, 3.5, 1.4, 0.2], [6.9, 3.1, 5.4, 2.1], [5.9, 3.0, 4.2, 1.5]], dtype=np.float64
)


def refusal(call):
    """The status code and message of a call that must fail."""
    try:
        call()
    except InferenceServerException as error:
        return {"code": error.status(), "message": error.message()}
    except grpc.RpcError as error:
        return {"code": str(error.code()), "message": error.details()}
    raise SystemExit("the call succeeded where it must fail")


def iris_input(dtype=np.float32, rows=IRIS):
    tensor = tg.InferInput("input", list(rows.shape), "FP32" if dtype == np.float32 else "FP64")
    tensor.set_data_from_numpy(rows.astype(dtype))
    return tensor


def answer(result, names):
    seen = {}
    for name in names:
        value = result.as_numpy(name)
        if value.dtype == object:
            value = np.vectorize(lambda x: x.decode())(value)
        seen[name] = value.tolist()
    return seen


def main():
    client = tg.InferenceServerClient(url)
    out["live"] = client.is_server_live()
    out["ready"] = client.is_server_ready()
    out["model_ready"] = client.is_model_ready("iris")
    out["server"] = client.get_server_metadata(as_json=True)
    out["metadata"] = client.get_model_metadata("iris", as_json=True)
    out["churn_metadata"] = client.get_model_metadata("churn", as_json=True)

    # Raw FP32 in (tritonclient's way), every output, the id echoed.
    result = client.infer("iris", [iris_input()], request_id="grpc-7")
    out["raw"] = answer(result, ["label", "label_index", "probabilities"])
    out["raw"]["id"] = result.get_response().id
    out["raw"]["outputs"] = [o.name for o in result.get_response().outputs]
    out["raw"]["version"] = result.get_response().model_version

    # Typed FP64 contents, set on the protobuf (clients of other languages send them).
    typed = tg.InferInput("input", list(IRIS.shape), "FP64")
    typed._get_tensor().contents.fp64_contents.extend(IRIS.reshape(-1).tolist())
    result = client.infer(
        "iris",
        [typed],
        outputs=[tg.InferRequestedOutput("label"), tg.InferRequestedOutput("probabilities")],
    )
    out["typed"] = answer(result, ["label", "probabilities"])
    out["typed"]["outputs"] = [o.name for o in result.get_response().outputs]

    # One tensor per feature, the classification extension.
    inputs = []
    for index, name in enumerate(["sepal_length", "sepal_width", "petal_length", "petal_width"]):
        tensor = tg.InferInput(name, [3], "FP64")
        tensor.set_data_from_numpy(IRIS[:, index].copy())
        inputs.append(tensor)
    result = client.infer(
        "iris", inputs, outputs=[tg.InferRequestedOutput("probabilities", class_count=2)]
    )
    out["top2"] = answer(result, ["probabilities"])["probabilities"]

    # Explanations: the request parameter explain.
    result = client.infer("iris", [iris_input()], parameters={"explain": True})
    out["contributions"] = result.as_numpy("contributions").tolist()

    # BYTES, INT64 and BOOL tensors for a model with text features, raw and typed.
    tenure = tg.InferInput("tenure", [2], "INT64")
    tenure.set_data_from_numpy(np.array([3, 20], dtype=np.int64))
    plan = tg.InferInput("plan", [2], "BYTES")
    plan.set_data_from_numpy(np.array([b"basic", b"pro"], dtype=object))
    senior = tg.InferInput("senior", [2], "BOOL")
    senior.set_data_from_numpy(np.array([True, False]))
    out["churn_raw"] = answer(client.infer("churn", [tenure, plan, senior]), ["label"])["label"]
    matrix = tg.InferInput("input", [2, 3], "BYTES")
    matrix._get_tensor().contents.bytes_contents.extend(
        [b"3", b"basic", b"true", b"20", b"pro", b"false"]
    )
    out["churn_typed"] = answer(client.infer("churn", [matrix]), ["label"])["label"]

    # A batch of 1,000 rows, and one sent compressed.
    batch = np.tile(IRIS, (334, 1))[:1000]
    result = client.infer("iris", [iris_input(np.float64, batch)])
    out["batch_labels"] = answer(result, ["label"])["label"]
    result = client.infer("iris", [iris_input(np.float64, batch)], compression_algorithm="gzip")
    out["gzip_labels"] = answer(result, ["label"])["label"]

    # Refusals.
    out["errors"] = {
        "unknown_model": refusal(lambda: client.infer("nope", [iris_input()])),
        "unknown_version": refusal(
            lambda: client.infer("iris", [iris_input()], model_version="99")
        ),
        "model_ready_unknown": refusal(lambda: client.is_model_ready("nope")),
        "metadata_unknown": refusal(lambda: client.get_model_metadata("nope")),
        "shape": refusal(lambda: client.infer("iris", [iris_input(rows=IRIS[:, :3].copy())])),
        "category": refusal(lambda: client.infer("churn", tenure_plan_senior("gold"))),
        "output": refusal(
            lambda: client.infer(
                "iris", [iris_input()], outputs=[tg.InferRequestedOutput("nope")]
            )
        ),
        "explain_type": refusal(
            lambda: client.infer("iris", [iris_input()], parameters={"explain": "yes"})
        ),
        "unimplemented": refusal(lambda: client.get_model_config("iris")),
        "too_many_rows": refusal(
            lambda: client.infer("iris", [iris_input(np.float64, np.tile(IRIS, (400, 1)))])
        ),
    }



def tenure_plan_senior(category):
    tenure = tg.InferInput("tenure", [1], "INT64")
    tenure.set_data_from_numpy(np.array([3], dtype=np.int64))
    plan = tg.InferInput("plan", [1], "BYTES")
    plan.set_data_from_numpy(np.array([category.encode()], dtype=object))
    senior = tg.InferInput("senior", [1], "BOOL")
    senior.set_data_from_numpy(np.array([True]))
    return [tenure, plan, senior]


async def kserve_client():
    from kserve import InferenceGRPCClient, InferInput, InferRequest

    seen = {}
    async with InferenceGRPCClient(url, retries=0) as client:
        seen["ready"] = await client.is_server_ready()
        seen["model_ready"] = await client.is_model_ready("iris")
        numpy_input = InferInput("input", list(IRIS.shape), "FP64")
        numpy_input.set_data_from_numpy(IRIS)
        list_input = InferInput("input", list(IRIS.shape), "FP64", data=IRIS.reshape(-1).tolist())
        for key, tensor in [("numpy", numpy_input), ("list", list_input)]:
            response = await client.infer(InferRequest("iris", [tensor], request_id="k-1"))
            probabilities = response.get_output_by_name("probabilities").as_numpy()
            seen[key] = {"probabilities": probabilities.tolist(), "id": response.id}
    return seen


def health():
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    channel = grpc.insecure_channel(url)
    stub = health_pb2_grpc.HealthStub(channel)
    statuses = {}
    for service in ["", "inference.GRPCInferenceService", "iris", "nope"]:
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service))
            statuses[service] = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
        except grpc.RpcError as error:
            statuses[service] = str(error.code())
    out["health"] = statuses

    def services(method):
        call = channel.stream_stream(
            method,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        answers = call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        return sorted(s.name for a in answers for s in a.list_services_response.service)

    out["reflection_v1alpha"] = services(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    )
    # v1's messages are v1alpha's, under another service name.
    out["reflection_v1"] = services("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(
        file_containing_symbol="inference.GRPCInferenceService"
    )
    answer = next(stub.ServerReflectionInfo(iter([request])))
    out["descriptor_files"] = len(answer.file_descriptor_response.file_descriptor_proto)


def auth(key):
    client = tg.InferenceServerClient(url)
    out["live_without_credentials"] = client.is_server_live()
    out["ready_without_credentials"] = client.is_server_ready()
    out["missing"] = refusal(lambda: client.infer("iris", [iris_input()]))
    out["metadata_missing"] = refusal(lambda: client.get_model_metadata("iris"))
    out["wrong"] = refusal(
        lambda: client.infer(
            "iris", [iris_input()], headers={"authorization": "Bearer mls_nope_nope"}
        )
    )
    bearer = client.infer("iris", [iris_input()], headers={"authorization": f"Bearer {key}"})
    out["bearer"] = answer(bearer, ["label"])["label"]
    api_key = client.infer("iris", [iris_input()], headers={"x-api-key": key})
    out["x_api_key"] = answer(api_key, ["label"])["label"]
    # The rate limit: the burst passes, the next call is refused.
    seen = []
    for _ in range(10):
        try:
            client.infer("iris", [iris_input()], headers={"x-api-key": key})
            seen.append("OK")
        except InferenceServerException as error:
            seen.append(error.status())
            out["limited"] = {"code": error.status(), "message": error.message()}
            break
    out["rate"] = seen


if mode == "main":
    main()
elif mode == "kserve":
    out["kserve"] = asyncio.run(kserve_client())
elif mode == "health":
    health()
elif mode == "auth":
    auth(sys.argv[3])
else:
    raise SystemExit(f"unknown mode {mode}")
print(json.dumps(out))
