"""A fast OpenAI-compatible stub server, or a fault-injecting proxy in front of a real one.

    python3 bench/stub_server.py --port 9001                                   # answers /v1/completions itself
    python3 bench/stub_server.py --port 9001 --upstream http://127.0.0.1:8040 --fail 0.2 --stall 5

As a stub it answers every completion at once (after --delay seconds; streamed when the request asks), so a
benchmark measures the client, not a model. As a proxy it forwards to --upstream, passing streams through chunk by
chunk, and for a --fail share of /v1 requests it injects one of the faults a real server cannot be made to produce
on demand (this is a fault injector, not a model):
    http500, http503   an error status
    reset              the connection reset mid-request
    stall              no answer for --stall seconds (past the client's first-token timeout)
    midstall           a stream that sends its first chunks, then stalls for --stall seconds
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

from aiohttp import ClientSession, ClientTimeout, web

FAULTS = ("http500", "http503", "reset", "stall", "midstall", "html", "truncated", "empty")
HTML_PAGE = ("<html><head><title>502 Bad Gateway</title></head>"
             "<body><center><h1>502 Bad Gateway</h1></center></body></html>")


async def completion_response(request, body, text, usage, finish, model):
    """An answer as vLLM sends it: one JSON body, or (when the request asks to stream) server-sent events in two
    pieces, then the usage chunk and [DONE]."""
    if not body.get("stream"):
        return web.json_response({"object": "text_completion", "model": model, "usage": usage,
                                  "choices": [{"index": 0, "text": text, "finish_reason": finish}]})
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for k, piece in enumerate((text[:len(text) // 2], text[len(text) // 2:])):
        chunk = {"object": "text_completion", "model": model,
                 "choices": [{"index": 0, "text": piece, "finish_reason": finish if k else None}]}
        await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    await resp.write(b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n")
    await resp.write(b"data: [DONE]\n\n")
    return resp


def make_app(args):
    rng = random.Random(args.seed)
    kinds = args.faults.split(",") if args.faults else list(FAULTS)
    stats = {"requests": 0, "by_path": {}, "faults": {k: 0 for k in kinds}, "unauthorized": 0}
    key = os.environ.get(args.api_key_env) if args.api_key_env else None
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

    async def stub_answer(request):
        if request.path == "/v1/models":
            return web.json_response({"object": "list", "data": [{"id": "stub", "object": "model"}]})
        body = await request.json()
        if args.delay:
            await asyncio.sleep(args.delay)
        text = "The answer is $\\boxed{42}$."
        if body.get("echo"):
            text = body.get("prompt", "") + text
        usage = {"prompt_tokens": 10, "completion_tokens": 8, "total_tokens": 18}
        return await completion_response(request, body, text, usage, "stop", "stub")

    async def forward(request, fault=None):
        data = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "authorization")}
        async with app["session"].request(request.method, args.upstream + request.path_qs, data=data,
                                          headers=headers) as r:
            if not r.content_type.startswith("text/event-stream"):
                body = await r.read()
                if fault == "truncated" and r.status == 200:
                    body = body[:len(body) // 2]
                return web.Response(status=r.status, body=body, content_type=r.content_type)
            resp = web.StreamResponse(status=r.status, headers={"Content-Type": r.content_type})
            await resp.prepare(request)
            sent = 0
            async for line in r.content:  # SSE lines, passed on as they come
                if fault == "truncated" and line.startswith(b"data: [DONE]"):
                    break  # the stream just ends, as when a proxy drops the connection
                await resp.write(line)
                sent += line.startswith(b"data:")
                if fault == "midstall" and sent == 2:
                    await asyncio.sleep(args.stall)
            return resp

    async def handle(request):
        stats["requests"] += 1
        stats["by_path"][request.path] = stats["by_path"].get(request.path, 0) + 1
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
                    await asyncio.sleep(args.stall)  # then answer, long after the client gave up
                if fault == "html":
                    return web.Response(status=200, text=HTML_PAGE, content_type="text/html")
                if fault == "empty":
                    return web.json_response({"object": "text_completion", "choices": []})
                if fault in ("midstall", "truncated") and args.upstream:
                    return await forward(request, fault)
        if args.upstream:
            return await forward(request)
        if request.path == "/health":
            return web.Response(text="")
        return await stub_answer(request)

    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", help="forward to this server instead of answering")
    parser.add_argument("--fail", type=float, default=0.0, help="share of /v1 requests that get a fault")
    parser.add_argument("--stall", type=float, default=30.0, help="seconds a stalled request hangs")
    parser.add_argument("--faults", help=f"comma-separated kinds to inject (default all: {','.join(FAULTS)})")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds the stub takes per completion")
    parser.add_argument("--api-key-env", help="require the bearer token held by this environment variable")
    parser.add_argument("--stats", help="write request and fault counts here on exit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    unknown = set(args.faults.split(",")) - set(FAULTS) if args.faults else set()
    if unknown:
        parser.error(f"unknown fault kinds: {', '.join(sorted(unknown))}")
    if args.upstream:
        args.upstream = args.upstream.rstrip("/")
    # handle_signals: SIGTERM ends the server through its cleanup, so the stats file is written.
    web.run_app(make_app(args), host=args.host, port=args.port, print=None, access_log=None,
                handle_signals=True)


if __name__ == "__main__":
    main()
