"""Mathematical equivalence of two answers: canonical forms, lists and labels, units, text and choices.

Runs only inside the grader's worker processes (reasonlite/grader.py): it imports math-verify and sympy, whose checks
can hang on inputs like 5^{5^{5^{5}}} and whose own timeouts use signal.alarm, so the pool's per-task timeout is
what bounds them. `_grade(gold, pred)` is the whole decision.
"""
from __future__ import annotations

import re
import signal

from reasonlite.answers import (_DEGREE, _SIZING, _SPACING, _TEXT_CMD, _TRIG, MAYBE_EMPTY, _answer_part, _is_wordy,
                                _plain_numbers_equal, _strip_delims, _unwrap_cmd, _whole_box, base_number, congruence,
                                e_notation, is_empty_set, parametric_class, repeating_to_latex, split_unit, unit_key)
from reasonlite.symbolic import _MV, _math_equal, _parse, _proportional_equations, _within

# ================================================================ canonical forms (used inside the workers)

_UNICODE = {"−": "-", "–": "-", "×": "\\times ", "÷": "\\div ", "²": "^2", "³": "^3", "≤": "\\leq ",
            "≥": "\\geq ", "≠": "\\neq ", "π": "\\pi ", "∞": "\\infty ", "√": "\\sqrt", "∪": "\\cup ",
            "：": ":", "，": ",", "；": ";", "（": "(", "）": ")", "€": "", "£": "", "¥": "", "元": "",
            "\\varnothing": "\\emptyset", "±": "\\pm ", "∓": "\\mp ", "≡": "\\equiv ", "≈": "\\approx ",
            "∅": "\\emptyset ", "·": "\\cdot ", "⋅": "\\cdot ", "\\simeq": "\\approx", "\\thickapprox": "\\approx"}
# Words a model puts before a rounded value; they mean \approx (compared at the gold's own digits, see _approx_equal).
_APPROX_WORDS = re.compile(r"^(?:approximately|approx\.?|about|roughly|around|nearly|circa)\s+(?=[-+.\d\\])", re.I)
# Plain-text (Python/sympy style) spellings a model writes outside LaTeX: pi, exp(16), ln(2), 3**(1/2). latex2sympy
# reads "pi" as p*i and "exp" as e*x*p, so they become their LaTeX commands; a backslash already there is kept.
_PLAIN_FUNCS = re.compile(r"(?<![\\A-Za-z])(exp|ln|log|sin|cos|tan|arcsin|arccos|arctan)\s*(?=\()")
_PLAIN_PI = re.compile(r"(?<![\\A-Za-z])pi(?![A-Za-z])")
# "1.5 x 10^{-4}": a letter x between a number and a power of ten is a times sign.
_X_TIMES = re.compile(r"(\d)\s*[xX]\s*(?=10\s*\^)")


def _canon(s: str) -> str:
    """Spelling-level canonical form of one answer: same math, same string, as far as string rules can tell."""
    for k, v in _UNICODE.items():
        s = s.replace(k, v)
    s = _whole_box(_strip_delims(s) if "$" in s or "\\(" in s or "\\[" in s else s.strip())
    s = _SIZING.sub("", s)
    s = re.sub(r"(\d)\s*(?:,\\!|\{,\}|\\,)\s*(?=\d{3}(?!\d))", r"\1", s)  # LaTeX thousands separators
    s = re.sub(r"\\[dtc]frac", r"\\frac", s)
    s = re.sub(r"\\[dt]binom", r"\\binom", s)
    s = re.sub(r"\\(le|ge|ne)(?![a-zA-Z])", r"\\\1q", s)
    s = re.sub(r"\\(leq|geq)slant", r"\\\1", s)
    s = s.replace(">=", "\\geq ").replace("<=", "\\leq ").replace("!=", "\\neq ")
    s = re.sub(r"\\lt(?![a-zA-Z])", "<", s)
    s = re.sub(r"\\gt(?![a-zA-Z])", ">", s)
    s = re.sub(r"\\langle(?![a-zA-Z])", "(", s)
    s = re.sub(r"\\rangle(?![a-zA-Z])", ")", s)
    s = re.sub(r"\\(?:text|mbox|textnormal|textrm)\s*\{\s*(?:and|or|,)\s*\}", " , ", s)
    s = _unwrap_cmd(s, _TEXT_CMD, " ")
    s = _SPACING.sub(" ", s)
    s = s.replace("\\%", "%")
    s = re.sub(r"\s*\b(?:percent|pct)\b", "%", s)
    s = s.replace("\\$", "").replace("$", "")
    if _TRIG.search(s):  # degrees inside trig arguments mean pi/180; a bare "90^\circ" is just 90
        s = re.sub(r"(\d+(?:\.\d+)?)\s*" + _DEGREE.pattern, r"(\1\\pi/180)", s)
    s = _DEGREE.sub("", s)
    s = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*(\d)\s*\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\frac\s*(\{[^{}]*\})\s*(\d)", r"\\frac\1{\2}", s)
    s = re.sub(r"\\sqrt\s*([0-9a-zA-Z])(?![a-zA-Z])", r"\\sqrt{\1}", s)
    # 0.\overline{3}, 0.1666... -> \frac{1}{3}, \frac{1}{6} wherever they stand (in a list, after "x ="); before the
    # closing punctuation goes, which would take an ellipsis with it
    s = repeating_to_latex(s)
    s = re.sub(r"\\[lc]?dots(?![a-zA-Z])|…", r"\\ldots ", s)  # one spelling of "and so on"
    s = re.sub(r"^[*\s]+|[*\s.,;:]+$", "", s)  # markdown emphasis and closing punctuation
    s = re.sub(r"\s+", " ", s)
    s = _APPROX_WORDS.sub("\\\\approx ", s)
    if "pi" in s or "(" in s or "**" in s:
        s = _PLAIN_PI.sub(r"\\pi ", _PLAIN_FUNCS.sub(r"\\\1", s)).replace("**", "^")
    s = _X_TIMES.sub(r"\1 \\times ", s)
    return _join_thousands(s)


_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d|,\d)"  # 7,425,000
                        r"|(?<![\d.])(?<!\d )\d{1,3}(?: \d{3})+(?:\.\d+)?(?!\d| \d)")  # 7 425 000


def _depths(s: str) -> list[int]:
    """Bracket depth before each character; any of ( [ { opens and ) ] } closes (intervals mix them)."""
    out, d = [], 0
    for c in s:
        out.append(d)
        if c in "([{":
            d += 1
        elif c in ")]}":
            d = max(0, d - 1)
    return out


def _join_thousands(s: str) -> str:
    # Only at top level: "(5,250)" is a pair, "5,250" is a number.
    depth = _depths(s)
    for m in reversed(list(_THOUSANDS.finditer(s))):
        if depth[m.start()] == 0:
            s = s[:m.start()] + m.group().replace(",", "").replace(" ", "") + s[m.end():]
    return s


def _split_top(s: str, seps: str) -> list[str]:
    """Split at separators outside brackets and LaTeX environments."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if s.startswith("\\begin", i):
            depth += 1
        elif s.startswith("\\end", i):
            depth = max(0, depth - 1)
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        elif c in seps and depth == 0:
            parts.append(s[start:i])
            start = i + 1
        i += 1
    parts.append(s[start:])
    return [p.strip() for p in parts]


def _enclosing(s: str) -> tuple[str, str] | None:
    """(opener, closer) when one bracket pair encloses the whole string: '(1, 2)', '[0, 1)', '\\{1\\}'."""
    if len(s) < 2 or s[0] not in "([{\\" or s[-1] not in ")]}":
        return None
    opener = "\\{" if s.startswith("\\{") else s[0]
    closer = "\\}" if s.endswith("\\}") else s[-1]
    if opener not in ("(", "[", "{", "\\{"):
        return None
    depth = 0
    for i, c in enumerate(s):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0 and i != len(s) - 1:
                return None
    return (opener, closer) if depth == 0 else None


# ---------------------------------------------------------------- labels, items and structure

_GREEK = ("alpha|beta|gamma|delta|epsilon|varepsilon|zeta|eta|theta|vartheta|iota|kappa|lambda|mu|nu|xi|rho|"
          "sigma|tau|upsilon|phi|varphi|chi|psi|omega|Gamma|Delta|Theta|Lambda|Xi|Sigma|Phi|Psi|Omega")
_SUB = r"(?:_(?:[A-Za-z0-9]|\{[A-Za-z0-9,]{1,12}\}))?'*"
_NAME = rf"(?:[A-Za-z]{{1,20}}|\\(?:{_GREEK})){_SUB}"
_FUNC = rf"(?:[A-Za-z]|\\(?:{_GREEK})){_SUB}\([A-Za-z0-9,]{{0,20}}\)"
_ATOM = rf"(?:{_FUNC}|{_NAME}|\|{_NAME}\||\\overline\{{[A-Za-z]{{1,4}}\}}|m?\\angle[A-Z]{{1,3}})"
_LABEL = re.compile(rf"{_ATOM}(?:[:/]{_ATOM})*|\\frac\{{{_ATOM}\}}\{{{_ATOM}\}}|\({_ATOM}(?:,{_ATOM})+\)")


def _is_label(s: str) -> bool:
    """A name for the answer (x, a_3, f(x), |AB|, A:B, \\frac{NO}{BO}, (p,q)), not an expression of unknowns."""
    return len(s) <= 80 and bool(_LABEL.fullmatch(s.replace(" ", "")))


def _label_key(s: str) -> str:
    return s.replace(" ", "").replace("{", "").replace("}", "")


def _has_unknowns(s: str) -> bool:
    return bool(re.search(r"[A-Za-z]", re.sub(r"\\[A-Za-z]+", "", s)))


class _Item:
    """One answer of a (possibly multi-part) answer: label = value, an equation, or a bare value."""

    def __init__(self, text: str):
        self.text, self.label, self.value, self.equation = text, None, text, False
        m = re.search(r"\\in(?![a-zA-Z])", text)
        if m and _is_label(text[:m.start()].strip()):
            self.label, self.value = text[:m.start()].strip(), text[m.end():].strip()
            return
        parts = _split_top(text, "=") if "=" in text else [text]
        if len(parts) >= 2 and all(parts):
            if _is_label(parts[0]):
                self.label, self.value = parts[0], parts[-1]
            else:
                self.equation = True

    def key(self) -> str:
        return _atom_key(self.text)


_PM = re.compile(r"\\(?:pm|mp)(?![a-zA-Z])")  # \pm or \mp, not \pmod


def _expand_pm(item: str) -> list[str]:
    # One \pm stands for two answers; several (\pm a \pm b) are left to math-verify.
    signs = _PM.findall(item)
    if signs == ["\\pm"]:
        return [_PM.sub("+", item, 1), _PM.sub("-", item, 1)]
    return [item]


def _structure(ans: str) -> tuple[list[_Item], bool]:
    """The answers in an answer string (a list, a set, solution tuples, one value), and whether it was a {set}."""
    s = _canon(ans)
    s = re.sub(r"(?<=[)\]}])\s*\b(?:and|or)\b\s*(?=[(\[{\\])|\s+\b(?:and|or)\b\s+", " , ", s)
    member = re.fullmatch(r"(.{1,30}?)\s*(?:\\in|=)\s*(\\\{.*\\\})", s)
    if member and _is_label(member.group(1)):  # "x \in \{1, 2\}", "S = \{1, 2\}": the set is the answer
        s = member.group(2)
    enc = _enclosing(s)
    braced = bool(enc) and enc[0] in ("{", "\\{")
    if braced:  # a set: its elements are the answers
        s = s[len(enc[0]):len(s) - len(enc[1])]
    elif enc == ("(", ")") and len(_split_top(s[1:-1], "=")) > 1 and len(_split_top(s[1:-1], ",")) == 1:
        s = s[1:-1]  # "(35 + 70 = 105)": a parenthesized computation, not a tuple
    groups = [g for g in _split_top(s, ";") if g]
    split = [[x for x in _split_top(g, ",") if x] for g in groups]
    if len(split) > 1 and all(len(g) > 1 for g in split):
        # "p=5,q=2;p=7,q=2": each group is one solution tuple
        texts = ["(" + ",".join(_Item(x).value for x in g) + ")" for g in split]
    else:
        texts = [x for g in split for x in g]
    texts = [re.sub(r"^(?:and|or)\s+", "", t) for t in texts]
    items = [_Item(e) for t in texts if t for e in _expand_pm(t)]
    items = _solution_tuples(items)
    unique, seen = [], set()
    for it in items:
        if it.key() not in seen:
            seen.add(it.key())
            unique.append(it)
    return unique, braced


def _solution_tuples(items: list[_Item]) -> list[_Item]:
    """'p = 5, q = 2, p = 7, q = 2' lists two solutions (5, 2) and (7, 2): labels repeating in a cycle."""
    labels = [_label_key(i.label) if i.label else None for i in items]
    if len(items) < 4 or not all(labels) or labels[0] not in labels[1:]:
        return items
    k = labels.index(labels[0], 1)
    cyclic = all(labels[i] == labels[i % k] for i in range(len(labels)))
    if k < 2 or len(items) % k or len(set(labels[:k])) != k or not cyclic:
        return items
    return [_Item("(" + ",".join(i.value for i in items[j:j + k]) + ")") for j in range(0, len(items), k)]


def _atom_key(s: str) -> str:
    s = re.sub(r"\s+", "", s)
    if re.fullmatch(r"[+-]?\d+", s):
        s = str(int(s))
    return s


# ================================================================ the checks (run in a worker process)

_MC = re.compile(r"\(([A-J])\)(?:\s*(.+))?|([A-J])(?:[.:)](?:\s+(.+))?|\s+([^\W\d_].*))?", re.S)


def _mc_letter(ans: str) -> tuple[str, str] | None:
    """(letter, option text) of a multiple-choice answer like 'C', '(D) Alina', '\\text{(C)}'."""
    s = _canon(ans)
    m = _MC.fullmatch(s)
    if not m:
        return None
    return (m.group(1) or m.group(3)), (m.group(2) or m.group(4) or m.group(5) or "").strip()


_MC_KEYWORD = re.compile(r"answer|réponse|respuesta|resposta|antwort|risposta|ответ|答案|答え|정답", re.I)
_LONE_LETTER = re.compile(r"(?<![A-Za-z0-9\\])([A-HJ])(?![A-Za-z0-9])")


def _mc_from_prose(text: str, first: bool) -> str | None:
    """The option letter a sentence settles on: 'D. because...', '...the answer is C', '...I think it's B'."""
    m = re.match(r"\s*\(?([A-J])\)?(?:[.:)。，,]|\s*$|(?=[^\x00-\x7f]))", text)
    if m:
        return m.group(1)
    keywords = list(_MC_KEYWORD.finditer(text))
    m = _LONE_LETTER.search(text, keywords[-1].end()) if keywords else None
    if m:  # the first letter after the last "answer"
        return m.group(1)
    letters = _LONE_LETTER.findall(text)
    return (letters[0] if first else letters[-1]) if letters else None


def _grade_mc(gold_mc: tuple[str, str], pred: tuple[str, str]) -> bool:
    kind, ans = pred
    got = _mc_letter(ans)
    if got:
        return got[0] == gold_mc[0]
    if gold_mc[1] and _text_key(_canon(ans)) == _text_key(gold_mc[1]):
        return True  # the option's text instead of its letter
    if kind in ("prose", "phrase"):  # a bare "E*2" is not the letter E
        return _mc_from_prose(_strip_delims(ans), first=kind == "phrase") == gold_mc[0]
    return False


def _text_key(s: str) -> str:
    return re.sub(r"[^0-9a-z]", "", s.lower())


_MATH_WORDS = {"sin", "cos", "tan", "sec", "csc", "cot", "log", "ln", "exp", "arcsin", "arccos", "arctan", "sqrt",
               "frac", "pi", "infty", "cup", "cap", "and", "or", "mod", "pmod", "gcd", "lcm", "max", "min", "lim"}


def _is_text_answer(s: str) -> bool:
    """Words rather than math: 'Evelyn', 'oddd', 'The midpoints form a regular hexagon'."""
    if "\\" in s or re.search(r"[=<>^_{}+*/]", s):
        return False
    words = re.findall(r"[A-Za-z]+", s)
    long = [w for w in words if len(w) >= 4 and w.lower() not in _MATH_WORDS]
    return bool(long) or len([w for w in words if len(w) >= 2]) >= 2


_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(?:([apAP])\.?\s*[mM]\.?)?")


def _time_of(s: str) -> int | None:
    m = _TIME.fullmatch(s)
    if not m or int(m.group(2)) >= 60 or int(m.group(1)) > 24:
        return None
    h = int(m.group(1))
    if m.group(4):
        h = h % 12 + (12 if m.group(4).lower() == "p" else 0)
    return h * 3600 + int(m.group(2)) * 60 + int(m.group(3) or 0)


def _mixed_numbers(s: str) -> str:
    # 1\frac{1}{2} and "1 1/2" are 1 + 1/2 (only for proper fractions of plain integers)
    def mixed(m):
        whole, num, den = m.group(1), int(m.group(2)), int(m.group(3))
        return f"({whole}+\\frac{{{num}}}{{{den}}})" if 0 < num < den else m.group(0)
    s = re.sub(r"(?<![\w.}^_])(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}", mixed, s)
    return re.sub(r"(?<![\w.}^_/])(\d+) (\d+)/(\d+)(?![\d/])", mixed, s)


def _matrix(s: str) -> list[list[str]] | None:
    m = re.fullmatch(r"[(\[]?\s*\\begin\{([pbvBV]?matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}\s*[)\]]?", s, re.S)
    if not m or "\\begin" in m.group(2) or "\\end" in m.group(2):
        return None  # a sum or product of matrices, or nested environments
    rows = [r for r in re.split(r"\\\\", m.group(2)) if r.strip() and not r.strip().startswith("\\hline")]
    return [[c.strip() for c in r.split("&")] for r in rows] or None


def _sequence(s: str) -> tuple[str, str, list[str]] | None:
    """'(1, 2)' -> ('(', ')', ['1', '2']): tuples, points, intervals, bracketed lists."""
    enc = _enclosing(s)
    if not enc or enc[0] in ("{", "\\{"):
        return None
    elems = _split_top(s[1:-1], ",;")
    return (enc[0], enc[1], elems) if len(elems) >= 2 and all(elems) else None


def _atoms_equal(g: str, p: str) -> bool:
    """Two single answers (no lists, labels stripped)."""
    (g, gu), (p, pu) = split_unit(g.strip()), split_unit(p.strip())
    if gu and pu and unit_key(gu) and unit_key(pu) and unit_key(gu) != unit_key(pu):
        return False  # 5 cm is not 5 m (while the bare number in the gold's unit is: 5 cm is 5)
    g, p = _mixed_numbers(g), _mixed_numbers(p)
    if _atom_key(g) == _atom_key(p):
        return True
    gp, pp = g.endswith("%"), p.endswith("%")
    if gp or pp:  # 10% is 10 or 0.1
        gv, pv = g.rstrip("%").strip(), p.rstrip("%").strip()
        if gp and pp:
            return _atoms_equal(gv, pv)
        if gp:
            return _atoms_equal(gv, pv) or _atoms_equal(f"\\frac{{{gv}}}{{100}}", pv)
        return _atoms_equal(gv, pv) or _atoms_equal(gv, f"\\frac{{{pv}}}{{100}}")
    if "\\approx" in g or "\\approx" in p:
        return _approx_equal(g, p)
    tg, tp = _time_of(g), _time_of(p)
    if tg is not None and tp is not None:
        return tg == tp
    verdict = _notation_verdict(g, p)
    if verdict is not None:
        return verdict
    if _is_text_answer(g) or _is_text_answer(p):
        return _text_key(g) == _text_key(p)
    mg, mp = _matrix(g), _matrix(p)
    sg, sp_ = _sequence(g), _sequence(p)
    if mg or mp:
        if mg and mp:
            return len(mg) == len(mp) and all(len(r) == len(q) and all(map(_atoms_equal, r, q))
                                              for r, q in zip(mg, mp))
        m, seq = (mg, sp_) if mg else (mp, sg)
        if seq and (len(m) == 1 or all(len(r) == 1 for r in m)):  # a vector written as a list
            flat = [c for r in m for c in r]
            pairs = zip(flat, seq[2]) if mg else zip(seq[2], flat)
            return len(flat) == len(seq[2]) and all(_atoms_equal(a, b) for a, b in pairs)
    elif sg and sp_:  # tuples, points, intervals: ordered, and the brackets must agree
        return (sg[0], sg[1]) == (sp_[0], sp_[1]) and len(sg[2]) == len(sp_[2]) and \
            all(map(_atoms_equal, sg[2], sp_[2]))
    plain = _plain_numbers_equal(_atom_key(g), _atom_key(p))
    if plain is not None:
        return plain
    if "\\cup" in g and "\\cup" in p:
        ug, up = re.split(r"\\cup", g), re.split(r"\\cup", p)
        if len(ug) == len(up) and _match_all(ug, up, _atoms_equal, ordered=False):
            return True
    return _math_equal(g, p)


def _notation_verdict(g: str, p: str) -> bool | None:
    """Verdict for a pair where a side is a number in a notation of its own (a base, a congruence class, e-notation);
    None when neither side is.

    - bases: 101_2 is 5, 101_2 and 101 (the gold's digits with its base left implicit); two based numbers must have
      the same value in the same base, or one is base 10 (12_3 is not the 101_2 a question in base 2 asks for);
    - congruences: two classes are equal when their moduli and least residues are; a bare integer is the class it is
      the least residue of (3 is 'x \\equiv 10 \\pmod{7}', 10 is not); a class written through its parameter
      (7k + 3) equals only a class;
    - e-notation: 1.5e-4 is 1.5 \\times 10^{-4}. A spelling that could also be Euler's e (8e-4: 8e - 4) is read
      as a power of ten only against a side with no letter in it (0.0008), where e cannot be meant: it then equals
      only the number its digits spell in scientific notation, which no reasoning slip about e produces.
    """
    bg, bp = base_number(g), base_number(p)
    if bg or bp:
        if bg and bp:
            return bg[2] == bp[2] and (bg[1] == bp[1] or 10 in (bg[1], bp[1]))
        (digits, _, value), other = (bg, _atom_key(p)) if bg else (bp, _atom_key(g))
        if re.fullmatch(r"\d+", other):
            return (other.lstrip("0") or "0") == digits or int(other) == value
        return bool(re.fullmatch(r"[0-9A-Fa-f]+", other)) and (other.upper().lstrip("0") or "0") == digits

    def named(lhs):  # the left side of \equiv: a name (x, N) or a computed number (2^{100}), not an unknown's term
        return _is_label(lhs) or not _has_unknowns(lhs)
    cg, cp = congruence(g, named), congruence(p, named)
    kg, kp = cg or parametric_class(g), cp or parametric_class(p)
    if kg or kp:
        if kg and kp:
            return kg == kp
        other, stated = _atom_key(p if kg else g), cg or cp
        return bool(stated) and bool(re.fullmatch(r"[+-]?\d+", other)) and int(other) == stated[0]
    eg, ep = e_notation(g), e_notation(p)
    if eg or ep:
        def letterless(s):
            return not re.search(r"[A-Za-z]", re.sub(r"\\(?:times|cdot|frac)", "", s))
        g2 = eg[0] if eg and (eg[1] or letterless(p)) else g
        p2 = ep[0] if ep and (ep[1] or letterless(g)) else p
        if (g2, p2) != (g, p):
            return _atoms_equal(g2, p2)
    return None


def _approx_parts(s: str) -> tuple[str | None, str | None]:
    """(exact value, stated approximation) of '\\sqrt{5} \\approx 2.24', 'x \\approx 2.24', '\\approx 2.24', '2.24'."""
    parts = [x.strip() for x in re.split(r"\\approx", s)]
    exact = [x for x in parts[:-1] if x and not _is_label(x)]
    if len(parts) == 1:
        return parts[0], None
    return (exact[0] if exact else None), (parts[-1] or None)


def _approx_equal(g: str, p: str) -> bool:
    """A value given approximately: right when its exact part is the gold, or when the approximation it states is the
    gold's decimal at the gold's own digits (2.24 against 'approximately 2.24', not against 2.2 or 2.236). An exact
    value written beside its approximation must round to it, so '\\sqrt{6} \\approx 2.24' is not 2.24."""
    (ge, ga), (pe, pa) = _approx_parts(g), _approx_parts(p)
    if ge and pe and _atoms_equal(ge, pe):
        return True
    gd, pd = ga or ge, pa or pe
    if not (gd and pd):
        return False
    same = _plain_numbers_equal(_atom_key(gd), _atom_key(pd))
    if not (_atoms_equal(gd, pd) if same is None else same):
        return False
    return all(_rounds_to(e, a) for e, a in ((ge, ga), (pe, pa)) if e and a)


_DECIMAL = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")


def _rounds_to(exact: str, approx: str) -> bool:
    """Does an exact value agree with the approximation written beside it, within one unit of its last digit?"""
    a = _atom_key(approx)
    if not _DECIMAL.fullmatch(a):
        return True  # an approximation in another notation: nothing to hold it to
    places = len(a.split(".")[1]) if "." in a else 0
    return _within(exact, a, 10.0 ** -places)


def _match_all(gs: list, ps: list, eq, ordered: bool) -> bool:
    """Every gold part matches a distinct pred part (in order when ordered)."""
    if len(gs) != len(ps):
        return False
    if ordered:
        return all(eq(a, b) for a, b in zip(gs, ps))
    memo = {}

    def same(i, j):
        if (i, j) not in memo:
            memo[i, j] = eq(gs[i], ps[j])
        return memo[i, j]
    owner = {}  # pred index -> gold index (augmenting-path bipartite matching)

    def assign(i, seen):
        for j in range(len(ps)):
            if j not in seen and same(i, j):
                seen.add(j)
                if j not in owner or assign(owner[j], seen):
                    owner[j] = i
                    return True
        return False
    return all(assign(i, set()) for i in range(len(gs)))


def _equations_equal(g: str, p: str) -> bool:
    ge, pe = _parse(g), _parse(p)
    if ge is None or pe is None:
        return False
    return _MV.mv.verify(ge, pe, timeout_seconds=None) or _proportional_equations(ge, pe)


def _interchangeable(a: str, b: str) -> bool:
    """Same label, or 'f(x) = ...' against 'y = ...' (both name the function's value)."""
    a, b = _label_key(a), _label_key(b)
    func = re.compile(_FUNC)
    return a == b or (a == "y" and bool(func.fullmatch(b))) or (b == "y" and bool(func.fullmatch(a)))


def _items_equal(g: _Item, p: _Item) -> bool:
    if g.key() == p.key():
        return True
    if g.label and p.label:
        if _interchangeable(g.label, p.label):
            return _atoms_equal(g.value, p.value)
        return _equations_equal(g.text, p.text)
    if g.equation or p.equation:
        if (g.equation or g.label) and (p.equation or p.label):
            return _equations_equal(g.text, p.text)
        if g.equation:
            return False  # "2x + z = 1" is not the value 1
        # "1/2 + 1/2 = 1" ends in a value; "x + 2 = 5" is an unsolved equation and "7 = 11a+c" says 7, not 11a+c
        parts = _split_top(p.text, "=")
        computed = not _has_unknowns(parts[0]) and not re.fullmatch(r"[-+]?\d+(?:\.\d+)?", parts[0].strip())
        return computed and _atoms_equal(g.value, parts[-1])
    return _atoms_equal(g.value, p.value)


def _roots_labels(items: list[_Item]) -> bool:
    """x_1, x_2, ... enumerate solutions, whose order is arbitrary."""
    keys = [_label_key(i.label) for i in items]
    m = [re.fullmatch(r"([A-Za-z])_(\d+)", k) for k in keys]
    return all(m) and len({x.group(1) for x in m}) == 1 and sorted(int(x.group(2)) for x in m) == \
        list(range(1, len(m) + 1))


def _union_of_relations(one: list[_Item], many: list[_Item]) -> bool:
    """'(-\\infty, 2) \\cup (3, \\infty)' against 'x < 2 or x > 3': the union of the inequalities' solution sets."""
    if len(one) != 1 or len(many) < 2 or not all(re.search(r"[<>]|\\[lg]eq", i.text) for i in many):
        return False
    sets = [_parse(i.text) for i in many]
    target = _parse(one[0].value)
    try:
        union = _MV.sympy.Union(*[x.as_set() for x in sets])
        return target is not None and bool(_MV.mv.verify(target, union, timeout_seconds=None))
    except Exception:
        return False


def _answers_equal(gold: str, pred: str) -> bool:
    eg = bool(MAYBE_EMPTY.search(gold)) and is_empty_set(_canon(gold))
    ep = bool(MAYBE_EMPTY.search(pred)) and is_empty_set(_canon(pred))
    if eg or ep:  # "no solution", \emptyset, \{\}, none: one answer, the empty set, whatever its spelling
        return eg and ep
    (gi, g_set), (pi, p_set) = _structure(gold), _structure(pred)
    if not gi or not pi:
        return False
    if len(gi) == 1 and len(pi) == 1:
        return _items_equal(gi[0], pi[0])
    for one, many, many_set, gold_first in ((gi, pi, p_set, True), (pi, gi, g_set, False)):
        seq = _sequence(one[0].value) if len(one) == 1 and not one[0].label else None
        if seq and seq[:2] == ("(", ")") and not many_set and not any(i.label or i.equation for i in many):
            # "(7, 6)" written without its parentheses: same entries, same order
            pairs = zip(seq[2], [i.value for i in many]) if gold_first else zip([i.value for i in many], seq[2])
            return len(seq[2]) == len(many) and all(_atoms_equal(a, b) for a, b in pairs)
    if len(gi) != len(pi):
        return _union_of_relations(gi, pi) or _union_of_relations(pi, gi)
    g_named = all(i.label for i in gi) and len({_label_key(i.label) for i in gi}) == len(gi)
    p_named = all(i.label for i in pi) and len({_label_key(i.label) for i in pi}) == len(pi)
    if g_named and p_named and {_label_key(i.label) for i in gi} == {_label_key(i.label) for i in pi}:
        by_label = {_label_key(i.label): i for i in pi}
        return all(_atoms_equal(i.value, by_label[_label_key(i.label)].value) for i in gi)
    # "x = 1, y = 2" against "1, 2" is positional; a plain list or a set of solutions is unordered
    ordered = (g_named and not p_named and not _roots_labels(gi)) or (p_named and not g_named and not _roots_labels(pi))
    return _match_all(gi, pi, _items_equal, ordered=ordered)


_VALUE = re.compile(r"\$\$?([^$]+)\$|\\\((.+?)\\\)|(\\frac\{[^{}]*\}\{[^{}]*\}|[-+]?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?"
                    r"(?:\s*(?:\\?%|percent\b))?)")


def _non_latin(text: str) -> bool:
    letters = re.findall(r"[^\W\d_]", text)
    other = sum(1 for c in letters if ord(c) > 0x24F)
    return other >= 10 or (letters and other >= 0.3 * len(letters))


def _prose_answer(text: str, after_phrase: bool) -> str | None:
    """The answer stated in running text.

    Right after an answer phrase ("Réponse: Janeth paiera 220 $ d'ici 12 mois") it is the first value; in
    Chinese/Arabic/... text, where math-verify's number patterns miss digits glued to words, the last number;
    otherwise what math-verify extracts (its last LaTeX or plain expression).
    """
    values = [next(v for v in m.groups() if v) for m in _VALUE.finditer(text)]
    if after_phrase or _non_latin(text):
        return (values[0] if after_phrase else values[-1]) if values else None
    _MV.load()
    try:
        got = _MV.mv.parse(text, parsing_timeout=None)
    except Exception:
        got = []
    strings = [g for g in got if isinstance(g, str) and g.strip()]
    return strings[-1] if strings else (values[-1] if values else None)


def _last_sentence(text: str) -> str:
    sentences = [x for x in re.split(r"(?<=[.!?。\n])\s*", text) if x.strip(" .!?。\n")]
    last = sentences[-1].strip() if sentences else ""
    return re.sub(r"^(?:therefore|thus|so|hence|consequently)\b,?\s*", "", last, flags=re.I)


def _grade(gold: str, pred: str) -> bool:
    """The full check; runs in a worker process."""
    g = _answer_part(gold, is_pred=False)
    p = _answer_part(pred, is_pred=True)
    if g is None or p is None:
        return False
    gold_mc = _mc_letter(g[1])
    if gold_mc:
        return _grade_mc(gold_mc, p)
    kind, ans = p
    if kind == "prose" or (kind == "phrase" and _is_wordy(ans)):
        if len(ans) < 300:  # a sentence-like text answer: "The midpoints form a regular hexagon"
            whole = _canon(ans)
            if _is_text_answer(whole) and _text_key(whole) == _text_key(_canon(g[1])):
                return True
        if MAYBE_EMPTY.search(ans) and is_empty_set(_canon(g[1])) and is_empty_set(_last_sentence(_canon(ans))):
            return True  # "Therefore, the equation has no real solutions."
        ans = _prose_answer(ans, after_phrase=kind == "phrase")
        if ans is None:
            return False
    if _answers_equal(g[1], ans):
        return True
    option = re.fullmatch(r"\(([A-J])\)\s*(.+)|([A-J])[.:)]\s+(.+)", _canon(ans), re.S)
    return bool(option) and _answers_equal(g[1], option.group(2) or option.group(4))  # "(B) 12" states 12


def _worker_init():
    # A forked worker inherits the parent's signal handlers and asyncio's wakeup fd: when pebble kills a worker whose
    # check timed out (SIGTERM), the inherited C handler would write "SIGTERM" into the parent's event loop, and the
    # run would stop gracefully as if preempted. The worker forgets both and dies of its signals like any process.
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    _MV.load()
    _grade("\\frac{1}{2}", "\\boxed{0.5}")  # builds the LaTeX parser now, not inside a timed task


def _worker_task(gold: str, pred: str) -> bool:
    return bool(_grade(gold, pred))
