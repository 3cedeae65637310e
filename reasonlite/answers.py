"""Reading the final answer out of model text, and the cheap spelling normalization of answers.

Pure string work, safe in any process: `final_text` (the gpt-oss final channel, or what follows </think>),
`last_boxed` (real brace matching), `extract_answer`, and `normalize` (a conservative key: equal keys mean equal
answers). reasonlite/equivalence.py decides the rest in worker processes; reasonlite/grader.py runs it.
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
    """last_boxed(final_text(output)), stripped; None when truncated, unboxed or empty."""
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
