"""Final-answer extraction and math-equivalence grading for teacher outputs.

Three jobs: read the final answer of a model output (`extract_answer`), judge it against a gold answer
(`is_equivalent`, `Grader`), and give a cheap string key for grouping answers (`normalize`).

Reading answers is reasonlite/answers.py, the equivalence rules reasonlite/equivalence.py; this module runs them.
docs/grader.md describes both exactly (extract_answer reads the last box only; the grader's own reading of a pred
falls back to "the answer is ..." phrases and prose), with the accuracy tables and how to reproduce them.
The expensive check (math-verify + sympy) runs only in worker processes of a pebble ProcessPool: math-verify's own
timeouts use signal.alarm and sympy can hang on inputs like 5^{5^{5^{5}}}, so each task gets a hard per-task
timeout, a killed task's verdict is None and the pool replaces the worker. The caller's process stays sympy-free.

CLI (one `{"equal": true|false|null}` line per input line, in input order):

    python3 -m reasonlite.grader PAIRS.jsonl [--workers 4] [--timeout 5]

where each line of PAIRS.jsonl is `{"gold": "...", "pred": "..."}`.
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import sys
import threading
from collections import OrderedDict
from concurrent.futures import Future

# The reading functions live in reasonlite/answers.py and the rules in reasonlite/equivalence.py; final_text,
# last_boxed, extract_answer and normalize are re-exported here as part of the grader's interface.
from reasonlite.answers import (_answer_part, _plain_numbers_equal, extract_answer, final_text,  # noqa: F401
                           last_boxed, normalize)
from reasonlite.equivalence import _worker_init, _worker_task

# ================================================================ the pool

def _cheap_verdict(gold: str, pred: str) -> bool | None:
    """A verdict without sympy, or None when the worker must decide."""
    p = _answer_part(pred, is_pred=True)
    if p is None:
        return False
    g = _answer_part(gold, is_pred=False)
    if g is None:
        return False
    if p[0] == "prose":
        return None
    gn, pn = normalize(g[1]), normalize(p[1])
    if gn and gn == pn:
        return True
    return _plain_numbers_equal(gn, pn)  # most AIME/AMC verdicts: two numbers


class Grader:
    """A pool of grading workers with a per-task timeout and a verdict cache.

    submit() answers cheap cases in the caller (equal normalize() keys, two plain numbers, no answer at all) and
    sends the rest to a worker; a task past its timeout is killed and its verdict is None. The same (gold, pred)
    pair is computed once; `computed` counts worker tasks. The pool starts on the first worker task, or start().
    """

    def __init__(self, workers: int | None = None, timeout: float = 5.0, cache_size: int = 50_000):
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.timeout = timeout
        self.cache_size = cache_size
        self.computed = 0
        # Verdicts as plain values in an LRU (a Future per entry would cost ~1 KB each, and a run of millions of
        # records would grow with it); futures only for the pairs in flight, so concurrent submits share one.
        self._done: OrderedDict[tuple[str, str], bool | None] = OrderedDict()
        self._pending: dict[tuple[str, str], Future] = {}
        self._lock = threading.Lock()
        self._pool = None

    def _get_pool(self):
        if self._pool is None:
            import pebble
            self._pool = pebble.ProcessPool(max_workers=self.workers, initializer=_worker_init)
        return self._pool

    def _remember(self, key, verdict):
        self._done[key] = verdict
        if len(self._done) > self.cache_size:
            self._done.popitem(last=False)  # the least recently used

    def submit(self, gold: str, pred: str, timeout: float | None = None) -> Future:
        gold = gold if isinstance(gold, str) else ("" if gold is None else str(gold))
        pred = pred if isinstance(pred, str) else ("" if pred is None else str(pred))
        key = (gold, pred)
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return _resolved(self._done[key])
            fut = self._pending.get(key)
            if fut is not None:
                return fut
        quick = _cheap_verdict(gold, pred)
        if quick is not None:
            with self._lock:
                self._remember(key, quick)
            return _resolved(quick)
        with self._lock:
            fut = self._pending.get(key)
            if fut is not None:  # another thread submitted the pair meanwhile
                return fut
            fut = self._pending[key] = Future()
            self.computed += 1
            pool = self._get_pool()

        def finish(task):
            verdict = _verdict(task)
            with self._lock:
                self._pending.pop(key, None)
                self._remember(key, verdict)
            fut.set_result(verdict)

        try:
            task = pool.schedule(_worker_task, args=(gold, pred), timeout=self.timeout if timeout is None else timeout)
        except Exception:  # a closed or broken pool: the check cannot run
            with self._lock:
                self._pending.pop(key, None)
            fut.set_result(None)
            return fut
        task.add_done_callback(finish)
        return fut

    def start(self) -> "Grader":
        """Start the workers now and wait until one has loaded math-verify (else the first submit pays for it)."""
        with self._lock:
            pool = self._get_pool()
        pool.schedule(_worker_task, args=("1", "\\boxed{1}")).result()
        return self

    def map(self, pairs) -> list[bool | None]:
        futures = [self.submit(g, p) for g, p in pairs]
        return [f.result() for f in futures]

    def close(self):
        if self._pool is not None:
            self._pool.stop()
            self._pool.join()
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _resolved(verdict) -> Future:
    fut = Future()
    fut.set_result(verdict)
    return fut


def _verdict(task) -> bool | None:
    try:
        return bool(task.result())
    except BaseException:  # timeout (worker killed), worker crash, or an error inside the check
        return None


_default: Grader | None = None
_default_lock = threading.Lock()


def is_equivalent(gold: str, pred: str, timeout: float = 5.0) -> bool | None:
    """Is pred's final answer mathematically the gold answer? None only when the check could not finish."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Grader()
            atexit.register(_default.close)
    return _default.submit(gold, pred, timeout=timeout).result()


# ================================================================ CLI

def _read_pairs(path: str) -> list[tuple[str, str]]:
    from reasonlite.jsonl import read_records
    pairs = []
    for lineno, rec in read_records(path):
        if "gold" not in rec or "pred" not in rec:
            raise ValueError(f'{path}:{lineno}: expected an object with "gold" and "pred"')
        gold, pred = rec["gold"], rec["pred"]
        if not isinstance(gold, (str, int, float)) or isinstance(gold, bool) or \
                not (pred is None or isinstance(pred, (str, int, float))) or isinstance(pred, bool):
            raise ValueError(f"{path}:{lineno}: gold and pred must be strings")
        pairs.append((str(gold), "" if pred is None else str(pred)))
    return pairs


def main(argv=None) -> int:
    from reasonlite.cli import add_debug_flag, user_errors
    ap = argparse.ArgumentParser(prog="python3 -m reasonlite.grader",
                                 description="Grade gold/pred pairs for equivalence.")
    ap.add_argument("pairs", help='JSONL file with {"gold": ..., "pred": ...} lines')
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default min(4, cpus))")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds per check before its verdict is null")
    add_debug_flag(ap)
    args = ap.parse_args(argv)
    with user_errors(args.debug):
        pairs = _read_pairs(args.pairs)
        if not pairs:  # else an empty or mistyped file prints nothing and looks like a pass
            raise ValueError(f'{args.pairs}: no pairs to grade (one {{"gold": ..., "pred": ...}} object per line)')
        with Grader(workers=args.workers, timeout=args.timeout) as grader:
            for verdict in grader.map(pairs):
                print(json.dumps({"equal": verdict}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
