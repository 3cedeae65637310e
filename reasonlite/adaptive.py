"""Adaptive sampling (`sampling: adaptive` under -m infer): answers drawn in rounds until each problem has enough.

    python3 infer.py -c config/demo_adaptive.yaml -m infer [-l RANK -g WORLD] [-s RUN]

A fixed num_answer spends most of the teacher's time on problems every sample solves. Here a problem gets
`first_round` answers, then `round_size` more per round while it stays open; after each of its rounds its answers
are labelled by the judge and vote modes' own code (reasonlite/labels.py: Judge.verdict, Vote._group), against
expected_answer where the problem has one, else by a vote. A problem closes when
  - target_correct: it has as many correct answers (judged true and not cut; for a voted problem, in a top group
    that meets judge_vote's rule: at least vote_ratio of the votes and at least min_vote votes) as its target, which
    grows with its difficulty: `target_correct` times its estimated failure rate, at least `min_correct` (see
    problem_target; min_correct = target_correct is one flat target for every problem);
  - no_correct (judged problems, where `give_up_after` is set): none of its first give_up_after answers is correct;
  - max_answers: it has `max_answers` answers;
  - vote_unreachable (voted problems): the rule can no longer be met. With t votes for the top group, v votes in all
    and m answers still allowed, the best case is all m joining the top group: (t + m) / (v + m) and t + m both grow
    with m, so the rule is still reachable exactly when it holds for (t + m, v + m).
Rounds are per problem: a problem's next round starts as soon as its last one is labelled, and new problems are
let in as others close, so the servers stay busy and no round waits for the slowest problem of the dataset.

Records are infer's, field for field and index for index (`<problem>_<j>` with seed j, j running on across rounds)
in answer_origin/<run>/<rank>_<world>.jsonl, so vote, judge, judge_vote and the conversion read an adaptive run as
they read a fixed one. Beside each shard:
  answer_stats_<rank>_<world>.jsonl  one line per answer: extracted answer, judge verdict, cut or not, tokens (the
                                     server's usage), characters; written before the answer's record
  problems.jsonl                     one line per problem (problems_<rank>_<world>.jsonl when sharded), with why it
                                     closed, and funnel.json/.png: reasonlite/problem_stats.py, reasonlite/funnel.py

Crash safety is the runner's (reasonlite/runner.py, reasonlite/jsonl.py): a `.part` shard renamed when every
problem of the shard is closed, one writer per shard (ShardLock), torn last lines dropped, a graceful SIGTERM. The
loop keeps no state that is not on disk: a (re)start reads which answers the shard holds and their lines in the
stats file (an answer without one is labelled again; a stats line without its record is dropped), so a run killed
at any moment resumes where it was and draws no answer twice; since a problem's decisions depend only on its own
answers, the resumed run ends with the same records as one never killed. Earlier runs' answers (fixed or adaptive)
are carried over as infer does. With -g, a shard owns the problems whose index hashes to it (jsonl.shard_of on the
problem's index, where infer hashes each answer's): all answers of a problem stay in one shard, so its rounds never
wait on another process; later stages read every shard file of a run and do not care.

The generator is injectable: Adaptive(cfg, generator=G) takes any G with `async generate(model_input, seed) ->
Generation | None` (reasonlite.llm.Generation), a `concurrency` and the async context protocol. The default is
infer's own reasonlite.llm.LLM, the configured servers asked as infer asks them;
bench/adaptive_sampling.py plugs a simulated teacher in there.
"""
import asyncio
import logging
import sys
import time
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from reasonlite import funnel, jsonl, problem_stats, runner
from reasonlite.answers import extract_answer
from reasonlite.generation import Infer, one_answer
from reasonlite.jsonl import DataError, shard_of
from reasonlite.labels import Judge, Vote, vote_is_clear
from reasonlite.manifest import write_manifest
from reasonlite.problem_stats import Tally, is_cut, vote_counts
from reasonlite.signals import GracefulStop, Stopped, unless_stopped

logger = logging.getLogger(__name__)


# ---- the rules ---------------------------------------------------------------------------------------------
def round_end(drawn, first_round, round_size, max_answers):
    """How many answers a problem has when the round holding its answer number `drawn` - 1 is complete (rounds end
    at first_round, first_round + round_size, ..., max_answers); for drawn 0, the first round's end."""
    end = first_round if drawn <= first_round else \
        first_round + -(-(drawn - first_round) // round_size) * round_size
    return min(end, max_answers)


def vote_can_become_clear(top, total, remaining, vote_ratio, min_vote):
    """Can a vote of `top` of `total` votes still meet the rule with `remaining` answers to come? (Exact: see the
    module docstring. An answer without a box adds no vote, which only helps the best case less.)"""
    return vote_is_clear(top + remaining, total + remaining, vote_ratio, min_vote)


def problem_target(correct, drawn, cfg):
    """How many correct answers a problem is drawn for: target_correct x (1 - p), within [min_correct,
    target_correct], p its estimated pass rate (correct + 1/2) / (drawn + 1), the mean under the Jeffreys prior.

    Why it grows with difficulty (DART-Math's "proportional to difficulty"): an easy problem's 4 of 4 (p 0.9) asks
    for 4 correct answers, which it already has, so it closes after one round, and the tokens 28 more answers would
    have cost go to the problems that need them; a problem at 1 of 8 (p 0.17) asks for 27, and keeps drawing until
    it has them or max_answers. A flat target either stops the hard problems short (a low one) or spends rounds on
    easy ones (a high one). The estimate moves with every round, so a problem's target settles as it is sampled.
    Integer arithmetic, so a target never depends on float rounding."""
    num, den = cfg.target_correct * (2 * (drawn - correct) + 1), 2 * (drawn + 1)
    return min(cfg.target_correct, max(cfg.min_correct, -(-num // den)))


def close_reason(drawn, correct, cfg, votes=None):
    """Why a problem whose round is complete closes now, or None to draw another round. votes: vote_counts() of a
    voted problem's vote (None for a problem judged against its expected_answer)."""
    if votes is not None:
        top, _, total = votes
        clear = vote_is_clear(top, total, cfg.vote_ratio, cfg.min_vote)
        correct = top if clear else 0
    if correct >= problem_target(correct, drawn, cfg):
        return "target_correct"
    if votes is None and correct == 0 and cfg.give_up_after is not None and drawn >= cfg.give_up_after:
        return "no_correct"
    if votes is not None and not vote_can_become_clear(top, total, max(cfg.max_answers - drawn, 0),
                                                       cfg.vote_ratio, cfg.min_vote):
        return "vote_unreachable"
    if drawn >= cfg.max_answers:
        return "max_answers"
    return None


def bits(mask):
    j = 0
    while mask:
        if mask & 1:
            yield j
        mask >>= 1
        j += 1


# ---- the pieces it is made of --------------------------------------------------------------------------------
class RoundLabeller(Judge):
    """The judge's verdict and the vote's grouping, one answer or one problem at a time (the same code, borrowed:
    Vote's methods use only the grader and the LLM that every Labeller holds)."""

    group = Vote._group
    llm_vote = Vote._llm_vote

    def uses_llm(self):
        return self.cfg.judge_backend == "llm" or self.cfg.vote_backend == "llm"


class Problem(Tally):
    """One problem of the shard: which answers exist (bit j of `done`), which are labelled, which failed for good in
    this run (`lost`), and the counts of problem_stats.Tally; a voted problem also counts its answers' spellings."""

    __slots__ = ("index", "target", "done", "labelled", "lost", "spellings", "votes", "closed", "busy", "item")

    def __init__(self, index, target):
        super().__init__()
        self.index, self.target = index, target
        self.done = self.labelled = self.lost = self.busy = 0
        self.spellings = {} if target is None else None
        self.votes = self.closed = self.item = None

    def absorb(self, j, entry, lengths):
        """Count a labelled answer (a line of the stats file)."""
        self.labelled |= 1 << j
        kind = self.add(entry.get("chars", 0), entry.get("judge"), cut=bool(entry.get("cut")),
                        judged=self.target is not None)
        self.add_tokens(entry.get("tokens"))
        if self.target is not None or kind == "cut":  # a voted answer's kind is known only once the vote is
            lengths.add(kind, entry.get("tokens"))
        if self.target is None and entry.get("answer") is not None:
            self.spellings[entry["answer"]] = self.spellings.get(entry["answer"], 0) + 1

    def canonical_answers(self):
        # Grouping sees the spellings in one fixed order (most frequent first), so a resumed run, whose answers
        # arrived in another order, groups them exactly as an uninterrupted one.
        return [s for s, c in sorted(self.spellings.items(), key=lambda kv: (-kv[1], kv[0])) for _ in range(c)]

    def row(self, cfg):
        label, votes = "judge", self.votes or (0, 0, 0)
        if self.target is None:
            label = "vote" if vote_is_clear(votes[0], votes[2], cfg.vote_ratio, cfg.min_vote) else None
            if label:
                self.settle_vote(votes[0])
        return super().row(self.index, label=label, votes=votes, closed=self.closed)


class Output:
    """The shard's `.part` file and its stats file, flushed together: the stats lines first, so an answer's record
    never reaches the disk before its labels and token count."""

    def __init__(self, part, stats, flush_every):
        self.records = jsonl.ShardWriter(part, flush_every=1 << 30, flush_seconds=float("inf"))
        self.stats = jsonl.ShardWriter(stats, flush_every=1 << 30, flush_seconds=float("inf"))
        self.flush_every = flush_every
        self.pending = 0
        self.last = time.monotonic()

    def add(self, record, entry):
        self.stats.write(entry)
        self.records.write(record)
        self.pending += 1
        if self.pending >= self.flush_every or time.monotonic() - self.last >= 1.0:
            self.flush()

    def flush(self):
        self.stats.flush()
        self.records.flush()
        self.pending = 0
        self.last = time.monotonic()

    def close(self):
        for w in (self.stats, self.records):
            try:
                w.close()
            except OSError:
                pass


# ---- the loop ------------------------------------------------------------------------------------------------
class Adaptive:
    """One shard of an adaptive answer_origin run."""

    name = "answer_origin"

    def __init__(self, cfg, generator=None):
        self.cfg = cfg
        self.base = Path(cfg.base_data_path)
        self.infer = Infer(cfg)  # the info checks, the prompts and the record format are infer's
        self.generator = generator
        self.labeller = None
        self.damage = jsonl.Damage()
        self.counts = Counter()
        self.problems = {}  # index -> Problem: this shard's problems, in info.jsonl order
        self.lengths = problem_stats.Lengths("tokens")
        self.funnel = None
        self.t0 = time.monotonic()

    # -- input and state -------------------------------------------------------------------------------------
    def check_inputs(self):
        self.infer.check_inputs()  # info.jsonl whole and the prompt builder, before anything is written
        for lineno, info in self.infer._info_records():
            if one_answer(info["index"]) is not None:
                raise DataError(f"{self.infer.info_path}:{lineno}: index {info['index']!r} names one answer (the "
                                "seed's `<problem>_<j>`); adaptive sampling draws whole problems: use "
                                "sampling: fixed for it")

    def _infos(self, rank, world):
        for _, info in self.infer._info_records():
            if shard_of(info["index"], world) == rank:
                yield info

    @staticmethod
    def _target(info):
        expected = info.get("expected_answer")
        if isinstance(expected, bool) or not isinstance(expected, (str, int, float)) or str(expected).strip() == "":
            return None
        return str(expected)

    def _answer_of(self, index):
        """(Problem, j) of an answer index of this shard, or (None, None)."""
        if not isinstance(index, str):
            return None, None
        head, sep, tail = index.rpartition("_")
        if not sep or not tail.isdigit():
            return None, None
        return self.problems.get(head), int(tail)

    def _load(self, part, stats_path):
        """The state from disk: which answers the shard holds, and their stats lines (the file rewritten to hold
        exactly one line per answer held: a torn line, a line of an answer whose record was lost, a repeat go)."""
        for _, rec in jsonl.read_records(part, damage=self.damage):
            p, j = self._answer_of(rec.get("index"))
            if p is not None and rec.get("answer") is not None and not p.done >> j & 1:
                p.done |= 1 << j
                self.counts["resumed"] += 1
        if not stats_path.exists():
            return
        with jsonl.atomic_file(stats_path, "wb") as out:
            for _, entry in jsonl.read_records(stats_path, torn_tail_ok=True, damage=self.damage):
                p, j = self._answer_of(entry.get("index"))
                if p is not None and p.done >> j & 1 and not p.labelled >> j & 1:
                    p.absorb(j, entry, self.lengths)
                    out.write(jsonl.dumps(entry))

    async def _carry_over(self, folder, out, stop):
        """Answers of this shard's problems that earlier runs hold (newest first, as the runner carries), with
        their stats lines where those runs have them; the rest are labelled again before sampling goes on."""
        for src in jsonl.resume_sources(folder.parent, exclude=folder):
            carried = {}
            for n, rec in enumerate(jsonl.iter_folder(src, damage=self.damage)):
                p, j = self._answer_of(rec.get("index"))
                if (p is not None and rec.get("answer") is not None and j < self.cfg.max_answers
                        and not p.done >> j & 1):
                    out.records.write(rec)
                    p.done |= 1 << j
                    carried[p.index] = carried.get(p.index, 0) | 1 << j
                    self.counts["carried"] += 1
                if n % 10000 == 0:
                    await asyncio.sleep(0)  # lets a SIGTERM handler run during a long carry-over
                    if stop.requested:
                        return
            out.records.flush()
            for entry in problem_stats.read_answer_stats(src, damage=self.damage):
                p, j = self._answer_of(entry["index"])
                if p is not None and carried.get(p.index, 0) >> j & 1 and not p.labelled >> j & 1:
                    p.absorb(j, entry, self.lengths)
                    out.stats.write(entry)
            out.stats.flush()

    # -- labelling ---------------------------------------------------------------------------------------------
    async def _label(self, p, j, answer, tokens=None, finish=None):
        """The stats line of one answer: what the judge mode would say of it, whether it was cut, its length."""
        entry = {"index": f"{p.index}_{j}", "answer": extract_answer(answer), "cut": is_cut(answer, finish),
                 "tokens": tokens, "finish": finish, "chars": len(answer)}
        if p.target is not None:
            entry["judge"] = await self.labeller.verdict(p.target, answer, j)
        return entry

    async def _label_backlog(self, part, out, stop):
        """Label the answers the shard holds without a stats line (carried from a fixed run, or cut off by a
        crash between the two files), streaming the shard once, a bounded number at a time."""
        if all(p.done == p.labelled for p in self.problems.values()):
            return
        out.flush()
        sem = asyncio.Semaphore(256)

        async def one(p, j, answer):
            try:
                entry = await self._label(p, j, answer)
                out.stats.write(entry)
                p.absorb(j, entry, self.lengths)
                self.counts["relabelled"] += 1
            finally:
                sem.release()

        tasks = set()
        for _, rec in jsonl.read_records(part, torn_tail_ok=True, damage=self.damage):
            if stop.requested:
                break  # what is labelled is saved; a rerun labels the rest
            p, j = self._answer_of(rec.get("index"))
            if p is not None and p.done >> j & 1 and not p.labelled >> j & 1 and rec.get("answer") is not None:
                await sem.acquire()
                p.labelled |= 1 << j  # claimed: a repeated line of the same answer is not labelled twice
                tasks.add(asyncio.ensure_future(one(p, j, rec["answer"])))
                done = {t for t in tasks if t.done()}
                for t in done:
                    t.result()  # raises what a labelling raised
                tasks -= done
        await asyncio.gather(*tasks)
        out.stats.flush()

    async def _decide(self, p):
        drawn = bin(p.done | p.lost).count("1")
        if p.target is not None:
            return close_reason(drawn, p.correct, self.cfg)
        answers = p.canonical_answers()
        if self.cfg.vote_backend == "llm":
            vote = await self.labeller.llm_vote({"answers": answers + [None] * (p.answered - len(answers))})
        else:
            vote = await self.labeller.group(answers)
        p.votes = vote_counts(vote)
        return close_reason(drawn, None, self.cfg, p.votes)

    # -- sampling ----------------------------------------------------------------------------------------------
    async def _sample(self, rank, world, out, stop):
        cfg = self.cfg
        concurrency = max(1, self.generator.concurrency)
        slots = asyncio.Semaphore(concurrency)
        tasks, failures = set(), []
        wake, all_done = asyncio.Event(), asyncio.Event()
        state = {"outstanding": 0, "open": 0}
        bar = tqdm(total=len(self.problems), desc=f"adaptive {rank}_{world}", unit="problem", dynamic_ncols=True,
                   mininterval=0.5, file=sys.stderr)

        def spawn(coro):
            task = asyncio.ensure_future(coro)
            tasks.add(task)
            task.add_done_callback(finished)

        def finished(task):
            # A task spawns its successors before it ends, so the set is empty only when all the work is done.
            tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                failures.append(task.exception())
            if not tasks or failures:
                all_done.set()

        def close(p, reason):
            p.closed, p.item = reason, None
            if p.spellings:  # its vote is counted (p.votes): keep memory to the open problems' answers
                p.spellings = {}
            state["open"] -= 1
            bar.update(1)
            if bar.n % 16 == 0:
                bar.set_postfix_str(f"answers {self.counts['new']} new, {self.counts['failed']} failed"
                                    + (f", {self.generator.status()}" if hasattr(self.generator, "status") else ""),
                                    refresh=False)

        async def advance(p):
            """Ask for what the problem's current round lacks; once the round is whole, close it or start the next."""
            drawn = p.done | p.lost
            end = round_end(drawn.bit_length(), cfg.first_round, cfg.round_size, cfg.max_answers)
            missing = [j for j in range(end) if not drawn >> j & 1]
            if not missing:
                reason = await self._decide(p)
                if reason is not None:
                    close(p, reason)
                    return
                missing = list(range(end, round_end(end + 1, cfg.first_round, cfg.round_size, cfg.max_answers)))
            if stop.requested:
                return
            p.busy = len(missing)
            state["outstanding"] += len(missing)
            for j in missing:
                spawn(request(p, j))

        async def request(p, j):
            info, model_input = p.item
            try:
                async with slots:
                    if stop.requested:
                        return  # not started: a rerun asks for it
                    gen = await self.generator.generate(model_input, j)
                if gen is None:
                    p.lost |= 1 << j
                    p.add(None)
                    self.counts["failed"] += 1
                else:
                    entry = await self._label(p, j, gen.answer, gen.tokens, gen.finish)
                    item = {"info": info, "index": f"{p.index}_{j}", "model_input": model_input}
                    out.add(self.infer._record(item, gen.model_output, gen.answer), entry)
                    p.done |= 1 << j
                    p.absorb(j, entry, self.lengths)
                    self.counts["new"] += 1
                p.busy -= 1
                if p.busy == 0 and not stop.requested:
                    spawn(advance(p))
            finally:
                state["outstanding"] -= 1
                wake.set()

        async def admit():
            # New problems come in while fewer than two answers per slot are asked for: enough to keep every slot
            # busy, few enough that memory holds only the problems being sampled.
            for info in self._infos(rank, world):
                p = self.problems[info["index"]]
                while True:
                    wake.clear()
                    if state["outstanding"] < 2 * concurrency or stop.requested:
                        break
                    await wake.wait()
                if stop.requested:
                    return
                p.item = (info, self.infer.llm.build(self.infer_prompt(info["prompt"])))
                state["open"] += 1
                await advance(p)

        def cancel_all():
            for t in tasks:
                t.cancel()

        def on_stop(urgent):
            wake.set()
            if urgent:
                cancel_all()
            else:
                logger.warning(f"{stop.signal_name}: no new requests; waiting up to {cfg.drain_timeout:.0f} s for "
                               "the ones in flight (signal again to stop at once)")
                asyncio.get_running_loop().call_later(cfg.drain_timeout, cancel_all)

        stop.on_request.append(on_stop)
        try:
            spawn(admit())
            await all_done.wait()
            if failures:
                raise failures[0]
        finally:
            stop.on_request.remove(on_stop)
            cancel_all()
            bar.close()

    @staticmethod
    def infer_prompt(problem):
        from reasonlite.prompts import infer_prompt
        return infer_prompt(problem)

    # -- one shard, start to end -----------------------------------------------------------------------------
    def run(self, rank=0, world=1, save_name=None):
        """Sample this shard's problems until every one is closed; returns the completed shard file."""
        folder = runner.shard_folder(self, rank, world, save_name)
        self.check_inputs()
        for info in self._infos(rank, world):
            self.problems[info["index"]] = Problem(info["index"], self._target(info))

        async def main():
            with GracefulStop(raise_on_second=False) as stop:
                stop.install_in(asyncio.get_running_loop())
                return await self._run(folder, rank, world, stop)

        final = asyncio.run(main())
        c = self.counts
        write_manifest(folder, self.cfg, shard=(rank, world),
                       extra={"stage": self.name, "sampling": "adaptive", "records": dict(c)})
        answers = c["resumed"] + c["carried"] + c["new"]
        logger.info(f"{final}: {answers} answers to {len(self.problems)} problems ({c['resumed']} kept from this "
                    f"folder, {c['carried']} carried over, {c['new']} new, {c['failed']} unfinished; "
                    f"{c['relabelled']} labelled again) in {time.monotonic() - self.t0:.1f} s")
        for line in (funnel.table(self.funnel) if self.funnel else []) + [self.damage.summary()]:
            if line:
                logger.info(line)
        if c["failed"]:
            logger.warning(f"{c['failed']} answers are unfinished (null); rerun the same command to redo them")
        return final

    async def _run(self, folder, rank, world, stop):
        part = folder / f"{rank}_{world}.jsonl.part"
        final = folder / f"{rank}_{world}.jsonl"
        stats_path = problem_stats.answer_stats_path(folder, rank, world)
        created = not folder.exists()
        jsonl.make_run_folder(folder)
        lock = jsonl.ShardLock(final).acquire()
        out = None
        try:
            if final.exists() and not part.exists():
                final.replace(part)  # a completed shard run again (new settings, say): keep its answers
            if part.exists():
                jsonl.reopen_part(part, lambda r: r.get("answer") is not None, jsonl.IndexSet(), self.damage)
                self._load(part, stats_path)
            out = Output(part, stats_path, self.cfg.flush_every)
            await self._carry_over(folder, out, stop)
            if not stop.requested:
                self.generator = self.generator or self.infer.llm  # the servers, asked as infer asks them
                self.labeller = RoundLabeller(self.cfg)
                async with self.labeller:
                    # A signal while waiting for the servers ends the wait (the stop below says what is left).
                    if await unless_stopped(self.generator.__aenter__(), stop):
                        try:
                            await self._label_backlog(part, out, stop)
                            await self._sample(rank, world, out, stop)
                        finally:
                            await self.generator.__aexit__(None, None, None)
            out.flush()
            if stop.requested:
                out.close()
                still_open = sum(p.closed is None for p in self.problems.values())
                raise Stopped(f"{stop.signal_name}: {self.counts['new']} new answers saved in {part}, {still_open} "
                              f"of this shard's {len(self.problems)} problems still open; rerun the same command "
                              "to finish them")
            self._finish(folder, rank, world, out, final)
        except BaseException:
            if out is not None:
                out.close()
            if created and self.counts["new"] == 0 and part.exists():  # nothing of its own: leave nothing behind
                runner.forget_run(folder, lock, part, stats_path)
            raise
        finally:
            lock.release()
        return final

    def _finish(self, folder, rank, world, out, final):
        """Unfinished records for the answers that failed for good (a rerun redoes them), the problems file and the
        funnel, then the rename that completes the shard."""
        for info in self._infos(rank, world):
            p = self.problems[info["index"]]
            for j in bits(p.lost):
                item = {"info": info, "index": f"{p.index}_{j}", "model_input": self.infer.llm.build(
                    self.infer_prompt(info["prompt"]))}
                out.records.write(self.infer.unfinished(item))
        out.stats.close()
        build = funnel.Builder(self.name, folder)
        problem_stats.write_rows(problem_stats.rows_path(folder, rank, world),
                                 build.watch(p.row(self.cfg) for p in self.problems.values()))
        self.funnel = build.finish(self.lengths)
        funnel.save(self.funnel, folder, "" if world == 1 else f"_{rank}_{world}")
        out.records.finish(final)
