"""Tokens/s and client CPU of the project's client at the seed's scale, on stub servers, against the seed's client.

    python3 bench/client_throughput.py [--servers 8] [--slots 1024] [--tokens 128] [--requests 8192]

Stub OpenAI servers (bench/stub_server.py, every one in a single process of its own) answer at once, so what is
measured is the client: with the defaults, 8 servers x 1024 requests in flight, the seed's scale, every answer
--tokens tokens long. A stub sends a streamed answer as vLLM does without a stream interval, one server-sent event
per token, and a plain one as one JSON body; its /metrics carries vLLM's counters, so the project's client takes the
path it takes on vLLM. The same infer-style /v1/completions requests go through
  default     reasonlite.client.ServerPool as infer.py uses it (request_path auto: plain bodies, liveness from
              /metrics)
  per-token   ServerPool with request_path stream: one event per token (the project's old default)
  seed        the seed's way: a thread per slot, each posting with `requests`, results through a queue.Queue
Each client runs in a process of its own and reports its own CPU seconds (user + system) and peak RSS. On a
machine of two cores the stubs have one and the client the other; a per-token stream keeps the stubs' core busy
too, so its tokens/s is the stubs' as much as the client's, while its client CPU per million tokens is the client's
alone. Then, with 8 stubs, it shows how the project's client spreads the load (each server's share against the
mean), and that a slow server gets less. What the paths cost a real server is bench/generation_throughput.py's.
"""
import argparse
import asyncio
import json
import queue
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = {"model": "stub", "prompt": "<|start|>user<|message|>What is 6 x 7?<|end|><|start|>assistant", "echo": True,
           "seed": 0, "n": 1, "temperature": 0.8, "top_p": 1.0, "max_tokens": 30000, "skip_special_tokens": False,
           "stop": ["<|endoftext|>", "<|return|>"]}
PATHS = ("default", "per-token", "seed")


def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss / 1024


def tokens_of(results):
    return sum((r.get("usage") or {}).get("completion_tokens") or 0 for r in results if r)


def run_project(urls, n, slots, path):
    from reasonlite.client import ServerPool

    async def main():
        async with ServerPool(urls, max_inflight_per_server=slots, log=lambda m: None,
                              request_path="stream" if path == "per-token" else "auto") as pool:
            described = await pool.request_paths()
            todo = iter(range(n))
            results = []

            async def work():
                for i in todo:
                    results.append(await pool.post("/v1/completions", dict(PAYLOAD, seed=i)))

            c0, t = usage()[0], time.perf_counter()
            await asyncio.gather(*(work() for _ in range(pool.total_slots)))
            return (time.perf_counter() - t, usage()[0] - c0, results, {s.url: s.sent for s in pool.servers},
                    described)

    return asyncio.run(main())


def seed_client(urls, payloads, slots):
    """The seed's client: `slots` threads per server, each posting with `requests` and handing results back through a
    queue.Queue. (seconds, CPU seconds, results) for the payloads."""
    import requests
    inq, outq = queue.Queue(), queue.Queue()
    for p in payloads:
        inq.put(p)

    def worker(url):
        session = requests.Session()
        while True:
            try:
                p = inq.get_nowait()
            except queue.Empty:
                return
            try:
                r = session.post(url + "/v1/completions", json=p, timeout=3600)
                outq.put(r.json() if r.status_code == 200 else None)
            except requests.RequestException:
                outq.put(None)

    threading.stack_size(256 * 1024)  # 8192 threads: the default 8 MB of address space each is not needed
    threads = [threading.Thread(target=worker, args=(u,)) for u in urls for _ in range(slots)]
    c0, t = usage()[0], time.perf_counter()
    for th in threads:
        th.start()
    results = [outq.get() for _ in range(len(payloads))]
    for th in threads:
        th.join()
    return time.perf_counter() - t, usage()[0] - c0, results


def free_ports(k):
    socks = [socket.socket() for _ in range(k)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Stubs:
    """Stub servers; delays[i] is server i's seconds per answer. Equal delays share one process."""

    def __init__(self, delays, tokens=0):
        self.ports = free_ports(len(delays))
        groups = {}
        for port, delay in zip(self.ports, delays):
            groups.setdefault(delay, []).append(port)
        self.procs = [subprocess.Popen([sys.executable, str(ROOT / "bench/stub_server.py"), "--port",
                                        ",".join(map(str, ports)), "--delay", str(delay), "--tokens", str(tokens)],
                                       stdout=subprocess.DEVNULL) for delay, ports in groups.items()]
        for p in self.ports:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", p), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
        self.urls = [f"http://127.0.0.1:{p}" for p in self.ports]

    def close(self):
        for p in self.procs:
            p.terminate()
            p.wait()


def client(path, urls, n, slots):
    """Run one client in a fresh process; returns its report."""
    out = subprocess.run([sys.executable, __file__, "--_client", path, "--urls", ",".join(urls), "--requests",
                          str(n), "--slots", str(slots)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"error: the {path} client failed: {out.stderr.strip().splitlines()[-3:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=8)
    parser.add_argument("--slots", type=int, default=1024, help="requests in flight per server")
    parser.add_argument("--tokens", type=int, default=128, help="tokens in every answer")
    parser.add_argument("--requests", type=int, default=8192)
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--_client", help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._client:  # inside the measured process
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        urls = args.urls.split(",")
        if args._client == "seed":
            secs, cpu, results = seed_client(urls, [dict(PAYLOAD, seed=i) for i in range(args.requests)], args.slots)
            sent, described = {}, "a thread per slot, requests"
        else:
            secs, cpu, results, sent, described = run_project(urls, args.requests, args.slots, args._client)
        print(json.dumps({"seconds": secs, "cpu": cpu, "ok": sum(r is not None for r in results),
                          "tokens": tokens_of(results), "rss_mb": usage()[1], "sent": sent, "path": described}))
        return

    n = args.requests
    stubs = Stubs([0.0] * args.servers, tokens=args.tokens)
    try:
        reports = {path: client(path, stubs.urls, n, args.slots) for path in args.paths.split(",")}
    finally:
        stubs.close()
    print(f"{n} answers of {args.tokens} tokens from {args.servers} stub servers (one process), {args.slots} in "
          f"flight on each")
    print("| client | tokens/s | client CPU s | CPU s per M tokens | peak RSS MB | answers |")
    print("|---|---|---|---|---|---|")
    for path, r in reports.items():
        print(f"| {path}: {r['path']} | {r['tokens'] / r['seconds']:,.0f} | {r['cpu']:.1f} | "
              f"{r['cpu'] / max(r['tokens'], 1) * 1e6:.1f} | {r['rss_mb']:.0f} | {r['ok']}/{n} |")

    for label, delays in (("8 equal servers", [0.002] * 8), ("8 servers, the first 10x slower", [0.02] + [0.002] * 7)):
        stubs = Stubs(delays)
        try:
            r = client("default", stubs.urls, 20000, 32)
        finally:
            stubs.close()
        shares = [r["sent"][u] for u in stubs.urls]
        others = shares[1:] if delays[0] != delays[1] else shares
        mean = sum(others) / len(others)
        spread = max(abs(s - mean) / mean for s in others)
        print(f"{label}: {20000 / r['seconds']:.0f} req/s; requests per server {shares}; "
              f"{'servers 2-8' if others is not shares else 'every server'} within {spread:.1%} of their mean"
              + (f"; the slow one got {shares[0] / mean:.0%} of it" if others is not shares else ""))


if __name__ == "__main__":
    main()
