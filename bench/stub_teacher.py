"""A SIMULATED teacher for the adaptive-sampling benchmark and tests. Not a model: a stand-in whose difficulty is known.

    python3 bench/stub_teacher.py --port 9001 [--delay 0.05] [--log served.txt]   # an OpenAI-compatible server
    from stub_teacher import SimulatedTeacher, make_problems                     # in-process (the benchmark)

Problems are "Problem K: what is A + B?" (make_problems writes them with expected_answer A + B, or without one for
a share of them). Each problem's chance p of a correct answer is drawn once, from its text, out of a spread like
that of real math sets, most problems easy and a long hard tail: a mixture of Beta(8, 1.5) (60%, mean 0.84),
Beta(2, 2) (25%) and Beta(0.4, 4) (15%, mean 0.09). Answer j is correct when a hash of (problem, j) falls below p,
so the same seed always gives the same answer (as vLLM does on CPU), else it is one of five near misses (a hard
problem's wrong answers often agree, which is what a vote meets). Lengths grow with difficulty: mean tokens
a + b (1 - p)^2, times a log-normal factor (sigma 0.35), 1.3x for a wrong answer; an answer longer than
max_tokens is cut there, with no final answer and finish_reason "length". Three made-up choices of (a, b), LENGTHS:
steep (1200, 14000: a hopeless problem's answers about 13x an easy one's), mild (3000, 9000: about 4x) and flat
(4000, 0: no growth, a contrast rather than a model of a real teacher). Which is nearer a real teacher on real data
shows in one number, the share of a fixed run's tokens spent on its hardest quartile (bench/adaptive_sampling.py
prints it for each model, and computes it from a real run's problems.jsonl with --share). With a `profile` (the
benchmark's --from-run), each problem's p and mean length are instead those a real run measured. The text is a gpt-oss
harmony output with one word per 100 tokens (token_scale), so a benchmark writes megabytes, not the gigabytes its
token counts stand for; the token counts themselves are reported as the server's usage.
"""
import argparse
import asyncio
import hashlib
import json
import math
import random
import re
from collections import Counter

from reasonlite.llm import Generation

PROBLEM_RE = re.compile(r"Problem (\d+): what is (\d+) \+ (\d+)\?")
MIXTURE = ((0.60, 8.0, 1.5), (0.25, 2.0, 2.0), (0.15, 0.4, 4.0))  # (weight, alpha, beta)
LENGTHS = {"steep": (1200, 14000), "mild": (3000, 9000), "flat": (4000, 0)}  # mean tokens a + b (1 - p)^2


def _uniform(*key):
    h = hashlib.blake2b(":".join(map(str, key)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2 ** 64


def make_problems(n, seed=0, voted_share=0.0, prefix="sim"):
    """info.jsonl records for n simulated problems; a voted_share of them without expected_answer."""
    rng = random.Random(seed)
    out = []
    for k in range(n):
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        rec = {"prompt": f"Problem {k}: what is {a} + {b}?", "index": f"{prefix}:{k}"}
        if rng.random() >= voted_share:
            rec["expected_answer"] = str(a + b)
        out.append(rec)
    return out


class SimulatedTeacher:
    """The simulated teacher as a generator for reasonlite.adaptive (see the module docstring)."""

    def __init__(self, max_tokens=30000, seed=0, token_scale=0.01, concurrency=256, delay=0.0, lengths="steep",
                 profile=None):
        self.max_tokens, self.seed, self.token_scale, self.lengths = max_tokens, seed, token_scale, lengths
        self.concurrency, self.delay = concurrency, delay
        # profile: [(p, mean answer tokens)] by problem number, from a real run (bench/adaptive_sampling.py
        # --from-run): each problem's chance and length are then those measured, not drawn or modelled.
        self.profile = profile
        self.tokens = 0
        self.calls = Counter()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        pass

    def p_correct(self, k):
        """Problem k's chance of a correct answer: one draw from the difficulty mixture (or the profile's)."""
        if self.profile is not None:
            return self.profile[k % len(self.profile)][0]
        rng = random.Random(int(_uniform("difficulty", self.seed, k) * 2 ** 53))
        pick, acc = rng.random(), 0.0
        for weight, alpha, beta in MIXTURE:
            acc += weight
            if pick < acc:
                return rng.betavariate(alpha, beta)
        return rng.betavariate(*MIXTURE[-1][1:])

    def answer(self, text, j, max_tokens=None):
        """(generation, completion tokens, finish_reason) of answer j to the problem in text."""
        m = PROBLEM_RE.search(text)
        k, truth = (int(m.group(1)), int(m.group(2)) + int(m.group(3))) if m else (0, 42)
        p = self.p_correct(k)
        correct = _uniform("correct", self.seed, k, j) < p
        value = truth if correct else truth + 1 + int(_uniform("miss", self.seed, k, j) * 5)
        if self.profile is not None:  # the measured mean over all answers, wrong ones 1.3x as long as right ones
            mean = self.profile[k % len(self.profile)][1] / (p + 1.3 * (1 - p)) * (1.0 if correct else 1.3)
        else:
            a, b = LENGTHS[self.lengths]
            mean = (a + b * (1 - p) ** 2) * (1.0 if correct else 1.3)
        z = math.sqrt(-2 * math.log(max(_uniform("z1", self.seed, k, j), 1e-12))) * \
            math.cos(2 * math.pi * _uniform("z2", self.seed, k, j))
        tokens = max(20, int(mean * math.exp(0.35 * z - 0.35 ** 2 / 2)))
        limit = max_tokens or self.max_tokens
        words = " ".join(["step"] * max(1, int(min(tokens, limit) * self.token_scale)))
        if tokens > limit:  # ran out of tokens while still reasoning
            return f"<|channel|>analysis<|message|>Add {k}. {words}", limit, "length"
        return (f"<|channel|>analysis<|message|>Add them. {words}<|end|><|start|>assistant<|channel|>final"
                f"<|message|>The sum is \\boxed{{{value}}}.", tokens, "stop")

    async def generate(self, model_input, seed):
        if self.delay:
            await asyncio.sleep(self.delay)
        text, tokens, finish = self.answer(model_input, seed)
        self.tokens += tokens
        self.calls[(model_input, seed)] += 1
        return Generation(model_input + text, text, tokens, finish)

    def status(self):
        return f"{self.tokens} simulated tokens"


def make_app(args):
    from aiohttp import web
    from stub_server import completion_response  # served as a script: bench/ is first on the path
    teacher = SimulatedTeacher(seed=args.seed)
    log = open(args.log, "a", buffering=1) if args.log else None

    async def handle(request):
        if request.path == "/health":
            return web.Response(text="")
        if request.path == "/v1/models":
            return web.json_response({"object": "list", "data": [{"id": "stub/gpt-oss-sim", "object": "model"}]})
        body = await request.json()
        prompt, seed = body.get("prompt", ""), int(body.get("seed") or 0)
        if args.delay:
            await asyncio.sleep(args.delay)
        text, tokens, finish = teacher.answer(prompt, seed, body.get("max_tokens"))
        m = PROBLEM_RE.search(prompt)
        if log is not None:  # what was asked for, so a test can tell a redone answer from a new one
            log.write(json.dumps({"problem": int(m.group(1)) if m else None, "seed": seed}) + "\n")
        if body.get("echo"):
            text = prompt + text
        usage = {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": tokens + 10}
        return await completion_response(request, body, text, usage, finish, "simulated-teacher")

    app = web.Application(client_max_size=64 << 20)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def main():
    from aiohttp import web
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds each completion takes")
    parser.add_argument("--seed", type=int, default=0, help="the teacher's seed (its difficulty draws)")
    parser.add_argument("--log", help="append one line per completion asked for: {problem, seed}")
    args = parser.parse_args()
    web.run_app(make_app(args), host=args.host, port=args.port, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    main()
