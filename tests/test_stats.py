"""Bootstrap intervals of reasonlite/evaluation/stats.py on constructed data whose answers are known exactly."""
import itertools
import random
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from reasonlite.evaluation.metrics import maj_at_k, metric_names, problem_metrics
from reasonlite.evaluation.stats import Bootstrap, Outcomes, _maj_values, vote_ids, within_share

LEVELS = ["problems+samples", "problems"]


def outcomes(correct, preds=None):
    return Outcomes.from_lists(list(range(len(correct))), correct, preds)


def frequencies(values):
    counts = Counter(np.round(values, 9))
    return {v: c / len(values) for v, c in counts.items()}


@pytest.mark.parametrize("levels", LEVELS)
@pytest.mark.parametrize("value", [True, False])
def test_all_correct_or_all_wrong_gives_zero_width(levels, value):
    out = outcomes(np.full((30, 8), value), [["7" if value else "3"] * 8] * 30)
    est = Bootstrap(resamples=500, levels=levels).estimate(out, metric_names(8))
    for name, e in est.items():
        assert (e.point, e.se, e.lo, e.hi) == (float(value),) * 1 + (0.0,) + (float(value),) * 2, name


def test_two_problems_give_the_exact_bootstrap_distribution_over_problems():
    # One problem always solved, one never: a resample of 2 problems holds 0, 1 or 2 solved ones, with
    # probabilities 1/4, 1/2, 1/4 (every ordered pair of draws equally likely), so the mean is 0, 1/2 or 1.
    out = outcomes([[True] * 4, [False] * 4], [["5"] * 4, ["6"] * 4])
    exact = {0.0: 0.25, 0.5: 0.5, 1.0: 0.25}
    for levels in LEVELS:  # the samples of such problems are all alike: resampling them changes nothing
        boot = Bootstrap(resamples=40000, seed=3, levels=levels)
        reps = boot.replicates(out, ["pass@1", "pass@2", "maj@4"], boot.problems(2))
        for name, values in reps.items():
            got = frequencies(values)
            assert set(got) == set(exact), (levels, name)
            for v, p in exact.items():
                assert got[v] == pytest.approx(p, abs=0.01), (levels, name, v)


def test_two_level_distribution_matches_enumeration():
    # Problem X: 1 of 2 samples correct; problem Y: 2 of 2. A replicate draws 2 problems with replacement, then
    # 2 samples with replacement within each drawn one: X gives 0, 1 or 2 correct with probabilities 1/4, 1/2, 1/4.
    out = outcomes([[True, False], [True, True]])
    per_problem = {0: {0: Fraction(1, 4), 1: Fraction(1, 2), 2: Fraction(1, 4)}, 1: {2: Fraction(1)}}
    pass_k = {1: lambda c: Fraction(c, 2), 2: lambda c: Fraction(int(c > 0))}  # pass@2 of n=2 is "any correct"
    boot = Bootstrap(resamples=60000, seed=5)
    reps = boot.replicates(out, ["pass@1", "pass@2"], boot.problems(2))
    for k in (1, 2):
        exact = Counter()
        for draw in itertools.product([0, 1], repeat=2):
            for counts in itertools.product(*(per_problem[p].items() for p in draw)):
                prob = Fraction(1, 4) * np.prod([q for _, q in counts])
                exact[sum(pass_k[k](c) for c, _ in counts) / 2] += prob
        got = frequencies(reps[f"pass@{k}"])
        assert set(got) <= {round(float(v), 9) for v in exact}
        for v, p in exact.items():
            assert got.get(round(float(v), 9), 0) == pytest.approx(float(p), abs=0.01), (k, v)


def test_replicate_variance_of_avg_matches_the_formulas():
    # Over problems only, the replicate variance of avg@n is var(p_i) / P (population variance);
    # resampling samples as well adds mean(p_i (1 - p_i)) / (n P).
    rng = np.random.default_rng(11)
    p_true = rng.uniform(0, 1, 40)
    correct = rng.random((40, 8)) < p_true[:, None]
    out = outcomes(correct)
    p = correct.mean(1)
    expected = {"problems": p.var() / 40, "problems+samples": p.var() / 40 + (p * (1 - p)).mean() / (8 * 40)}
    for levels, var in expected.items():
        boot = Bootstrap(resamples=40000, seed=1, levels=levels)
        reps = boot.replicates(out, ["pass@1"], boot.problems(40))["pass@1"]
        assert reps.var() == pytest.approx(var, rel=0.03), levels
        assert reps.mean() == pytest.approx(p.mean(), abs=0.002)


def test_points_equal_the_evaluators_metrics():
    rng = random.Random(2)
    preds = [[rng.choice([None, "1", "2", " 2", "3", "g"]) for _ in range(8)] for _ in range(25)]
    correct = [[x == "g" for x in row] for row in preds]
    out = outcomes(correct, preds)
    boot = Bootstrap(resamples=200)
    per_problem = [problem_metrics(p, c) for p, c in zip(preds, correct)]
    for name in metric_names(8):
        assert boot.point(out, name) == pytest.approx(np.mean([m[name] for m in per_problem]), abs=1e-12), name
    for row_p, row_c in zip(preds, correct):  # the vectorized vote agrees with metrics.maj_at_k, ties included
        v = np.array([vote_ids(row_p, row_c)])
        for k in range(1, 9):
            assert _maj_values(v, k)[0] == pytest.approx(maj_at_k(row_p, row_c, k), abs=1e-12)


def test_intervals_hold_the_estimate_and_are_reproducible():
    rng = np.random.default_rng(4)
    correct = rng.random((30, 16)) < rng.beta(0.5, 0.5, 30)[:, None]
    preds = [["g" if c else str(rng.integers(0, 4)) for c in row] for row in correct]
    out = outcomes(correct, preds)
    names = metric_names(16)
    first, again = Bootstrap().estimate(out, names), Bootstrap().estimate(out, names)
    assert first == again  # the fixed seed
    for name, e in first.items():
        assert e.lo <= e.point <= e.hi and 0 < e.se < 0.2, name
    assert Bootstrap().estimate(out, ["maj@4"])["maj@4"] == first["maj@4"]  # whatever else was asked for
    assert Bootstrap(seed=1).estimate(out, ["pass@1"])["pass@1"] != first["pass@1"]


def test_paired_difference_of_a_flip():
    # Four problems the same in both runs, one problem B solves in all 4 samples where A solves none.
    same = [[True, True, False, True], [False] * 4, [True] * 4, [True, False, False, False]]
    a = outcomes(same + [[False] * 4])
    b = outcomes(same + [[True] * 4])
    d = Bootstrap(resamples=4000, levels="problems").paired(a, b, ["pass@1", "pass@2"])
    assert d["pass@1"].point == pytest.approx(1 / 5)
    # Over problems only, B - A is 1/5 x (times the flipped problem is drawn), Binomial(5, 1/5) / 5 draws of it:
    # B is ahead unless it is never drawn, (4/5)^5 = 0.328 of the time.
    assert d["pass@1"].b_better == pytest.approx(1 - 0.8 ** 5, abs=0.02)
    assert d["pass@1"].lo == pytest.approx(0.0, abs=1e-9) and d["pass@1"].hi == pytest.approx(0.6, abs=1e-9)
    identical = Bootstrap(resamples=500, levels="problems").paired(a, a, ["pass@1"])["pass@1"]
    assert (identical.point, identical.lo, identical.hi, identical.b_better) == (0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same problems"):
        Bootstrap().paired(a, outcomes(same), ["pass@1"])


def test_within_share_of_a_known_split():
    # p = 1/2 and 0 or 1: var(p) (ddof 1) = 1/6 ... computed, and the within part mean(p(1-p)/(n-1)).
    out = outcomes([[True, False]] * 2 + [[True, True], [False, False]])
    p = np.array([0.5, 0.5, 1.0, 0.0])
    assert within_share(out) == pytest.approx((p * (1 - p) / 1).mean() / p.var(ddof=1))
    assert within_share(outcomes([[True]] * 3 + [[False]])) is None  # n = 1: no within-problem spread to see


def test_refuses_unknown_or_impossible_metrics():
    out = outcomes([[True, False]])
    for name, words in (("pass@3", "at least 3"), ("avg@2", "unknown"), ("maj@x", "unknown")):
        with pytest.raises(ValueError, match=words):
            Bootstrap(resamples=10).estimate(out, [name])
    with pytest.raises(ValueError, match="levels"):
        Bootstrap(levels="samples")


def test_coverage_of_the_true_mean_in_simulation():
    """Draw benchmarks of 30 problems from a known population; the 95% interval should hold the true mean
    about 95% of the time (percentile intervals on 30 problems run a little under: 90-96% measured)."""
    rng = np.random.default_rng(7)
    population = rng.beta(0.4, 0.4, 5000)
    truth = {"pass@1": population.mean(), "pass@8": (1 - (1 - population) ** 8).mean()}
    hits, runs = Counter(), 200
    for r in range(runs):
        p = population[rng.integers(0, 5000, 30)]
        out = outcomes(rng.random((30, 16)) < p[:, None])
        for name, e in Bootstrap(resamples=1000, seed=r).estimate(out, list(truth)).items():
            hits[name] += e.lo <= truth[name] <= e.hi
    for name in truth:
        assert 0.88 <= hits[name] / runs <= 0.995, (name, hits[name] / runs)
