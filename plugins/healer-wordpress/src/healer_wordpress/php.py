"""Reading PHP source without running it: a small tokenizer and an evaluator of literals.

WordPress keeps its settings in PHP files (``wp-config.php``, ``wp-includes/version.php``).
Running them would run whatever they hold, so they are read here the way PHP's own lexer reads
them: comments are comments (a commented-out ``define`` does not count), strings are decoded
with PHP's escape rules for both quote styles, and only literals are given a value. Anything
computed at run time (``getenv()``, a variable, ``__DIR__``, an interpolated string) is
:class:`Dynamic`, with the reason, never a guess.

Nothing here raises on bad input: an unterminated string or comment becomes a ``BAD`` token and
a problem in the result. Offsets are into the text, so an edit can replace exactly one value
and leave every other byte of the file alone.

The tokenizer (:func:`tokenize`, :class:`Token`, :class:`Kind`) is in
:mod:`healer_wordpress._php_tokenizer` and public here; the evaluation of literals and the
reading of statements (:func:`parse`) are in this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from healer_wordpress._php_tokenizer import Kind, Scalar, Token, tokenize

__all__ = [
    "Assignment",
    "Define",
    "Dynamic",
    "Kind",
    "Scalar",
    "Source",
    "Token",
    "evaluate",
    "parse",
    "tokenize",
    "truthy",
]


@attrs.frozen
class Dynamic:
    """A value only known when PHP runs; ``reason`` says why (``"calls getenv()"``)."""

    reason: str


# --------------------------------------------------------------------------------------------
# Values


def truthy(value: object) -> bool:
    """PHP's truthiness of a scalar: ``"0"`` and ``""`` are false, so are 0 and null."""
    if isinstance(value, str):
        return value not in ("", "0")
    return bool(value)


def _as_php_string(value: Scalar) -> str | Dynamic:
    if isinstance(value, bool):
        return "1" if value else ""
    if value is None:
        return ""
    if isinstance(value, float):
        return Dynamic("concatenates a float")  # PHP's float formatting is not ours to guess
    return str(value)


_KEYWORDS: dict[str, Scalar] = {"true": True, "false": False, "null": None}


def _signed(tokens: Sequence[Token]) -> Scalar | Dynamic:
    number = tokens[1].value
    if tokens[0].text in ("+", "-") and isinstance(number, int | float):
        return -number if tokens[0].text == "-" else number
    return Dynamic("is an expression")


def _compound(tokens: Sequence[Token]) -> Dynamic:
    """Why an operand of several tokens has no literal value."""
    for index, token in enumerate(tokens[:-1]):
        if token.kind is Kind.NAME and tokens[index + 1].text == "(":
            return Dynamic(f"calls {token.text.lstrip(chr(92))}()")
    for token in tokens:
        if token.kind is Kind.VARIABLE:
            return Dynamic(f"uses the variable {token.text}")
    return Dynamic("is an expression")


def _name_value(token: Token) -> Scalar | Dynamic:
    name = token.text.lstrip("\\")
    if name.lower() in _KEYWORDS:
        return _KEYWORDS[name.lower()]
    if name.startswith("__") and name.endswith("__"):
        return Dynamic(f"uses {name}")
    return Dynamic(f"uses the constant {name}")


def _term(tokens: Sequence[Token]) -> Scalar | Dynamic:
    """One operand of a concatenation."""
    if len(tokens) == 2 and tokens[1].kind is Kind.NUMBER:
        return _signed(tokens)
    if len(tokens) != 1:
        return _compound(tokens)
    token = tokens[0]
    if token.kind in (Kind.STRING, Kind.HEREDOC, Kind.NUMBER):
        return Dynamic(token.problem) if token.problem else token.value
    if token.kind is Kind.NAME:
        return _name_value(token)
    if token.kind is Kind.VARIABLE:
        return Dynamic(f"uses the variable {token.text}")
    return Dynamic("is an expression")


def evaluate(tokens: Sequence[Token]) -> Scalar | Dynamic:
    """The value of an expression made of significant tokens: a literal, or literals joined
    with ``.``; :class:`Dynamic` for anything else."""
    if not tokens:
        return Dynamic("is empty")
    terms: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.text in ("(", "["):
            depth += 1
        elif token.text in (")", "]"):
            depth -= 1
        if token.kind is Kind.PUNCT and token.text == "." and depth == 0:
            terms.append([])
        else:
            terms[-1].append(token)
    values: list[Scalar] = []
    for term in terms:
        value = _term(term)
        if isinstance(value, Dynamic):
            return value
        values.append(value)
    if len(values) == 1:
        return values[0]
    joined: list[str] = []
    for value in values:
        text = _as_php_string(value)
        if isinstance(text, Dynamic):
            return text
        joined.append(text)
    return "".join(joined)


# --------------------------------------------------------------------------------------------
# Statements: define() calls, variable assignments, includes


@attrs.frozen(kw_only=True)
class Define:
    """One ``define('NAME', value)`` call.

    :param value_start: offset of the value expression's first character.
    :param value_end: offset just past its last character.
    :param conditional: inside a block or after a condition (``if (...) define(...)``).
    """

    name: str
    value: Scalar | Dynamic
    value_start: int
    value_end: int
    line: int
    conditional: bool


@attrs.frozen(kw_only=True)
class Assignment:
    """One ``$name = value;`` statement."""

    name: str
    value: Scalar | Dynamic
    line: int
    conditional: bool


@attrs.frozen(kw_only=True)
class Source:
    """What a PHP file says without being run.

    :param includes: ``require``/``include`` statements other than WordPress's own
        ``wp-settings.php``, each as ``"require_once at line 5"``: settings may come from them.
    :param computed: defines whose constant name is itself computed (their line).
    :param problems: why parts of the file could not be read (an unterminated string).
    :param bootstraps: the file loads ``wp-settings.php`` (a real wp-config.php does).
    """

    defines: tuple[Define, ...] = ()
    assignments: tuple[Assignment, ...] = ()
    includes: tuple[str, ...] = ()
    computed: tuple[int, ...] = ()
    problems: tuple[str, ...] = ()
    bootstraps: bool = False

    def defines_of(self, name: str) -> tuple[Define, ...]:
        """Every define of ``name``, in file order."""
        return tuple(d for d in self.defines if d.name == name)

    def assignments_of(self, name: str) -> tuple[Assignment, ...]:
        """Every assignment to ``$name`` (without the ``$``), in file order."""
        return tuple(a for a in self.assignments if a.name == name)


_STATEMENT_START = frozenset({";", "{", "}", ":"})
_INCLUDES = frozenset({"require", "require_once", "include", "include_once"})
_NOT_A_CALL = frozenset({"->", "::", "?->", "function", "fn", "new", "const"})


def _significant(text: str) -> tuple[list[Token], list[str]]:
    tokens: list[Token] = []
    problems: list[str] = []
    for token in tokenize(text):
        if token.kind in (Kind.SPACE, Kind.COMMENT, Kind.HTML):
            continue
        if token.kind is Kind.BAD:
            problems.append(token.problem or "unreadable PHP")
            continue
        tokens.append(token)
    return tokens, problems


def _arguments(tokens: Sequence[Token], open_at: int) -> tuple[list[list[Token]], int]:
    """The comma-separated arguments of the call whose ``(`` is at ``open_at``, and the index
    of its closing ``)`` (``len(tokens)`` when it is never closed)."""
    args: list[list[Token]] = [[]]
    depth = 0
    for index in range(open_at + 1, len(tokens)):
        token = tokens[index]
        if token.kind is Kind.PUNCT and token.text in ("(", "[", "{"):
            depth += 1
        elif token.kind is Kind.PUNCT and token.text in (")", "]", "}"):
            if depth == 0:
                return args, index
            depth -= 1
        if token.kind is Kind.PUNCT and token.text == "," and depth == 0:
            args.append([])
        else:
            args[-1].append(token)
    return args, len(tokens)


def _statement_end(tokens: Sequence[Token], start: int) -> int:
    depth = 0
    for index in range(start, len(tokens)):
        token = tokens[index]
        if token.text in ("(", "[", "{"):
            depth += 1
        elif token.text in (")", "]", "}"):
            depth -= 1
        elif depth <= 0 and (token.text == ";" or token.kind is Kind.CLOSE):
            return index
    return len(tokens)


@attrs.define
class _Walker:
    """One pass over the significant tokens, collecting what :func:`parse` returns."""

    tokens: list[Token]
    defines: list[Define] = attrs.field(factory=list)
    assignments: list[Assignment] = attrs.field(factory=list)
    includes: list[str] = attrs.field(factory=list)
    computed: list[int] = attrs.field(factory=list)
    bootstraps: bool = False
    braces: int = 0

    def at_start(self, index: int) -> bool:
        """Whether the token at ``index`` starts a statement."""
        if index == 0:
            return True
        previous = self.tokens[index - 1]
        return previous.text in _STATEMENT_START or previous.kind in (Kind.OPEN, Kind.CLOSE)

    def walk(self) -> None:
        for index, token in enumerate(self.tokens):
            if token.kind is Kind.PUNCT and token.text == "{":
                self.braces += 1
            elif token.kind is Kind.PUNCT and token.text == "}":
                self.braces = max(0, self.braces - 1)
            elif token.kind is Kind.NAME and token.text.lstrip("\\").lower() == "define":
                self.define(index)
            elif token.kind is Kind.NAME and token.text.lower() in _INCLUDES:
                self.include(index)
            elif token.kind is Kind.VARIABLE and self.at_start(index):
                self.assignment(index)

    def define(self, index: int) -> None:
        tokens = self.tokens
        previous = tokens[index - 1].text.lower() if index else ""
        if index + 1 >= len(tokens) or tokens[index + 1].text != "(" or previous in _NOT_A_CALL:
            return
        conditional = self.braces > 0 or not self.at_start(index)
        found = _define(tokens, index, conditional)
        if found is None:
            self.computed.append(tokens[index].line)
        else:
            self.defines.append(found)

    def include(self, index: int) -> None:
        end = _statement_end(self.tokens, index + 1)
        target = "".join(
            t.value if isinstance(t.value, str) else t.text for t in self.tokens[index + 1 : end]
        )
        if "wp-settings.php" in target:
            self.bootstraps = True
        else:
            token = self.tokens[index]
            self.includes.append(f"{token.text.lower()} at line {token.line}")

    def assignment(self, index: int) -> None:
        tokens = self.tokens
        if index + 1 >= len(tokens) or tokens[index + 1].text != "=":
            return
        end = _statement_end(tokens, index + 2)
        self.assignments.append(
            Assignment(
                name=tokens[index].text[1:],
                value=evaluate(tokens[index + 2 : end]),
                line=tokens[index].line,
                conditional=self.braces > 0,
            )
        )


def parse(text: str) -> Source:
    """Read the ``define()`` calls, variable assignments and includes of PHP source ``text``."""
    tokens, problems = _significant(text)
    walker = _Walker(tokens)
    walker.walk()
    return Source(
        defines=tuple(walker.defines),
        assignments=tuple(walker.assignments),
        includes=tuple(walker.includes),
        computed=tuple(walker.computed),
        problems=tuple(problems),
        bootstraps=walker.bootstraps,
    )


def _define(tokens: Sequence[Token], index: int, conditional: bool) -> Define | None:
    """The define whose ``define`` keyword is at ``index``; None when its name is computed."""
    args, close = _arguments(tokens, index + 1)
    if len(args) < 2 or not args[1] or close >= len(tokens):
        return None
    name = evaluate(args[0])
    if not isinstance(name, str) or not name:
        return None
    expression = args[1]
    named = len(expression) > 2 and expression[0].kind is Kind.NAME and expression[1].text == ":"
    value = Dynamic("uses named arguments") if named else evaluate(expression)
    return Define(
        name=name,
        value=value,
        value_start=expression[0].start,
        value_end=expression[-1].end,
        line=tokens[index].line,
        conditional=conditional,
    )
