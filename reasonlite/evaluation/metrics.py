"""Estimators of the evaluator: pass@k, maj@k, and their means over a dataset and its categories.

    from metrics import pass_at_k, maj_at_k, ks_for, summarize, format_result_log

pass@k is the unbiased estimator of Chen et al. (2021): with n samples of which c are correct, the chance that k
samples drawn without replacement hold at least one correct one, 1 - C(n-c, k) / C(n, k). avg@n, the seed's
headline number, is pass@1 (= c / n).

maj@k is majority voting over the first k samples (sample i was drawn with seed + i, so "the first k" is fixed and
reproducible). Every answer the grader accepted is equivalent to the gold answer, so all of them form one group;
other answers group by their text with whitespace removed; samples without an answer do not vote. A tie between the
gold group and others counts as 1 / (number of tied groups), the expected score of breaking the tie at random.
"""
import math
from collections import Counter
from fractions import Fraction


def pass_at_k_fraction(n, c, k):
    """1 - C(n-c, k) / C(n, k) as an exact Fraction; n samples, c correct, k drawn."""
    if not (isinstance(n, int) and isinstance(c, int) and isinstance(k, int)):
        raise TypeError("n, c and k must be integers")
    if n < 1 or not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs n >= 1, 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    # math.comb(n - c, k) is 0 when fewer than k samples are wrong, which gives exactly 1.
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


def pass_at_k(n, c, k):
    """The unbiased pass@k estimate as a float in [0, 1]."""
    return float(pass_at_k_fraction(n, c, k))


def ks_for(n):
    """The k of pass@k reported for n samples: 1, 2, 4, ... with 2k <= n, and n // 2.

    Powers of two are the seed's; n // 2 is added so that the seed's table column pass@(n/2) (pass@8 at n=16) exists
    for any n, not only powers of two.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    ks = {1}
    k = 2
    while 2 * k <= n:
        ks.add(k)
        k *= 2
    if n >= 2:
        ks.add(n // 2)
    return sorted(ks)


def _vote_key(pred):
    return "".join(pred.split())


def maj_at_k(preds, correct, k):
    """Majority-vote accuracy of the first k samples (see the module docstring for groups and ties)."""
    if not 1 <= k <= len(preds) or len(preds) != len(correct):
        raise ValueError(f"maj@k needs 1 <= k <= {len(preds)} and one verdict per answer")
    votes = Counter()
    for pred, ok in zip(preds[:k], correct[:k]):
        if ok:
            votes[None] += 1  # None is the gold group's key: no answer text can collide with it
        elif pred is not None:
            votes[_vote_key(pred)] += 1
    if None not in votes:
        return 0.0
    top = max(votes.values())
    if votes[None] < top:
        return 0.0
    return 1.0 / sum(1 for v in votes.values() if v == top)


def maj_ks_for(n):
    """The k of maj@k: those of pass@k, and n itself (voting over every sample is the usual maj@n)."""
    return sorted(set(ks_for(n)) | {n})


def problem_metrics(preds, correct):
    """{"pass@k": ..., "maj@k": ...} of one problem from its n extracted answers and verdicts."""
    n = len(correct)
    c = sum(1 for v in correct if v)
    out = {f"pass@{k}": pass_at_k(n, c, k) for k in ks_for(n)}
    out.update({f"maj@{k}": maj_at_k(preds, correct, k) for k in maj_ks_for(n)})
    return out


def metric_names(n):
    return [f"pass@{k}" for k in ks_for(n)] + [f"maj@{k}" for k in maj_ks_for(n)]


def _mean(values):
    return sum(values) / len(values)


def summarize(problems, n, category_keys=()):
    """Dataset means (in [0, 1]) of each metric over problems, overall and per category value.

    problems: dicts holding every metric of metric_names(n) and, where the dataset has them, the category keys.
    Returns {"overall": {metric: mean}, "categories": {key: {value: {metric: mean}}}}.
    """
    if not problems:
        raise ValueError("no problems to summarize")
    names = metric_names(n)
    out = {"overall": {m: _mean([p[m] for p in problems]) for m in names}, "categories": {}}
    for key in category_keys:
        values = sorted({str(p[key]) for p in problems if key in p})
        if not values:
            continue
        out["categories"][key] = {
            v: {m: _mean([p[m] for p in problems if str(p.get(key)) == v]) for m in names} for v in values}
    return out


def percent(value):
    """A mean in [0, 1] as the seed prints it: x100 with one decimal."""
    return f"{value * 100:.1f}"


def format_result_log(summary, n):
    """result.log in the seed's layout: a block per metric, categories first, then 'Overall'."""
    lines = []
    for m in metric_names(n):
        lines.append(f"{m} >>>")
        for key, by_value in summary["categories"].items():
            for value, metrics in by_value.items():
                lines.append(f"{value}: {percent(metrics[m])}")
        lines.append(f"Overall: {percent(summary['overall'][m])}")
        lines.append("")
    return "\n".join(lines)


def parse_result_log(text):
    """{metric: Overall value as printed} from a result.log, for readers that only have the log."""
    out = {}
    metric = None
    for line in text.splitlines():
        if line.endswith(" >>>"):
            metric = line[:-4]
        elif metric and line.startswith("Overall: "):
            out[metric] = line[len("Overall: "):]
    return out
