"""The async client against in-process stub servers that inject the faults a real server won't on demand."""
import asyncio

import pytest
from aiohttp import web
from conftest import free_port

from reasonlite.client import ServerPool

OK = {"choices": [{"text": "ok"}], "usage": {"completion_tokens": 1}}


async def ok(request):
    return web.json_response(OK)


async def start_stub(handler, port=None):
    app = web.Application()
    app.router.add_post("/v1/completions", handler)
    app.router.add_get("/health", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    port = port or free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def pool(urls, **kw):
    kw = {"max_retries": 3, "backoff_base": 0.01, "backoff_max": 0.05, "request_timeout": 5, "log": lambda m: None,
          **kw}
    return ServerPool(urls, **kw)


def test_retries_5xx_then_succeeds():
    async def main():
        calls = []

        async def handler(request):
            calls.append(1)
            return web.json_response(OK) if len(calls) > 2 else web.Response(status=503)

        runner, url = await start_stub(handler)
        async with pool([url]) as p:
            assert await p.post("/v1/completions", {}) == OK
            assert p.retried == 2 and p.failed == 0
        await runner.cleanup()
    asyncio.run(main())


def test_gives_up_after_the_last_retry_and_does_not_retry_4xx():
    async def main():
        async def handler(request):
            return web.Response(status=500 if request.query.get("x") else 400, text="prompt too long")

        runner, url = await start_stub(handler)
        async with pool([url], max_retries=2) as p:
            assert await p.post("/v1/completions?x=1", {}) is None
            assert p.retried == 3 and p.failed == 1
            assert await p.post("/v1/completions", {}) is None
            assert p.retried == 3 and p.failed == 2
        await runner.cleanup()
    asyncio.run(main())


def test_stalled_request_times_out_and_is_retried():
    async def main():
        calls = []

        async def handler(request):
            calls.append(1)
            if len(calls) == 1:
                await asyncio.sleep(1.5)
            return web.json_response(OK)

        runner, url = await start_stub(handler)
        async with pool([url], request_timeout=0.3) as p:
            assert await p.post("/v1/completions", {}) == OK
        await runner.cleanup()
    asyncio.run(main())


def test_waits_for_a_server_that_comes_up_late_without_spending_retries():
    async def main():
        port = free_port()
        async with pool([f"http://127.0.0.1:{port}"], max_retries=0) as p:
            task = asyncio.ensure_future(p.post("/v1/completions", {}))
            await asyncio.sleep(1.5)
            assert not task.done()
            runner, _ = await start_stub(ok, port=port)
            assert await asyncio.wait_for(task, 30) == OK
            await runner.cleanup()
    asyncio.run(main())


def test_least_loaded_routing_sends_less_to_a_slow_server():
    async def main():
        async def fast(request):
            await asyncio.sleep(0.01)
            return web.json_response(OK)

        async def slow(request):
            await asyncio.sleep(0.2)
            return web.json_response(OK)

        r1, u1 = await start_stub(fast)
        r2, u2 = await start_stub(slow)
        async with pool([u1, u2], max_inflight_per_server=4) as p:
            await asyncio.gather(*(p.post("/v1/completions", {}) for _ in range(200)))
            sent = {s.url: s.sent for s in p.servers}
        assert sent[u1] + sent[u2] == 200 and sent[u1] > 3 * sent[u2]
        await r1.cleanup()
        await r2.cleanup()
    asyncio.run(main())


def test_caps_requests_in_flight_per_server():
    async def main():
        inflight, peak = [0], [0]

        async def handler(request):
            inflight[0] += 1
            peak[0] = max(peak[0], inflight[0])
            await asyncio.sleep(0.02)
            inflight[0] -= 1
            return web.json_response(OK)

        runner, url = await start_stub(handler)
        async with pool([url], max_inflight_per_server=5) as p:
            await asyncio.gather(*(p.post("/v1/completions", {}) for _ in range(60)))
        assert peak[0] == 5
        await runner.cleanup()
    asyncio.run(main())


def test_no_server_at_all_is_an_error_naming_it():
    from reasonlite.client import NoServerError

    async def main():
        port = free_port()
        async with pool([f"http://127.0.0.1:{port}"]) as p:
            with pytest.raises(NoServerError, match=f"127.0.0.1:{port}"):
                await p.wait_until_up(timeout=1.5)
    asyncio.run(main())


def test_api_key_is_sent_as_a_bearer_token():
    async def main():
        seen = []

        async def handler(request):
            seen.append(request.headers.get("Authorization"))
            return web.json_response(OK)

        runner, url = await start_stub(handler)
        async with pool([url], api_key="s3cret") as p:
            assert await p.post("/v1/completions", {}) == OK
        assert seen == ["Bearer s3cret"]
        await runner.cleanup()
    asyncio.run(main())
