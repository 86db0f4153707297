"""Buildkite's ``if`` conditions: a small, sandboxed expression language (never ``eval``).

Grammar: ``or := and ('||' and)*``, ``and := not ('&&' not)*``, ``not := '!' not | cmp``,
``cmp := value (('=='|'!='|'=~'|'!~'|'includes') value)?``, ``value := string | /regex/ | integer |
true | false | null | variable | build.env("NAME") | '(' or ')'``. Variables are dotted names such
as ``build.branch``; unknown variables are null. ``//`` starts a comment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_TOKENS = re.compile(
    r"""\s*(?:
      (?P<comment>//[^\n]*)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<regex>/(?:[^/\\]|\\.)+/[a-z]*)
    | (?P<number>-?\d+)
    | (?P<op>==|!=|=~|!~|&&|\|\||!|\(|\)|,)
    | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)


class ExpressionError(ValueError):
    """The condition does not parse or cannot be evaluated."""


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    source = source.rstrip()
    while position < len(source):
        match = _TOKENS.match(source, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"unexpected {source[position : position + 10]!r}")
        position = match.end()
        kind = match.lastgroup or ""
        if kind == "comment":
            continue
        text = match.group(kind)
        # A regex is only valid after a match operator; elsewhere "/" is not part of the language.
        if kind == "regex" and not (tokens and tokens[-1].text in ("=~", "!~")):
            raise ExpressionError("a /regex/ may only follow =~ or !~")
        tokens.append(_Token(kind, text))
    return tokens


Node = Callable[[Mapping[str, Any]], Any]


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, text: str | None = None) -> _Token:
        token = self.peek()
        if token is None or (text is not None and token.text != text):
            raise ExpressionError(f"expected {text or 'a value'} at the end of the condition")
        self.index += 1
        return token

    def parse(self) -> Node:
        node = self.or_()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.peek() is not None and self.peek().text == "||":  # type: ignore[union-attr]
            self.take()
            node = _either(node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.peek() is not None and self.peek().text == "&&":  # type: ignore[union-attr]
            self.take()
            node = _both(node, self.not_())
        return node

    def not_(self) -> Node:
        token = self.peek()
        if token is not None and token.text == "!":
            self.take()
            inner = self.not_()
            return lambda ctx: not inner(ctx)
        return self.comparison()

    def comparison(self) -> Node:
        left = self.value()
        token = self.peek()
        if token is None or token.text not in ("==", "!=", "=~", "!~", "includes"):
            return left
        operator = self.take().text
        right = self.value()
        return _compare(operator, left, right)

    def value(self) -> Node:
        token = self.take()
        if token.text == "(":
            node = self.or_()
            self.take(")")
            return node
        if token.kind == "string":
            text = _unquote(token.text)
            return lambda ctx: text
        if token.kind == "regex":
            pattern = _regex(token.text)
            return lambda ctx: pattern
        if token.kind == "number":
            number = int(token.text)
            return lambda ctx: number
        if token.kind == "name":
            return self.name(token.text)
        raise ExpressionError(f"unexpected {token.text!r}")

    def name(self, name: str) -> Node:
        if name in ("true", "false", "null"):
            constant = {"true": True, "false": False, "null": None}[name]
            return lambda ctx: constant
        if name == "includes":
            raise ExpressionError("`includes` needs a value on its left")
        token = self.peek()
        if token is not None and token.text == "(":
            self.take("(")
            argument = self.take()
            if argument.kind != "string":
                raise ExpressionError(f"{name}() takes a string")
            self.take(")")
            if name != "build.env":
                raise ExpressionError(f"unknown function {name}()")
            key = _unquote(argument.text)
            return lambda ctx: (ctx.get("build.env") or {}).get(key)
        return lambda ctx: ctx.get(name)


def _either(left: Node, right: Node) -> Node:
    return lambda ctx: bool(left(ctx)) or bool(right(ctx))


def _both(left: Node, right: Node) -> Node:
    return lambda ctx: bool(left(ctx)) and bool(right(ctx))


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _regex(text: str) -> re.Pattern[str]:
    body, _, flags = text[1:].rpartition("/")
    try:
        return re.compile(body, re.IGNORECASE if "i" in flags else 0)
    except re.error as exc:
        raise ExpressionError(f"invalid regex {text}: {exc}") from exc


def _compare(operator: str, left: Node, right: Node) -> Node:
    def evaluate(ctx: Mapping[str, Any]) -> bool:
        a, b = left(ctx), right(ctx)
        if operator == "==":
            return bool(a == b)
        if operator == "!=":
            return bool(a != b)
        if operator == "includes":
            return isinstance(a, list | tuple) and b in a
        if not isinstance(b, re.Pattern):
            raise ExpressionError(f"{operator} needs a /regex/ on its right")
        found = isinstance(a, str) and b.search(a) is not None
        return found if operator == "=~" else not found

    return evaluate


@dataclass(frozen=True)
class Condition:
    source: str
    node: Node

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        return bool(self.node(context))


def compile_condition(source: str) -> Condition:
    tokens = _tokenize(source)
    if not tokens:
        raise ExpressionError("the condition is empty")
    for i, token in enumerate(tokens):
        if token.kind == "name" and token.text == "includes":
            tokens[i] = _Token("op", "includes")
    return Condition(source, _Parser(tokens).parse())


def branch_matches(patterns: tuple[str, ...], branch: str) -> bool:
    """Buildkite branch filters: globs with ``*``; ``!pattern`` excludes."""
    positive = [p for p in patterns if not p.startswith("!")]
    negative = [p[1:] for p in patterns if p.startswith("!")]

    def glob(pattern: str) -> bool:
        regex = "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"
        return re.match(regex, branch) is not None

    if any(glob(p) for p in negative):
        return False
    return not positive or any(glob(p) for p in positive)
