"""A fast OpenAI-compatible stub server, or a fault-injecting proxy in front of a real one.

    python3 bench/stub_server.py --port 9001                                   # answers /v1/completions itself
    python3 bench/stub_server.py --port 9001 --tokens 512 --token-rate 50      # answers of 512 tokens, paced
    python3 bench/stub_server.py --port 9001 --upstream http://127.0.0.1:8040 --fail 0.2 --stall 5

As a stub it answers every completion itself (after --delay seconds), so a benchmark measures the client, not a
model: one JSON body, or, when the request asks to stream, one server-sent event per token as vLLM sends them
(every `stream_interval` tokens when the request sets one; the first and last at once), then the usage chunk and
[DONE]. --tokens sets the answer's length and --token-rate paces it (tokens per second per answer; 0: at once).
Its /metrics carries vLLM's progress counters (vllm:generation_tokens_total, vllm:prompt_tokens_total,
vllm:num_requests_running, vllm:num_requests_waiting) unless --no-metrics, so the client picks the path it picks
for vLLM. As a proxy it forwards to --upstream (passing streams through line by line, /metrics included), and for a
--fail share of /v1 requests it injects one of the faults a real server cannot be made to produce on demand (this
is a fault injector, not a model):
    http500, http503   an error status
    reset              the connection reset mid-request
    stall              the whole server stalls before this request starts: every request, /health and /metrics
                       included, hangs for --stall seconds (a hung or stopped server process)
    midstall           the same, once this request is under way: after its first chunks (a stream) or its answer
                       (a plain body), before they reach the client
    lost               this request alone is held for --stall seconds while the server goes on with the others
    html               HTTP 200 with a proxy's HTML error page
    truncated          HTTP 200 with the body cut in half (JSON cut short, or a stream without [DONE])
    empty              HTTP 200 with {"choices": []}
--faults picks which kinds (default: all). With --api-key-env it refuses /v1 requests without that bearer token, as
vLLM does. On SIGTERM it writes what it saw (requests per path, faults per kind) to --stats as JSON.
"""
import argparse
import asyncio
import json
import os
import random
import re
import time

from aiohttp import ClientSession, ClientTimeout, web

FAULTS = ("http500", "http503", "reset", "stall", "midstall", "lost", "html", "truncated", "empty")
HTML_PAGE = ("<html><head><title>502 Bad Gateway</title></head>"
             "<body><center><h1>502 Bad Gateway</h1></center></body></html>")
PIECE = re.compile(r"\s*\S+|\s+")  # a word with the space before it: one "token" of a stub answer


class Meter:
    """vLLM's progress counters, as a stub's /metrics shows them."""

    def __init__(self):
        self.generated = self.prompt = self.running = 0

    def page(self, model):
        labels = f'{{engine="0",model_name="{model}"}}'
        return (f"# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{labels} {float(self.running)}\n"
                f"# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{labels} 0.0\n"
                f"# TYPE vllm:prompt_tokens_total counter\nvllm:prompt_tokens_total{labels} {float(self.prompt)}\n"
                f"# TYPE vllm:generation_tokens_total counter\n"
                f"vllm:generation_tokens_total{labels} {float(self.generated)}\n")


def stub_text(tokens):
    """An answer of `tokens` pieces that ends in a boxed 42 (the default: a short sentence)."""
    if not tokens:
        return "The answer is $\\boxed{42}$."
    return " step" * max(0, tokens - 1) + " \\boxed{42}"


async def completion_response(request, body, text, usage, finish, model, token_rate=0.0, meter=None):
    """An answer as vLLM sends it: one JSON body, or (when the request asks to stream) one server-sent event per
    token (per `stream_interval` tokens when the request sets one), then the usage chunk and [DONE]. A piece of
    text is a token here; `usage` says how many the answer stands for."""
    pieces = PIECE.findall(text) or [""]
    if not body.get("stream"):
        left = len(pieces)
        while token_rate and left:  # counted as they are "generated", as vLLM counts them, in steps of 0.5 s
            step = min(left, max(1, int(token_rate / 2)))
            await asyncio.sleep(step / token_rate)
            left -= step
            if meter:
                meter.generated += step
        if meter and not token_rate:
            meter.generated += len(pieces)
        return web.json_response({"id": "cmpl-stub", "object": "text_completion", "model": model, "usage": usage,
                                  "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish,
                                               "stop_reason": None}]})
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    every = max(1, int(body.get("stream_interval") or 1))
    head = f'data: {{"id":"cmpl-stub","object":"text_completion","created":{int(time.time())},"model":' \
           f'{json.dumps(model)},"choices":[{{"index":0,"text":'.encode()
    tail = b',"logprobs":null,"finish_reason":null,"stop_reason":null}]}\n\n'
    sent = 0
    for k in range(len(pieces)):  # the first token at once, then every `every`, the last with finish_reason
        last = k == len(pieces) - 1
        if token_rate:
            await asyncio.sleep(1 / token_rate)
        if not (k == 0 or last or k + 1 - sent >= every):
            continue
        piece = "".join(pieces[sent:k + 1])
        if meter:
            meter.generated += k + 1 - sent
        sent = k + 1
        end = tail if not last else f',"logprobs":null,"finish_reason":{json.dumps(finish)},' \
                                    f'"stop_reason":null}}]}}\n\n'.encode()
        await resp.write(head + json.dumps(piece).encode() + end)
    await resp.write(b"data: " + json.dumps({"id": "cmpl-stub", "object": "text_completion", "model": model,
                                             "choices": [], "usage": usage}).encode() + b"\n\n")
    await resp.write(b"data: [DONE]\n\n")
    return resp


def make_app(args):
    rng = random.Random(args.seed)
    kinds = args.faults.split(",") if args.faults else list(FAULTS)
    stats = {"requests": 0, "by_path": {}, "faults": {k: 0 for k in kinds}, "unauthorized": 0}
    key = os.environ.get(args.api_key_env) if args.api_key_env else None
    meter = Meter()
    stalled = {"until": 0.0}  # a whole-server stall: nothing passes before this time (loop clock)
    app = web.Application(client_max_size=64 << 20)

    async def upstream_session(app):
        app["session"] = ClientSession(timeout=ClientTimeout(total=None)) if args.upstream else None
        yield
        if app["session"] is not None:
            await app["session"].close()
        if args.stats:
            with open(args.stats, "w") as f:
                json.dump(stats, f)

    app.cleanup_ctx.append(upstream_session)

    def stall():
        stalled["until"] = max(stalled["until"], asyncio.get_running_loop().time() + args.stall)

    async def hold():
        """Wait out a whole-server stall, if one is on."""
        while (left := stalled["until"] - asyncio.get_running_loop().time()) > 0:
            await asyncio.sleep(left)

    async def stub_answer(request):
        if request.path == "/v1/models":
            return web.json_response({"object": "list", "data": [{"id": args.served_model_name, "object": "model"}]})
        if request.path == "/metrics":
            if args.no_metrics:
                return web.Response(status=404, text="404: Not Found")
            return web.Response(text=meter.page("stub"), content_type="text/plain")
        body = await request.json()
        meter.running += 1
        try:
            meter.prompt += 10
            if args.delay:
                await asyncio.sleep(args.delay)
            text = stub_text(args.tokens)
            tokens = len(PIECE.findall(text))
            if body.get("echo"):
                text = body.get("prompt", "") + text
            usage = {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens}
            return await completion_response(request, body, text, usage, "stop", "stub", args.token_rate, meter)
        finally:
            meter.running -= 1

    async def forward(request, fault=None):
        data = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "authorization")}
        async with app["session"].request(request.method, args.upstream + request.path_qs, data=data,
                                          headers=headers) as r:
            if not r.content_type.startswith("text/event-stream"):
                body = await r.read()
                if fault == "truncated" and r.status == 200:
                    body = body[:len(body) // 2]
                if fault == "midstall":
                    stall()
                await hold()
                return web.Response(status=r.status, body=body, content_type=r.content_type)
            resp = web.StreamResponse(status=r.status, headers={"Content-Type": r.content_type})
            await resp.prepare(request)
            sent = 0
            async for line in r.content:  # SSE lines, passed on as they come
                if fault == "truncated" and line.startswith(b"data: [DONE]"):
                    break  # the stream just ends, as when a proxy drops the connection
                await hold()
                await resp.write(line)
                sent += line.startswith(b"data:")
                if fault == "midstall" and sent == 2:
                    stall()
            return resp

    async def handle(request):
        stats["requests"] += 1
        stats["by_path"][request.path] = stats["by_path"].get(request.path, 0) + 1
        await hold()
        fault = None
        if request.path.startswith("/v1"):
            if key and request.headers.get("Authorization") != f"Bearer {key}":
                stats["unauthorized"] += 1
                return web.json_response({"error": "Unauthorized"}, status=401)
            if rng.random() < args.fail and request.path != "/v1/models":
                fault = rng.choice(kinds)
                stats["faults"][fault] += 1
                if fault == "http500":
                    return web.Response(status=500, text="injected fault")
                if fault == "http503":
                    return web.Response(status=503, text="injected fault")
                if fault == "reset":
                    request.transport.abort()  # the client sees its connection reset mid-request
                    return web.Response(status=500)
                if fault == "stall":
                    stall()
                    await hold()  # then answer, long after the client gave up
                if fault == "lost":
                    await asyncio.sleep(args.stall)  # this one alone; the others go on
                if fault == "html":
                    return web.Response(status=200, text=HTML_PAGE, content_type="text/html")
                if fault == "empty":
                    return web.json_response({"object": "text_completion", "choices": []})
        if args.upstream:
            return await forward(request, fault)
        if request.path == "/health":
            return web.Response(text="")
        if fault == "midstall":
            stall()
        return await stub_answer(request)

    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", required=True, help="a port, or several comma-separated: one stub server on each, "
                                                       "all in this process")
    parser.add_argument("--upstream", help="forward to this server instead of answering")
    parser.add_argument("--fail", type=float, default=0.0, help="share of /v1 requests that get a fault")
    parser.add_argument("--stall", type=float, default=30.0, help="seconds a stalled request hangs")
    parser.add_argument("--faults", help=f"comma-separated kinds to inject (default all: {','.join(FAULTS)})")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before the stub's first token")
    parser.add_argument("--tokens", type=int, default=0, help="tokens in each stub answer (default: a short one)")
    parser.add_argument("--token-rate", type=float, default=0.0, help="tokens per second of each stub answer "
                                                                      "(default: at once)")
    parser.add_argument("--no-metrics", action="store_true", help="no vLLM counters at /metrics (a server started "
                                                                  "with --disable-log-stats)")
    parser.add_argument("--served-model-name", default="stub/gpt-oss-stub", help="the model /v1/models lists (the "
                                                                                 "clients check it against their config)")
    parser.add_argument("--api-key-env", help="require the bearer token held by this environment variable")
    parser.add_argument("--stats", help="write request and fault counts here on exit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    unknown = set(args.faults.split(",")) - set(FAULTS) if args.faults else set()
    if unknown:
        parser.error(f"unknown fault kinds: {', '.join(sorted(unknown))}")
    if args.upstream:
        args.upstream = args.upstream.rstrip("/")
    ports = [int(p) for p in args.port.split(",") if p]
    if len(ports) == 1:
        # handle_signals: SIGTERM ends the server through its cleanup, so the stats file is written.
        web.run_app(make_app(args), host=args.host, port=ports[0], print=None, access_log=None,
                    handle_signals=True, backlog=4096)
        return
    if args.stats:
        parser.error("--stats takes one port")
    asyncio.run(serve_many(args, ports))


async def serve_many(args, ports):
    """One stub server per port in this one process (a benchmark's fleet on one core), until SIGTERM or SIGINT."""
    import signal
    runners = []
    for port in ports:
        runner = web.AppRunner(make_app(args), access_log=None, shutdown_timeout=1)
        await runner.setup()
        await web.TCPSite(runner, args.host, port, backlog=4096).start()
        runners.append(runner)
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, done.set)
    await done.wait()
    for runner in runners:
        await runner.cleanup()


if __name__ == "__main__":
    main()
