"""The `get_all_records_where` expression language (xapi `db_filter_lex.mll`,
`db_filter_parse.mly`).

    expr  := term ("or" term)*          term := factor ("and" factor)*
    factor := "not" factor | "true" | "false" | "(" expr ")" | value "=" value
    value := '"literal"' | 'field "column"'

Columns are DB names (namespaces joined by `__`: `name__label`); values compare as DB strings
(`"true"`, `"Running"`, refs, decimal ints).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from xod.sim.errors import XapiFailure

Predicate = Callable[[dict[str, Any]], bool]
_Value = Callable[[dict[str, Any]], str]

_TOKEN = re.compile(r'\s*(?:(\()|(\))|(=)|"((?:[^"\\]|\\.)*)"|([A-Za-z_][A-Za-z0-9_]*))')


def db_string(value: Any) -> str:
    """A field value as xapi's database stores it (what where-expressions compare with)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:.16g}" if value != int(value) else f"{value:.1f}"
    if isinstance(value, list):
        return "(" + " ".join(f"'{db_string(item)}'" for item in value) + ")"
    if isinstance(value, dict):
        return "(" + " ".join(f"('{k}' '{db_string(v)}')" for k, v in value.items()) + ")"
    return str(value)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"unexpected character at {position}")
        position = match.end()
        lparen, rparen, equals, literal, word = match.groups()
        if lparen:
            tokens.append(("(", "("))
        elif rparen:
            tokens.append((")", ")"))
        elif equals:
            tokens.append(("=", "="))
        elif literal is not None:
            tokens.append(("str", re.sub(r"\\(.)", r"\1", literal)))
        else:
            tokens.append(("word", word))
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ValueError("unexpected end of expression")
        self.index += 1
        return token

    def is_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "word" and token[1].lower() == word

    def expr(self) -> Predicate:
        left = self.term()
        while self.is_word("or"):
            self.take()
            right = self.term()
            left = (lambda a, b: lambda r: a(r) or b(r))(left, right)
        return left

    def term(self) -> Predicate:
        left = self.factor()
        while self.is_word("and"):
            self.take()
            right = self.factor()
            left = (lambda a, b: lambda r: a(r) and b(r))(left, right)
        return left

    def factor(self) -> Predicate:
        if self.is_word("not"):
            self.take()
            inner = self.factor()
            return lambda r: not inner(r)
        if self.is_word("true"):
            self.take()
            return lambda r: True
        if self.is_word("false"):
            self.take()
            return lambda r: False
        token = self.peek()
        if token is not None and token[0] == "(":
            self.take()
            inner = self.expr()
            if self.take()[0] != ")":
                raise ValueError("expected )")
            return inner
        left = self.value()
        if self.take()[0] != "=":
            raise ValueError("expected =")
        right = self.value()
        return lambda r: left(r) == right(r)

    def value(self) -> _Value:
        kind, text = self.take()
        if kind == "str":
            return lambda r: text
        if kind == "word" and text.lower() == "field":
            kind, column = self.take()
            if kind != "str":
                raise ValueError("expected a quoted column name")
            name = column.replace("__", "_")
            # An unknown column never matches (no row has it).
            return lambda r: db_string(r[name]) if name in r else "\0"
        raise ValueError(f"unexpected {text!r}")


def compile_where(expression: str) -> Predicate:
    try:
        parser = _Parser(_tokenize(expression))
        predicate = parser.expr()
        if parser.peek() is not None:
            raise ValueError(f"trailing {parser.peek()[1]!r}")  # type: ignore[index]  # not None: checked above
    except ValueError as error:
        raise XapiFailure("INVALID_VALUE", expression, str(error)) from error
    return predicate
