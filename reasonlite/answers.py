"""Reading the final answer out of model text, and the cheap spelling normalization of answers.

Pure string work, safe in any process: `final_text` (the gpt-oss final channel, or what follows </think>),
`last_boxed` (real brace matching), `extract_answer`, and `normalize` (a conservative key: equal keys mean equal
answers); and the readers of number notations the workers use (repeating decimals, bases, congruences, e-notation,
the empty set, units). reasonlite/equivalence.py decides the rest in worker processes; reasonlite/grader.py runs it.
docs/grader.md says exactly how an answer is read and which rules apply.
"""
from __future__ import annotations

import re
from fractions import Fraction

# ================================================================ extraction (pure string work, safe anywhere)

_HARMONY_FINAL = "<|channel|>final<|message|>"
_HARMONY_STOPS = ("<|return|>", "<|end|>", "<|call|>")
# A model that runs past its turn writes the next turn's template; nothing after it is its answer.
_TURN_MARKERS = ("<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|eot_id|>", "<｜end▁of▁sentence｜>")


def final_text(output: str) -> str | None:
    """The part of a model output that holds the final answer; None when the output was cut before it."""
    if not isinstance(output, str):
        return None
    if "<|channel|>" in output:
        i = output.rfind(_HARMONY_FINAL)
        if i < 0:
            return None  # truncated inside the analysis channel
        text = output[i + len(_HARMONY_FINAL):]
        return text[:min([text.find(s) for s in _HARMONY_STOPS if s in text], default=len(text))]
    j = output.rfind("</think>")
    if j >= 0:
        return output[j + len("</think>"):]
    if "<think>" in output:
        return None  # still thinking when it was cut
    return output


_BOX_CMD = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


def _closing_brace(text: str, i: int) -> int:
    """Index of the brace closing text[i] == '{', or -1. A backslash escapes the next character (\\{ \\} \\\\)."""
    depth, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _boxes(text: str) -> list[tuple[int, int, str | None]]:
    """Every outermost \\boxed/\\fbox as (start, end, content); content None for a box that never closes."""
    found, pos = [], 0
    for m in _BOX_CMD.finditer(text):
        if m.start() < pos:
            continue  # nested in the previous box
        j = m.end()
        while j < len(text) and text[j] in " \t\n":
            j += 1
        if j < len(text) and text[j] == "{":
            k = _closing_brace(text, j)
            if k < 0:
                found.append((m.start(), len(text), None))
                break
            found.append((m.start(), k + 1, text[j + 1:k]))
            pos = k + 1
        else:  # "\boxed 5": TeX takes the next token
            tok = re.match(r"[^\s${}]+", text[j:])
            if tok:
                found.append((m.start(), j + tok.end(), tok.group().rstrip(".,;:")))
                pos = j + tok.end()
    return found


def box_left_open(text: str) -> bool:
    """Does text end inside a \\boxed{ that never closes? (An output stopped while writing its answer.)"""
    boxes = _boxes(text) if isinstance(text, str) else []
    return bool(boxes) and boxes[-1][2] is None


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} / \\fbox{...} / \\boxed 5 in text; None if there is none or it is unbalanced."""
    if not isinstance(text, str):
        return None
    boxes = _boxes(text)
    return boxes[-1][2] if boxes else None


def extract_answer(output: str) -> str | None:
    """last_boxed(final_text(output)), stripped; None when truncated, unboxed or empty.

    The last box only: no "the answer is ..." phrase, no prose, no group of boxes (the grader's own reading of a
    pred, _answer_part below, falls back to those). The label modes and the evaluator's pred use this one."""
    text = final_text(output)
    box = last_boxed(text) if text is not None else None
    return box.strip() if box and box.strip() else None


# Boxes separated only by connectives ("\boxed{1} and \boxed{2}", "\quad \text{and} \quad", ", y_2 = ") form one
# multi-part answer; a box separated by anything else ("thus", a sentence) is an earlier, intermediate result.
_GAP_ALLOWED = re.compile(r"\\text\{[^{}]{0,40}\}|\\q?quad|\\[,;:! ]|\$+|\\[()\[\]]|\b(?:and|or)\b|[,;&\s]|\\\\"
                          r"|(?:[A-Za-z](?:_\{?\w{1,6}\}?)?|\([A-Za-z, ]{1,20}\))\s*=")


def _box_group(text: str) -> tuple[int, list[str]] | None:
    boxes = _boxes(text)
    if not boxes or boxes[-1][2] is None:
        return None
    group = [boxes[-1]]
    for b in reversed(boxes[:-1]):
        gap = text[b[1]:group[0][0]]
        if len(gap) > 80 or _GAP_ALLOWED.sub("", gap).strip():
            break
        group.insert(0, b)
    contents = []
    for _, _, c in group:
        if c.strip() and c.strip() not in contents:
            contents.append(c.strip())
    return (group[-1][1], contents) if contents else None


_FINAL_PHRASE = re.compile(r"final\s+answer\s*(?:is\b|:|：)?\s*:?", re.I)
_ANSWER_PHRASE = re.compile(r"(?:answer|réponse|respuesta|resposta|antwort|risposta|ответ)"
                            r"(?:\s*(?:is|est|es|ist|é|è)\b\s*:?|\s*[:：])\s*"
                            r"|(?:答案|答)\s*(?:是|为|:|：)\s*", re.I)
_PHRASE_END = re.compile(r"\n|\.(?=\s|$)|。|\bI hope\b")
_MATH_DELIMS = re.compile(r"\$\$?|\\\(|\\\)|\\\[|\\\]")


def _after_phrase(text: str, m: re.Match) -> str:
    """The answer an answer phrase introduces: the rest of its sentence, or the one math segment it starts with."""
    rest = text[m.end():].lstrip()
    math = re.match(r"\$\$?([^$]+)\$\$?|\\\((.+?)\\\)|\\\[(.+?)\\\]", rest, re.S)
    cut = _PHRASE_END.search(rest, math.end() if math else 0)
    rest = rest[:cut.start()] if cut else rest
    if math and not re.search(r"\$|\\[(\[]", rest[math.end():]):  # "is $\frac{5}{2}$, i.e. 2.5"
        return next(g for g in math.groups() if g is not None).strip()
    # "Final Answer: The largest $n$ is 34" -> "34"
    parts = re.split(r"\s(?:is|are|was|equals)\s", rest)
    return parts[-1].strip().rstrip(".,;") if parts else ""


def _last_phrase(regex: re.Pattern, text: str) -> tuple[int, str] | None:
    last = None
    for m in regex.finditer(text):
        body = _after_phrase(text, m)
        if re.search(r"\w", body):
            last = (m.start(), body)
    return last


def _strip_delims(s: str) -> str:
    s = s.replace("\\$", " ")  # an escaped dollar is currency, not a delimiter
    return _MATH_DELIMS.sub(" ", s).strip()


_WORD = re.compile(r"[^\W\d_]{2,}")


def _words_outside_math(s: str) -> tuple[list[str], bool]:
    """The words of s outside $...$, \\(...\\), \\[...\\] and LaTeX commands; and whether s had math segments."""
    outside = re.sub(r"\$\$?[^$]*\$\$?|\\\(.*?\\\)|\\\[.*?\\\]", " # ", s, flags=re.S)
    outside = re.sub(r"\\[A-Za-z]+(\{[^{}]*\})?", " ", outside)
    return _WORD.findall(outside), "#" in outside


def _is_prose(s: str) -> bool:
    """Running text (as opposed to a bare answer like '10 weeks' or '$\\frac{1}{3}$ meters')."""
    words, has_math = _words_outside_math(s)
    words = [w for w in words if w.lower() not in ("and", "or")]  # "$x=5$ and $y=6$" is a bare list
    return any(not w.isascii() for w in words) or len(words) >= 3 or (len(words) >= 1 and has_math)


def _is_wordy(s: str) -> bool:
    """An answer phrase's text that is more than math: 'therefore 42', '3 hours ago' (but not '2 or 3')."""
    return any(w.lower() not in ("and", "or") for w in _words_outside_math(s)[0])


def _answer_part(text: str, is_pred: bool) -> tuple[str, str] | None:
    """(kind, answer string) of a gold or pred; kind is 'box', 'phrase', 'prose' or 'bare'."""
    if is_pred:
        text = final_text(text)
        if text is None:
            return None
        cut = min([text.find(s) for s in _TURN_MARKERS if s in text], default=len(text))
        text = text[:cut]
    text = text.strip()
    if not text:
        return None
    boxes = _boxes(text)
    if is_pred and boxes and boxes[-1][2] is None:
        return None  # the last box never closes: the output was cut inside its answer
    group = _box_group(text)
    final = _last_phrase(_FINAL_PHRASE, text)
    if group and not (final and final[0] > group[0]):
        return "box", ", ".join(group[1])
    if final:
        return "phrase", final[1]
    phrase = _last_phrase(_ANSWER_PHRASE, text)
    if phrase:
        return "phrase", phrase[1]
    if is_pred and _is_prose(text):
        return "prose", text
    return "bare", text


# ================================================================ cheap normalization (caller side)

_TEXT_CMDS = r"text|textbf|textit|textrm|textnormal|textsf|texttt|mathrm|mathbf|mathit|mathsf|mathtt|mbox|hbox|emph"
_TEXT_CMD = re.compile(rf"\\(?:{_TEXT_CMDS})\s*\{{")


def _unwrap_cmd(s: str, cmd: re.Pattern, sep: str = "") -> str:
    """Replace every `\\cmd{X}` by X, with real brace matching."""
    for _ in range(50):
        m = cmd.search(s)
        if not m:
            return s
        k = _closing_brace(s, m.end() - 1)
        if k < 0:
            return s[:m.start()] + s[m.end():]
        s = s[:m.start()] + sep + s[m.end():k] + sep + s[k + 1:]
    return s


def _whole_box(s: str) -> str:
    """Unwrap an answer that is one \\boxed{...} (possibly nested) with nothing else around it."""
    for _ in range(5):
        boxes = _boxes(s)
        if len(boxes) == 1 and boxes[0][2] is not None and not (s[:boxes[0][0]] + s[boxes[0][1]:]).strip(" .$"):
            s = boxes[0][2].strip()
        else:
            break
    return s


_TRIG = re.compile(r"\\(?:sin|cos|tan|sec|csc|cot)(?![a-zA-Z])")
_SPACING = re.compile(r"(?<!\\)\\[!,;:> ]|\\q?quad|~")
_SIZING = re.compile(r"\\(?:left|right|[bB]igg?[lr]?|displaystyle)(?![a-zA-Z])\.?")
_DEGREE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree(?![a-zA-Z])")


def normalize(answer: str) -> str:
    """Cheap, conservative string key: equal keys mean equal answers (used to skip the expensive check)."""
    s = answer.strip() if isinstance(answer, str) else ""
    s = _whole_box(_strip_delims(s) if s.startswith(("$", "\\(", "\\[")) else s)
    s = _SIZING.sub("", s)
    s = re.sub(r"\\[dtc]frac", r"\\frac", s)
    s = _unwrap_cmd(s, _TEXT_CMD)
    if not _TRIG.search(s):  # \sin 30^\circ is not \sin 30
        s = _DEGREE.sub("", s)
    s = _SPACING.sub(" ", s)
    s = re.sub(r"(\d)\s+(?=\d)", r"\1 ", s)  # keep "1 1/2" apart from "11/2"
    s = re.sub(r"(?<!\d)\s+|\s+(?!\d)", "", s)
    s = s.rstrip(".")
    if re.fullmatch(r"[+-]?0*\d+", s):  # AIME-style 033 == 33, -0 == 0
        s = str(int(s))
    return s


_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")


def _plain_numbers_equal(a: str, b: str) -> bool | None:
    """Verdict for two decimal literals ('27' vs '27.0', '5' vs '5.001'); None unless both are one.

    Integers compare exactly; a decimal matches a value it is a rounding of, within a relative 1e-6.
    """
    if not (_PLAIN_NUMBER.fullmatch(a) and _PLAIN_NUMBER.fullmatch(b)):
        return None
    fa, fb = Fraction(a), Fraction(b)
    dec = [len(x.split(".")[1]) for x in (a, b) if "." in x and x.split(".")[1]]
    if fa == fb or not dec:
        return fa == fb
    diff = abs(fa - fb)
    return diff <= Fraction(1, 2 * 10 ** min(dec)) and diff <= max(abs(fa), abs(fb)) / 10 ** 6


# ================================================================ notations of one value (pure string work)
#
# Readers for spellings of a number that math-verify reads wrong or not at all: repeating decimals, numbers in other
# bases, congruences, e-notation, the empty set, units. Each takes one canonical answer (reasonlite/equivalence.py's
# _canon: spacing and \text{} already gone) and returns None unless the WHOLE string is that notation, so a rule
# fires only on the notation it knows and never reinterprets part of something else. The workers use them
# (reasonlite/equivalence.py); they are here because they are plain string functions, cheap and testable anywhere.

_DOTS = r"(?:\\[lc]?dots|\.\.\.|…)"
_OVER = re.compile(r"([+-]?)(\d*)\.(\d*)\\(?:overline|bar|wideparen)\s*(?:\{\s*(\d+)\s*\}|(\d))")
_PAREN_REPEAT = re.compile(r"([+-]?)(\d*)\.(\d*)\((\d+)\)")
_DOTTED = re.compile(r"([+-]?)(\d*)\.((?:\d|\\dot\s*\{\s*\d\s*\}|\\dot\s*\d)+)")
_ELLIPSIS = re.compile(rf"([+-]?)(\d*)\.(\d+)\s*{_DOTS}")


def _repeating_value(sign: str, whole: str, fixed: str, period: str) -> Fraction:
    """sign whole.fixed(period)(period)... as a fraction: 0.1(6) = (16 - 1) / 90."""
    n = Fraction(int(whole or "0")) + Fraction(int(fixed or "0"), 10 ** len(fixed)) + \
        Fraction(int(period), 10 ** len(fixed) * (10 ** len(period) - 1))
    return -n if sign == "-" else n


def _ellipsis_period(digits: str) -> tuple[str, str] | None:
    """(fixed part, period) of the digits before an ellipsis: '1666' -> ('1', '6'), '77557755' -> ('', '7755').

    The period is the one whose repetition covers the longest tail of the digits, at least twice over (the shortest
    such period on a tie); None when no digit pattern repeats: '3.14159...' is a truncation, not a repeating decimal.
    """
    best = None
    for p in range(1, min(6, len(digits) // 2) + 1):
        i = len(digits) - p
        while i > 0 and digits[i - 1] == digits[i - 1 + p]:
            i -= 1  # the periodic tail reaches back to i
        if len(digits) - i >= 2 * p and (best is None or i < best[0]):
            best = (i, p)
    return (digits[:best[0]], digits[best[0]:best[0] + best[1]]) if best else None


def repeating_decimal(s: str) -> Fraction | None:
    """The value of a repeating decimal: 0.\\overline{3}, 0.1\\bar{6}, 0.(3), 0.\\dot{1}4285\\dot{7} or 0.1666...

    The whole string must be the decimal. An ellipsis counts only when the digits before it repeat (0.333..., 0.1666...,
    0.0909...); a dotted notation repeats from its first dotted digit to its last, as written in British schools.
    """
    s = s.strip()
    m = _OVER.fullmatch(s) or _PAREN_REPEAT.fullmatch(s)
    if m:
        return _repeating_value(m.group(1), m.group(2), m.group(3), m.group(4) or m.group(5))
    m = _DOTTED.fullmatch(s)
    if m and "\\dot" in m.group(3):
        tokens = re.findall(r"\\dot\s*\{?\s*(\d)\s*\}?|(\d)", m.group(3))
        marked = [i for i, (dot, _) in enumerate(tokens) if dot]
        digits = "".join(a or b for a, b in tokens)
        if marked[-1] != len(digits) - 1:
            return None  # digits after the repeating block: not a repeating decimal
        return _repeating_value(m.group(1), m.group(2), digits[:marked[0]], digits[marked[0]:])
    m = _ELLIPSIS.fullmatch(s)
    if m:
        split = _ellipsis_period(m.group(3))
        return _repeating_value(m.group(1), m.group(2), *split) if split else None
    return None


_REPEAT_MARK = re.compile(rf"\\(?:overline|bar|wideparen|dot)|\.\d*\(\d|{_DOTS}")  # a cheap look before the subs


def repeating_to_latex(s: str) -> str:
    """Every repeating decimal inside s as \\frac{p}{q} (one with an ellipsis only where s or a list item ends)."""
    def frac(m):
        v = repeating_decimal(m.group(0))
        if v is None:
            return m.group(0)
        return ("-" if v < 0 else "") + f"\\frac{{{abs(v.numerator)}}}{{{v.denominator}}}"
    if "." not in s or not _REPEAT_MARK.search(s):
        return s
    for rx, end in ((_OVER, r"(?![\d.])"), (_PAREN_REPEAT, r"(?![\d.])"), (_DOTTED, r"(?![\d.])"),
                    (_ELLIPSIS, r"(?=\s*(?:$|[,;]))")):  # an ellipsis ends the answer or one of its items
        s = re.sub(r"(?<![\w.])" + rx.pattern + end, frac, s)
    return s


# ---------------------------------------------------------------- e-notation: 1.5e-4, 3E8, 6.02e+23

_E_NUMBER = re.compile(r"([+-]?(?:\d+\.?\d*|\.\d+))\s*[eE]\s*([+-]?)\s*(\d+)")


def e_notation(s: str) -> tuple[str, bool] | None:
    """(the same number as LaTeX, unambiguous?) for an answer that is one number in e-notation.

    '2e-1' could also be 2e - 1 with Euler's e; it is unambiguous when the mantissa has a decimal point, the E is
    upper case, the exponent is unsigned (3e8: nobody writes e times 8) or has two or more digits.
    """
    m = _E_NUMBER.fullmatch(s.strip()) if "e" in s or "E" in s else None
    if not m:
        return None
    mant, sign, exp = m.groups()
    sure = "." in mant or "E" in s or not sign or len(exp) >= 2
    return f"{mant} \\times 10^{{{'-' if sign == '-' else ''}{int(exp)}}}", sure


# ---------------------------------------------------------------- numbers in other bases

_BASE_WORDS = {"two": 2, "binary": 2, "three": 3, "ternary": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
               "eight": 8, "octal": 8, "nine": 9, "ten": 10, "decimal": 10, "eleven": 11, "twelve": 12,
               "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "hex": 16, "hexadecimal": 16}
_BASE_NAME = r"(?:base\s*-?\s*)?(?:\d{1,2}|" + "|".join(sorted(_BASE_WORDS, key=len, reverse=True)) + ")"
_BASE_FORMS = [
    re.compile(rf"\(?\s*(?P<d>[0-9A-Za-z]+)\s*\)?\s*_\s*(?:\{{\s*\(?\s*(?P<b>{_BASE_NAME})\s*\)?\s*\}}|(?P<c>\d))",
               re.I),
    re.compile(rf"(?P<d>[0-9A-Za-z]+)\s*(?:\(\s*(?:in\s+)?base\s*(?P<b>{_BASE_NAME})\s*\)|(?:in\s+)?base\s*"
               rf"(?P<c>{_BASE_NAME}))", re.I),
]
_PREFIXED = re.compile(r"0(?P<k>[bBoOxX])(?P<d>[0-9A-Fa-f]+)")


def _base_of(name: str) -> int | None:
    name = re.sub(r"^base\s*-?\s*", "", name.strip().lower())
    return int(name) if name.isdigit() else _BASE_WORDS.get(name)


def base_number(s: str) -> tuple[str, int, int] | None:
    """(digits, base, value) of a number written in a base: 101_2, 101_{(2)}, (101)_2, 101_{two}, 1A_{16}, 0x1A,
    0b101, 101 (base 2). Its digits must be valid in the base, and a number that starts with a letter needs two
    digits or more (a_{12}, B_{11}: a variable with a subscript, not a number in base 12 or 11)."""
    s = s.strip()
    if "_" not in s and "base" not in s.lower() and s[:2].lower() not in ("0b", "0o", "0x"):
        return None  # the cheap look: every spelling has one of these
    m = _PREFIXED.fullmatch(s)
    if m:
        digits, base = m.group("d").upper(), {"b": 2, "o": 8, "x": 16}[m.group("k").lower()]
    else:
        for rx in _BASE_FORMS:
            m = rx.fullmatch(s)
            if m:
                break
        else:
            return None
        digits, base = m.group("d").upper(), _base_of(m.group("b") or m.group("c"))
        if base is None:
            return None
        if not digits[0].isdigit() and (base <= 10 or len(digits) < 2):
            return None
    if not 2 <= base <= 36 or any(int(d, 36) >= base for d in digits):
        return None
    return digits.lstrip("0") or "0", base, int(digits, base)


# ---------------------------------------------------------------- congruences: x \equiv 3 \pmod{7}, 3 (mod 7)

_MODULUS = (r"(?:\\pmod\s*\{\s*(?P<m1>\d+)\s*\}|\\pmod\s*(?P<m2>\d+)"
            r"|\(\s*(?:\\bmod|\\mod|mod|modulo)\s*\{?\s*(?P<m3>\d+)\s*\}?\s*\)"
            r"|(?:\\bmod|\\mod|mod|modulo)\s*\{?\s*(?P<m4>\d+)\s*\}?)")
_CONGRUENCE = re.compile(rf"(?:(?P<lhs>[^=]+?)\s*\\equiv\s*)?(?P<r>[+-]?\d+)\s*{_MODULUS}")
_INTEGER_VAR = r"[kmnt]"
_PARAM = re.compile(rf"(?P<a>\d+)\s*(?:\\cdot\s*|\*\s*)?{_INTEGER_VAR}\s*(?P<s>[+-])\s*(?P<b>\d+)"
                    rf"|(?P<b2>[+-]?\d+)\s*\+\s*(?P<a2>\d+)\s*(?:\\cdot\s*|\*\s*)?{_INTEGER_VAR}")


def congruence(s: str, lhs_ok=lambda lhs: True) -> tuple[int, int] | None:
    """(least residue, modulus) of a congruence class: 'x \\equiv 10 \\pmod{7}', '3 (mod 7)', '3 \\bmod 7' -> (3, 7).

    `lhs_ok` judges the left side of \\equiv (the caller accepts a name or a computed number, not '2x'). The
    remainder operator (17 \\bmod 5) reads as the class of its value, which is what it names.
    """
    m = _CONGRUENCE.fullmatch(s.strip()) if "mod" in s else None
    if not m or (m.group("lhs") is not None and not lhs_ok(m.group("lhs").strip())):
        return None
    mod = int(next(g for g in (m.group("m1"), m.group("m2"), m.group("m3"), m.group("m4")) if g))
    return (int(m.group("r")) % mod, mod) if mod >= 2 else None


def parametric_class(s: str) -> tuple[int, int] | None:
    """(least residue, modulus) of '7k + 3', '3 + 7n', '7k - 4': the integers of one class, k ranging over Z."""
    m = _PARAM.fullmatch(s.strip())
    if not m:
        return None
    if m.group("a"):
        a, b = int(m.group("a")), int(m.group("b")) * (1 if m.group("s") == "+" else -1)
    else:
        a, b = int(m.group("a2")), int(m.group("b2"))
    return (b % a, a) if a >= 2 else None


# ---------------------------------------------------------------- the empty set, in symbols and in words

_EMPTY_SYMBOL = re.compile(r"\\(?:emptyset|varnothing|O)|∅|\\\{\s*\\\}|\{\s*\}|\\left\\\{\s*\\right\\\}")
_QUALIFIER = r"(?:real|integer|integral|positive|negative|rational|natural|possible|valid|such|distinct|complex)"
_NOUN = r"(?:solutions?|roots?|values?|answers?|numbers?|pairs?|triples?|points?|integers?|[a-z])"
# "none", "no real solutions", "there is no such x", "the equation has no solution", "zero solutions", "empty set";
# a bare "no" (the answer to a yes/no question) or "zero" (the number) is not the empty set.
_EMPTY_WORDS = re.compile(
    r"(?:(?:the\s+)?(?:equation|system|inequality|problem)\s+(?:has|have)\s+|there\s+(?:is|are|exists?)\s+"
    rf"|it\s+has\s+)?(?:none|no(?:\s+{_QUALIFIER})*\s+{_NOUN}(?:\s+(?:exists?|is\s+possible|are\s+possible))?"
    rf"|zero(?:\s+{_QUALIFIER})*\s+(?:solutions?|roots?))|(?:the\s+)?empty\s+set")


# Every spelling is_empty_set accepts has one of these: a cheap look before the full test (which needs _canon).
MAYBE_EMPTY = re.compile(r"empty|varnothing|∅|\\O(?![a-zA-Z])|\{\s*\\?\}|\b(?:no|none|zero)\b", re.I)


def is_empty_set(s: str) -> bool:
    """Is the answer 'no solution' in any of its spellings: \\emptyset, \\varnothing, \\{\\}, none, no real solutions,
    'there are no such x', x \\in \\emptyset?"""
    s = s.strip().rstrip(".").strip()
    s = re.sub(r"^[A-Za-z](?:_\{?\w+\}?)?\s*(?:\\in|=|:)\s*", "", s)  # x \in \emptyset, S = \emptyset
    if _EMPTY_SYMBOL.fullmatch(s):
        return True
    words = re.sub(r"\s+", " ", re.sub(r"\\text\w*\s*\{([^{}]*)\}", r"\1", s)).strip().lower()
    return len(words) <= 60 and bool(_EMPTY_WORDS.fullmatch(words))


# ---------------------------------------------------------------- units: 10 cm^2, 64 square feet, 3 m/s

_UNIT_HEAD = re.compile(r"(?:[\d.,\s^{}()/+\-]|\\(?:frac|sqrt|pi|cdot|times))+")
_SHORT_UNITS = {"m", "g", "s", "h", "l", "L", "K", "N", "J", "W", "V", "km", "cm", "mm", "kg", "mg", "ml", "mL", "ft",
                "yd", "mi", "hr", "lb", "oz"}
_NOT_UNITS = {"sin", "cos", "tan", "sec", "csc", "cot", "log", "ln", "exp", "arcsin", "arccos", "arctan", "sqrt",
              "frac", "pi", "infty", "cup", "cap", "and", "or", "mod", "pmod", "gcd", "lcm", "max", "lim"}
_UNIT_WORD = r"[A-Za-z]+(?:\s*\^\s*\{?-?\d\}?)?"
_WITH_UNIT = re.compile(rf"(.*?[\d}}])\s*({_UNIT_WORD}(?:(?:\.\s*|\s+|\s*/\s*|\s*\\cdot\s*){_UNIT_WORD}){{0,3}}\.?)")
# Spellings of the units answers carry, by canonical name. Two answers whose units are all known and differ are
# different answers (5 cm is not 5 m); an unknown word (apples, ways, students) is ignored, as before.
_UNIT_SPELLINGS = {
    "mm": "millimeter millimetre", "cm": "centimeter centimetre", "m": "meter metre", "km": "kilometer kilometre",
    "in": "inch inche", "ft": "foot feet", "yd": "yard", "mi": "mile",
    "mg": "milligram", "g": "gram gm", "kg": "kilogram kilo", "lb": "pound", "oz": "ounce", "t": "ton tonne",
    "s": "sec second", "min": "minute", "h": "hr hour", "day": "d", "wk": "week", "mo": "month", "yr": "year y",
    "ml": "milliliter millilitre", "l": "liter litre", "gal": "gallon", "cup": "", "pt": "pint", "qt": "quart",
    "dollar": "usd buck", "cent": "", "euro": "eur", "degree": "deg", "rad": "radian", "mph": "", "kph": "",
    "n": "newton", "j": "joule", "w": "watt", "v": "volt", "k": "kelvin", "a": "amp ampere", "pa": "pascal",
    "mol": "mole",
}
_UNIT_KEYS = {}
for _key, _names in _UNIT_SPELLINGS.items():
    for _name in [_key, *_names.split()]:
        _UNIT_KEYS[_name] = _key
        if len(_name) >= 2:  # plurals (hrs, inches); not of one letter, or "ms" would read as meters
            _UNIT_KEYS[_name + "s"] = _key
_UNIT_KEYS.update({"square": "^2", "sq": "^2", "cubic": "^3", "cu": "^3", "per": "/"})


def split_unit(s: str) -> tuple[str, str | None]:
    """(number, unit) of '10 cm^2', '64 square feet', '3 m/s', '10weeks'; (s, None) when s carries no unit ('2x',
    '5\\sqrt{2}'). A lone word of one or two letters that is not a known short unit (2x, 3ab: variables) stays part
    of the number."""
    if len(s) > 200 or not re.search(r"[A-Za-z]", s):
        return s, None
    m = _WITH_UNIT.fullmatch(s)
    if not m or not _UNIT_HEAD.fullmatch(m.group(1)) or not re.search(r"\d", m.group(1)):
        return s, None
    words = re.findall(r"[A-Za-z]+", m.group(2))
    if all((len(w) >= 2 and w.lower() not in _NOT_UNITS) or w in _SHORT_UNITS for w in words):
        if len(words) == 1 and len(words[0]) <= 2 and words[0] not in _SHORT_UNITS:
            return s, None
        return m.group(1).strip(), m.group(2).strip()
    return s, None


def unit_key(unit: str) -> tuple | None:
    """A canonical form of a unit: 'cm^2', 'square centimeters' and 'sq. cm' are one key, 'm/s' and 'meters per
    second' another. None when a word of it is not a known unit, so only two known units are ever told apart."""
    factors, sign, before = {}, 1, 1  # `before`: the power a preceding 'square' or 'cubic' gives the next unit
    last = None
    for tok in re.findall(r"[A-Za-z]+|\^\s*\{?-?\d\}?|/", unit.replace("\\cdot", " ")):
        if tok.startswith("^"):
            if last is None:
                return None
            factors[last] += (int(tok.strip("^{} ")) - 1) * (1 if factors[last] > 0 else -1)
            continue
        key = "/" if tok == "/" else _UNIT_KEYS.get(tok.lower())
        if key is None:
            return None
        if key == "/":
            sign = -1
        elif key.startswith("^"):
            before = int(key[1])
        else:
            factors[key] = factors.get(key, 0) + sign * before
            last, before = key, 1
    return tuple(sorted(factors.items())) if factors and before == 1 else None
