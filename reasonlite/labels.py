"""The three label modes: vote, judge, judge_vote.

    vote        answer_origin/        -> vote/               answers of each problem grouped by equivalence, counted
    judge       answer_origin/        -> answer_judge/       each answer against the dataset's expected_answer
    judge_vote  answer_origin/, vote/ -> answer_judge_vote/  each answer against the pseudo-label, if the vote is
                                                             clear enough, else against expected_answer

Labels come from the symbolic grader (reasonlite/grader.py) by default; `vote_backend: llm` and `judge_backend: llm`
ask the served model itself with the seed's prompts, and `judge_backend: hybrid` asks it only where the grader
cannot decide.
"""
import asyncio
import json
import logging
import os
import shutil
import time
from collections import Counter

from reasonlite import jsonl
from reasonlite.client import NoServerError
from reasonlite.jsonl import DataError, IndexSet
from reasonlite.llm import LLM, parse_judge_reply, parse_vote_reply
from reasonlite.prompts import judge_prompt, vote_prompt
from reasonlite.runner import Stage
from reasonlite.servers import pid_alive

logger = logging.getLogger(__name__)


def _sample_number(index):
    """j of an index '<problem>_<j>': the seed for that sample."""
    tail = index.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _problem_index(index):
    return index.rsplit("_", 1)[0]


def latest_input(base, stage_name, needed_by):
    folder = jsonl.latest_complete(base / stage_name)
    if folder is None:
        raise DataError(f"{base / stage_name}: no complete run folder; run `infer.py -m "
                        f"{'infer' if stage_name == 'answer_origin' else 'vote'}` before -m {needed_by}")
    return folder


def origin_records(folder, need_expected=False):
    """Stream the records of an answer_origin folder, checking the fields later stages rely on."""
    for path in jsonl.folder_files(folder, include_part=False):
        for lineno, rec in jsonl.read_records(path):
            where = f"{path}:{lineno}"
            if not isinstance(rec.get("index"), str):
                raise DataError(f"{where}: field 'index' is missing; not an answer_origin record")
            if not isinstance(rec.get("info"), dict):
                raise DataError(f"{where}: field 'info' is missing or not an object")
            if "answer" not in rec or not (rec["answer"] is None or isinstance(rec["answer"], str)):
                raise DataError(f"{where}: field 'answer' is missing or not a string")
            if need_expected and not isinstance(rec["info"].get("expected_answer"), (str, int, float)):
                raise DataError(f"{where}: field 'info.expected_answer' is missing")
            yield rec


# ---- labelling modes -----------------------------------------------------------------------------------------
class Labeller(Stage):
    """What vote and the judges share: the grader's worker pool, an optional LLM, and verdict counts."""

    concurrency = 256

    def __init__(self, cfg):
        super().__init__(cfg)
        self.grader = None
        self.llm = None
        self.llm_failed = False
        self.llm_lock = asyncio.Lock()
        self.verdicts = Counter()

    def uses_llm(self):
        return False

    async def __aenter__(self):
        from reasonlite.grader import Grader
        self.grader = Grader(workers=self.cfg.grader_workers, timeout=self.cfg.grader_timeout)
        if self.uses_llm():
            await self._open_llm()
        return self

    async def _open_llm(self, wait=True):
        llm = LLM(self.cfg, wait=wait)
        await llm.__aenter__()
        self.llm = llm
        self.concurrency = max(self.concurrency, llm.pool.total_slots)

    async def fallback_llm(self):
        """The LLM that hybrid judging asks where the grader cannot decide, opened on first need (once, however
        many records need it at the same moment); None when no server answers, which is said once."""
        async with self.llm_lock:
            if self.llm is None and not self.llm_failed:
                try:
                    await self._open_llm(wait=False)  # a judge run must not sit out a server's start timeout
                except NoServerError as e:
                    self.llm_failed = True
                    logger.warning(f"hybrid judge: no LLM server to ask where the grader cannot decide ({e}); those stay null")
        return self.llm

    async def __aexit__(self, *exc):
        if self.llm is not None:
            await self.llm.__aexit__(*exc)
        self.grader.close()

    async def equivalent(self, gold, pred):
        return await asyncio.wrap_future(self.grader.submit(gold, pred))

    def progress(self):
        return ", ".join(f"{k} {v}" for k, v in self.verdicts.items())

    def summary(self):
        lines = [f"{sum(self.verdicts.values())} labelled now: "
                 + ", ".join(f"{k} {v}" for k, v in sorted(self.verdicts.items()))
                 + f"; {self.llm.calls if self.llm else 0} LLM calls; {time.monotonic() - self.t0:.1f} s"]
        if self.grader is not None:
            lines.append(f"grader: {self.grader.computed} checks computed, the rest answered from its cache "
                         "or by string equality")
        return lines


class Vote(Labeller):
    """Count the answers of each problem by mathematical equivalence: vote = {spelling: count}, most first."""

    name = "vote"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.source = None
        self.tmp = None
        self.n_buckets = 1

    def uses_llm(self):
        return self.cfg.vote_backend == "llm"

    def check_inputs(self):
        self.source = latest_input(self.base, "answer_origin", "vote")
        self._bucketize()

    def _bucketize(self):
        """Spread the (problem, j, extracted answer) triples over bucket files by problem, in one streaming pass.

        The answers of one problem are scattered over every shard file; holding all of them at once would grow
        with the dataset. Each bucket holds whole problems and is small enough to group in memory.
        """
        from reasonlite.grader import extract_answer
        stage_dir = self.base / self.name
        stage_dir.mkdir(parents=True, exist_ok=True)
        for old in stage_dir.glob(".buckets-*"):  # left by a killed run
            pid = old.name.rsplit("-", 1)[-1]
            if not (pid.isdigit() and pid_alive(int(pid))):
                shutil.rmtree(old, ignore_errors=True)
        self.tmp = stage_dir / f".buckets-{os.getpid()}"
        self.tmp.mkdir()
        size = sum(p.stat().st_size for p in jsonl.folder_files(self.source, include_part=False))
        self.n_buckets = max(1, min(1024, size // (256 << 20) + 1))
        files = [open(self.tmp / f"{b}.jsonl", "wb") for b in range(self.n_buckets)]
        seen = IndexSet()
        try:
            for rec in origin_records(self.source):
                problem = _problem_index(rec["index"])
                row = {"p": problem, "j": _sample_number(rec["index"]),
                       "a": extract_answer(rec["answer"]) if rec["answer"] is not None else None}
                if problem not in seen:  # the problem's info once, not once per answer
                    seen.add(problem)
                    row["info"] = rec["info"]
                files[jsonl.shard_of(problem, self.n_buckets)].write(jsonl.dumps(row))
        finally:
            for f in files:
                f.close()

    def items(self):
        for b in range(self.n_buckets):
            problems = {}
            for _, row in jsonl.read_records(self.tmp / f"{b}.jsonl"):
                p = problems.setdefault(row["p"], {"index": row["p"], "info": None, "answers": []})
                if "info" in row:
                    p["info"] = row["info"]
                p["answers"].append((row["j"], row["a"]))
            for index in sorted(problems):
                item = problems[index]
                item["answers"] = [a for _, a in sorted(item["answers"], key=lambda x: x[0])]
                yield item

    def is_finished(self, record):
        return isinstance(record.get("vote"), dict)

    def unfinished(self, item):
        return {**item["info"], "vote": None}

    async def process(self, item):
        answers = [a for a in item["answers"] if a is not None]
        if self.uses_llm():
            vote = await self._llm_vote(item)
            if vote is None:
                return None
        else:
            vote = await self._group(answers)
        self.verdicts["voted" if vote else "no answers"] += 1
        info = dict(item["info"])
        info["index"] = item["index"]
        return {**info, "vote": vote}

    async def _group(self, answers):
        # Spellings that normalize alike are one group without asking the grader; each remaining spelling, most
        # frequent first, joins the first group whose representative the grader finds equivalent.
        from reasonlite.grader import normalize
        by_key = {}
        for a in answers:
            by_key.setdefault(normalize(a), Counter())[a] += 1
        groups = []  # [representative, Counter of spellings]
        for key, spellings in sorted(by_key.items(), key=lambda kv: -sum(kv[1].values())):
            rep = spellings.most_common(1)[0][0]
            verdicts = await asyncio.gather(*(self.equivalent(g[0], rep) for g in groups))
            home = next((g for g, v in zip(groups, verdicts) if v), None)
            if home is None:
                groups.append([rep, Counter(spellings)])
            else:
                home[1].update(spellings)
        counted = [(g[1].most_common(1)[0][0], sum(g[1].values())) for g in groups]
        counted.sort(key=lambda x: -x[1])  # stable: ties keep the order of first appearance
        return dict(counted)

    async def _llm_vote(self, item):
        # The seed shows the model every extracted answer, 'none' where there was no box.
        shown = [a if a is not None else "none" for a in item["answers"]]
        reply = await self.llm.ask(vote_prompt(shown), seed=0)
        if reply is None:
            return None
        vote = parse_vote_reply(reply)
        if vote is None:
            self.verdicts["malformed LLM vote"] += 1
            return {}
        return vote

    def close(self):
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


class Judge(Labeller):
    """judge: is each answer equivalent to the dataset's expected_answer? Adds `judge: true | false | null`."""

    name = "answer_judge"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.source = None

    def uses_llm(self):
        return self.cfg.judge_backend == "llm"

    def check_inputs(self):
        self.source = latest_input(self.base, "answer_origin", "judge")

    def items(self):
        for rec in origin_records(self.source, need_expected=True):
            yield {"index": rec["index"], "record": rec, "target": str(rec["info"]["expected_answer"])}

    def is_finished(self, record):
        return record.get("judge") is not None

    def unfinished(self, item):
        return {**item["record"], "judge": None}

    async def process(self, item):
        record = item["record"]
        verdict = await self.verdict(item["target"], record["answer"], _sample_number(item["index"]))
        self.verdicts[{True: "true", False: "false", None: "null"}[verdict]] += 1
        return {**record, "judge": verdict}

    async def verdict(self, target, output, seed):
        """True/False/None for one generation against one target answer."""
        from reasonlite.grader import extract_answer
        if output is None:
            return None  # the generation itself failed; rerun infer, then judge again
        answer = extract_answer(output)
        if answer is None:
            return False  # truncated or no boxed answer: not a correct solution
        backend = self.cfg.judge_backend
        if backend != "llm":
            verdict = await self.equivalent(target, answer)
            if verdict is not None or backend == "rule":
                return verdict
        llm = self.llm if backend == "llm" else await self.fallback_llm()
        if llm is None:
            return None
        reply = await llm.ask(judge_prompt(target, answer), seed=seed)
        return None if reply is None else parse_judge_reply(reply)


class JudgeVote(Judge):
    """judge_vote: like judge, against the vote's top answer where the vote is clear, else expected_answer."""

    name = "answer_judge_vote"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.sources = Counter()

    def check_inputs(self):
        super().check_inputs()
        folder = latest_input(self.base, "vote", "judge_vote")
        # One small entry per problem (not per answer): its vote as compact JSON and the label it leads to.
        self.labels = {}
        for path in jsonl.folder_files(folder, include_part=False):
            for lineno, rec in jsonl.read_records(path):
                if not isinstance(rec.get("index"), str) or not isinstance(rec.get("vote", 0), (dict, type(None))):
                    raise DataError(f"{path}:{lineno}: fields 'index' and 'vote' are required; not a vote record")
                self.labels[rec["index"]] = json.dumps(rec["vote"] or {}, ensure_ascii=False)

    def pseudo_label(self, vote, expected):
        """The seed's rule: the top answer if it has at least vote_ratio of the votes and min_vote votes."""
        if vote:
            top, count = next(iter(vote.items()))
            if count / sum(vote.values()) >= self.cfg.vote_ratio and count >= self.cfg.min_vote:
                return top, "vote"
        return expected, "dataset"

    def items(self):
        for item in super().items():
            rec = item["record"]
            vote = json.loads(self.labels.get(_problem_index(rec["index"]), "{}"))
            target, source = self.pseudo_label(vote, item["target"])
            rec["info"] = {**rec["info"], "vote": vote, "label_source": source}
            yield {"index": item["index"], "record": rec, "target": target}

    async def process(self, item):
        self.sources[item["record"]["info"]["label_source"]] += 1
        return await super().process(item)

    def summary(self):
        return super().summary() + ["labels from " + ", ".join(f"{k} {v}" for k, v in sorted(self.sources.items()))]
