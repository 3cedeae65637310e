"""The async client against in-process stub servers that inject the faults a real server won't on demand.

The stubs here are fault injectors, not models: each handler answers the way a broken server or proxy would.
"""
import asyncio
import json
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from conftest import free_port

from reasonlite.client import NoServerError, ServerPool, completion_payload

OK = {"choices": [{"text": "ok"}], "usage": {"completion_tokens": 1}}
STREAM = completion_payload("m", "p", seed=0, max_tokens=4, temperature=0, top_p=1)


async def ok(request):
    return web.json_response(OK)


@asynccontextmanager
async def stubs(*handlers, port=None):
    """One stub server per handler (POST /v1/completions, GET /health); yields their URLs. A (handler, Counters)
    pair also serves vLLM's counters at /metrics."""
    runners, urls = [], []
    for handler in handlers:
        handler, counters = handler if isinstance(handler, tuple) else (handler, None)
        app = web.Application()
        app.router.add_post("/v1/completions", handler)
        app.router.add_get("/health", ok)
        if counters is not None:
            app.router.add_get("/metrics", counters.handler)
        runner = web.AppRunner(app, shutdown_timeout=0.1)  # handlers that hang are not waited for at the end
        await runner.setup()
        p = port or free_port()
        await web.TCPSite(runner, "127.0.0.1", p).start()
        runners.append(runner)
        urls.append(f"http://127.0.0.1:{p}")
    try:
        yield urls
    finally:
        for runner in runners:
            await runner.cleanup()


def pool(urls, **kw):
    kw = {"max_retries": 3, "backoff_base": 0.01, "backoff_max": 0.05, "request_timeout": 5, "log": lambda m: None,
          **kw}
    return ServerPool(urls, **kw)


def run(coro):
    return asyncio.run(coro)


async def sse(request, chunks, done=True, stall_after=None, stall=0.0):
    """Answer as vLLM streams: `data: {json}` lines, then `data: [DONE]` (unless told to cut the stream short)."""
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for k, chunk in enumerate(chunks):
        if stall_after is not None and k == stall_after:
            await asyncio.sleep(stall)
        data = chunk if isinstance(chunk, bytes) else json.dumps(chunk).encode()
        await resp.write(b"data: " + data + b"\n\n")
    if done:
        await resp.write(b"data: [DONE]\n\n")
    return resp


def piece(text, finish=None):
    return {"id": "c1", "model": "m", "choices": [{"index": 0, "text": text, "finish_reason": finish}]}


USAGE = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}


def test_retries_5xx_then_succeeds():
    calls = []

    async def handler(request):
        calls.append(1)
        return web.json_response(OK) if len(calls) > 2 else web.Response(status=503)

    async def main():
        async with stubs(handler) as [url], pool([url]) as p:
            assert await p.post("/v1/completions", {}) == OK
            assert p.retried == 2 and p.failed == 0 and p.faults == {"HTTP 503": 2}
    run(main())


def test_gives_up_after_the_last_retry_and_does_not_retry_4xx():
    async def handler(request):
        return web.Response(status=500 if request.query.get("x") else 400, text="prompt too long")

    async def main():
        async with stubs(handler) as [url], pool([url], max_retries=2) as p:
            assert await p.post("/v1/completions?x=1", {}) is None
            assert p.retried == 3 and p.failed == 1
            assert await p.post("/v1/completions", {}) is None
            assert p.retried == 3 and p.failed == 2
    run(main())


def test_stalled_request_times_out_and_is_retried():
    calls = []

    async def handler(request):
        calls.append(1)
        if len(calls) == 1:
            await asyncio.sleep(0.8)
        return web.json_response(OK)

    async def main():
        async with stubs(handler) as [url], pool([url], request_timeout=0.3) as p:
            assert await p.post("/v1/completions", {}) == OK
    run(main())


def test_a_stream_is_reassembled_like_a_plain_answer():
    async def handler(request):
        body = await request.json()
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
        return await sse(request, [piece("The answer "), piece("is 4.", "stop"), USAGE])

    async def main():
        async with stubs(handler) as [url], pool([url]) as p:
            data = await p.post("/v1/completions", STREAM)
        assert data["choices"][0] == {"index": 0, "text": "The answer is 4.", "finish_reason": "stop"}
        assert data["usage"]["completion_tokens"] == 2 and data["model"] == "m"
    run(main())


def test_a_long_answer_that_keeps_streaming_is_never_cut():
    """Ten chunks 0.1 s apart: three times the stall timeout in total, never a stall."""
    async def handler(request):
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for k in range(10):
            await asyncio.sleep(0.1)
            await resp.write(b"data: " + json.dumps(piece("x", "length" if k == 9 else None)).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def main():
        async with stubs(handler) as [url], pool([url], request_timeout=None, stall_timeout=0.3,
                                                first_token_timeout=0.3) as p:
            data = await p.post("/v1/completions", STREAM)
        assert data["choices"][0]["text"] == "x" * 10 and p.retried == 0
    run(main())


def test_no_first_token_and_a_stalled_stream_are_retried_and_counted():
    calls = []

    async def handler(request):
        calls.append(1)
        if len(calls) == 1:  # accepted, then nothing: a server stuck before its first token
            return await sse(request, [piece("late")], stall_after=0, stall=1.0)
        if len(calls) == 2:  # a few tokens, then nothing
            return await sse(request, [piece("a"), piece("b")], stall_after=1, stall=1.0)
        return await sse(request, [piece("fine", "stop")])

    async def main():
        async with stubs(handler) as [url], pool([url], request_timeout=None, first_token_timeout=0.3,
                                                stall_timeout=0.3) as p:
            data = await p.post("/v1/completions", STREAM)
            assert data["choices"][0]["text"] == "fine"
            assert p.faults == {"first-token timeout": 1, "stall timeout": 1}
            assert "first-token timeout 1" in p.fault_summary()
    run(main())


@pytest.mark.parametrize("kind, answer", [
    ("proxy error page", lambda r: web.Response(status=200, text="<html>502 Bad Gateway</html>",
                                                 content_type="text/html")),
    ("JSON cut short", lambda r: web.Response(status=200, text='{"choices": [{"text": "ha',
                                               content_type="application/json")),
    ("no choices", lambda r: web.json_response({"object": "text_completion", "choices": []})),
    ("choice without text", lambda r: web.json_response({"choices": [{"index": 0}]})),
    ("stream without [DONE]", lambda r: sse(r, [piece("cut")], done=False)),
    ("stream of garbage", lambda r: sse(r, [b"{not json"])),
    ("stream with an error chunk", lambda r: sse(r, [piece("a"), {"error": {"message": "engine dead"}}])),
])
def test_bodies_that_are_not_vllms_are_retried_and_counted(kind, answer):
    calls = []

    async def handler(request):
        calls.append(1)
        if len(calls) == 1:
            result = answer(request)
            return await result if asyncio.iscoroutine(result) else result
        return await sse(request, [piece("good", "stop")])

    async def main():
        logged = []
        async with stubs(handler) as [url], pool([url], log=logged.append) as p:
            data = await p.post("/v1/completions", STREAM)
            assert data["choices"][0]["text"] == "good", kind
            assert p.faults == {"bad body": 1} and p.retried == 1
        assert len(logged) == 1 and url in logged[0] and "retrying" in logged[0]  # one clear line per request
    run(main())


def test_waits_for_a_server_that_comes_up_late_without_spending_retries():
    async def main():
        port = free_port()
        async with pool([f"http://127.0.0.1:{port}"], max_retries=0) as p:
            task = asyncio.ensure_future(p.post("/v1/completions", {}))
            await asyncio.sleep(0.8)
            assert not task.done()
            async with stubs(ok, port=port):
                assert await asyncio.wait_for(task, 30) == OK
    run(main())


def test_least_loaded_routing_sends_less_to_a_slow_server():
    async def fast(request):
        await asyncio.sleep(0.01)
        return web.json_response(OK)

    async def slow(request):
        await asyncio.sleep(0.2)
        return web.json_response(OK)

    async def main():
        async with stubs(fast, slow) as [u1, u2], pool([u1, u2], max_inflight_per_server=4) as p:
            await asyncio.gather(*(p.post("/v1/completions", {}) for _ in range(200)))
            sent = {s.url: s.sent for s in p.servers}
        assert sent[u1] + sent[u2] == 200 and sent[u1] > 3 * sent[u2]
    run(main())


def test_caps_requests_in_flight_per_server():
    inflight, peak = [0], [0]

    async def handler(request):
        inflight[0] += 1
        peak[0] = max(peak[0], inflight[0])
        await asyncio.sleep(0.02)
        inflight[0] -= 1
        return web.json_response(OK)

    async def main():
        async with stubs(handler) as [url], pool([url], max_inflight_per_server=5) as p:
            await asyncio.gather(*(p.post("/v1/completions", {}) for _ in range(60)))
        assert peak[0] == 5
    run(main())


def test_no_server_at_all_is_an_error_naming_it():
    async def main():
        port = free_port()
        async with pool([f"http://127.0.0.1:{port}"]) as p:
            with pytest.raises(NoServerError, match=f"127.0.0.1:{port}"):
                await p.wait_until_up(timeout=0.5)
    run(main())


def test_api_key_is_sent_as_a_bearer_token():
    seen = []

    async def handler(request):
        seen.append(request.headers.get("Authorization"))
        return web.json_response(OK)

    async def main():
        async with stubs(handler) as [url], pool([url], api_key="s3cret") as p:
            assert await p.post("/v1/completions", {}) == OK
        assert seen == ["Bearer s3cret"]
    run(main())


# ---- the default path: plain bodies, liveness from the server's counters -------------------------------------------
class Counters:
    """A stub's vLLM counters at /metrics; `step` tokens are added at every read (a server making progress)."""

    def __init__(self, step=0, running=0, hang=False):
        self.tokens, self.step, self.running, self.hang, self.reads = 0, step, running, hang, 0

    async def handler(self, request):
        if self.hang:  # an API server that no longer answers
            await asyncio.sleep(3600)
        self.reads += 1
        self.tokens += self.step
        labels = '{engine="0",model_name="m"}'
        return web.Response(text=f"# HELP x\nvllm:num_requests_running{labels} {self.running}.0\n"
                                 f"vllm:num_requests_waiting{labels} 0.0\n"
                                 f"vllm:prompt_tokens_total{labels} 10.0\n"
                                 f"vllm:generation_tokens_total{labels} {float(self.tokens)}\n"
                                 f"vllm:generation_tokens_created{labels} 1.7e9\n")


async def hang(request):
    await asyncio.sleep(3600)


def test_each_server_gets_the_path_its_metrics_allow():
    """vLLM's counters at /metrics: plain bodies (no stream keys, even if the caller set them); none: streamed."""
    bodies = []

    async def handler(request):
        body = await request.json()
        bodies.append(body)
        if body.get("stream"):
            return await sse(request, [piece("s", "stop")])
        return web.json_response(OK)

    async def main():
        async with stubs((handler, Counters())) as [plain_url], stubs(handler) as [stream_url]:
            async with pool([plain_url]) as p:
                assert "plain bodies, liveness from /metrics" in await p.request_paths()
                assert await p.post("/v1/completions", {**STREAM, "stream": True}) == OK
            async with pool([stream_url], stream_interval=64) as p:
                assert "streamed requests (no vLLM counters" in await p.request_paths()
                assert (await p.post("/v1/completions", STREAM))["choices"][0]["text"] == "s"
            async with pool([plain_url], request_path="stream") as p:
                await p.post("/v1/completions", STREAM)
        assert "stream" not in bodies[0] and "stream_options" not in bodies[0]
        assert bodies[1]["stream"] is True and bodies[1]["stream_interval"] == 64
        assert bodies[2]["stream"] is True and "stream_interval" not in bodies[2]
    run(main())


def test_time_queued_on_a_server_that_makes_progress_is_never_a_timeout():
    """An answer ten times the stall timeout long, its server's counters moving all along: never cut, no retry."""
    async def slow(request):
        await asyncio.sleep(1.5)
        return web.json_response(OK)

    async def main():
        counters = Counters(step=1, running=1)
        async with stubs((slow, counters)) as [url], pool([url], request_timeout=None, stall_timeout=0.15) as p:
            assert await p.post("/v1/completions", {"max_tokens": 1000}) == OK
            assert p.retried == 0 and not p.faults
        assert counters.reads >= 5  # the watchdog read the counters while the answer was on its way
    run(main())


@pytest.mark.parametrize("kind", ["hung engine", "hung API server"])
def test_a_stalled_server_is_found_its_requests_retried_elsewhere_and_it_comes_back(kind):
    """A hung engine answers /health and /metrics with counters that no longer move; a hung API server does not
    answer /metrics at all. Either way its requests go to the other server, and it is routed around until its
    counters move again."""
    stuck = Counters(step=0, running=1)

    async def main():
        logged = []
        async with stubs((hang, stuck), (ok, Counters(step=1))) as [bad, good], \
                pool([bad, good], max_inflight_per_server=1, request_timeout=None, stall_timeout=0.3,
                     log=logged.append) as p:
            await p.request_paths()
            stuck.hang = kind == "hung API server"  # it hangs once in use
            results = await asyncio.wait_for(
                asyncio.gather(*(p.post("/v1/completions", {"max_tokens": 10}) for _ in range(2))), 30)
            assert results == [OK, OK]
            assert p.faults == {"stall timeout": 1} and p.retried == 1
            assert any(bad in m and "retrying them and routing around it" in m for m in logged), logged
            down = p.servers[0]
            assert not down.up
            await asyncio.sleep(1.5)
            assert not down.up  # still no progress: still routed around
            stuck.hang, stuck.step = False, 5  # it moves again
            for _ in range(100):
                if down.up:
                    break
                await asyncio.sleep(0.1)
            assert down.up and any(m == f"server {bad} is back" for m in logged), logged
    run(main())


def test_a_lost_request_is_retried_once_its_server_has_done_far_more_than_it_could_need():
    calls = []

    async def first_lost(request):
        calls.append(1)
        if len(calls) == 1:  # held somewhere on the way while the server works on others
            await asyncio.sleep(3600)
        return web.json_response(OK)

    async def main():
        async with stubs((first_lost, Counters(step=500, running=1))) as [url], \
                pool([url], request_timeout=None, stall_timeout=0.3) as p:
            assert await asyncio.wait_for(p.post("/v1/completions", {"max_tokens": 4}), 30) == OK
            assert p.faults == {"lost request": 1}
    run(main())


def test_a_stream_costs_no_task_or_timer_per_line():
    """500 chunks through the stream path: tasks and timers stay a handful (the attempt, the watchdog's ticks)."""
    async def handler(request):
        return await sse(request, [piece("x") for _ in range(499)] + [piece("y", "stop"), USAGE])

    async def main():
        loop = asyncio.get_running_loop()
        created, timers = [0], [0]
        loop.set_task_factory(lambda lp, coro, **kw: (created.__setitem__(0, created[0] + 1),
                                                      asyncio.Task(coro, loop=lp, **kw))[1])
        call_at = loop.call_at
        loop.call_at = lambda *a, **kw: (timers.__setitem__(0, timers[0] + 1), call_at(*a, **kw))[1]
        async with stubs(handler) as [url], pool([url], request_path="stream", stall_timeout=60) as p:
            created[0] = timers[0] = 0
            data = await p.post("/v1/completions", STREAM)
        assert data["choices"][0]["text"] == "x" * 499 + "y"
        assert created[0] <= 20 and timers[0] <= 20, (created[0], timers[0])  # the stub server's own included
    run(main())


def test_read_counters_sums_every_engine_and_ignores_other_metrics():
    from reasonlite.client import read_counters
    page = (b'vllm:generation_tokens_total{engine="0",model_name="m"} 10.0\n'
            b'vllm:generation_tokens_total{engine="1",model_name="m"} 5.0\n'
            b'vllm:generation_tokens_created{engine="0",model_name="m"} 1.7e9\n'
            b'vllm:num_requests_running{engine="0"} 3.0\nvllm:num_requests_running{engine="1"} 1.0\n')
    assert read_counters(page) == {"generation_tokens_total": 15.0, "num_requests_running": 4.0}
    assert read_counters(b"# a server without vLLM's counters\nprocess_cpu_seconds_total 1.0\n") is None
