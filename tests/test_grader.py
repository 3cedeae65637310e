"""reasonlite.grader: answer extraction, equivalence verdicts, the worker pool (timeouts, cache) and the CLI."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reasonlite.grader import Grader, extract_answer, final_text, is_equivalent, last_boxed, normalize

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "tests" / "grader_cases.jsonl"
PEER = ROOT.parent / "shared" / "graders" / "peer_equiv_cases.jsonl"
TOWER = "\\boxed{5^{5^{5^{5}}}}"  # sympy never finishes comparing this with 1


def load(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def grader():
    with Grader(workers=2, timeout=10) as g:
        yield g


# ---------------------------------------------------------------- extraction

@pytest.mark.parametrize("text,expected", [
    ("so $\\boxed{\\frac{1}{\\sqrt{2}}}$.", "\\frac{1}{\\sqrt{2}}"),
    ("the set is \\boxed{\\{1,2\\}}", "\\{1,2\\}"),
    ("first \\boxed{3}, then \\boxed{4}, finally \\boxed{x^{2}}", "x^{2}"),
    ("\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
    ("\\boxed{\\boxed{7}}", "\\boxed{7}"),
    ("\\fbox{12}", "12"),
    ("so the answer is $\\boxed 5$.", "5"),
    ("\\boxed{\\text{(C)}}", "\\text{(C)}"),
    ("\\boxed{a\\}b}", "a\\}b"),
    ("no box here", None),
    ("\\boxed{\\frac{1}{2}", None),
    ("\\boxed{2} and later \\boxed{\\frac{1}{3}", None),
])
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


HARMONY = ("<|start|>assistant<|channel|>analysis<|message|>6*7 is \\boxed{41}? No, 42.<|end|>"
           "<|start|>assistant<|channel|>final<|message|>It is $\\boxed{42}$.<|return|>")


@pytest.mark.parametrize("output,text,answer", [
    (HARMONY, "It is $\\boxed{42}$.", "42"),
    ("<|channel|>final<|message|>A<|end|><|start|>assistant<|channel|>final<|message|>\\boxed{9}<|call|>x",
     "\\boxed{9}", "9"),
    ("<|start|>assistant<|channel|>analysis<|message|>so \\boxed{42} but wait", None, None),
    ("<think>maybe \\boxed{5}</think>\n\nSo \\boxed{7}.", "\n\nSo \\boxed{7}.", "7"),
    ("<think>a</think>b</think> \\boxed{8}", " \\boxed{8}", "8"),
    ("<think>still going \\boxed{5}", None, None),
    ("plain \\boxed{ 3 }", "plain \\boxed{ 3 }", "3"),
    ("plain text, no box", "plain text, no box", None),
    ("\\boxed{}", "\\boxed{}", None),
])
def test_final_text_and_extract_answer(output, text, answer):
    assert final_text(output) == text
    assert extract_answer(output) == answer


def test_normalize_is_a_conservative_key():
    assert normalize("$\\dfrac{1}{2}$") == normalize("\\frac{1}{2}") == "\\frac{1}{2}"
    assert normalize("\\left( 1, 2 \\right)") == "(1,2)"
    assert normalize("\\text{(C)}") == "(C)"
    assert normalize("90^\\circ") == normalize("90") == "90"
    assert normalize("033") == normalize("\\boxed{33}") == "33"
    assert normalize("12.") == "12"
    assert normalize("1 1/2") != normalize("11/2")
    assert normalize("\\frac{1}{2}") != normalize("\\frac{1}{3}")


# ---------------------------------------------------------------- verdicts

def test_own_cases(grader):
    cases = load(CASES)
    assert len(cases) >= 80 and sum(not c["equal"] for c in cases) >= 0.3 * len(cases)
    verdicts = grader.map([(c["gold"], c["pred"]) for c in cases])
    wrong = [(c["gold"], c["pred"][-80:], c["equal"], v, c["why"])
             for c, v in zip(cases, verdicts) if v is not c["equal"]]
    assert not wrong, "\n".join(map(repr, wrong))


def test_peer_suite_balanced_accuracy(grader):
    if not PEER.exists():
        pytest.skip(f"peer cases not found at {PEER} (shared/graders is not checked out next to the repository)")
    cases = load(PEER)
    verdicts = grader.map([(c["gold"], c["pred"]) for c in cases])
    tpr = sum(v is True for c, v in zip(cases, verdicts) if c["equal"]) / sum(c["equal"] for c in cases)
    tnr = sum(v is False for c, v in zip(cases, verdicts) if not c["equal"]) / sum(not c["equal"] for c in cases)
    assert (tpr + tnr) / 2 >= 0.95, f"balanced accuracy {(tpr + tnr) / 2:.3f} (TPR {tpr:.3f}, TNR {tnr:.3f})"


def test_is_equivalent_module_function():
    assert is_equivalent("\\frac{1}{2}", "so the answer is $\\boxed{0.5}$") is True
    assert is_equivalent("2", "<think>I think \\boxed{2}") is False  # truncated: no final answer
    assert is_equivalent("2", "") is False


# ---------------------------------------------------------------- pool behaviour

def test_hung_check_is_killed_and_the_pool_goes_on():
    with Grader(workers=1, timeout=2).start() as g:  # the worker is up before the clock starts
        g.map([("\\frac{1}{2}", "\\boxed{0.5}")])
        start = time.monotonic()
        assert g.submit("1", TOWER).result() is None
        assert time.monotonic() - start < 2 + 5
        assert g.map([("\\frac{1}{3}", "\\boxed{0.5}"), ("\\frac{1}{4}", "\\boxed{0.25}")]) == [False, True]
        assert g.computed == 4


def test_repeated_pairs_are_computed_once(grader):
    before = grader.computed
    pair = ("\\sqrt{8}", "\\boxed{2\\sqrt{2}}")
    first, second = grader.submit(*pair), grader.submit(*pair)
    assert first is second  # a concurrent submit shares the pending verdict
    assert grader.map([pair, pair]) == [True, True]
    assert grader.computed == before + 1
    assert grader.map([("7", "\\boxed{7}")]) == [True]  # equal normalize(): answered without a worker
    assert grader.computed == before + 1


def test_cache_is_bounded():
    g = Grader(workers=1, cache_size=2)
    for i in range(5):
        assert g.submit(str(i), f"\\boxed{{{i}}}").result() is True
    assert len(g._done) == 2 and not g._pending
    g.close()


# ---------------------------------------------------------------- CLI

def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "reasonlite.grader", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_prints_one_verdict_per_line_in_order(tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    rows = [{"gold": "\\frac{1}{2}", "pred": "The answer is $\\boxed{0.5}$."},
            {"gold": "3", "pred": "\\boxed{4}"},
            {"gold": "1", "pred": TOWER},
            {"gold": "C", "pred": "\\boxed{\\text{(C)}}"},
            {"gold": "7", "pred": "<think>\\boxed{7}"}]
    pairs.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    proc = run_cli(pairs, "--workers", "1", "--timeout", "1.5")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ['{"equal": true}', '{"equal": false}', '{"equal": null}',
                                        '{"equal": true}', '{"equal": false}']


def test_cli_malformed_line(tmp_path):
    pairs = tmp_path / "bad.jsonl"
    pairs.write_text('{"gold": "1", "pred": "1"}\n{"gold": "1", "pred": \n')
    proc = run_cli(pairs)
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{pairs}:2" in lines[0]
