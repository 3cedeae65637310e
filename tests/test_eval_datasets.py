"""The evaluator's datasets: every benchmark of the seed's list loads from a small local fixture in its hub column
layout (tests/fixtures/eval/<data_id>/<split>.jsonl, laid out by the eval_fixtures fixture; hand-written rows, not
the benchmarks), with its answer format; multiple choice is graded by letter through the project's grader.
In-process and fast."""
import json

import pytest

from reasonlite.evaluation.benchmarks import DATASETS, choice_prompt, load_problems, mc_letter
from reasonlite.evaluation.evaluate import score
from reasonlite.evaluation.options import resolve
from reasonlite.grader import Grader

SEED_DATASETS = ["zwhe99/aime90", "math-ai/aime25", "zwhe99/amc23", "zwhe99/MATH", "zwhe99/simplerl-minerva-math",
                 "zwhe99/simplerl-OlympiadBench", "zwhe99/gpqa_diamond_mc", "zwhe99/pm-en"]
# data_id -> (golds as the grader gets them, label, categories, a right and a wrong answer to the first problem)
EXPECTED = {
    "zwhe99/aime90": (["052", "9"], "AIME24", [], "\\boxed{52}", "\\boxed{25}"),
    "math-ai/aime25": (["15", "24"], "AIME25", [], "\\boxed{15}", "\\boxed{14}"),
    "zwhe99/amc23": (["27.0", "28.0"], "AMC23", [], "\\boxed{27}", "\\boxed{26}"),
    "zwhe99/MATH": (["\\frac34", "4", "\\left( 2, \\frac{\\pi}{2} \\right)"], "MATH500", ["level", "type"],
                    "\\boxed{\\frac{3}{4}}", "\\boxed{\\frac{4}{3}}"),
    "zwhe99/simplerl-minerva-math": (["0.5", "180"], "MinervaMath", [], "\\boxed{0.5}", "\\boxed{2}"),
    "zwhe99/simplerl-OlympiadBench": (["2, 3", "2^{n}"], "OlympiadBench", [], "\\boxed{3, 2}", "\\boxed{2}"),
    "zwhe99/gpqa_diamond_mc": (["B", "D"], "GPQA-Diamond", ["domain"], "The carrier is the photon. \\boxed{B}",
                               "\\boxed{A}"),
    "zwhe99/pm-en": (["36", "101"], "PolyMath", ["level"], "\\boxed{36}", "\\boxed{35}"),
}


def options(**given):
    return resolve({"base_model": "unused", "output_dir": "-", **given}, lambda key: "test", "test")


@pytest.fixture(scope="module")
def grader():
    with Grader(workers=1) as g:
        yield g


def test_the_seed_dataset_list_is_known():
    assert list(DATASETS) == SEED_DATASETS
    # the seed's columns (uni_eval.py DATASET_INFO)
    assert (DATASETS["zwhe99/simplerl-OlympiadBench"]["problem"], DATASETS["zwhe99/simplerl-OlympiadBench"]["answer"]) \
        == ("question", "final_answer")
    assert (DATASETS["zwhe99/gpqa_diamond_mc"]["answer"], DATASETS["zwhe99/gpqa_diamond_mc"]["categories"]) \
        == ("solution", ["domain"])


@pytest.mark.parametrize("data_id", SEED_DATASETS)
def test_loader_reads_the_hub_layout_from_a_local_copy(data_id, grader, eval_fixtures):
    golds, label, categories, right, wrong = EXPECTED[data_id]
    # The seed's layout: data_dir/<data_id>, here as <split>.jsonl of the data_id's default split
    problems, meta = load_problems(options(data_id=data_id, data_dir=str(eval_fixtures)))
    assert [p["gold"] for p in problems] == golds
    assert meta == {"dataset": label, "split": DATASETS[data_id]["split"], "categories": categories}
    key = DATASETS[data_id]["problem"]
    rows = [json.loads(line) for line in (eval_fixtures / data_id / f"{meta['split']}.jsonl").read_text().splitlines()]
    assert [p["problem"] for p in problems] == [r[key] for r in rows]
    assert [p["body"] for p in problems] == [r[key] for r in rows]  # the problem text is the prompt's body
    assert problems[0]["row"] == rows[0]  # the whole row travels to generation.jsonl
    assert [p["choice"] for p in problems] == [data_id == "zwhe99/gpqa_diamond_mc"] * len(rows)
    assert grader.submit(problems[0]["gold"], right).result() is True
    assert grader.submit(problems[0]["gold"], wrong).result() is False


def test_a_file_path_and_a_selection(tmp_path, eval_fixtures):
    path = eval_fixtures / "zwhe99/MATH/math500.jsonl"
    problems, meta = load_problems(options(data_id="zwhe99/MATH", data_dir=str(path), start_idx=1, end_idx=3))
    assert [p["idx"] for p in problems] == [1, 2] and meta["dataset"] == "MATH500"
    problems, meta = load_problems(options(data_id=str(path)))  # a bare path: its name says the benchmark
    assert meta["dataset"] == "MATH500" and meta["categories"] == [] and len(problems) == 3
    olympiad = eval_fixtures / "zwhe99/simplerl-OlympiadBench/test.jsonl"
    problems, meta = load_problems(options(data_id=str(olympiad)))  # no data_id: no OlympiadBench answer handling
    assert meta["dataset"] == "test" and problems[0]["gold"] == "$2$,$3$"
    # the other split of a dataset is its own column in the report
    (tmp_path / "zwhe99/aime90").mkdir(parents=True)
    (tmp_path / "zwhe99/aime90/2023.jsonl").write_text(json.dumps({"problem": "1+1?", "expected_answer": "2"}) + "\n")
    problems, meta = load_problems(options(data_id="zwhe99/aime90", data_dir=str(tmp_path), split=2023))
    assert meta["dataset"] == "AIME24-2023" and problems[0]["gold"] == "2"


def test_save_to_disk_folder_as_the_seed_reads_it(tmp_path, eval_fixtures):
    """The seed's data_dir: load_from_disk(data_dir/data_id), a DatasetDict; a ClassLabel answer reads as its name."""
    datasets = pytest.importorskip("datasets")
    rows = [json.loads(line) for line in (eval_fixtures / "zwhe99/pm-en/test.jsonl").read_text().splitlines()]
    features = datasets.Features({"id": datasets.Value("string"), "question": datasets.Value("string"),
                                  "answer": datasets.ClassLabel(names=["101", "36"]),
                                  "level": datasets.Value("string")})
    ds = datasets.Dataset.from_list(rows, features=features)
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "zwhe99" / "pm-en"))
    problems, meta = load_problems(options(data_id="zwhe99/pm-en", data_dir=str(tmp_path)))
    assert [p["gold"] for p in problems] == ["36", "101"] and meta["categories"] == ["level"]


def test_olympiadbench_answer_lists():
    from reasonlite.evaluation.benchmarks import _dollar_list
    assert _dollar_list(["$\\frac{1}{2 n+2}$"]) == "\\frac{1}{2 n+2}"
    assert _dollar_list(["$69$,$84$"]) == "69, 84"
    assert _dollar_list(["$(6,3),(9,3)$"]) == "(6,3),(9,3)"
    assert _dollar_list(["$x=1$", "$x=2$"]) == "x=1, x=2"  # several elements (the seed asserted one)
    assert _dollar_list(["1,3"]) == "1,3" and _dollar_list([]) is None and _dollar_list([""]) is None


@pytest.mark.parametrize("text,letter", [
    ("C", "C"), ("(C)", "C"), ("C. 12 eV", "C"), ("(D) graviton", "D"), ("\\text{(B)}", "B"), ("\\textbf{A}", "A"),
    ("$B$", "B"), ("CO2", None), ("12", None), ("", None), (None, None), ("c", None),
])
def test_option_letter(text, letter):
    assert mc_letter(text) == letter


def test_multiple_choice_is_voted_and_graded_by_letter(eval_fixtures):
    problems, _ = load_problems(options(data_id="zwhe99/gpqa_diamond_mc", data_dir=str(eval_fixtures)))
    p = problems[0]
    p.update(prompt="the prompt", prompt_ids=[1, 2, 3])
    responses = ["\\boxed{B}", "<think>maybe A</think>The answer is \\boxed{(B) photon}", "\\boxed{\\text{A}}",
                 "\\boxed{A. gluon}"]
    samples = {(p["idx"], i): {"response": r, "response_length": 5, "finish_reason": "stop"}
               for i, r in enumerate(responses)}
    [rec] = score([p], samples, 4, 42)
    assert rec["pred"] == ["B", "B", "A", "A"]
    assert rec["correct"] == [True, True, False, False]
    assert rec["gold"] == "B" and rec["domain"] == "Physics" and rec["solution"] == "\\boxed{B}"
    assert rec["maj@4"] == 0.5  # two votes each for B and A: a two-way tie


def test_options_in_their_own_column(tmp_path):
    """choices_key: the seed's dead choice_key path; the options listed in its wording, the gold by letter."""
    path = tmp_path / "mc.jsonl"
    rows = [{"question": "Which is a prime?", "choices": ["4", "6", "7", "9"], "answer": "7"},
            {"question": "Which is even?", "choices": ["3", "8", "5"], "answer": 1},
            {"question": "Pick C.", "choices": ["x", "y", "z"], "answer": "\\boxed{C}"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    problems, _ = load_problems(options(data_dir=str(path), choices_key="choices"))
    assert [p["gold"] for p in problems] == ["(C) 7", "(B) 8", "(C) z"]
    assert problems[0]["body"] == ("Which is a prime?\n\n\n(A) 4\n(B) 6\n(C) 7\n(D) 9\n\nPlease write your final "
                                   "answer in the form of \\boxed{A}, \\boxed{B}, \\boxed{C}, or \\boxed{D}")
    assert problems[1]["body"].endswith("\\boxed{A}, \\boxed{B}, or \\boxed{C}")
    assert choice_prompt("Q", ["a", "b"]) == "Q\n\n\n(A) a\n(B) b\n\nPlease write your final answer in the form of " \
                                             "\\boxed{A}, or \\boxed{B}"
    path.write_text(json.dumps({"question": "Q", "choices": ["a", "b"], "answer": "c"}) + "\n")
    with pytest.raises(ValueError, match=r"mc.jsonl:1: answer key 'answer' .* not an option letter, index or option"):
        load_problems(options(data_dir=str(path), choices_key="choices"))


def test_a_multiple_choice_gold_without_a_letter_names_its_row(tmp_path):
    folder = tmp_path / "zwhe99/gpqa_diamond_mc"
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text(json.dumps({"problem": "Q (A) 1 (B) 2", "solution": "\\boxed{42}",
                                                   "domain": "Physics"}) + "\n")
    with pytest.raises(ValueError, match=r"test.jsonl:1: answer key 'solution' is missing, empty or not an option "
                                         r"letter \('\\\\boxed\{42\}'\)"):
        load_problems(options(data_id="zwhe99/gpqa_diamond_mc", data_dir=str(tmp_path)))
