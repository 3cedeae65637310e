"""One asyncio client for a fleet of OpenAI-compatible servers: routing, concurrency caps, timeouts, retries.

It knows nothing of modes: it sends a JSON payload to a path and returns the parsed response, or None once the
request has failed for good. Every mode shares it.

Routing sends each request to the healthy server with the fewest requests in flight, under a cap per server, so a
slow server (its requests finish later) is sent less. A server that refuses connections is taken out of rotation
and probed on /health until it answers again; requests wait for it without spending their retries, up to
`server_down_timeout`. Errors a retry can fix (connection resets, timeouts, 429, 5xx, a body that is not what an
OpenAI-compatible server sends) are retried with exponential backoff and jitter, and counted by kind in `faults`;
other 4xx answers (a prompt longer than the context, say) are not retried.

Timeouts measure the server, not the queue. A streamed request (`"stream": true`, what completion_payload asks for)
times out when no token arrives within `first_token_timeout` of being sent, or when the stream then stalls for
`stall_timeout`; time spent waiting here for a free slot never counts. A 30,000-token answer that keeps streaming is
never cut, where one total timeout would either cut it or wait hours on a dead connection. `request_timeout`, if
set, caps one attempt in total. The stream is reassembled into the shape of a non-streamed response.
"""
import asyncio
import json
import random
import sys
import time
from collections import Counter

import aiohttp

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def completion_payload(model, prompt, seed, max_tokens, temperature, top_p, top_k=-1, repetition_penalty=1.0,
                       **extra):
    """A streamed /v1/completions request for one sample (n=1, its own seed), special tokens left in the text.

    Streamed so that timeouts can tell a stalled server from a long answer (see the module docstring); the usage
    chunk at the end gives the token counts. top_k and repetition_penalty are vLLM's extensions, sent only when set,
    so that other OpenAI-compatible servers accept the request.
    """
    payload = {"model": model, "prompt": prompt, "n": 1, "seed": seed, "max_tokens": max_tokens,
               "temperature": temperature, "top_p": top_p, "skip_special_tokens": False, "stream": True,
               "stream_options": {"include_usage": True}, **extra}
    if top_k > 0:
        payload["top_k"] = top_k
    if repetition_penalty != 1.0:
        payload["repetition_penalty"] = repetition_penalty
    return payload


class NoServerError(RuntimeError):
    """No server of the fleet answered in time."""


class BadBody(Exception):
    """An HTTP 200 answer that is not what an OpenAI-compatible server sends (a proxy's error page, a body cut short,
    no choices); retried like other faults."""


def _snippet(raw, n=80):
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    text = " ".join(text.split())
    return repr(text[:n] + ("..." if len(text) > n else ""))


def parse_body(raw):
    """The response dict of a non-streamed completion, or BadBody saying what is wrong with it."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadBody(f"HTTP 200 with a body that is not JSON: {_snippet(raw)}") from None
    _check_choices(data, raw)
    return data


def _check_choices(data, raw):
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
        raise BadBody(f"HTTP 200 without choices: {_snippet(raw)}")
    first = data["choices"][0]
    if not isinstance(first, dict) or not isinstance(first.get("text", first.get("message")), (str, dict)):
        raise BadBody(f"HTTP 200 whose first choice has no text: {_snippet(raw)}")


class StreamReader:
    """Reassembles a server-sent-events completion stream into one response dict, checking it as it comes."""

    def __init__(self):
        self.parts, self.finish_reason, self.usage, self.done, self.chunks = [], None, None, False, 0
        self.meta = {}

    def feed(self, line):
        line = line.strip()
        if not line or line.startswith(b":"):  # blank separators and SSE comments (keep-alives)
            return
        if not line.startswith(b"data:"):
            raise BadBody(f"a streamed answer with a line that is not server-sent events: {_snippet(line)}")
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return
        try:
            chunk = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadBody(f"a streamed chunk that is not JSON: {_snippet(payload)}") from None
        if not isinstance(chunk, dict):
            raise BadBody(f"a streamed chunk that is not an object: {_snippet(payload)}")
        if "error" in chunk:  # vLLM reports an error met while generating as a chunk of its own
            raise BadBody(f"the server reported an error mid-stream: {_snippet(json.dumps(chunk['error']))}")
        self.chunks += 1
        for key in ("id", "model", "object"):
            self.meta.setdefault(key, chunk.get(key))
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or not isinstance(choice.get("text", ""), str):
                raise BadBody(f"a streamed chunk whose choice has no text: {_snippet(payload)}")
            self.parts.append(choice.get("text") or "")
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def result(self):
        if not self.done:
            raise BadBody(f"the stream ended before [DONE] after {self.chunks} chunks")
        if not self.parts:
            raise BadBody("a stream without choices")
        return {**self.meta, "choices": [{"index": 0, "text": "".join(self.parts),
                                          "finish_reason": self.finish_reason}],
                "usage": self.usage or {}}


class _Server:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.inflight = 0
        self.up = True
        self.sent = 0
        self.probe = None


class ServerPool:
    def __init__(self, urls, api_key=None, max_inflight_per_server=256, request_timeout=None, max_retries=5,
                 server_down_timeout=1800.0, backoff_base=1.0, backoff_max=60.0, log=None,
                 first_token_timeout=1800.0, stall_timeout=600.0):
        if not urls:
            raise ValueError("no server URLs given")
        self.servers = [_Server(u) for u in urls]
        self.cap = max_inflight_per_server
        self.request_timeout = request_timeout
        self.first_token_timeout = first_token_timeout
        self.stall_timeout = stall_timeout
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
        self.faults = Counter()  # retried faults by kind: "HTTP 503", "bad body", "first-token timeout", ...
        self.max_model_len = None  # the served context length, once model_name() has asked

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
                    # vLLM also says its context length; callers cap max_tokens by it (other servers: None)
                    self.max_model_len = data["data"][0].get("max_model_len")
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

    async def _send(self, server, path, payload):
        """One attempt: the response dict; raises what went wrong. Non-retryable refusals return (None, why)."""
        timeout = aiohttp.ClientTimeout(total=self.request_timeout, sock_connect=30)
        stream = bool(payload.get("stream"))
        # Headers come at once for a stream (vLLM sends them when it accepts the request), at the end otherwise.
        headers_wait = self.first_token_timeout if stream else None
        async with await asyncio.wait_for(self._session.post(server.url + path, json=payload, timeout=timeout),
                                          headers_wait) as r:
            if r.status in RETRY_STATUS:
                raise _Retry(f"HTTP {r.status}")
            if r.status != 200:
                body = (await r.text())[:300]
                return None, f"HTTP {r.status}: {body}"
            if not stream or not r.content_type.startswith("text/event-stream"):
                return parse_body(await r.read()), None
            reader = StreamReader()
            wait = self.first_token_timeout
            while not reader.done:
                try:
                    line = await asyncio.wait_for(r.content.readline(), wait)
                except asyncio.TimeoutError:
                    kind = "first-token timeout" if not reader.chunks else "stall timeout"
                    raise _Retry(kind, f"{kind}: no token for {wait:.0f} s") from None
                if not line:
                    break
                reader.feed(line)
                if reader.chunks:
                    wait = self.stall_timeout
            return reader.result(), None

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
                data, refusal = await self._send(server, path, payload)
                if refusal is None:
                    return data
                self.failed += 1
                self.log(f"request to {server.url}{path} refused with {refusal}")
                return None
            except aiohttp.ClientConnectorError as e:
                # Never reached the server: not the request's fault, so its retries are not spent.
                await self._mark_down(server)
                last_error = f"cannot connect ({e.os_error})"
                continue
            except _Retry as e:
                self.faults[e.kind] += 1
                last_error = e.message
            except BadBody as e:
                self.faults["bad body"] += 1
                last_error = str(e)
                self.log(f"{server.url}{path}: {e}; retrying")
            except asyncio.TimeoutError:
                self.faults["timeout"] += 1
                last_error = "timed out"
            except aiohttp.ClientError as e:
                self.faults[type(e).__name__] += 1
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

    def fault_summary(self):
        """One line of what was retried, by kind, for a stage's summary; empty when nothing was."""
        if not self.faults:
            return ""
        return "retried faults: " + ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))


class _Retry(Exception):
    def __init__(self, kind, message=None):
        super().__init__(message or kind)
        self.kind, self.message = kind, message or kind
