"""Talks to mlserve over TLS as users would: REST with Python's own TLS (urllib), gRPC with the
official Triton client (tritonclient.grpc, ssl=True) on the gRPC port and on the HTTP port (HTTP/2
chosen by ALPN), and reads the certificate each port serves.

Usage: tls_clients.py HTTP_ADDR GRPC_ADDR CA_FILE MODE
  MODE clients  every client, trusting CA_FILE
  MODE certs    only the certificates served (PEM), to see a reload
Prints one JSON object; the Rust test (tests/tls.rs) checks it.
"""
import json
import ssl
import sys
import urllib.error
import urllib.request

http_addr, grpc_addr, ca_file, mode = sys.argv[1:5]


def served_certificate(addr):
    host, port = addr.rsplit(":", 1)
    return ssl.get_server_certificate((host, int(port)))


out = {"certs": {"http": served_certificate(http_addr), "grpc": served_certificate(grpc_addr)}}

if mode == "clients":
    import numpy as np
    import tritonclient.grpc as tg

    context = ssl.create_default_context(cafile=ca_file)
    with urllib.request.urlopen(f"https://{http_addr}/v2/models/iris", context=context) as answer:
        out["rest"] = json.load(answer)["name"]
    try:
        urllib.request.urlopen(f"http://{http_addr}/v2/models/iris", timeout=5)
        out["plain_http"] = "answered"
    except Exception:  # noqa: BLE001 - any failure: the TLS port does not speak plain HTTP
        out["plain_http"] = "refused"

    rows = np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)
    with open(ca_file, "rb") as f:
        ca = f.read()
    for key, addr in [("grpc", grpc_addr), ("grpc_on_http_port", http_addr)]:
        client = tg.InferenceServerClient(addr, ssl=True, root_certificates=ca_file)
        x = tg.InferInput("input", list(rows.shape), "FP32")
        x.set_data_from_numpy(rows)
        result = client.infer("iris", [x])
        out[key] = {
            "ready": client.is_server_ready(),
            "label": [v.decode() for v in result.as_numpy("label").tolist()],
        }
print(json.dumps(out))
