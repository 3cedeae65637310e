"""Generated notation families: one value in many equivalent spellings is judged equal in every pairing, and its near
misses (another digit, another base, another residue, a dropped element, a wrong exponent) unequal.

A seeded generator of our own (hypothesis is not a dependency of the project): each family draws random values and
renders each in the notations models and datasets write for it, as a gold answer and as a model's final answer (in
\\boxed{}, after "the answer is", in a gpt-oss final channel or after </think>). The families come from the grader
issue (scientific notation, congruences, bases, approximations, repeating decimals, units, the empty set, sets and
\\pm lists) and from false negatives and positives reported against math-verify and lighteval
(huggingface/Math-Verify issues 2, 10, 14, 25, 37, 41, 49, 69, 71, 76: plain-text expressions, intervals against
inequalities, tiny values, long decimals, wrapped numbers, labelled lists).

`cases(per_family, seed)` is the generator; bench/grader_accuracy.py prints its accuracy table beside the peer
suite. The test here runs a fixed seed, small enough for the fast tier.
"""
from __future__ import annotations

import itertools
import math
import random
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

import pytest

SEED = 1729
PER_FAMILY = 5  # values per family in the test (about 1,000 pairs; the bench draws more)

# ================================================================ rendering helpers


def frac_tex(v: Fraction, style: str = "frac") -> str:
    """A rational as LaTeX or plain text."""
    if v.denominator == 1:
        return str(v.numerator)
    sign, n, d = ("-" if v < 0 else ""), abs(v.numerator), v.denominator
    return {"frac": f"{sign}\\frac{{{n}}}{{{d}}}", "dfrac": f"{sign}\\dfrac{{{n}}}{{{d}}}",
            "slash": f"{sign}{n}/{d}"}[style]


def decimal_str(v: Fraction, places: int | None = None) -> str:
    """The exact decimal of a terminating fraction, or v rounded to `places`."""
    if places is None:
        return format(Decimal(v.numerator) / Decimal(v.denominator), "f")
    return format(round(Decimal(v.numerator) / Decimal(v.denominator), places), "f")


class Whole(str):
    """A pred that is already a whole model output (a sentence, not a bare answer to put in a box)."""


def wrap_pred(rng: random.Random, ans: str) -> str:
    """A model output whose final answer is ans."""
    if isinstance(ans, Whole):
        return str(ans)
    return rng.choice([
        f"\\boxed{{{ans}}}",
        f"Putting it together, the answer is $\\boxed{{{ans}}}$.",
        "<|channel|>analysis<|message|>Compute carefully.<|end|><|start|>assistant<|channel|>final<|message|>"
        f"The result is $\\boxed{{{ans}}}$.",
        f"<think>\nLet me work it out.\n</think>\n\n**Final Answer**\n\\[\n\\boxed{{{ans}}}\n\\]",
    ])


def wrap_gold(rng: random.Random, gold: str) -> str:
    return rng.choice([gold, gold, f"${gold}$"])


# ================================================================ the families
# Each takes an rng and returns (golds, preds, misses): spellings of one value as a gold answer, spellings a model
# writes for it, and near misses, or a list of (gold, pred, equal) where a pairing is not all against all.


def scientific(rng):
    """1.5 \\times 10^{-4}, 1.5e-4, 1.5E-04, 15 \\times 10^{-5}, 0.00015: one value; another exponent or digit is
    not."""
    digits = rng.choice([1, 2, 3])
    m = rng.randrange(10 ** (digits - 1), 10 ** digits)
    if digits > 1 and m % 10 == 0:
        m += rng.randint(1, 9)
    k = rng.choice(list(range(-12, -2)) + list(range(3, 16)))

    def mant(m_, digits_):
        return decimal_str(Fraction(m_, 10 ** (digits_ - 1)))

    def spell(m_, k_, style):
        ms = mant(m_, digits)
        return {"times": f"{ms} \\times 10^{{{k_}}}", "tight": f"{ms}\\times10^{{{k_}}}",
                "cdot": f"{ms} \\cdot 10^{{{k_}}}", "e": f"{ms}e{k_}", "E": f"{ms}E{k_:+03d}",
                "star": f"{ms}*10^{{{k_}}}", "x": f"{ms} x 10^{{{k_}}}", "unicode": f"{ms} × 10^{{{k_}}}",
                "shift": f"{decimal_str(Fraction(m_ * 10, 10 ** (digits - 1)))} \\times 10^{{{k_ - 1}}}",
                "plain": decimal_str(Fraction(m_, 10 ** (digits - 1)) * Fraction(10) ** k_)}[style]
    styles = ["times", "tight", "cdot", "e", "E", "star", "x", "unicode", "shift"]
    if -8 <= k <= 9:
        styles.append("plain")
    golds = [spell(m, k, s) for s in ("times", "plain" if "plain" in styles else "times", "e")]
    preds = [spell(m, k, s) for s in styles]
    other = m + 1 if m % 10 != 9 else m - 1
    misses = [spell(m, k + 1, rng.choice(styles)), spell(m, k - 1, rng.choice(styles)),
              spell(other, k, rng.choice(styles)), spell(m, -k, rng.choice(styles))]
    return golds, preds, misses


def congruence(rng):
    """x \\equiv r \\pmod{m}, r (mod m), x \\equiv r + m \\pmod{m}, 7k + 3 against r or the class; another residue,
    another modulus or a non-least representative against a bare residue is not."""
    m, v = rng.randint(3, 60), rng.choice("xnNa")
    r = rng.randrange(m)
    cls = [f"{v} \\equiv {r} \\pmod{{{m}}}", f"{v} \\equiv {r} \\pmod {m}",
           f"{v} \\equiv {r} \\ (\\mathrm{{mod}}\\ {m})",
           f"{v} \\equiv {r} \\mod {m}", f"{r} \\pmod{{{m}}}", f"{v} ≡ {r} (mod {m})", f"{r + m} \\bmod {m}",
           f"{v} \\equiv {r + m} \\pmod{{{m}}}", f"{v} \\equiv {r - m} \\pmod{{{m}}}", f"{r} \\text{{ (mod }} {m})"]
    param = [f"{m}k + {r}", f"{r} + {m}n"] if r else [f"{m}k"]
    param = [p for p in param if p != f"{m}k"]
    congruent_gold = f"{v} \\equiv {r} \\pmod{{{m}}}"
    out = [(str(r), p, True) for p in cls + [str(r)]]
    out += [(congruent_gold, p, True) for p in cls + param + [str(r)]]
    wrong_r = (r + rng.randint(1, m - 1)) % m
    out += [(str(r), f"{v} \\equiv {wrong_r} \\pmod{{{m}}}", False), (str(r), f"{wrong_r} \\pmod{{{m}}}", False),
            (congruent_gold, f"{v} \\equiv {r} \\pmod{{{m + 1}}}", False), (congruent_gold, str(r + m), False),
            (congruent_gold, f"{m + 1}k + {r}", False), (congruent_gold, f"{wrong_r} \\pmod {m}", False)]
    return out


_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 12: "twelve",
          16: "sixteen"}
_PREFIX = {2: "0b", 8: "0o", 16: "0x"}


def to_base(v: int, b: int) -> str:
    out = ""
    while v:
        v, d = divmod(v, b)
        out = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[d] + out
    return out or "0"


def bases(rng):
    """101_2, 101_{(2)}, (101)_2, 101_{\\text{two}}, 0b101, 5: one value; another digit, another base or the digits
    without their base against the decimal value is not."""
    b = rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 16])
    v = rng.randint(b + 1, 3000)
    d = to_base(v, b)
    based = [f"{d}_{{{b}}}", f"{d}_{{({b})}}", f"({d})_{{{b}}}", f"\\text{{{d}}}_{{{b}}}", f"{d} \\text{{ (base {b})}}"]
    based += [f"{d}_{b}", f"({d})_{b}"] if b < 10 else [f"{d.lower()}_{{{b}}}"] if b == 16 else []
    based += [f"{d}_{{\\text{{{_WORDS[b]}}}}}"] if b in _WORDS else []
    based += [f"{_PREFIX[b]}{d}"] if b in _PREFIX else []
    decimal = [str(v), f"{v}_{{10}}"]
    out = [(g, p, True) for g in (f"{d}_{{{b}}}", f"{d}_{b}" if b < 10 else f"{d}_{{{b}}}", str(v))
           for p in based + decimal]
    out += [(f"{d}_{{{b}}}", d, True)]  # the gold's digits, its base left implicit
    i = rng.randrange(len(d))
    digit = "0123456789ABCDEF"[(int(d[i], 16) + 1) % b]
    d2 = d[:i] + digit + d[i + 1:]
    b2 = b + 1 if b + 1 not in (10,) else b + 2
    for g in (f"{d}_{{{b}}}", str(v)):
        out += [(g, f"{d2}_{{{b}}}", False), (g, f"{d}_{{{b2}}}", False), (g, str(v + 1), False)]
    if d != str(v):
        out.append((str(v), d, False))  # digits in another base, the base not written
    return out


_EXACT = [(lambda n: (f"\\sqrt{{{n}}}", math.sqrt(n))), (lambda n: (f"{n}\\pi", n * math.pi)),
          (lambda n: (f"\\frac{{\\pi}}{{{n}}}", math.pi / n)), (lambda n: (f"\\ln {n}", math.log(n))),
          (lambda n: (f"e^{{{n % 4 + 1}}}", math.e ** (n % 4 + 1))), (lambda n: (f"\\sqrt[3]{{{n}}}", n ** (1 / 3)))]


def approximations(rng):
    """A decimal gold against '\\approx 2.24', 'x \\approx 2.24', '\\sqrt{5} \\approx 2.24', 'approximately 2.24': the
    same digits; another last digit, or an exact value that does not round to the stated digits, is not."""
    while True:
        n = rng.choice([2, 3, 5, 6, 7, 10, 11, 13, 17, 19, 23])
        exact = rng.choice(_EXACT)
        (tex, val), (far, far_val) = exact(n), exact(n + 7)
        places = rng.choice([1, 2, 3, 4])
        g = format(round(Decimal(repr(val)), places), "f")
        ulp = 10.0 ** -places
        if abs(val - float(g)) < 0.45 * ulp and abs(far_val - float(g)) > 2 * ulp:
            break  # not on a rounding edge, and the other exact value is clearly not g
    ulp = Decimal(10) ** -places
    g_up, g_down = format(Decimal(g) + ulp, "f"), format(Decimal(g) - ulp, "f")
    preds = [g, f"\\approx {g}", f"x \\approx {g}", f"{tex} \\approx {g}", f"\\text{{approximately }} {g}",
             f"≈ {g}", f"\\approx {g}0"]
    out = [(gold, p, True) for gold in (g, f"{tex} \\approx {g}") for p in preds]
    out += [(f"{tex} \\approx {g}", tex, True)]
    out += [(g, f"\\approx {g_up}", False), (g, f"x \\approx {g_down}", False), (g, f"{far} \\approx {g}", False),
            (g, g_up, False)]
    return out


def repeating(rng):
    """0.\\overline{3}, 0.1\\bar{6}, 0.(3), 0.\\dot{1}4285\\dot{7}, 0.1666..., \\frac{1}{6}: one value; another digit in
    the period, or a truncation without a repeat mark, is not."""
    q = rng.choice([3, 6, 7, 9, 11, 12, 13, 15, 18, 22, 27, 33, 37, 41, 44, 45, 54, 55, 74, 99, 101 * 3])
    p = rng.randint(1, 3 * q)
    while Fraction(p, q).denominator in (1, 2, 4, 5, 8, 10) or math.gcd(p, q) != 1:
        p += 1
    v = Fraction(p, q)
    whole, rem, digits, seen = v.numerator // v.denominator, v.numerator % v.denominator, "", {}
    while rem not in seen:
        seen[rem] = len(digits)
        rem *= 10
        digits += str(rem // v.denominator)
        rem %= v.denominator
    fixed, period = digits[:seen[rem]], digits[seen[rem]:]
    head = f"{whole}.{fixed}"
    dots = f"\\dot{{{period}}}" if len(period) == 1 else f"\\dot{{{period[0]}}}{period[1:-1]}\\dot{{{period[-1]}}}"
    ell = head + period * (3 if len(period) == 1 else 2)
    forms = [f"{head}\\overline{{{period}}}", f"{head}\\bar{{{period}}}", f"{head}({period})", head + dots,
             f"{ell}\\ldots", f"{ell}...", f"{ell}\\dots", f"{head}\\overline{{{period * 2}}}",
             frac_tex(v), frac_tex(v, "slash"), frac_tex(v, "dfrac")]
    golds = [frac_tex(v), f"{head}\\overline{{{period}}}"]
    i = rng.randrange(len(period))
    bad_period = period[:i] + str((int(period[i]) + 1) % 10) + period[i + 1:]
    truncated = f"{whole}." + (fixed + period * 4)[:3]  # three places: a rounding, not the value
    misses = [f"{head}\\overline{{{bad_period}}}", f"{whole}.{fixed}{bad_period}{bad_period}{bad_period}\\ldots",
              truncated, f"{whole + 1}.{fixed}\\overline{{{period}}}"]
    return golds, forms, misses


_UNITS = [("cm", "centimeters", ["m", "mm", "km"]), ("m", "meters", ["cm", "km"]), ("km", "kilometers", ["m", "mi"]),
          ("kg", "kilograms", ["g", "lb"]), ("g", "grams", ["kg", "mg"]), ("s", "seconds", ["min", "h"]),
          ("min", "minutes", ["s", "h"]), ("h", "hours", ["min", "s"]), ("ft", "feet", ["yd", "mi"]),
          ("mi", "miles", ["km", "ft"]), ("L", "liters", ["mL"]), ("mL", "milliliters", ["L"])]


def units(rng):
    """A gold carrying its unit against the bare number, the unit spelled out, squared as 'square ...' (and back);
    another unit or another number is not."""
    abbr, name, others = rng.choice(_UNITS)
    power = rng.choice([1, 1, 2, 3]) if abbr in ("cm", "m", "km", "ft", "mi") else 1
    v = rng.choice([Fraction(rng.randint(2, 500)), Fraction(rng.randint(2, 999), 10),
                    Fraction(rng.randint(1, 9), rng.choice([2, 3, 4, 7]))])
    num, num2 = (decimal_str(v) if v.denominator in (1, 10) else frac_tex(v)), decimal_str(v + 1) \
        if v.denominator in (1, 10) else frac_tex(v + 1)
    sup = {1: "", 2: "^2", 3: "^3"}[power]
    word = {1: name, 2: f"square {name}", 3: f"cubic {name}"}[power]

    def spell(n, a=abbr, w=word, s=sup):
        return [f"{n} \\text{{ {a}}}{s}", f"{n}\\,\\text{{{a}}}{s}", f"{n} \\mathrm{{{a}}}{s}", f"{n} {w}",
                f"{n} \\text{{ {w}}}", f"{n}\\ \\mathrm{{{a}{s}}}"]
    with_unit = spell(num)
    out = [(g, p, True) for g in (with_unit[0], with_unit[4], num) for p in with_unit + [num]]
    other = rng.choice(others)
    out += [(with_unit[0], rng.choice(spell(num, a=other, w=other, s=sup)), False),
            (with_unit[0], rng.choice(spell(num2)), False), (with_unit[0], num2, False), (num, num2, False)]
    if power < 3 and abbr in ("cm", "m", "km", "ft", "mi"):
        out.append((with_unit[0], f"{num} \\text{{ {abbr}}}^{power + 1}", False))
    return out


_EMPTY = ["\\emptyset", "\\varnothing", "\\{\\}", "\\{ \\}", "∅", "\\text{no solution}", "\\text{No solutions}",
          "\\text{none}", "\\text{None}", "\\text{no real solutions}", "\\text{There are no real solutions}",
          "x \\in \\emptyset", "\\text{no such } x \\text{ exists}", "\\text{the empty set}", "\\text{No solution.}"]


def empty_set(rng):
    """\\emptyset, \\varnothing, \\{\\}, 'no solution', 'none', 'no real solutions': the empty set; {0}, 0,
    {\\emptyset}, the reals or 'infinitely many solutions' is not."""
    r = rng.randint(-9, 9)
    golds = ["\\emptyset", "\\varnothing", "\\text{no solution}", "\\text{none}", "\\{\\}", "\\text{No real solutions}"]
    misses = ["0", "\\{0\\}", "\\{\\emptyset\\}", "\\mathbb{R}", "\\text{all real numbers}",
              "\\text{infinitely many solutions}", f"\\{{{r}\\}}", str(r), "(-\\infty, \\infty)", "\\text{no}"]
    return golds, _EMPTY, misses


def _values(rng, k):
    pool = set()
    while len(pool) < k:
        kind = rng.choice("ifsd")
        if kind == "i":
            pool.add(str(rng.randint(-20, 20)))
        elif kind == "f":
            pool.add(frac_tex(Fraction(rng.randint(-9, 9) or 1, rng.choice([2, 3, 5, 7]))))
        elif kind == "s":
            pool.add(f"{rng.randint(2, 5)}\\sqrt{{{rng.choice([2, 3, 5, 7])}}}")
        else:
            pool.add(f"{rng.randint(0, 9)}.{rng.randint(1, 9)}")
    return sorted(pool)


def sets(rng):
    """\\{a, b, c\\} in any order, as a list, with 'and', as 'x = a, x = b', labelled 'n = a, b'; a dropped, changed or
    extra element is not."""
    k = rng.randint(2, 4)
    vals = _values(rng, k)
    golds = ["\\{" + ", ".join(vals) + "\\}", ", ".join(vals), "x = " + ", ".join(vals)]
    preds = []
    for _ in range(4):
        perm = rng.sample(vals, k)
        preds.append(rng.choice(["\\{" + ", ".join(perm) + "\\}", ", ".join(perm), ",".join(perm),
                                 ", ".join(perm[:-1]) + ", \\text{and } " + perm[-1],
                                 " \\text{ or } ".join(f"x = {x}" for x in perm), "x = " + ", ".join(perm),
                                 "x \\in \\{" + ", ".join(perm) + "\\}"]))
    if k == 2:
        preds.append(f"{vals[1]} \\text{{ and }} {vals[0]}")
    extra = _values(rng, k + 3)
    new = next(x for x in extra if x not in vals)
    misses = ["\\{" + ", ".join(vals[:-1]) + "\\}", ", ".join(vals[1:]), ", ".join(vals[:-1] + [new]),
              "\\{" + ", ".join(vals + [new]) + "\\}"]
    return golds, preds, misses


def plus_minus(rng):
    """a \\pm b against a + b, a - b in any order, as a set, as x_1, x_2; one root, or another b, is not."""
    a = rng.choice([0, rng.randint(-9, 9)])
    b = rng.choice([str(rng.randint(1, 12)), f"\\sqrt{{{rng.choice([2, 3, 5, 6, 7])}}}",
                    f"{rng.randint(2, 5)}\\sqrt{{{rng.choice([2, 3])}}}"])
    lead = "" if a == 0 else str(a)
    plus, minus = (f"{lead} + {b}" if lead else b), f"{lead} - {b}"
    if b.isdigit():
        plus, minus = str(a + int(b)), str(a - int(b))
    gold = f"{lead} \\pm {b}".strip()
    preds = [gold, f"x = {gold}", f"{plus}, {minus}", f"{minus}, {plus}", f"\\{{{minus}, {plus}\\}}",
             f"x_1 = {plus}, x_2 = {minus}", f"{lead} ± {b}".strip(), f"x = {plus} \\text{{ or }} x = {minus}"]
    b2 = str(int(b) + 1) if b.isdigit() else b.replace("sqrt{", "sqrt{1")
    misses = [plus, minus, f"{lead} \\pm {b2}".strip(), f"{plus}, {plus}" if a else f"{b}, {b}"]
    return [gold, f"{plus}, {minus}"], preds, misses


def plain_text(rng):
    """Python/sympy-style text against LaTeX (Math-Verify issue 69): k*pi/q, exp(n) - c, sqrt(n), n**(1/2), a/b; another
    constant or sign is not."""
    kind = rng.choice(["pi", "exp", "sqrt", "frac"])
    if kind == "pi":
        k, q = rng.randint(1, 9), rng.choice([2, 3, 4, 5, 6, 7])
        while math.gcd(k, q) != 1:
            k += 1
        golds = [f"\\frac{{{k}\\pi}}{{{q}}}", f"\\frac{{{k}}}{{{q}}}\\pi"]
        preds = golds + [f"{k}*pi/{q}", f"{k} pi / {q}", f"({k}/{q})*pi", f"{k}\\pi/{q}"]
        misses = [f"{k + 1}*pi/{q}", f"\\frac{{{k}\\pi}}{{{q + 1}}}", f"{k}/{q}"]
    elif kind == "exp":
        n, c = rng.randint(2, 20), rng.randint(1, 9)
        golds = [f"e^{{{n}}} - {c}"]
        preds = golds + [f"exp({n}) - {c}", f"-{c} + exp({n})", f"e**{n} - {c}", f"\\exp({n}) - {c}"]
        misses = [f"e^{{{n}}} + {c}", f"exp({n + 1}) - {c}", f"e^{{{n}}}"]
    elif kind == "sqrt":
        n = rng.choice([2, 3, 5, 6, 7, 10, 11, 13])
        golds = [f"\\sqrt{{{n}}}"]
        preds = golds + [f"sqrt({n})", f"{n}**(1/2)", f"{n}^(1/2)", f"{n}^{{1/2}}", f"{n}^{{\\frac{{1}}{{2}}}}"]
        misses = [f"sqrt({n + 1})", f"{n}**(1/3)", f"{n}/2"]
    else:
        v = Fraction(rng.randint(1, 40), rng.randint(2, 41))
        while v.denominator == 1:
            v += Fraction(1, 3)
        golds = [frac_tex(v)]
        preds = golds + [frac_tex(v, "slash"), frac_tex(v, "dfrac"), f"({v.numerator})/({v.denominator})",
                         f"{v.numerator} / {v.denominator}"]
        misses = [frac_tex(v + Fraction(1, v.denominator)), f"{v.denominator}/{v.numerator}"]
    return golds, preds, misses


def tiny_and_huge(rng):
    """1/2^{k} against 2^{-k} and (1/2)^k, 2^k against its digits (Math-Verify issue 14: tiny values collapsed to
    equal); another exponent or last digit is not."""
    k = rng.randint(40, 130)
    n = rng.randint(20, 300)
    out = [(f"\\frac{{1}}{{2^{{{k}}}}}", p, True) for p in (f"2^{{-{k}}}", f"\\frac{{1}}{{2^{k}}}", f"(1/2)^{{{k}}}",
                                                          f"\\left(\\frac{{1}}{{2}}\\right)^{{{k}}}")]
    out += [(f"2^{{{k}}}", str(2 ** k), True), (str(2 ** k), f"2^{{{k}}}", True)]
    out += [(f"\\frac{{1}}{{2^{{{k}}}}}", f"2^{{-{k + 1}}}", False),
            (f"\\frac{{1}}{{2^{{{k}}}}}", f"\\frac{{1}}{{2^{{{k - 1}}}}}", False),
            (f"\\frac{{1}}{{{n}!}}", f"\\frac{{1}}{{{n + 2}!}}", False), (f"2^{{{k}}}", str(2 ** k + 1), False),
            (str(2 ** k), f"2^{{{k + 1}}}", False)]
    return out


def intervals(rng):
    """(a, b) against a < x < b and x \\in (a, b); [a, \\infty) against x \\geq a (Math-Verify issues 10, 25, 49, 71);
    an open end for a closed one, or another endpoint, is not."""
    a = rng.randint(-9, 5)
    b = a + rng.randint(1, 9)
    kind = rng.choice(["open", "closed", "ray", "closed_ray"])
    if kind == "open":
        golds = [f"({a}, {b})"]
        preds = [f"{a} < x < {b}", f"x \\in ({a}, {b})", f"({a},{b})", f"\\left({a}, {b}\\right)"]
        misses = [f"[{a}, {b})", f"{a} \\le x < {b}", f"({a}, {b + 1})"]
    elif kind == "closed":
        golds, preds = [f"[{a}, {b}]"], [f"{a} \\le x \\le {b}", f"{a} \\leq x \\leq {b}", f"x \\in [{a}, {b}]"]
        misses = [f"({a}, {b}]", f"{a} < x \\le {b}", f"[{a - 1}, {b}]"]
    elif kind == "ray":
        golds, preds = [f"({a}, \\infty)"], [f"x > {a}", f"x \\in ({a}, +\\infty)", f"({a}, +\\infty)", f"{a} < x"]
        misses = [f"x \\ge {a}", f"[{a}, \\infty)", f"x < {a}", f"x > {a + 1}"]
    else:
        golds, preds = [f"[{a}, \\infty)"], [f"x \\geq {a}", f"x \\ge {a}", f"x \\in [{a}, \\infty)"]
        misses = [f"x > {a}", f"({a}, \\infty)", f"x \\le {a}"]
    return golds, golds + preds, misses


def long_decimals(rng):
    """\\frac{1}{12} against 0.0833333333333333 (Math-Verify issue 2): a decimal to many places is the fraction; a
    coarse rounding, or a wrong digit early on, is not."""
    v = Fraction(rng.randint(1, 30), rng.choice([3, 7, 9, 11, 12, 13, 17, 19, 21, 23]))
    while v.denominator in (1, 2, 4, 5):
        v += Fraction(1, 7)
    places = rng.randint(12, 16)
    d = decimal_str(v, places)
    i = d.index(".") + 2
    wrong = d[:i] + str((int(d[i]) + 1) % 10) + d[i + 1:]
    return [frac_tex(v)], [d, d.rstrip("0")], [decimal_str(v, 3), wrong]


def wrapped(rng):
    """A number in \\text{}, \\textbf{}, \\mathbf{}, **bold**, $...$ (Math-Verify issues 37, 76); another number is
    not, nor a dropped radical (issue 41)."""
    n = rng.randint(2, 999)
    preds = [f"\\text{{{n}}}", f"\\textbf{{{n}}}", f"\\mathbf{{{n}}}", f"\\mathrm{{{n}}}", str(n), f"{{{n}}}"]
    out = [(str(n), p, True) for p in preds]
    out += [(str(n), Whole(f"Final Answer: **{n}**"), True), (str(n), Whole(f"So the answer is **{n}**."), True),
            (str(n), Whole(f"The answer is $\\text{{{n}}}$."), True)]
    out += [(str(n), f"\\textbf{{{n + 1}}}", False), (str(n), Whole(f"Final Answer: **{n * 10}**"), False),
            (str(n), f"{n}\\sqrt{{2}}", False), (f"{n}\\sqrt{{2}}", str(n), False)]
    return out


FAMILIES = {
    "scientific notation": scientific, "congruence / \\pmod": congruence, "bases": bases,
    "approximately (\\approx)": approximations, "repeating decimals": repeating, "units": units,
    "empty set / no solution": empty_set, "sets in any order": sets, "\\pm lists": plus_minus,
    "plain-text expressions": plain_text, "tiny and huge values": tiny_and_huge,
    "intervals and inequalities": intervals,
    "long decimals": long_decimals, "wrapped numbers": wrapped,
}


def cases(per_family: int = PER_FAMILY, seed: int = SEED, pairs_per_value: int = 12) -> list[dict]:
    """[{family, gold, pred, equal}]: per family, `per_family` random values; for each, up to `pairs_per_value`
    equal pairs (gold spelling x model spelling, drawn without repeats) and every near miss against a gold."""
    rng = random.Random(seed)
    out = []
    for name, family in FAMILIES.items():
        for _ in range(per_family):
            got = family(rng)
            if isinstance(got, tuple):
                golds, preds, misses = got
                equal = list(itertools.product(golds, preds))
                wrong = [(rng.choice(golds), m, False) for m in misses]
                rows = [(g, p, True) for g, p in rng.sample(equal, min(pairs_per_value, len(equal)))] + wrong
            else:
                pos = [r for r in got if r[2]]
                rows = rng.sample(pos, min(pairs_per_value, len(pos))) + [r for r in got if not r[2]]
            out += [{"family": name, "gold": wrap_gold(rng, g), "pred": wrap_pred(rng, p), "equal": eq}
                    for g, p, eq in rows]
    return out


def accuracy_table(rows: list[dict], verdicts: list) -> list[tuple[str, int, float, int, float]]:
    """Per family: (family, equal pairs, share judged equal, near misses, share judged unequal); a None verdict
    counts as wrong either way."""
    by = defaultdict(lambda: [0, 0, 0, 0])
    for row, v in zip(rows, verdicts):
        t = by[row["family"]]
        if row["equal"]:
            t[0] += 1
            t[1] += v is True
        else:
            t[2] += 1
            t[3] += v is False
    table = [(f, n, ok / n if n else float("nan"), m, good / m if m else float("nan"))
             for f, (n, ok, m, good) in by.items()]
    n, ok, m, good = (sum(x[i] for x in by.values()) for i in range(4))
    return table + [("all families", n, ok / n, m, good / m)]


def markdown_table(table) -> str:
    lines = ["| family | equal pairs | judged equal | near misses | judged unequal |", "|---|---:|---:|---:|---:|"]
    for f, n, tpr, m, tnr in table:
        name = f"**{f}**" if f == "all families" else f
        lines.append(f"| {name} | {n} | {tpr:.3f} | {m} | {tnr:.3f} |")
    return "\n".join(lines)


# ================================================================ the tests

@pytest.fixture(scope="module")
def grader():
    from reasonlite.grader import Grader
    with Grader(workers=2, timeout=10) as g:
        yield g


def test_generator_is_deterministic_and_covers_every_family():
    a, b = cases(2, seed=7), cases(2, seed=7)
    assert a == b and a != cases(2, seed=8)
    assert {r["family"] for r in a} == set(FAMILIES)
    assert all(any(r["equal"] for r in a if r["family"] == f) and any(not r["equal"] for r in a if r["family"] == f)
               for f in FAMILIES)


def test_generated_families(grader):
    rows = cases()
    verdicts = grader.map([(r["gold"], r["pred"]) for r in rows])
    table = accuracy_table(rows, verdicts)
    print("\n" + markdown_table(table))
    wrong = [(r["family"], r["gold"], r["pred"][-90:], r["equal"], v) for r, v in zip(rows, verdicts)
             if v is not r["equal"]]
    misses_wrong = [w for w in wrong if not w[3]]
    assert not misses_wrong, "near misses judged equal:\n" + "\n".join(map(repr, misses_wrong))
    for family, n, tpr, m, tnr in table:
        assert tpr >= 0.99, f"{family}: {tpr:.3f} of {n} equal pairs judged equal\n" + "\n".join(
            repr(w) for w in wrong if w[0] == family)
