"""One asyncio client for a fleet of OpenAI-compatible servers: routing, concurrency caps, liveness, retries.

It knows nothing of modes: it sends a JSON payload to a path and returns the parsed response, or None once the
request has failed for good. Infer, adaptive sampling, the LLM vote and judge and the evaluator all share it.

Routing sends each request to the healthy server with the fewest requests in flight, under a cap per server, so a
slow server (its requests finish later) is sent less. A server that refuses connections is taken out of rotation
and probed on /health until it answers again; requests wait for it without spending their retries, up to
`server_down_timeout`. Errors a retry can fix (connection resets, timeouts, 429, 5xx, a body that is not what an
OpenAI-compatible server sends) are retried with exponential backoff and jitter, and counted by kind in `faults`;
other 4xx answers (a prompt longer than the context, say) are not retried.

The request path: plain JSON bodies, liveness read from the server. Streaming each token, which this client did
before, costs throughput that the seed's plain requests do not: on a real vLLM server with 256 answers in flight,
per-token streams gave 0.65x the tokens/s of plain bodies and cost the client 58 s of CPU per million tokens
(bench/generation_throughput.py; vLLM's own write-up of --stream-interval measured +57% for gpt-oss at 1024 in
flight on GPUs). vLLM 0.32's per-request `stream_interval` would save most of that, but the seed's ROCm image
(vLLM of August 2025) has no stream interval at all, and a stream still costs a wake-up per chunk here. So an
answer is one plain body, whatever its length, and what streaming was for comes from the server's own counters
instead: vLLM's /metrics
(`vllm:generation_tokens_total`, `vllm:prompt_tokens_total`, `vllm:num_requests_running`/`_waiting`, in every vLLM
the project supports), read every few seconds while requests of ours are in flight there, never per request.
- Time queued is never a timeout: a request waits, in vLLM's queue or here for a free slot, as long as its server
  makes progress; a 30,000-token answer is never cut (no total timeout unless `request_timeout` sets one).
- A stalled server (an engine hung on a collective, a host gone silent): no token counted for `stall_timeout`
  seconds while requests of ours are there, or /metrics not answering that long. Every attempt on it is aborted
  and retried elsewhere ("stall timeout"), and it is routed around until /health answers and its counters show it
  idle or moving again.
- A dead server: its connections close at once and the requests are retried; one that no longer accepts
  connections is routed around, as above.
- A lost request (held by a proxy, say, while the server works on others): once its server has generated more
  tokens since it was sent than every request ahead of and beside it could (2 x longest answer x (queue when it
  arrived + most running at once)), it is aborted and retried ("lost request"). A safety net, slow by design.
Which path a server gets is chosen when it is first used, from what it reports (`request_path: auto`): plain where
its /metrics has vLLM's counters; streamed where it has none (vLLM started with --disable-log-stats, another
server), so that per-request timeouts keep working there: `first_token_timeout` from sending to the first chunk,
`stall_timeout` between chunks, with the request's `stream_interval` when set. `plain` and `stream` force one path.
All timeouts are checked by one watchdog task every few seconds (a quarter of the shortest timeout, at most 5 s):
no task or timer per line of a stream, one task per attempt so that the watchdog can abort it.
"""
import asyncio
import json
import random
import re
import socket
import sys
import time
from collections import Counter

import aiohttp

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
PATHS = ("auto", "plain", "stream")
STREAM_KEYS = ("stream", "stream_options", "stream_interval")


def completion_payload(model, prompt, seed, max_tokens, temperature, top_p, top_k=-1, repetition_penalty=1.0,
                       **extra):
    """A /v1/completions request for one sample (n=1, its own seed), special tokens left in the text.

    Whether it is streamed is the pool's choice per server (see the module docstring). top_k and
    repetition_penalty are vLLM's extensions, sent only when set, so that other OpenAI-compatible servers accept it.
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
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
        raise BadBody(f"HTTP 200 without choices: {_snippet(raw)}")
    first = data["choices"][0]
    if not isinstance(first, dict) or not isinstance(first.get("text", first.get("message")), (str, dict)):
        raise BadBody(f"HTTP 200 whose first choice has no text: {_snippet(raw)}")
    return data


# The counters every vLLM since 0.3 exports (summed over engines and models: data-parallel servers label each).
_METRIC = re.compile(rb"^vllm:(generation_tokens_total|prompt_tokens_total|num_requests_running|"
                     rb"num_requests_waiting)(?:\{[^}\n]*\})? ([^ \n]+)", re.M)


def read_counters(text):
    """{name: sum over its series} of vLLM's progress counters in a /metrics page, or None if it has none."""
    sums = {}
    for name, value in _METRIC.findall(text):
        try:
            sums[name.decode()] = sums.get(name.decode(), 0.0) + float(value)
        except ValueError:
            continue
    return sums if "generation_tokens_total" in sums else None


class StreamReader:
    """Reassembles a server-sent-events completion stream into one response dict, checking it as it comes."""

    def __init__(self):
        self.parts, self.finish_reason, self.usage, self.done, self.chunks = [], None, None, False, 0
        self.meta = None

    def feed(self, line):
        if not line or line[0] == 58:  # blank separators and SSE comments (":", keep-alives)
            return
        if not line.startswith(b"data:"):
            line = line.strip()
            if not line or line[0] == 58:
                return
            raise BadBody(f"a streamed answer with a line that is not server-sent events: {_snippet(line)}")
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return
        try:
            chunk = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadBody(f"a streamed chunk that is not JSON: {_snippet(payload)}") from None
        if type(chunk) is not dict:
            raise BadBody(f"a streamed chunk that is not an object: {_snippet(payload)}")
        if "error" in chunk:  # vLLM reports an error met while generating as a chunk of its own
            raise BadBody(f"the server reported an error mid-stream: {_snippet(json.dumps(chunk['error']))}")
        self.chunks += 1
        if self.meta is None:
            self.meta = {key: chunk.get(key) for key in ("id", "model", "object")}
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if type(choice) is not dict or type(text := choice.get("text", "")) is not str:
                raise BadBody(f"a streamed chunk whose choice has no text: {_snippet(payload)}")
            self.parts.append(text)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def result(self):
        if not self.done:
            raise BadBody(f"the stream ended before [DONE] after {self.chunks} chunks")
        if not self.parts:
            raise BadBody("a stream without choices")
        return {**(self.meta or {}), "choices": [{"index": 0, "text": "".join(self.parts),
                                                  "finish_reason": self.finish_reason}],
                "usage": self.usage or {}}


class _Attempt:
    """One try of one request on one server, as the watchdog sees it."""
    __slots__ = ("task", "stream", "sent", "last", "chunks", "reason", "max_tokens", "baseline", "ahead")

    def __init__(self, stream, max_tokens, now):
        self.task, self.stream, self.sent, self.last, self.chunks = None, stream, now, now, 0
        self.reason = None  # set by the watchdog before it cancels the attempt: the fault's kind
        self.max_tokens = max_tokens
        self.baseline = None  # the server's token counter at the first read after sending (plain path)
        self.ahead = 0  # requests in the server (and of ours in transit) at that read


class _Server:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.inflight = 0
        self.up = True
        self.sent = 0
        self.probe = None
        self.path = None  # "plain" or "stream", chosen when first used
        self.counters = False  # its /metrics has vLLM's counters
        self.detecting = None
        self.attempts = set()
        self.polling = None
        self.tokens = None  # generated + prompt tokens, at the last read of /metrics
        self.queue = 0  # running + waiting, at the last read
        self.peak_running = 0
        self.progress_at = None  # when its counters last moved (or /health last answered) with requests of ours there


def _keepalive_socket(addr_info):
    """A client socket with TCP keepalive: a plain body is silent for as long as its answer takes, and keepalive
    both finds a peer host that vanished and keeps a NAT or firewall between nodes from dropping the connection."""
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=kind, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 30), ("TCP_KEEPCNT", 4)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    return sock


class ServerPool:
    def __init__(self, urls, api_key=None, max_inflight_per_server=256, request_timeout=None, max_retries=5,
                 server_down_timeout=1800.0, backoff_base=1.0, backoff_max=60.0, log=None,
                 first_token_timeout=1800.0, stall_timeout=600.0, request_path="auto", stream_interval=None):
        if not urls:
            raise ValueError("no server URLs given")
        if request_path not in PATHS:
            raise ValueError(f"request_path must be one of {', '.join(PATHS)}, got {request_path!r}")
        self.servers = [_Server(u) for u in urls]
        self.cap = max_inflight_per_server
        self.request_timeout = request_timeout
        self.first_token_timeout = first_token_timeout
        self.stall_timeout = stall_timeout
        self.request_path = request_path
        self.stream_interval = stream_interval
        self.max_retries = max_retries
        self.server_down_timeout = server_down_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        # The watchdog's period: a quarter of the shortest timeout, so that one is noticed within 25% of its length.
        self.tick = max(0.02, min(5.0, stall_timeout / 4, first_token_timeout / 4))
        self._changed = None
        self._session = None
        self._watchdog = None
        self.failed = 0
        self.retried = 0
        self.faults = Counter()  # retried faults by kind: "HTTP 503", "bad body", "stall timeout", ...
        self.max_model_len = None  # the served context length, once model_name() has asked
        self.longest = 0  # the largest max_tokens sent: the lost-request rule's bound on any answer's length

    async def __aenter__(self):
        self._changed = asyncio.Condition()
        # No connector limit: the per-server cap is the limit, and a pooled connection per slot avoids handshakes.
        connector = dict(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
        if "socket_factory" in aiohttp.TCPConnector.__init__.__code__.co_varnames:  # aiohttp 3.12+
            connector["socket_factory"] = _keepalive_socket
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(**connector), headers=self.headers,
                                              timeout=aiohttp.ClientTimeout(total=None))
        self._watchdog = asyncio.ensure_future(self._watch())
        return self

    async def __aexit__(self, *exc):
        tasks = [self._watchdog] + [t for s in self.servers for t in (s.probe, s.polling, s.detecting) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._session.close()

    @property
    def total_slots(self):
        return self.cap * len(self.servers)

    # ---- startup -------------------------------------------------------------------------------------------
    async def _get(self, url, timeout=5.0, raw=False):
        async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            if r.status != 200:
                raise aiohttp.ClientResponseError(r.request_info, (), status=r.status)
            if raw:
                return await r.read()
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

    async def served_models(self):
        """{url: the model names its /v1/models lists} for every server that answers (401/403: raise NoServerError,
        as model_name does); records the served context length like model_name."""
        async def ask(s):
            try:
                data = (await self._get(s.url + "/v1/models", timeout=30.0))["data"]
            except aiohttp.ClientResponseError as e:
                return e.status
            except Exception:  # no answer: not asked here
                return None
            return data

        answers = await asyncio.gather(*(ask(s) for s in self.servers))
        if answers and all(a in (401, 403) for a in answers):
            raise NoServerError("every server refused the API key (HTTP 401/403); check api_key_env")
        listed = {}
        for s, data in zip(self.servers, answers):
            if isinstance(data, list) and data:
                listed[s.url] = [str(card.get("id")) for card in data if isinstance(card, dict)]
                self.max_model_len = self.max_model_len or data[0].get("max_model_len")
        return listed

    # ---- the request path of each server ---------------------------------------------------------------------
    async def _read_metrics(self, server, timeout):
        """vLLM's counters of one server, or None if its /metrics has none; raises if it does not answer."""
        return read_counters(await self._get(server.url + "/metrics", timeout=timeout, raw=True))

    async def _detect(self, server):
        try:
            counters = await self._read_metrics(server, timeout=10.0)
        except aiohttp.ClientResponseError:  # an answer all the same (404: no /metrics): no counters
            counters = None
        except Exception:
            # No answer now: send this one plain, read the counters as for vLLM (if they never answer, that is a
            # stall) and decide again on the next request.
            server.counters = True
            return "stream" if self.request_path == "stream" else "plain"
        server.counters = counters is not None
        server.path = self.request_path if self.request_path != "auto" else "plain" if server.counters else "stream"
        return server.path

    async def _path(self, server):
        if server.path is not None:
            return server.path
        if server.detecting is None or server.detecting.done():
            server.detecting = asyncio.ensure_future(self._detect(server))
        return await asyncio.shield(server.detecting)

    async def request_paths(self):
        """One line saying which request path and liveness check each server gets (asks the ones not yet asked)."""
        await asyncio.gather(*(self._path(s) for s in self.servers))
        kinds = Counter(self.describe(s) for s in self.servers)
        return "; ".join(f"{what} ({n} of {len(self.servers)} servers)" for what, n in kinds.items())

    def describe(self, server):
        if server.path == "stream":
            return (f"streamed requests ({'no vLLM counters at /metrics, ' if not server.counters else ''}"
                    f"per-request first-token and stall timeouts"
                    + (f", stream_interval {self.stream_interval})" if self.stream_interval else ")"))
        if server.path == "plain":
            return ("plain bodies, liveness from /metrics (vLLM's token counters)" if server.counters else
                    "plain bodies, liveness from /health only (no vLLM counters at /metrics)")
        return "not yet asked"

    def _shape(self, payload, stream):
        """The payload as sent on this server's path: the stream keys set or taken out."""
        if stream:
            shaped = {**payload, "stream": True, "stream_options": {"include_usage": True}}
            if self.stream_interval and "stream_interval" not in payload:
                shaped["stream_interval"] = self.stream_interval
            return shaped
        if any(k in payload for k in STREAM_KEYS):
            return {k: v for k, v in payload.items() if k not in STREAM_KEYS}
        return payload

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

    async def _mark_down(self, server, why=None):
        async with self._changed:
            if server.up:
                server.up = False
                self.log(why or f"server {server.url} is unreachable; routing around it until /health answers")
                server.probe = asyncio.ensure_future(self._probe(server, stalled=why is not None))

    async def _probe(self, server, stalled):
        """Until the server is back: /health answers and, after a stall, its counters show it idle or moving (a
        hung engine can answer /health)."""
        delay = 1.0
        before = server.tokens
        while True:
            await asyncio.sleep(min(delay, self.stall_timeout))
            try:
                await self._get(server.url + "/health")
                if stalled and server.counters:
                    counters = await self._read_metrics(server, timeout=min(10.0, max(1.0, self.stall_timeout)))
                    if counters is not None:
                        tokens = counters["generation_tokens_total"] + counters.get("prompt_tokens_total", 0)
                        busy = counters.get("num_requests_running", 0) + counters.get("num_requests_waiting", 0)
                        if busy and tokens == before:
                            raise RuntimeError("still stalled")
            except Exception:  # still down
                delay = min(delay * 2, 15.0)
                continue
            async with self._changed:
                server.up = True
                server.probe = None
                server.tokens, server.progress_at = None, None
                if self.request_path == "auto":
                    server.path = None  # a restarted server may report otherwise: ask again
                self._changed.notify_all()
            self.log(f"server {server.url} is back")
            return

    # ---- the watchdog --------------------------------------------------------------------------------------
    async def _watch(self):
        while True:
            await asyncio.sleep(self.tick)
            now = time.monotonic()
            for server in self.servers:
                if not server.attempts:
                    server.progress_at = None
                    continue
                self._check_streams(server, now)
                # A server already routed around (it refused a connection) is still watched: the requests it had
                # may hang on a host that is gone.
                if not any(not a.stream for a in server.attempts):
                    continue
                if server.progress_at is None:
                    server.progress_at = now
                if server.polling is None or server.polling.done():
                    server.polling = asyncio.ensure_future(self._poll(server))
                if now - server.progress_at > self.stall_timeout:
                    await self._stalled(server, now)

    def _check_streams(self, server, now):
        for a in list(server.attempts):
            if not a.stream or a.reason:
                continue
            if not a.chunks and now - a.sent > self.first_token_timeout:
                self._abort(a, "first-token timeout")
            elif a.chunks and now - a.last > self.stall_timeout:
                self._abort(a, "stall timeout")

    @staticmethod
    def _abort(attempt, kind):
        attempt.reason = kind
        attempt.task.cancel()

    async def _poll(self, server):
        """Read the server's counters once: progress, the queue, and the lost-request rule for plain attempts."""
        try:
            if server.counters:
                counters = await self._read_metrics(server, timeout=min(30.0, max(1.0, self.stall_timeout / 2)))
            else:
                await self._get(server.url + "/health", timeout=min(30.0, max(1.0, self.stall_timeout / 2)))
                counters = None
        except Exception:  # no answer: no progress (the stall rule decides)
            return
        now = time.monotonic()
        if counters is None:
            server.progress_at = now  # /health is all this server tells
            return
        tokens = counters["generation_tokens_total"] + counters.get("prompt_tokens_total", 0)
        running = counters.get("num_requests_running", 0)
        if server.tokens is None or tokens != server.tokens:
            server.progress_at = now
        if server.tokens is not None and tokens < server.tokens:  # counters reset: a restarted server
            for a in server.attempts:
                a.baseline = None
        server.tokens, server.queue = tokens, running + counters.get("num_requests_waiting", 0)
        server.peak_running = max(server.peak_running, running)
        ours = len(server.attempts)
        for a in list(server.attempts):
            if a.stream or a.reason:
                continue
            if a.baseline is None:
                a.baseline, a.ahead = tokens, server.queue + ours
                continue
            longest = max(a.max_tokens or 0, self.longest)
            if self.max_model_len:
                longest = min(longest, self.max_model_len)
            if longest and tokens - a.baseline > 2 * longest * (a.ahead + server.peak_running):
                self._abort(a, "lost request")

    async def _stalled(self, server, now):
        plain = [a for a in server.attempts if not a.stream and not a.reason]
        what = "generated no token" if server.counters else "has not answered /health"
        await self._mark_down(server, f"server {server.url} {what} for {now - server.progress_at:.0f} s with "
                                      f"{len(server.attempts)} requests in flight; retrying them and routing around "
                                      "it until it is back")
        for a in plain:
            self._abort(a, "stall timeout")
        server.progress_at = now

    # ---- requests ------------------------------------------------------------------------------------------
    def _backoff(self, attempt):
        return min(self.backoff_max, self.backoff_base * 2 ** attempt) * (0.5 + random.random() / 2)

    async def _send(self, server, path, payload, attempt):
        """One attempt: (response dict, None), or (None, why) for a refusal not worth retrying; raises faults."""
        timeout = aiohttp.ClientTimeout(total=self.request_timeout, sock_connect=30)
        async with self._session.post(server.url + path, json=payload, timeout=timeout) as r:
            if r.status in RETRY_STATUS:
                raise _Retry(f"HTTP {r.status}")
            if r.status != 200:
                body = (await r.text())[:300]
                return None, f"HTTP {r.status}: {body}"
            if not attempt.stream or not r.content_type.startswith("text/event-stream"):
                return parse_body(await r.read()), None
            reader = StreamReader()
            rest = b""
            loop_time = asyncio.get_running_loop().time
            # Whatever arrived, split into lines here: one wake-up per network read, not per line, and no timer.
            async for data in r.content.iter_any():
                attempt.last = loop_time()
                lines = (rest + data).split(b"\n") if rest else data.split(b"\n")
                rest = lines.pop()
                for line in lines:
                    reader.feed(line)
                attempt.chunks = reader.chunks
                if reader.done:
                    break
            if rest and not reader.done:
                reader.feed(rest)
            return reader.result(), None

    async def post(self, path, payload):
        """POST a JSON payload to one server; the parsed response, or None once retries are spent."""
        attempt_no = 0
        last_error = None
        max_tokens = payload.get("max_tokens") if isinstance(payload, dict) else None
        if isinstance(max_tokens, int):
            self.longest = max(self.longest, max_tokens)
        while attempt_no <= self.max_retries:
            try:
                server = await self._acquire()
            except NoServerError as e:
                last_error = str(e)
                break
            attempt = None
            try:
                stream = await self._path(server) == "stream"
                attempt = _Attempt(stream, max_tokens, asyncio.get_running_loop().time())
                attempt.task = asyncio.ensure_future(self._send(server, path, self._shape(payload, stream), attempt))
                server.attempts.add(attempt)
                try:
                    data, refusal = await attempt.task
                except asyncio.CancelledError:
                    outer = asyncio.current_task()
                    if attempt.reason is None or (hasattr(outer, "cancelling") and outer.cancelling()):
                        raise  # our caller was cancelled, not the attempt
                    raise _Retry(attempt.reason, f"{attempt.reason} on {server.url}") from None
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
                if attempt is not None:
                    server.attempts.discard(attempt)
                await self._release(server)
            attempt_no += 1
            self.retried += 1
            if attempt_no <= self.max_retries:
                await asyncio.sleep(self._backoff(attempt_no - 1))
        self.failed += 1
        self.log(f"request to {path} failed after {attempt_no} attempts: {last_error}")
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
