"""Evaluate one model on one benchmark: n samples per problem, graded, pass@k / maj@k per problem and dataset.

    cd eval
    # vLLM's offline engine on the visible GPUs (the default)
    python3 eval.py --base_model amd/ReasonLite-0.6B --data_id zwhe99/aime90 --output_dir result/x \\
        --bf16 True --tensor_parallel_size 1 --max_model_len 65536 --temperature 1 --top_p 0.98 --n 16
    # any OpenAI-compatible server instead (a vllm_start.py fleet: several URLs, comma-separated)
    python3 eval.py --base_model ../.cache/tiny-model --server_url http://127.0.0.1:8040 \\
        --data_id zwhe99/aime90 --data_dir ../../shared/benchmarks/aime24.jsonl --output_dir result/y --n 4

Usually started by start.py (reasonlite/evaluation/tasks.py), which runs a YAML list of such tasks on a pool of GPUs.
Writes into output_dir:
- config.json       the options of the task (a later run into the same folder must agree on what shapes a sample)
- generation.jsonl  one record per problem: the dataset row, prompt, response / response_length / finish_reason
                    per sample, pred (the boxed answer; the option letter for multiple choice), correct, pass@k,
                    maj@k. While generating, each finished sample is appended as its own line at once, on both
                    paths (the offline engine is stepped here and hands over each sample as it finishes), so a run
                    killed at any point leaves every finished sample on file and the next run generates the rest.
- result.log        dataset means x100, one block per metric (the seed's layout); avg@n is pass@1
- metrics.json      the same means unrounded, for report.py

Sample i of a problem is drawn with seed + i, so a rerun, a resumed run or a run with a larger n reproduces the
samples it already has. The first SIGTERM or SIGINT stops handing out new samples, lets those in flight finish for
up to STOP_WAIT_S seconds, keeps them and exits with code 75 (reasonlite/signals.py); a second stops at once.
"""
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path

from reasonlite.cli import user_errors
from reasonlite.client import ServerPool, completion_payload
from reasonlite.config import api_key
from reasonlite.evaluation.benchmarks import DATASETS, load_problems, mc_letter
from reasonlite.evaluation.metrics import format_result_log, ks_for, problem_metrics, summarize
from reasonlite.evaluation.options import IDENTITY, parse_args
from reasonlite.evaluation.prompting import build_prompts, load_tokenizer
from reasonlite.grader import Grader, extract_answer
from reasonlite.jsonl import DataError, ShardWriter, read_records, whole_lines_size, write_atomic
from reasonlite.manifest import write_manifest
from reasonlite.signals import GracefulStop, Stopped, unless_stopped

logger = logging.getLogger(__name__)
SERVER_WAIT_S = 120.0
STOP_WAIT_S = 60.0  # after the first SIGTERM/SIGINT: how long samples in flight may still finish and be kept
# Requests handed to the offline engine at a time: enough to keep its batches full (the seed's max_num_seqs is
# 64 * tp * gpu_memory_utilization), few enough that a 64K-sample task never holds all its requests at once.
OFFLINE_WINDOW = 1024
PROGRESS_S = 30.0


# ---- the output folder --------------------------------------------------------------------------------------------
class OtherTaskError(ValueError):
    pass


def check_config(out, opts):
    path = out / "config.json"
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise OtherTaskError(f"{path}: not a config.json this evaluator wrote; use another output_dir") from None
    diffs = [f"{k}: {old.get(k)!r} there, {opts[k]!r} here" for k in IDENTITY if old.get(k) != opts[k]]
    if diffs:
        raise OtherTaskError(f"output_dir {out} holds another task's generations ({'; '.join(diffs)}); "
                             "use another output_dir, nothing was overwritten")


def load_samples(out, problems, n):
    """{(idx, i): sample} already in generation.jsonl, and the byte length of its whole lines.

    Reads both kinds of line: one sample (written while generating) and one problem with all its samples (written
    at the end). A line without its newline is a write a crash cut short; it is dropped and regenerated.
    """
    path = out / "generation.jsonl"
    samples = {}
    if not path.exists():
        return samples, 0
    by_idx = {p["idx"]: p for p in problems}
    by_prompt = {p["prompt"]: p for p in problems}
    try:  # read_records streams; a line that is not JSON is another program's file
        for lineno, rec in read_records(path, torn_tail_ok=True):
            where = f"{path}:{lineno}"
            prompt = rec.get("prompt")
            if "idx" in rec and rec["idx"] not in by_idx and prompt not in by_prompt:
                raise OtherTaskError(f"{where}: holds problem {rec['idx']!r}, outside this task's problems; use "
                                     "another output_dir or the earlier start_idx / end_idx, nothing was overwritten")
            # Seed-written files have no idx; their prompt says which problem a record is.
            problem = by_idx.get(rec["idx"]) if "idx" in rec else by_prompt.get(prompt)
            if problem is None or problem["prompt"] != prompt:
                raise OtherTaskError(f"{where}: a generation for a problem or prompt this task does not have; "
                                     f"output_dir {out} holds another task's generations; use another output_dir, "
                                     "nothing was overwritten")
            if "sample" in rec:
                entries = [(rec["sample"], rec.get("response"), rec.get("response_length"), rec.get("finish_reason"))]
            elif isinstance(rec.get("response"), list):
                k = len(rec["response"])
                lengths = rec.get("response_length") or [None] * k
                reasons = rec.get("finish_reason") or [None] * k
                entries = list(zip(range(k), rec["response"], lengths, reasons))
            else:
                raise OtherTaskError(f"{where}: neither a sample nor a problem record; use another output_dir")
            for i, text, length, reason in entries:
                if not isinstance(i, int) or i < 0 or not isinstance(text, str):
                    raise OtherTaskError(f"{where}: a sample without its number or text; use another output_dir")
                samples[(problem["idx"], i)] = {"response": text, "response_length": length, "finish_reason": reason}
    except DataError as e:
        raise OtherTaskError(f"{e}, so not written by this evaluator; use another output_dir") from None
    keep = whole_lines_size(path)
    most = max((i + 1 for _, i in samples), default=0)
    if most > n:
        # The final rewrite keeps n samples per problem; the others would be lost.
        raise OtherTaskError(f"{path} holds {most} samples per problem, more than this task's n={n}; use another "
                             f"output_dir or n >= {most}, nothing was overwritten")
    return samples, keep


# ---- generation ---------------------------------------------------------------------------------------------------
def sample_line(problem, i, seed, text, length, reason):
    return {"idx": problem["idx"], "sample": i, "seed": seed, "prompt": problem["prompt"], "response": text,
            "response_length": length, "finish_reason": reason}


def check_context(problems, context, what):
    """Every prompt must leave room for at least one new token in the engine's context."""
    for p in problems:
        if len(p["prompt_ids"]) >= context:
            raise ValueError(f"problem {p['idx']}: its prompt has {len(p['prompt_ids'])} tokens, which leaves no room "
                             f"in the context of {context} tokens ({what})")


def new_tokens(opts, problem, context):
    """A sample's max_tokens: max_model_len (the seed's), max_tokens where lower, and no more than the context leaves
    (the engine would stop there anyway; a server of an older vLLM refuses a request that asks for more)."""
    want = min(opts["max_model_len"], opts["max_tokens"] or opts["max_model_len"])
    return min(want, context - len(problem["prompt_ids"])) if context else want


class Progress:
    def __init__(self, total):
        self.total, self.done, self.last = total, 0, time.monotonic()

    def tick(self):
        self.done += 1
        if time.monotonic() - self.last >= PROGRESS_S:
            logger.info(f"{self.done}/{self.total} samples")
            self.last = time.monotonic()


async def _generate_server(opts, todo, append, stop):
    urls = [u.strip() for u in opts["server_url"].split(",") if u.strip()]
    failed = 0
    progress = Progress(len(todo))
    stop.install_in(asyncio.get_running_loop())
    async with ServerPool(urls, api_key=api_key(opts), max_inflight_per_server=opts["max_inflight_per_server"],
                          request_path=opts["request_path"], log=logger.warning) as pool:
        if not await unless_stopped(pool.wait_until_up(SERVER_WAIT_S, progress=logger.info), stop):
            return 0  # a signal while waiting for the servers: the caller says what is left
        model = await pool.model_name()
        # The servers' context caps each request: vLLM refuses a max_tokens above it (0.32 and others) or beyond
        # what the prompt leaves (older ones). model_name() reads it from /v1/models where the client records it.
        context = opts["engine_max_model_len"] or getattr(pool, "max_model_len", None)
        if context:
            check_context(dict((p["idx"], p) for p, _ in todo).values(), context, "the servers' max_model_len")
        logger.info(f"generating {len(todo)} samples with {model} at {', '.join(urls)} "
                    f"({await pool.request_paths()})")
        queue = iter(todo)  # shared by the workers; one event loop, so each sample is taken once

        async def worker():
            nonlocal failed
            for problem, i in queue:
                if stop.requested:
                    return
                payload = completion_payload(model, problem["prompt_ids"], seed=opts["seed"] + i,
                                             max_tokens=new_tokens(opts, problem, context),
                                             temperature=opts["temperature"], top_p=opts["top_p"], top_k=opts["top_k"],
                                             repetition_penalty=opts["repetition_penalty"])
                data = await pool.post("/v1/completions", payload)
                if data is None:
                    failed += 1
                    continue
                choice = data["choices"][0]
                length = (data.get("usage") or {}).get("completion_tokens")
                append(sample_line(problem, i, opts["seed"] + i, choice.get("text") or "", length,
                                   choice.get("finish_reason")))
                progress.tick()

        # As many workers as requests the pool lets through: memory stays flat however many samples the task has.
        slots = min(len(todo), pool.total_slots)
        pending = {asyncio.create_task(worker()) for _ in range(slots)}
        deadline = None
        while pending:
            done, pending = await asyncio.wait(pending, timeout=1.0)
            for task in done:
                task.result()  # a worker's error (no server at all, ...) is the run's error
            if stop.requested and pending:
                deadline = deadline or time.monotonic() + STOP_WAIT_S
                if stop.urgent or time.monotonic() >= deadline:
                    for task in pending:
                        task.cancel()
                    await asyncio.gather(*pending, return_exceptions=True)
                    break
    return failed


def _generate_offline(opts, todo, append, stop):
    """Step vLLM's engine ourselves (what LLM.generate does inside), appending each sample the step it finishes."""
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt
    try:  # only a request's final output: without it every step would copy every unfinished text
        from vllm.sampling_params import RequestOutputKind
        final_only = {"output_kind": RequestOutputKind.FINAL_ONLY}
    except ImportError:  # older vLLM returns final outputs only anyway
        final_only = {}

    from reasonlite import vllm_flags
    kwargs = vllm_flags.engine_kwargs(opts)  # the arguments the preflight checks against vLLM's parser
    logger.info(f"loading {opts['base_model']} into the offline engine ({kwargs['dtype']}, "
                f"tp {opts['tensor_parallel_size']})")
    llm = LLM(**kwargs)
    engine = llm.llm_engine
    context = engine.model_config.max_model_len
    check_context(dict((p["idx"], p) for p, _ in todo).values(), context, "the offline engine's max_model_len")
    logger.info(f"generating {len(todo)} samples with the offline engine (context {context})")
    queue = iter(todo)
    inflight = {}
    progress = Progress(len(todo))

    def feed():
        while len(inflight) < OFFLINE_WINDOW and not stop.requested:
            item = next(queue, None)
            if item is None:
                return
            problem, i = item
            params = SamplingParams(n=1, seed=opts["seed"] + i, max_tokens=new_tokens(opts, problem, context),
                                    temperature=opts["temperature"], top_p=opts["top_p"], top_k=opts["top_k"],
                                    repetition_penalty=opts["repetition_penalty"], skip_special_tokens=False,
                                    **final_only)
            request_id = f"{problem['idx']}:{i}"
            engine.add_request(request_id, TokensPrompt(prompt_token_ids=problem["prompt_ids"]), params)
            inflight[request_id] = item

    feed()
    deadline = None
    while inflight:
        if stop.requested:
            deadline = deadline or time.monotonic() + STOP_WAIT_S
            if stop.urgent or time.monotonic() >= deadline:
                engine.abort_request(list(inflight))
                break
        try:
            outputs = engine.step()
        except Exception:
            if stop.requested:  # vLLM's own processes got the same signal (Ctrl-C, Slurm) and are gone
                logger.warning("the offline engine stopped on the signal; keeping what was finished")
                break
            raise
        for out in outputs:
            if out.finished and out.request_id in inflight:
                problem, i = inflight.pop(out.request_id)
                o = out.outputs[0]
                append(sample_line(problem, i, opts["seed"] + i, o.text, len(o.token_ids), o.finish_reason))
                progress.tick()
        feed()
    return 0


def generate(opts, out, problems, samples, keep):
    """Generate every (problem, sample) missing from samples, appending each to generation.jsonl as it finishes."""
    n = opts["n"]
    todo = [(p, i) for p in problems for i in range(n) if (p["idx"], i) not in samples]
    if not todo:
        return
    path = out / "generation.jsonl"
    if path.exists() and path.stat().st_size != keep:
        os.truncate(path, keep)  # a torn last line; appending after it would glue two records
    writer = ShardWriter(path, flush_every=1)  # whole lines, O_APPEND, written per sample: resumable at any time

    def append(rec):
        writer.write(rec)
        samples[(rec["idx"], rec["sample"])] = rec

    with GracefulStop() as stop:
        try:
            if opts["server_url"]:
                failed = asyncio.run(_generate_server(opts, todo, append, stop))
            else:
                failed = _generate_offline(opts, todo, append, stop)
        finally:
            writer.close()
    missing = sum(1 for p, i in todo if (p["idx"], i) not in samples)
    if stop.requested and missing:  # a signal that came after the last sample stops nothing: grading goes on
        raise Stopped(f"{stop.signal_name}: {len(todo) - missing} samples generated and kept, {missing} of "
                      f"{len(problems) * n} still to do; rerun the same command to generate only those")
    if failed:
        raise RuntimeError(f"{failed} of {len(todo)} samples failed after their retries; rerun the same command to "
                           "generate only those")


# ---- scoring ------------------------------------------------------------------------------------------------------
def score(problems, samples, n, seed):
    """Per-problem records with verdicts and metrics, in problem order."""
    records = []
    with Grader() as grader:
        futures = []
        for p in problems:
            texts = [samples[(p["idx"], i)]["response"] for i in range(n)]
            # The grader reads the final answer out of the whole output itself (box, else "final answer is ...").
            futures.append([grader.submit(p["gold"], t) for t in texts])
        for p, futs in zip(problems, futures):
            ss = [samples[(p["idx"], i)] for i in range(n)]
            preds = [extract_answer(s["response"]) for s in ss]
            if p["choice"]:  # the option a sample names is its vote, however it spelled it
                preds = [mc_letter(pred) for pred in preds]
            correct = [f.result() is True for f in futs]  # None (the check timed out) counts as wrong
            rec = dict(p["row"])
            # "problem" too: with problem_key: prompt the row's own problem column is overwritten by "prompt"
            rec.update({"idx": p["idx"], "problem": p["problem"], "prompt": p["prompt"],
                        "prompt_length": len(p["prompt_ids"]),
                        "gold": p["gold"], "response": [s["response"] for s in ss],
                        "response_length": [s["response_length"] for s in ss],
                        "finish_reason": [s["finish_reason"] for s in ss], "sample_seed": [seed + i for i in range(n)],
                        "pred": preds, "correct": correct})
            rec.update(problem_metrics(preds, correct))
            records.append(rec)
    return records


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    with user_errors("--debug" in argv):
        opts, _ = parse_args(argv, description=__doc__.splitlines()[0])
        try:
            evaluate(opts)
        except Stopped as e:
            print(f"stopped: {e}", file=sys.stderr)
            sys.exit(e.exit_code)


def evaluate(opts):
    """Generate what is missing, grade everything, and write the task folder's files."""
    # Spelled out, so that config.json says which split was read and `split: 2024` given later is the same task.
    opts["split"] = opts["split"] or DATASETS.get(opts["data_id"], {}).get("split")
    n = opts["n"]
    # Everything a later step would refuse is checked before the first write, so a refused folder is untouched.
    out = Path(opts["output_dir"])
    if out.exists() and not out.is_dir():
        raise ValueError(f"output_dir {out} exists and is not a folder")
    check_config(out, opts)
    problems, meta = load_problems(opts)
    tok = load_tokenizer(opts)
    build_prompts(opts, problems, tok)
    if opts["engine_max_model_len"]:
        check_context(problems, opts["engine_max_model_len"], "engine_max_model_len")
    samples, keep = load_samples(out, problems, n)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "config.json", json.dumps(opts, indent=1, ensure_ascii=False) + "\n")
    # What produced this folder (versions, git commit, model and problems hashes): report.py --diff starts there.
    write_manifest(out, opts, problems=[(p["idx"], p["problem"], p["gold"]) for p in problems],
                   dataset={"name": meta["dataset"]})
    have = sum(1 for p in problems for i in range(n) if (p["idx"], i) in samples)
    logger.info(f"{meta['dataset']}: {len(problems)} problems x {n} samples, {have} already in "
                f"{out / 'generation.jsonl'}")

    generate(opts, out, problems, samples, keep)
    records = score(problems, samples, n, opts["seed"])
    write_atomic(out / "generation.jsonl", (json.dumps(r, ensure_ascii=False) + "\n" for r in records))

    summary = summarize(records, n, meta["categories"])
    result = format_result_log(summary, n)
    write_atomic(out / "result.log", result)
    stats = {"samples": len(records) * n,
             "no_answer": sum(p is None for r in records for p in r["pred"]),
             "truncated": sum(f == "length" for r in records for f in r["finish_reason"])}
    metrics = {"base_model": opts["base_model"], "data_id": opts["data_id"], "dataset": meta["dataset"],
               "split": meta["split"], "n": n, "ks": ks_for(n), "num_problems": len(records),
               "start_idx": problems[0]["idx"], "end_idx": problems[-1]["idx"] + 1, **summary, "stats": stats}
    write_atomic(out / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    logger.info(result)
    logger.info(f"{stats['no_answer']} of {stats['samples']} samples without a boxed answer, {stats['truncated']} "
                f"cut at the length limit; written to {out}")


if __name__ == "__main__":  # start.py runs this module with -m; vLLM's spawned workers re-import it
    main()
