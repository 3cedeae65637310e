"""One asyncio client for a fleet of OpenAI-compatible servers: routing, concurrency caps, retries.

It knows nothing of modes: it sends a JSON payload to a path and returns the parsed response, or None once the
request has failed for good. Every mode shares it.

Routing sends each request to the healthy server with the fewest requests in flight, under a cap per server, so a
slow server (its requests finish later) is sent less. A server that refuses connections is taken out of rotation
and probed on /health until it answers again; requests wait for it without spending their retries, up to
`server_down_timeout`. Errors a retry can fix (connection resets, timeouts, 429, 5xx, a malformed body) are retried
with exponential backoff and jitter; other 4xx answers (a prompt longer than the context, say) are not.
"""
import asyncio
import random
import sys
import time

import aiohttp

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def completion_payload(model, prompt, seed, max_tokens, temperature, top_p, top_k=-1, repetition_penalty=1.0,
                       **extra):
    """A /v1/completions request for one sample (n=1, its own seed), with the special tokens left in the text.

    top_k and repetition_penalty are vLLM's extensions, sent only when set, so that other OpenAI-compatible servers
    accept the request.
    """
    payload = {"model": model, "prompt": prompt, "n": 1, "seed": seed, "max_tokens": max_tokens,
               "temperature": temperature, "top_p": top_p, "skip_special_tokens": False, **extra}
    if top_k > 0:
        payload["top_k"] = top_k
    if repetition_penalty != 1.0:
        payload["repetition_penalty"] = repetition_penalty
    return payload


class NoServerError(RuntimeError):
    """No server of the fleet answered in time."""


class _Server:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.inflight = 0
        self.up = True
        self.sent = 0
        self.probe = None


class ServerPool:
    def __init__(self, urls, api_key=None, max_inflight_per_server=256, request_timeout=7200.0, max_retries=5,
                 server_down_timeout=1800.0, backoff_base=1.0, backoff_max=60.0, log=None):
        if not urls:
            raise ValueError("no server URLs given")
        self.servers = [_Server(u) for u in urls]
        self.cap = max_inflight_per_server
        self.request_timeout = request_timeout
        self.max_retries = max_retries
        self.server_down_timeout = server_down_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self._changed = None
        self._session = None
        self.failed = 0
        self.retried = 0

    async def __aenter__(self):
        self._changed = asyncio.Condition()
        # No connector limit: the per-server cap is the limit, and a pooled connection per slot avoids handshakes.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60),
            headers=self.headers, timeout=aiohttp.ClientTimeout(total=None))
        return self

    async def __aexit__(self, *exc):
        for s in self.servers:
            if s.probe:
                s.probe.cancel()
        await self._session.close()

    @property
    def total_slots(self):
        return self.cap * len(self.servers)

    # ---- startup -------------------------------------------------------------------------------------------
    async def _get(self, url, timeout=5.0):
        async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            if r.status != 200:
                raise aiohttp.ClientResponseError(r.request_info, (), status=r.status)
            return await r.json(content_type=None) if url.endswith("/models") else None

    async def wait_until_up(self, timeout, progress=None, every=15.0):
        """Wait until every server answers /health; raise NoServerError naming those that never did."""
        start = time.monotonic()
        last = start
        pending = list(self.servers)
        while pending:
            results = await asyncio.gather(*(self._get(s.url + "/health") for s in pending), return_exceptions=True)
            pending = [s for s, r in zip(pending, results) if isinstance(r, BaseException)]
            if not pending:
                break
            now = time.monotonic()
            if now - start >= timeout:
                names = ", ".join(s.url for s in pending)
                raise NoServerError(f"no answer from {names} after {timeout:.0f} s "
                                    f"(start them with: python3 vllm_start.py -c <config>)")
            if progress and now - last >= every:
                progress(f"waiting for servers: {len(self.servers) - len(pending)}/{len(self.servers)} up "
                         f"({now - start:.0f} s)")
                last = now
            await asyncio.sleep(1.0)

    async def model_name(self, rounds=5):
        """The served model name, from /v1/models of the first server that answers (a few rounds, backing off)."""
        errors = []
        for attempt in range(rounds):
            refused = 0
            for s in self.servers:
                try:
                    data = await self._get(s.url + "/v1/models", timeout=30.0)
                    return data["data"][0]["id"]
                except aiohttp.ClientResponseError as e:
                    errors.append(f"{s.url}: HTTP {e.status}")
                    refused += e.status in (401, 403)
                except Exception as e:  # any other failure here means "try the next server"
                    errors.append(f"{s.url}: {type(e).__name__}")
            if refused == len(self.servers):  # waiting will not change a wrong key
                raise NoServerError("every server refused the API key (HTTP 401/403); check api_key_env")
            if attempt + 1 < rounds:
                await asyncio.sleep(self._backoff(attempt))
        raise NoServerError("no server answered /v1/models (" + "; ".join(errors[-len(self.servers):]) + ")")

    # ---- routing -------------------------------------------------------------------------------------------
    async def _acquire(self):
        deadline = time.monotonic() + self.server_down_timeout
        async with self._changed:
            while True:
                free = [s for s in self.servers if s.up and s.inflight < self.cap]
                if free:
                    least = min(s.inflight for s in free)
                    server = random.choice([s for s in free if s.inflight == least])
                    server.inflight += 1
                    server.sent += 1
                    return server
                if not any(s.up for s in self.servers) and time.monotonic() > deadline:
                    raise NoServerError(f"every server has been down for {self.server_down_timeout:.0f} s")
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=5.0)
                except asyncio.TimeoutError:
                    pass

    async def _release(self, server):
        async with self._changed:
            server.inflight -= 1
            self._changed.notify()

    async def _mark_down(self, server):
        async with self._changed:
            if server.up:
                server.up = False
                self.log(f"server {server.url} is unreachable; routing around it until /health answers")
                server.probe = asyncio.ensure_future(self._probe(server))

    async def _probe(self, server):
        delay = 1.0
        while True:
            await asyncio.sleep(delay)
            try:
                await self._get(server.url + "/health")
            except Exception:  # still down
                delay = min(delay * 2, 15.0)
                continue
            async with self._changed:
                server.up = True
                server.probe = None
                self._changed.notify_all()
            self.log(f"server {server.url} is back")
            return

    # ---- requests ------------------------------------------------------------------------------------------
    def _backoff(self, attempt):
        return min(self.backoff_max, self.backoff_base * 2 ** attempt) * (0.5 + random.random() / 2)

    async def post(self, path, payload):
        """POST a JSON payload to one server; the parsed response, or None once retries are spent."""
        attempt = 0
        last_error = None
        while attempt <= self.max_retries:
            try:
                server = await self._acquire()
            except NoServerError as e:
                last_error = str(e)
                break
            try:
                async with self._session.post(server.url + path, json=payload,
                                              timeout=aiohttp.ClientTimeout(total=self.request_timeout)) as r:
                    if r.status == 200:
                        data = await r.json(content_type=None)
                        if isinstance(data, dict) and data.get("choices"):
                            return data
                        last_error = "a 200 answer without choices"
                    elif r.status in RETRY_STATUS:
                        last_error = f"HTTP {r.status}"
                    else:
                        body = (await r.text())[:300]
                        self.failed += 1
                        self.log(f"request to {server.url}{path} refused with HTTP {r.status}: {body}")
                        return None
            except aiohttp.ClientConnectorError as e:
                # Never reached the server: not the request's fault, so its retries are not spent.
                await self._mark_down(server)
                last_error = f"cannot connect ({e.os_error})"
                continue
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as e:
                last_error = type(e).__name__ if not str(e) else f"{type(e).__name__}: {e}"
            finally:
                await self._release(server)
            attempt += 1
            self.retried += 1
            if attempt <= self.max_retries:
                await asyncio.sleep(self._backoff(attempt - 1))
        self.failed += 1
        self.log(f"request to {path} failed after {attempt} attempts: {last_error}")
        return None
