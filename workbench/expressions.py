"""Safe boolean expressions over the columns of a table: tag rules and audience definitions.

An expression is a small subset of Python syntax, parsed with :mod:`ast` and evaluated by this
module over pandas columns — never by ``eval``. What it accepts:

- a name of a boolean column (a tag such as ``frequent_rebuyer``, ``is_known``);
- a comparison of a column with a literal: ``orders_365d >= 3``, ``segment == "Champions"``,
  ``churn_risk_decile <= 2``, ``segment in ["Champions", "Loyal"]``, ``group not in ["Dormant"]``;
- ``top(column, share)``: the persons whose value is in the top ``share`` among those with a
  positive value (``top(live_stream_watched_minutes, 0.25)``: the top quartile of watchers);
- ``and``, ``or``, ``not`` and parentheses.

A missing value never satisfies a comparison (``not`` of it does). Unknown names fail with the
name and the closest known ones.

Example:
    >>> import pandas as pd
    >>> t = pd.DataFrame({"vip": [True, False, True], "orders": [5, 1, None],
    ...                   "segment": ["Champions", "Lost", "Loyal"]}, index=["a", "b", "c"])
    >>> e = parse("vip and not segment == 'Lost' and orders >= 3", names=t.columns)
    >>> evaluate(e, t).tolist()
    [True, False, False]
    >>> sorted(e.names)
    ['orders', 'segment', 'vip']
    >>> parse("vip and not vipp", names=t.columns)
    Traceback (most recent call last):
    ...
    KeyError: "Unknown name 'vipp' in the expression 'vip and not vipp'. Did you mean 'vip'?"
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass
from typing import Collection

import numpy as np
import pandas as pd

__all__ = ["Expression", "ExpressionError", "parse", "evaluate", "FUNCTIONS"]

#: Functions an expression may call: name -> what it means.
FUNCTIONS = {"top": "top(column, share): in the top `share` (0 < share < 1) of the persons with a positive value"}

_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
            ast.In: "in", ast.NotIn: "not in"}


class ExpressionError(ValueError):
    """An expression that is not one of the accepted forms (see the module's docstring)."""


@dataclass(frozen=True)
class Expression:
    """A parsed, checked expression: its text, syntax tree and the column names it reads."""

    text: str
    tree: ast.expr
    names: frozenset[str]

    def thresholds(self) -> list[tuple[str, str, object]]:
        """Every (column, operator, literal) it compares, ``top`` as ``(column, "top", share)``.

        >>> parse("a >= 3 and top(b, 0.25)", names=["a", "b"]).thresholds()
        [('a', '>=', 3), ('b', 'top', 0.25)]
        """
        out: list[tuple[str, str, object]] = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Compare):
                out.append((node.left.id, _COMPARE[type(node.ops[0])], _literal(node.comparators[0], self.text)))
            elif isinstance(node, ast.Call):
                out.append((node.args[0].id, "top", node.args[1].value))
        return out


def _unknown(name: str, text: str, names: Collection[str]) -> KeyError:
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else \
        f" Known names: {sorted(names)[:40]}{' ...' if len(names) > 40 else ''}."
    return KeyError(f"Unknown name {name!r} in the expression {text!r}.{hint}")


def _literal(node: ast.expr, text: str) -> object:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
            and isinstance(node.operand.value, (int, float)) and not isinstance(node.operand.value, bool):
        return -node.operand.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e, text) for e in node.elts]
    raise ExpressionError(f"The expression {text!r} compares with {ast.unparse(node)!r}; only a number, a quoted text "
                          "or a list of them may stand on the right of a comparison.")


def _check(node: ast.expr, text: str, names: Collection[str], used: set[str]) -> None:
    if isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, text, names, used)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _check(node.operand, text, names, used)
    elif isinstance(node, ast.Name):
        if node.id not in names:
            raise _unknown(node.id, text, names)
        used.add(node.id)
    elif isinstance(node, ast.Compare):
        if len(node.ops) != 1 or not isinstance(node.left, ast.Name) or type(node.ops[0]) not in _COMPARE:
            raise ExpressionError(f"The comparison {ast.unparse(node)!r} in {text!r} must be a name, one of "
                                  f"{sorted(set(_COMPARE.values()))} and a literal, e.g. 'orders >= 3'.")
        if node.left.id not in names:
            raise _unknown(node.left.id, text, names)
        used.add(node.left.id)
        value = _literal(node.comparators[0], text)
        if isinstance(node.ops[0], (ast.In, ast.NotIn)) != isinstance(value, list):
            raise ExpressionError(f"In {text!r}, 'in' and 'not in' take a list such as ['a', 'b'] and the other "
                                  f"comparisons a single value. Got {ast.unparse(node)!r} instead.")
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise ExpressionError(f"The expression {text!r} calls {ast.unparse(node.func)!r}; the only functions "
                                  f"are {sorted(FUNCTIONS)}.")
        if node.keywords or len(node.args) != 2 or not isinstance(node.args[0], ast.Name) \
                or not isinstance(node.args[1], ast.Constant) or isinstance(node.args[1].value, bool) \
                or not isinstance(node.args[1].value, (int, float)):
            raise ExpressionError(f"{ast.unparse(node)!r} in {text!r} must read {FUNCTIONS['top'].split(':')[0]}, "
                                  "e.g. top(live_stream_watched_minutes, 0.25).")
        share = node.args[1].value
        if not 0 < share < 1:
            raise ExpressionError(f"The share of {ast.unparse(node)!r} in {text!r} must be in (0, 1). "
                                  f"Got {share!r} instead.")
        if node.args[0].id not in names:
            raise _unknown(node.args[0].id, text, names)
        used.add(node.args[0].id)
    else:
        raise ExpressionError(f"{ast.unparse(node)!r} is not allowed in the expression {text!r}: use names, "
                              "comparisons with literals, top(column, share), and, or, not, parentheses.")


def parse(text: str, *, names: Collection[str]) -> Expression:
    """Parse and check ``text`` against the known ``names`` (columns and tags).

    >>> parse("a or", names=["a"])
    Traceback (most recent call last):
    ...
    workbench.expressions.ExpressionError: The expression 'a or' is not valid syntax: invalid syntax.
    >>> parse("__import__('os')", names=["a"])
    Traceback (most recent call last):
    ...
    workbench.expressions.ExpressionError: The expression "__import__('os')" calls '__import__'; the only functions are ['top'].
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"An expression must be a non-empty text. Got {text!r} instead.")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as e:
        raise ExpressionError(f"The expression {text!r} is not valid syntax: {e.msg}.") from None
    if isinstance(names, (list, tuple, pd.Index)):
        names = set(names)   # other containers (sets, a vocabulary with patterns) answer `in` themselves
    used: set[str] = set()
    _check(tree, text, names, used)
    return Expression(text=text, tree=tree, names=frozenset(used))


def _bool(s: pd.Series, name: str, text: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.fillna(False).to_numpy(bool)
    raise ExpressionError(f"{name!r} in {text!r} is not a yes/no column (its type is {s.dtype}); compare it with a "
                          f"value, e.g. '{name} > 0'.")


def _compare(s: pd.Series, op: str, value: object, name: str, text: str) -> np.ndarray:
    numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
    values = value if isinstance(value, list) else [value]
    if numeric and any(isinstance(v, str) for v in values):
        raise ExpressionError(f"{name!r} in {text!r} holds numbers; it cannot be compared with {value!r}.")
    if not numeric and op in ("<", "<=", ">", ">=") and not pd.api.types.is_datetime64_any_dtype(s.dtype):
        raise ExpressionError(f"{name!r} in {text!r} does not hold numbers (its type is {s.dtype}); use == or in.")
    if op in ("in", "not in"):
        hit = s.isin(values).fillna(False).to_numpy(bool) & s.notna().to_numpy(bool)
        return hit if op == "in" else (~hit & s.notna().to_numpy(bool))
    if not numeric:
        s = s.astype("string") if not pd.api.types.is_bool_dtype(s.dtype) else s
    res = {"==": s.__eq__, "!=": s.__ne__, "<": s.__lt__, "<=": s.__le__, ">": s.__gt__, ">=": s.__ge__}[op](value)
    return pd.Series(res).fillna(False).to_numpy(bool) & s.notna().to_numpy(bool)


def top_share(values: pd.Series, share: float) -> np.ndarray:
    """Whether each value is in the top ``share`` of the positive values: ``value > 0`` and
    ``value >= quantile(positive values, 1 - share)`` (ties at the cut are all in).

    >>> top_share(pd.Series([0, 1, 2, 3, 4, None]), 0.25).tolist()
    [False, False, False, False, True, False]
    """
    v = pd.to_numeric(values, errors="raise").astype("float64")
    positive = v[v > 0]
    if positive.empty:
        return np.zeros(len(v), bool)
    cut = float(positive.quantile(1 - share))
    return ((v > 0) & (v >= cut)).fillna(False).to_numpy(bool)


def _eval(node: ast.expr, frame: pd.DataFrame, text: str) -> np.ndarray:
    if isinstance(node, ast.BoolOp):
        parts = [_eval(v, frame, text) for v in node.values]
        return np.logical_and.reduce(parts) if isinstance(node.op, ast.And) else np.logical_or.reduce(parts)
    if isinstance(node, ast.UnaryOp):
        return ~_eval(node.operand, frame, text)
    if isinstance(node, ast.Name):
        return _bool(frame[node.id], node.id, text)
    if isinstance(node, ast.Compare):
        name = node.left.id
        return _compare(frame[name], _COMPARE[type(node.ops[0])], _literal(node.comparators[0], text), name, text)
    if isinstance(node, ast.Call):
        name = node.args[0].id
        s = frame[name]
        if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
            raise ExpressionError(f"top() in {text!r} needs a column of numbers; {name!r} is {s.dtype}.")
        return top_share(s, node.args[1].value)
    raise AssertionError(ast.dump(node))   # parse() admits nothing else


def evaluate(expression: Expression | str, frame: pd.DataFrame) -> pd.Series:
    """The boolean Series (``frame``'s index) of the rows that satisfy ``expression``.

    >>> evaluate("top(x, 0.5)", pd.DataFrame({"x": [0.0, 1, 2, 3, 4]})).tolist()
    [False, False, False, True, True]
    """
    expr = expression if isinstance(expression, Expression) else parse(expression, names=frame.columns)
    missing = sorted(n for n in expr.names if n not in frame.columns)
    if missing:
        raise _unknown(missing[0], expr.text, frame.columns)
    return pd.Series(_eval(expr.tree, frame, expr.text), index=frame.index, name=expr.text)
