"""The readers of number notations in reasonlite/answers.py (pure string functions, no worker): each reads its whole
notation and nothing else. The grader's verdicts on them are tested in test_grader_families.py and grader_cases.jsonl.
"""
from fractions import Fraction

import pytest

from reasonlite.answers import (base_number, congruence, e_notation, extract_answer, is_empty_set, repeating_decimal,
                                split_unit, unit_key)


@pytest.mark.parametrize("text,value", [
    ("0.\\overline{3}", Fraction(1, 3)), ("0.1\\overline{6}", Fraction(1, 6)), ("0.\\bar{3}", Fraction(1, 3)),
    ("0.\\overline 3", Fraction(1, 3)), ("0.(3)", Fraction(1, 3)), ("1.2(34)", Fraction(611, 495)),
    ("0.\\dot{1}4285\\dot{7}", Fraction(1, 7)), ("0.1\\dot{6}", Fraction(1, 6)), ("-0.\\overline{6}", Fraction(-2, 3)),
    ("0.333...", Fraction(1, 3)), ("0.1666\\ldots", Fraction(1, 6)), ("0.4545\\dots", Fraction(5, 11)),
    ("2.77557755...", Fraction(841, 303)), ("0.142857142857\\cdots", Fraction(1, 7)),
    ("3.14159...", None), ("0.3...", None), ("0.\\dot{1}42", None), ("0.333", None), ("\\overline{AB}", None),
])
def test_repeating_decimal(text, value):
    assert repeating_decimal(text) == value


@pytest.mark.parametrize("text,read", [
    ("101_2", ("101", 2, 5)), ("101_{2}", ("101", 2, 5)), ("101_{(2)}", ("101", 2, 5)), ("(101)_2", ("101", 2, 5)),
    ("101_{two}", ("101", 2, 5)), ("101 (base 2)", ("101", 2, 5)), ("0b101", ("101", 2, 5)), ("0x1A", ("1A", 16, 26)),
    ("1a_{16}", ("1A", 16, 26)), ("FF_{16}", ("FF", 16, 255)), ("0012_3", ("12", 3, 5)),
    ("102_2", None), ("a_{12}", None), ("B_{11}", None), ("x_2", None), ("101", None), ("10_{n}", None),
])
def test_base_number(text, read):
    assert base_number(text) == read


@pytest.mark.parametrize("text,cls", [
    ("x \\equiv 3 \\pmod{7}", (3, 7)), ("x \\equiv 10 \\pmod 7", (3, 7)), ("n \\equiv -4 ( mod 7)", (3, 7)),
    ("3 \\pmod{7}", (3, 7)), ("17 \\bmod 5", (2, 5)), ("x \\equiv 3 \\mod 7", (3, 7)), ("3 mod 1", None),
    ("x \\equiv 3", None), ("3", None),
])
def test_congruence(text, cls):
    assert congruence(text) == cls


def test_congruence_left_side_is_judged_by_the_caller():
    assert congruence("2x \\equiv 3 \\pmod 7", lhs_ok=lambda lhs: lhs == "x") is None


@pytest.mark.parametrize("text,read", [
    ("1.5e-4", ("1.5 \\times 10^{-4}", True)), ("3e8", ("3 \\times 10^{8}", True)),
    ("6.02E+23", ("6.02 \\times 10^{23}", True)), ("8e-4", ("8 \\times 10^{-4}", False)),
    ("2e-10", ("2 \\times 10^{-10}", True)), ("2e", None), ("e-1", None), ("2e^2", None),
])
def test_e_notation(text, read):
    assert e_notation(text) == read


@pytest.mark.parametrize("text", ["\\emptyset", "\\varnothing", "\\{\\}", "\\{ \\}", "{}", "∅", "none", "None",
                                  "no solution", "No real solutions", "there are no such x", "x \\in \\emptyset",
                                  "the equation has no solution", "zero solutions", "the empty set",
                                  "\\text{no solution}", "No solutions exist."])
def test_empty_set_spellings(text):
    assert is_empty_set(text)


@pytest.mark.parametrize("text", ["no", "zero", "0", "\\{0\\}", "\\{\\emptyset\\}", "none of the above",
                                  "infinitely many solutions", "\\mathbb{R}", "no, it is 5"])
def test_not_the_empty_set(text):
    assert not is_empty_set(text)


@pytest.mark.parametrize("text,number,key", [
    ("10 cm^2", "10", (("cm", 2),)), ("64 square feet", "64", (("ft", 2),)), ("3 m/s", "3", (("m", 1), ("s", -1))),
    ("5 meters per second", "5", (("m", 1), ("s", -1))), ("4 hrs", "4", (("h", 1),)), ("5 sq. cm", "5", (("cm", 2),)),
    ("7 apples", "7", None), ("10weeks", "10", (("wk", 1),)), ("5 milliseconds", "5", None),
])
def test_units(text, number, key):
    head, unit = split_unit(text)
    assert head == number and unit_key(unit) == key


@pytest.mark.parametrize("text", ["2x", "5\\sqrt{2}", "3ab", "3 in", "5 ms", "x + 1"])
def test_no_unit(text):
    assert split_unit(text) == (text, None)


def test_extract_answer_reads_the_last_box_only():
    assert extract_answer("So \\boxed{1} and \\boxed{2}.") == "2"
    assert extract_answer("We get \\boxed{3}. Final answer: 4") == "3"
    assert extract_answer("The final answer is 42.") is None
    assert extract_answer("<think>\\boxed{5}</think> The answer is 5.") is None
