"""math-verify and sympy, for the grader's workers: parsing an answer, comparing numbers, testing identities.

Imported only inside the grader's worker processes (reasonlite/grader.py): these checks can hang on inputs like
5^{5^{5^{5}}} and math-verify's own timeouts use signal.alarm, so the pool's per-task timeout bounds them. Never
`str()` a parsed object of untrusted input: printing a power tower hangs in mpmath.
"""
from __future__ import annotations

import logging
import re


def _decimals(s: str) -> int | None:
    found = [len(d) for d in re.findall(r"\d\.(\d+)", s)]
    return min(found) if found else None


class _MV:
    """math-verify and sympy, imported in the worker only."""
    ready = False

    @classmethod
    def load(cls):
        if cls.ready:
            return
        logging.getLogger("math_verify").setLevel(logging.CRITICAL)
        logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)
        import math_verify
        import sympy
        cls.mv, cls.sympy = math_verify, sympy
        cls.latex_cfg = [math_verify.LatexExtractionConfig(boxed_match_priority=0)]
        cls.ready = True


def _parse(s: str):
    """The sympy object math-verify reads from a bare answer (wrapped in \\boxed: parsed bare, '2\\sqrt{2}' is 2)."""
    _MV.load()
    opened = sum(s.count(c) for c in "([{") - sum(s.count(c) for c in ")]}")
    if len(s) > 1500 or abs(opened) > 1:
        return None  # not an answer but a runaway or broken string: the LaTeX parser would crawl through it
    try:
        got = _MV.mv.parse("\\boxed{" + s + "}", extraction_config=_MV.latex_cfg, parsing_timeout=None)
    except Exception:
        return None
    objs = [g for g in got if not isinstance(g, str)]
    if not objs:
        return None
    obj = objs[0]
    try:  # latex2sympy reads i as a variable; in a final answer it is the imaginary unit
        imag = [x for x in obj.free_symbols if x.name == "i"]
        if imag:
            obj = obj.subs(imag[0], _MV.sympy.I)
    except Exception:
        pass
    return obj


def _bounded(expr) -> bool:
    """No power towers or huge exponents: evaluating those numerically is where sympy hangs."""
    sp = _MV.sympy
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Pow):
            e = node.exp
            if e.is_Number:
                if abs(e) > 10_000:
                    return False
            elif any(isinstance(a, sp.Pow) for a in sp.preorder_traversal(e)):
                return False
    return True


def _number(expr):
    sp = _MV.sympy
    if not isinstance(expr, sp.Expr) or expr.free_symbols or not _bounded(expr):
        return None
    try:
        v = sp.N(expr, 40)
        re_, im_ = v.as_real_imag()
        re_, im_ = sp.Float(re_, 40), sp.Float(im_, 40)
    except Exception:
        return None
    return (re_, im_) if re_.is_finite and im_.is_finite else None


def _numbers_equal(g: str, p: str, ge, pe) -> bool | None:
    """Verdict for two plain numbers, None when they are not both numbers. Exact unless a side is a decimal."""
    a, b = _number(ge), _number(pe)
    if a is None or b is None:
        return None
    sp = _MV.sympy
    scale = max(abs(complex(a[0], a[1])), abs(complex(b[0], b[1])), 1e-300)
    if not (ge.has(sp.Float) or pe.has(sp.Float)):
        try:  # exact values: integers and rationals compare exactly, at any size (2^{100} vs its digits)
            gd, pd = ge.doit(), pe.doit()
            if gd.is_Rational and pd.is_Rational:
                return bool(gd == pd)
            d = sp.N(gd - pd, 50).as_real_imag()
            return abs(complex(d[0], d[1])) <= 1e-40 * max(scale, 1.0)
        except Exception:
            return None
    diff = abs(complex(a[0] - b[0], a[1] - b[1]))
    # A decimal answer is right if it is what the exact value rounds to, within a tight relative error.
    dec = [d for d in (_decimals(g), _decimals(p)) if d is not None]
    if dec and diff > 0.5 * 10.0 ** -min(dec) + 1e-12 * scale:
        return False
    return diff <= 1e-6 * scale


def _within(exact: str, decimal: str, tol: float) -> bool:
    """Is the value of `exact` within tol of the decimal literal? (False when it is not a number sympy can bound.)"""
    e = _parse(exact)
    v = _number(e) if e is not None else None
    if v is None or abs(v[1]) > tol:
        return False
    return abs(v[0] - _MV.sympy.Float(decimal, 40)) <= tol * (1 + 1e-9)


def _math_equal(g: str, p: str) -> bool:
    ge, pe = _parse(g), _parse(p)
    if ge is None or pe is None:
        return False
    num = _numbers_equal(g, p, ge, pe)
    if num is not None:
        return num
    if _MV.mv.verify(ge, pe, allow_set_relation_comp=True, timeout_seconds=None):
        return True
    return _proportional_equations(ge, pe) or _agree_at_points(ge, pe)


# Values for the unknowns of a symbolic identity test: positive (no branch cuts), irrational-ish, distinct.
_POINTS = [(0.7317, 1.3791, 2.1129, 0.5413), (1.6180, 0.4142, 1.2599, 2.7183), (2.2361, 1.7321, 0.6931, 1.4427)]


def _agree_at_points(ge, pe) -> bool:
    """Two expressions in the same unknowns that agree at several generic points are the same function.

    This catches identities sympy's simplify misses (rational powers, Floats like ^{0.5}); unknowns are taken
    positive, as answer variables (lengths, radii, rates) usually are.
    """
    sp = _MV.sympy
    if not (isinstance(ge, sp.Expr) and isinstance(pe, sp.Expr)):
        return False
    syms = sorted(ge.free_symbols, key=lambda x: x.name)
    if not syms or set(syms) != pe.free_symbols or len(syms) > 4 or not (_bounded(ge) and _bounded(pe)):
        return False
    points = list(_POINTS)
    if ge.has(sp.Abs) or pe.has(sp.Abs):  # positive points cannot tell |x| from x
        points.append(tuple(-v if k % 2 == 0 else v for k, v in enumerate(_POINTS[0])))
    agreed = 0
    for point in points:
        values = {x: sp.Float(v, 30) for x, v in zip(syms, point)}
        a, b = _number(ge.subs(values)), _number(pe.subs(values))
        if a is None or b is None:
            continue
        diff = abs(complex(a[0] - b[0], a[1] - b[1]))
        if diff > 1e-12 * max(abs(complex(a[0], a[1])), abs(complex(b[0], b[1])), 1.0):
            return False
        agreed += 1
    return agreed >= 2


def _proportional_equations(ge, pe) -> bool:
    """34x+45y-20z+100=0 is -34x-45y+20z-100=0: the two sides' differences differ by a nonzero constant."""
    sp = _MV.sympy
    if not (isinstance(ge, sp.Equality) and isinstance(pe, sp.Equality)):
        return False
    try:
        dg, dp = ge.lhs - ge.rhs, pe.lhs - pe.rhs
        if not dg.free_symbols or dg.free_symbols != dp.free_symbols or dp == 0:
            return False
        ratio = sp.simplify(dg / dp)
        return bool(ratio.is_number and ratio != 0 and ratio.is_finite)
    except Exception:
        return False
