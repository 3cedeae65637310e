"""The served model: answers drawn as infer draws them (LLM.generate, for infer and the adaptive loop), the model as
a labeller (the seed's LLM vote and judge: one prompt in, its reply out), and the reading of those replies.

The reply parsers read only the box of the final answer, never a substring of the text: a reply that discusses
`{"match": true}` in its reasoning and boxes false is false.
"""
import json
import logging
import re
from dataclasses import dataclass

from reasonlite.config import api_key
from reasonlite.prompts import PromptBuilder
from reasonlite.servers import client_urls

logger = logging.getLogger(__name__)


@dataclass
class Generation:
    """One answer as infer records it, with what the server said about it."""
    model_output: str  # the prompt and the generation, as infer records it (echo)
    answer: str  # the generation alone
    tokens: int = None  # completion tokens, the server's usage
    finish: str = None  # the server's finish_reason


def served_names(cfg, flag_only=False):
    """The names the config's servers answer to: --served-model-name's in vllm_args (vLLM takes one or more), else
    model_path."""
    args, names = list(cfg.vllm_args), []
    for i, arg in enumerate(args):
        if arg.startswith("--served-model-name="):
            names = [arg.split("=", 1)[1]]
        elif arg == "--served-model-name":
            for value in args[i + 1:]:
                if value.startswith("-"):
                    break
                names.append(value)
    if flag_only:
        return names
    return names or [cfg.model_path]


class LLM:
    """The configured servers behind one client pool: answers (generate) and replies (complete, ask); None after
    the last retry. It is also the adaptive loop's default generator (concurrency, generate, status)."""

    def __init__(self, cfg, wait=True):
        self.cfg = cfg
        self.wait = wait and cfg.wait_servers_up  # False: ask /v1/models a few times instead of waiting for /health
        self.build = PromptBuilder(cfg)
        self.pool = None
        self.model = None
        self.calls = 0
        self.tokens = 0

    async def __aenter__(self):
        from reasonlite.client import ServerPool  # aiohttp costs half a second: only when a server is needed
        cfg = self.cfg
        self.pool = ServerPool(client_urls(cfg), api_key=api_key(cfg),
                               max_inflight_per_server=cfg.max_inflight_per_server,
                               request_timeout=cfg.request_timeout, max_retries=cfg.max_retries,
                               first_token_timeout=cfg.first_token_timeout, stall_timeout=cfg.stall_timeout,
                               server_down_timeout=cfg.server_down_timeout, backoff_base=cfg.retry_backoff,
                               request_path=cfg.request_path, stream_interval=cfg.stream_interval,
                               log=logger.warning)
        await self.pool.__aenter__()
        try:
            if self.wait:
                await self.pool.wait_until_up(cfg.server_start_timeout, progress=logger.info)
            self.model = await self._served_model()
            logger.info(f"request path: {await self.pool.request_paths()}")
        except BaseException:
            await self.pool.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc):
        await self.pool.__aexit__(*exc)

    async def _served_model(self):
        """The model name to send, after checking that every server that answers serves the config's model: a
        server on the configured port that serves another model (another job's) would fill the run with its
        answers."""
        from reasonlite.client import NoServerError
        expected = served_names(self.cfg)
        listed = await self.pool.served_models()
        if not listed:
            return await self.pool.model_name()  # none answers: its error says why
        for url, names in listed.items():
            if not set(names) & set(expected):
                raise NoServerError(
                    f"server {url} serves {', '.join(names) or 'no model'}, not {' or '.join(expected)} "
                    f"({'--served-model-name in vllm_args' if served_names(self.cfg, flag_only=True) else 'model_path'}"
                    f" of {self.cfg.path}); it is not this config's server: start them with python3 vllm_start.py "
                    f"-c {self.cfg.path}, or set port_base/ip to where they are")
        return next(n for n in expected if any(n in names for names in listed.values()))

    def payload(self, model_input, seed, echo=False):
        cfg = self.cfg
        from reasonlite.client import completion_payload
        return completion_payload(self.model, model_input, seed=seed, max_tokens=cfg.max_tokens,
                                  temperature=cfg.temperature, top_p=cfg.top_p, echo=echo,
                                  stop=cfg.stop)

    @property
    def concurrency(self):
        return self.pool.total_slots if self.pool is not None else 1

    async def _first_choice(self, payload):
        """(text, completion tokens, finish_reason) of the first choice, or None once the request failed for good."""
        self.calls += 1
        data = await self.pool.post("/v1/completions", payload)
        if data is None:
            return None
        choice = data["choices"][0]
        tokens = (data.get("usage") or {}).get("completion_tokens")
        self.tokens += tokens or 0
        text = choice.get("text")
        return (text, tokens, choice.get("finish_reason")) if isinstance(text, str) else None

    async def complete(self, payload):
        """The text of the first choice, or None once the request has failed for good."""
        got = await self._first_choice(payload)
        return None if got is None else got[0]

    async def generate(self, model_input, seed):
        """Answer `seed` to a built prompt, drawn as infer draws it (echo, the seed), or None."""
        got = await self._first_choice(self.payload(model_input, seed, echo=True))
        if got is None:
            return None
        text, tokens, finish = got
        # With echo the text is the prompt followed by the generation; the prompt round-trips through the
        # tokenizer unchanged for byte-level BPE, which is what the seed's slicing assumes too.
        return Generation(text, text[len(model_input):], tokens, finish)

    def status(self):
        return f"{self.tokens} tokens"

    async def ask(self, user_text, seed=0):
        return await self.complete(self.payload(self.build(user_text), seed))



_LATEX_BACKSLASH = re.compile(r"(?<!\\)\\(?=[A-Za-z])")


def _boxed_json(reply):
    """The JSON object the seed's labelling prompts ask for inside \\boxed{...}, or None.

    Like the seed's parser it tries the box content with and without outer braces and with LaTeX backslashes
    escaped, but it reads only the box of the final answer, never a substring of the text.
    """
    from reasonlite.answers import final_text, last_boxed
    text = final_text(reply)
    box = last_boxed(text) if text is not None else None
    if box is None:
        return None
    box = box.strip()
    # A LaTeX command in a JSON key ("\\frac{1}{2}") is read by JSON as an escape (\\f = form feed), so single
    # backslashes before letters are doubled first; a reply that escaped them itself is left as it is.
    latex = _LATEX_BACKSLASH.sub(r"\\\\", box)
    for candidate in (latex, "{" + latex + "}", box, "{" + box + "}"):
        try:
            value = json.loads(candidate)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return None


def parse_vote_reply(reply):
    """{answer: count} sorted by count, most first, from a reply to vote_prompt; None if it is malformed."""
    value = _boxed_json(reply)
    if not value:
        return None
    counts = {}
    for answer, count in value.items():
        if isinstance(count, bool) or not isinstance(count, (int, float)) or count < 0 or count != int(count):
            return None
        counts[str(answer)] = int(count)
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def parse_judge_reply(reply):
    """True/False from a reply to judge_prompt (its boxed {"match": ...}); None if it says neither."""
    value = _boxed_json(reply)
    match = value.get("match") if value else None
    if isinstance(match, str) and match.strip().lower() in ("true", "false"):
        return match.strip().lower() == "true"
    return match if isinstance(match, bool) else None

