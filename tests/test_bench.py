"""The benchmarks' own parts: the stub streams as vLLM does (one event per token, or per stream_interval), and
bench/generation_throughput.py runs every path against the real vLLM server (small numbers: a smoke test, not a
measurement; the measured table is in docs/benchmarks.md)."""
import json
import urllib.request

import pytest
from conftest import free_port, run_script, stub_server


def post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def events(raw):
    return [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]


def test_the_stub_streams_one_event_per_token_or_per_interval_and_counts_them():
    with stub_server(tokens=50) as port:
        plain = json.loads(post(port, {"prompt": "p"}))
        assert plain["usage"]["completion_tokens"] == 50 and plain["choices"][0]["text"].endswith("\\boxed{42}")
        per_token = events(post(port, {"prompt": "p", "stream": True}))
        assert len(per_token) == 50 + 2 and per_token[-1] == "[DONE]"  # 50 tokens, the usage chunk, [DONE]
        assert "".join(json.loads(e)["choices"][0]["text"] for e in per_token[:50]) == plain["choices"][0]["text"]
        # stream_interval 10: the first token at once, then every 10, the last at once (vLLM's rule)
        chunked = events(post(port, {"prompt": "p", "stream": True, "stream_interval": 10}))
        assert len(chunked) == 6 + 2
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            page = r.read()
    from reasonlite.client import read_counters
    assert read_counters(page)["generation_tokens_total"] == 150.0


def test_the_stub_serves_several_ports_from_one_process():
    ports = [free_port(), free_port()]
    with stub_server(port=",".join(map(str, ports))):
        for port in ports:
            assert json.loads(post(port, {"prompt": "p"}))["choices"][0]["text"]


@pytest.mark.slow
def test_generation_benchmark_runs_every_path_on_the_real_server(server):
    out = run_script("bench/generation_throughput.py", "--url", f"http://127.0.0.1:{server['port']}",
                     "--requests", 16, "--slots", 8, "--tokens", 32, "--rounds", 1, timeout=600, check=True).stdout
    for label in ("default (ServerPool", "plain bodies (bare aiohttp)", "streamed per token", "stream_interval",
                  "seed (thread per slot"):
        assert label in out, out
    assert out.count("(16/16 answers)") == 5, out
    assert "the default path here: plain bodies, liveness from /metrics" in out
    assert "of plain bodies' tokens/s, best against best (bar: 0.97)" in out and "median ratio" in out
