"""Requests per second and peak memory of the project's client against a seed-style threaded client, same run.

    python3 bench/client_throughput.py [--requests 20000] [--slots 256]

Local stub OpenAI servers (bench/stub_server.py) answer at once, so what is measured is the client. The same M
infer-style /v1/completions requests go through
  (a) the project's client: reasonlite.client.ServerPool, one asyncio process, `slots` requests in flight per server,
      each request streamed as infer.py streams it (first-token and stall timeouts need the stream), and once more
      plain (one JSON body per answer, as the seed's requests);
  (b) the seed's way: a thread per slot, each posting with `requests` to its server and handing results back
      through a queue.Queue (ReasonLite's infer.py).
Each client runs in its own process, which reports its own peak RSS. Then, with 8 stub servers, it shows how the
project's client spreads the load (each server's share against the mean), and that a slow server gets less.
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


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


STREAM = {"stream": True, "stream_options": {"include_usage": True}}


def run_project(urls, n, slots, stream=True):
    from reasonlite.client import ServerPool
    extra = STREAM if stream else {}

    async def main():
        async with ServerPool(urls, max_inflight_per_server=slots, log=lambda m: None) as pool:
            q = asyncio.Queue(maxsize=2 * pool.total_slots)
            done = []

            async def produce():
                for i in range(n):
                    await q.put(dict(PAYLOAD, seed=i, **extra))
                for _ in range(pool.total_slots):
                    await q.put(None)

            async def work():
                while (p := await q.get()) is not None:
                    r = await pool.post("/v1/completions", p)
                    done.append(r is not None)

            t = time.perf_counter()
            await asyncio.gather(produce(), *(work() for _ in range(pool.total_slots)))
            return time.perf_counter() - t, sum(done), {s.url: s.sent for s in pool.servers}

    return asyncio.run(main())


def run_threaded(urls, n, slots):
    import requests
    inq, outq = queue.Queue(), queue.Queue()
    for i in range(n):
        inq.put(dict(PAYLOAD, seed=i))

    def worker(url):
        session = requests.Session()
        while True:
            try:
                p = inq.get_nowait()
            except queue.Empty:
                return
            try:
                outq.put(session.post(url + "/v1/completions", json=p, timeout=600).json())
            except requests.RequestException:
                outq.put(None)

    threads = [threading.Thread(target=worker, args=(u,)) for u in urls for _ in range(slots)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    ok = sum(outq.get() is not None for _ in range(n))
    for th in threads:
        th.join()
    return time.perf_counter() - t, ok, {}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stubs:
    """Stub servers in subprocesses; delays[i] is server i's seconds per answer."""

    def __init__(self, delays):
        self.ports = [free_port() for _ in delays]
        self.stats = [Path(f"/tmp/stub_{p}.json") for p in self.ports]
        self.procs = [subprocess.Popen([sys.executable, str(ROOT / "bench/stub_server.py"), "--port", str(p),
                                        "--delay", str(d), "--stats", str(s)], stdout=subprocess.DEVNULL)
                      for p, d, s in zip(self.ports, delays, self.stats)]
        for p in self.ports:
            for _ in range(100):
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


def client(kind, urls, n, slots):
    """Run one client in a fresh process; returns its report."""
    out = subprocess.run([sys.executable, __file__, "--_client", kind, "--urls", ",".join(urls), "--requests",
                          str(n), "--slots", str(slots)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--slots", type=int, default=256, help="requests in flight per server")
    parser.add_argument("--_client", help=argparse.SUPPRESS)
    parser.add_argument("--urls", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args._client:  # inside the measured process
        urls = args.urls.split(",")
        if args._client == "threaded":
            secs, ok, sent = run_threaded(urls, args.requests, args.slots)
        else:
            secs, ok, sent = run_project(urls, args.requests, args.slots, stream=args._client == "project")
        print(json.dumps({"seconds": secs, "ok": ok, "rss_mb": peak_rss_mb(), "sent": sent}))
        return

    stubs = Stubs([0.0])
    try:
        ours = client("project", stubs.urls, args.requests, args.slots)
        plain = client("project-plain", stubs.urls, args.requests, args.slots)
        seed = client("threaded", stubs.urls, args.requests, args.slots)
    finally:
        stubs.close()
    n = args.requests
    print(f"{n} requests to 1 stub server, {args.slots} in flight")
    for name, r in (("project, streamed (infer.py)", ours), ("project, plain bodies", plain),
                    ("seed-style (thread per slot)", seed)):
        print(f"  {name:30s} {n / r['seconds']:8.0f} req/s  peak RSS {r['rss_mb']:6.0f} MB  ({r['ok']} ok)")
    print(f"  ratio, streamed: {seed['seconds'] / ours['seconds']:.1f}x the seed-style requests/s, "
          f"{seed['rss_mb'] / ours['rss_mb']:.1f}x less memory; plain: {seed['seconds'] / plain['seconds']:.1f}x")

    for label, delays in (("8 equal servers", [0.002] * 8), ("8 servers, the first 10x slower", [0.02] + [0.002] * 7)):
        stubs = Stubs(delays)
        try:
            r = client("project", stubs.urls, args.requests, max(1, args.slots // 8))
        finally:
            stubs.close()
        shares = [r["sent"][u] for u in stubs.urls]
        others = shares[1:] if delays[0] != delays[1] else shares
        mean = sum(others) / len(others)
        spread = max(abs(s - mean) / mean for s in others)
        print(f"{label}: {n / r['seconds']:.0f} req/s; requests per server {shares}; "
              f"{'servers 2-8' if others is not shares else 'every server'} within {spread:.1%} of their mean"
              + (f"; the slow one got {shares[0] / mean:.0%} of it" if others is not shares else ""))


if __name__ == "__main__":
    main()
