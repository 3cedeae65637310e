"""Problem statistics: one line per problem in a run folder's problems.jsonl, and the counts its funnel is made of.

    {"index": "pol:0", "label": "judge", "answers": 32, "failed": 0, "cut": 1, "undecided": 0, "wrong": 5,
     "correct": 26, "pass_rate": 0.839, "vote_share": null, "vote_margin": null, "truncated": 0.031,
     "mean_answer_tokens": 5120.5, "max_answer_tokens": 30000, "mean_answer_chars": 20011.0,
     "max_answer_chars": 98211, "closed": "target_correct"}

Every answer falls in exactly one of five kinds, in this order of precedence: failed (the request failed, no text),
cut (stopped by the length limit: the server's finish_reason "length" where it was recorded, else no final answer,
reasonlite.answers.final_text is None, or one stopped inside a \\boxed{ it never closed), undecided (judge null),
wrong, correct. `pass_rate` is judged true over judged true or false (what the teacher got right, cut answers
included); for a problem labelled by a vote it is the top group's share of the answers when the vote meets the
pseudo-label rule, else null. `vote_share` is the top group's share of the votes and `vote_margin` (top - second) /
votes. `truncated` is cut / answers with text.
Tokens are the server's usage (`completion_tokens`), which only the adaptive loop records (in
answer_stats_<rank>_<world>.jsonl, one line per answer); rows of a fixed run have null tokens and the lengths in
characters.

Who writes it, and where:
- the adaptive loop (reasonlite/adaptive.py), from its own state, per shard: problems.jsonl, or
  problems_<rank>_<world>.jsonl when sharded (a shard owns whole problems); `closed` says why sampling stopped.
- vote, judge and judge_vote, for the whole run folder, by the process that completes the folder (the answers of
  one problem are spread over the shards of a label stage): problems.jsonl.
Each file appears whole or not at all (jsonl.atomic_file); funnel.json and funnel.png beside it are
reasonlite/funnel.py's. The conversion's --pass-rate and --max-per-problem read the pass rates from here.
"""
import fcntl
import logging
import math
from pathlib import Path

from reasonlite import jsonl
from reasonlite.answers import box_left_open, final_text

logger = logging.getLogger(__name__)

KINDS = ("failed", "cut", "undecided", "wrong", "correct")
STATS_GLOB = "answer_stats_*_*.jsonl"
# Answer lengths are counted in quarter-octave bins from 16 to 2^20 (tokens or characters): fixed edges, so the
# histograms of shards and runs add up, and a million answers cost 64 counters a kind.
LENGTH_EDGES = [2 ** (k / 4) for k in range(16, 81)]


def is_cut(answer, finish=None):
    """Was this answer stopped before it finished? The server's finish_reason where known; else no final answer,
    or a final answer that stops inside a \\boxed{ never closed (the one rule of show, the funnel and the loop)."""
    if finish is not None:
        return finish == "length"
    final = final_text(answer)
    return final is None or box_left_open(final)


def answer_stats_path(folder, rank, world):
    return Path(folder) / f"answer_stats_{rank}_{world}.jsonl"


def rows_path(folder, rank=0, world=1):
    return Path(folder) / ("problems.jsonl" if world == 1 else f"problems_{rank}_{world}.jsonl")


class Tally:
    """One problem's answers, counted by kind, with their lengths: a fixed size whatever the number of answers."""

    __slots__ = ("failed", "cut", "undecided", "wrong", "correct", "true", "false", "tokens", "tokens_n",
                 "tokens_max", "chars", "chars_max")

    def __init__(self):
        for name in Tally.__slots__:  # not self's: a subclass has slots of its own
            setattr(self, name, 0)

    @property
    def answers(self):
        return self.failed + self.cut + self.undecided + self.wrong + self.correct

    @property
    def answered(self):
        return self.answers - self.failed

    def add(self, chars, verdict=None, cut=False, judged=True):
        """Count one answer of `chars` characters (None: the request failed, no text); verdict True/False/None;
        judged=False for an answer no judge saw (a voted problem's: the vote settles it, see settle_vote).
        Returns the answer's kind."""
        if chars is None:
            self.failed += 1
            return "failed"
        self.chars += chars
        self.chars_max = max(self.chars_max, chars)
        if judged:
            self.true += verdict is True
            self.false += verdict is False
        kind = "cut" if cut else ("wrong" if not judged else
                                  {True: "correct", False: "wrong", None: "undecided"}[verdict])
        setattr(self, kind, getattr(self, kind) + 1)
        return kind

    def add_tokens(self, tokens):
        if isinstance(tokens, int):
            self.tokens += tokens
            self.tokens_n += 1
            self.tokens_max = max(self.tokens_max, tokens)

    def settle_vote(self, top):
        """A voted problem's kinds: the answers in a clear vote's top group are its correct ones."""
        moved = min(top, self.wrong)
        self.wrong -= moved
        self.correct += moved

    def row(self, index, label=None, votes=(0, 0, 0), **extra):
        """The problems.jsonl line; votes is vote_counts() of the problem's vote, if it has one."""
        top, second, votes = votes
        if self.true + self.false:
            pass_rate = self.true / (self.true + self.false)
        elif label == "vote" and self.answered:
            pass_rate = self.correct / self.answered
        else:
            pass_rate = None
        r = {"index": index, "label": label, "answers": self.answers,
             **{k: getattr(self, k) for k in KINDS},
             "pass_rate": _round(pass_rate),
             "vote_share": _round(top / votes) if votes else None,
             "vote_margin": _round((top - second) / votes) if votes else None,
             "truncated": _round(self.cut / self.answered) if self.answered else None,
             "mean_answer_tokens": _round(self.tokens / self.tokens_n, 1) if self.tokens_n else None,
             "max_answer_tokens": self.tokens_max if self.tokens_n else None,
             "mean_answer_chars": _round(self.chars / self.answered, 1) if self.answered else None,
             "max_answer_chars": self.chars_max if self.answered else None}
        r.update(extra)
        return r


def _round(x, digits=4):
    return None if x is None else round(x, digits)


def vote_counts(vote):
    """(top, second, total) of a vote {answer: count}, most first."""
    counts = sorted((v for v in (vote or {}).values() if isinstance(v, (int, float))), reverse=True)
    return (counts[0] if counts else 0), (counts[1] if len(counts) > 1 else 0), sum(counts)


class Lengths:
    """Histograms of answer lengths by kind (correct, wrong, truncated) in fixed log bins."""

    def __init__(self, unit="tokens"):
        self.unit = unit
        self.counts = {k: [0] * (len(LENGTH_EDGES) - 1) for k in ("correct", "wrong", "truncated")}

    def add(self, kind, length):
        kind = {"cut": "truncated", "undecided": "wrong"}.get(kind, kind)
        if kind not in self.counts or length is None:
            return
        b = int(math.floor(math.log2(max(length, 1)) * 4)) - 16
        self.counts[kind][min(max(b, 0), len(LENGTH_EDGES) - 2)] += 1

    def to_json(self):
        return {"unit": self.unit, "edges": [round(e, 2) for e in LENGTH_EDGES], **self.counts}


def write_rows(path, rows):
    """Write problems.jsonl whole or not at all; returns the number of lines."""
    n = 0
    with jsonl.atomic_file(path, "wb") as f:
        for r in rows:
            f.write(jsonl.dumps(r))
            n += 1
    return n


def read_rows(folder):
    """The problem lines of a run folder (problems.jsonl and any per-shard problems_<rank>_<world>.jsonl)."""
    for path in sorted(Path(folder).glob("problems*.jsonl")):
        for _, r in jsonl.read_records(path, damage=jsonl.Damage(say=0)):
            if isinstance(r.get("index"), str):
                yield r


def read_answer_stats(folder, damage=None):
    """The per-answer lines the adaptive loop wrote beside a run's shards ({"index", "tokens", "finish", ...})."""
    for path in sorted(Path(folder).glob(STATS_GLOB)):
        for _, e in jsonl.read_records(path, torn_tail_ok=True, damage=damage):
            if isinstance(e.get("index"), str):
                yield e


# ---- the label stages: statistics of a whole run folder --------------------------------------------------------
def problem_of(index):
    return index.rsplit("_", 1)[0]


def _tallies_of_answers(records, judged, lengths, each=None):
    tallies = {}
    for rec in records:
        t = tallies.setdefault(problem_of(rec["index"]), Tally())
        text = rec.get("answer")
        cut = text is not None and is_cut(text, rec.get("finish_reason"))
        kind = t.add(None if text is None else len(text), rec.get("judge"), cut=cut, judged=judged)
        if text is not None:
            lengths.add(kind, len(text))
        if each is not None:
            each(rec)
    return tallies


def _records(folder):
    """A finished run folder's records with an index; a damaged line (the stage itself named it) is skipped."""
    for rec in jsonl.iter_folder(folder, include_part=False, damage=jsonl.Damage(say=0)):
        if isinstance(rec.get("index"), str):
            yield rec


def _add_tokens(tallies, origin):
    """Token counts from the adaptive loop's per-answer stats of the answer_origin run, where it recorded them."""
    if origin is None:
        return
    for e in read_answer_stats(origin, damage=jsonl.Damage(say=0)):
        t = tallies.get(problem_of(e["index"]))
        if t is not None:
            t.add_tokens(e.get("tokens"))


def label_stage_rows(stage_name, folder, origin, vote_ratio, min_vote, lengths):
    """Yield the rows of a completed vote, answer_judge or answer_judge_vote run folder; count lengths."""
    if stage_name == "vote":
        from reasonlite.labels import vote_is_clear
        # No answer of a vote is judged, so its length histogram has no kinds to split by: not kept.
        tallies = _tallies_of_answers(_records(origin), False, Lengths())
        _add_tokens(tallies, origin)
        for rec in _records(folder):
            t = tallies.pop(rec.get("index"), None) or Tally()
            counts = vote_counts(rec.get("vote"))
            clear = vote_is_clear(counts[0], counts[2], vote_ratio, min_vote)
            if clear:
                t.settle_vote(counts[0])
            yield t.row(rec["index"], label="vote" if clear else None, votes=counts)
        return
    votes = {}

    def note_vote(rec):  # judge_vote puts the vote and the label's source into every record's info
        p = problem_of(rec["index"])
        if p not in votes and isinstance(rec.get("info"), dict):
            votes[p] = (vote_counts(rec["info"].get("vote")), rec["info"].get("label_source"))

    tallies = _tallies_of_answers(_records(folder), True, lengths,
                                  note_vote if stage_name == "answer_judge_vote" else None)
    _add_tokens(tallies, origin)
    for index in list(tallies):
        counts, source = votes.pop(index, ((0, 0, 0), "dataset"))
        yield tallies.pop(index).row(index, label="judge" if stage_name == "answer_judge" else source,
                                     votes=counts)


def after_label_stage(stage, final):
    """Once a vote/judge/judge_vote run folder is complete: write its problems.jsonl and funnel, print the funnel.

    Each shard's process calls this when its shard is done; only one that finds the folder complete writes, under a
    lock, so two shards finishing together write one after the other (the same content). Returns the funnel."""
    from reasonlite import funnel
    folder = Path(final).parent
    if not jsonl.is_complete(folder):
        logger.info(f"{folder}: problems.jsonl and the funnel are written by the shard that completes the folder")
        return None
    origin = getattr(stage, "source", None)
    # The lock file stays: unlinking it while another process waits on it would let a third one lock a new file.
    with open(folder / ".problems.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lengths = Lengths("characters")
        build = funnel.Builder(stage.name, folder, source=origin)
        rows = label_stage_rows(stage.name, folder, origin, stage.cfg.vote_ratio, stage.cfg.min_vote, lengths)
        write_rows(rows_path(folder), build.watch(rows))
        f = build.finish(lengths)
        funnel.save(f, folder)
    for line in funnel.table(f):
        logger.info(line)
    return f


def pass_rates(folders):
    """{problem index: pass rate or None} from the problems files of run folders; {} where there are none."""
    out = {}
    for folder in folders:
        for r in read_rows(folder):
            out[r["index"]] = r.get("pass_rate")
    return out
