"""Summarises a `wrk --latency` report for the bench scripts on one line:
requests/s, p50 and p99 in ms, non-2xx responses, then socket errors if any.
Usage: python3 scripts/wrk-summary.py WRK_OUTPUT"""
import re
import sys

text = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))


def percentile_ms(p):
    m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", text)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
socket = re.search(r"Socket errors: (.*)", text)
print(
    f"{rps:.0f} {percentile_ms(50):.3f} {percentile_ms(99):.3f} "
    f"{int(errors.group(1)) if errors else 0}"
    + (f" socket errors: {socket.group(1)}" if socket else "")
)
