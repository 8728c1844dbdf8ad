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
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

__all__ = [
    "Assignment",
    "Define",
    "Dynamic",
    "Kind",
    "Source",
    "Token",
    "evaluate",
    "parse",
    "tokenize",
    "truthy",
]

Scalar = str | int | float | bool | None


class Kind(enum.Enum):
    """What a token is."""

    HTML = "html"  # text outside <?php ... ?>
    OPEN = "open"  # <?php, <?= or <?
    CLOSE = "close"  # ?> (acts as a statement end)
    SPACE = "space"
    COMMENT = "comment"
    STRING = "string"  # '...', "...", `...` (value None when not a plain literal)
    HEREDOC = "heredoc"  # <<<LABEL ... (never given a value)
    NUMBER = "number"
    NAME = "name"  # identifiers and keywords, namespaced names included (\define)
    VARIABLE = "variable"  # $name
    PUNCT = "punct"
    BAD = "bad"  # an unterminated string or comment: the rest of the file


@attrs.frozen(kw_only=True)
class Token:
    """One token: its kind, its text and where it is (offsets into the source, 1-based line)."""

    kind: Kind
    text: str
    start: int
    end: int
    line: int
    value: Scalar = None
    problem: str | None = None  # why a STRING has no value (interpolation, backticks)


@attrs.frozen
class Dynamic:
    """A value only known when PHP runs; ``reason`` says why (``"calls getenv()"``)."""

    reason: str


_NAME_START = r"[A-Za-z_\x80-\U0010ffff]"
_NAME_CHAR = r"[A-Za-z0-9_\x80-\U0010ffff]"
_NAME = re.compile(rf"\\?{_NAME_START}{_NAME_CHAR}*(?:\\{_NAME_START}{_NAME_CHAR}*)*")
_VARIABLE = re.compile(rf"\${_NAME_START}{_NAME_CHAR}*")
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F]+(?:_[0-9a-fA-F]+)*"
    r"|0[bB][01]+(?:_[01]+)*"
    r"|0[oO][0-7]+(?:_[0-7]+)*"
    r"|(?:[0-9]+(?:_[0-9]+)*)?\.[0-9]+(?:_[0-9]+)*(?:[eE][+-]?[0-9]+(?:_[0-9]+)*)?"
    r"|[0-9]+(?:_[0-9]+)*\.(?:[eE][+-]?[0-9]+(?:_[0-9]+)*)?"
    r"|[0-9]+(?:_[0-9]+)*(?:[eE][+-]?[0-9]+(?:_[0-9]+)*)?"
)
_SPACE = re.compile(r"[ \t\r\n\f\v]+")
_OPEN_TAG = re.compile(r"<\?php(?:[ \t\r\n]|$)|<\?=|<\?", re.IGNORECASE)
_HEREDOC = re.compile(
    rf"<<<[ \t]*(?P<quote>[\"']?)(?P<label>{_NAME_START}{_NAME_CHAR}*)(?P=quote)\r?\n"
)
_PUNCTS = (
    "<=>", "===", "!==", "**=", "...", "??=", "<<=", ">>=", "?->",
    "->", "=>", "::", "==", "!=", "<>", "<=", ">=", "&&", "||", "++", "--", "+=", "-=", "*=",
    "/=", ".=", "%=", "&=", "|=", "^=", "<<", ">>", "??", "**",
)  # fmt: skip
_SIMPLE_ESCAPES = {
    "n": "\n", "t": "\t", "r": "\r", "v": "\v", "e": "\x1b", "f": "\f", "\\": "\\",
    "$": "$", '"': '"',
}  # fmt: skip
_OCTAL = re.compile(r"[0-7]{1,3}")
_HEX = re.compile(r"[0-9A-Fa-f]{1,2}")
_UNICODE = re.compile(r"\{([0-9A-Fa-f]+)\}")
_INTERPOLATION = re.compile(rf"\${_NAME_START}|\{{\$")


def _line_of(text: str, start: int, line: int, end: int) -> int:
    return line + text.count("\n", start, end)


def _single_quoted(body: str) -> str:
    """PHP's single-quoted escapes: only ``\\'`` and ``\\\\``."""
    return re.sub(r"\\([\\'])", r"\1", body)


def _encoded(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that did not come from a byte
        return text.encode("utf-8", "surrogatepass")


def _double_quoted(body: str) -> str:
    """PHP's double-quoted escapes; an unknown escape keeps its backslash, as PHP does.

    PHP strings are bytes: ``"\\xff"`` is the byte 0xFF, which comes back as a surrogate
    escape so that it is written out as that byte again.
    """
    out = bytearray()
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\" or i + 1 == len(body):
            out += _encoded(char)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[nxt].encode()
            i += 2
        elif octal := _OCTAL.match(body, i + 1):
            out.append(int(octal.group(), 8) & 0xFF)
            i = octal.end()
        elif nxt == "x" and (hexa := _HEX.match(body, i + 2)):
            out.append(int(hexa.group(), 16))
            i = hexa.end()
        elif nxt == "u" and (code := _UNICODE.match(body, i + 2)) and int(code[1], 16) < 0x110000:
            out += chr(int(code[1], 16)).encode("utf-8", "surrogatepass")
            i = code.end()
        else:
            out += b"\\"
            i += 1
    return bytes(out).decode("utf-8", "surrogateescape")


def _string_end(text: str, start: int, quote: str) -> int:
    """Index just past the closing quote, or -1 when there is none."""
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == quote:
            return i + 1
        i += 1
    return -1


def tokenize(text: str) -> Iterator[Token]:
    """The tokens of ``text``, in order, covering every character exactly once."""
    pos, line, php = 0, 1, False
    n = len(text)
    while pos < n:
        if not php:
            opened = _OPEN_TAG.search(text, pos)
            end = opened.start() if opened else n
            if end > pos:
                yield Token(kind=Kind.HTML, text=text[pos:end], start=pos, end=end, line=line)
                line = _line_of(text, pos, line, end)
                pos = end
            if opened:
                yield Token(
                    kind=Kind.OPEN, text=opened.group(), start=pos, end=opened.end(), line=line
                )
                line = _line_of(text, pos, line, opened.end())
                pos, php = opened.end(), True
            continue
        token = _php_token(text, pos, line)
        yield token
        line = _line_of(text, pos, line, token.end)
        pos = token.end
        if token.kind is Kind.CLOSE:
            php = False


def _token(kind: Kind, text: str, pos: int, end: int, line: int, **extra: Any) -> Token:
    return Token(kind=kind, text=text[pos:end], start=pos, end=end, line=line, **extra)


def _lex_close(text: str, pos: int, line: int) -> Token | None:
    if not text.startswith("?>", pos):
        return None
    end = pos + 2
    if text.startswith("\r\n", end):
        end += 2
    elif text.startswith("\n", end):
        end += 1
    return _token(Kind.CLOSE, text, pos, end, line)


def _lex_comment(text: str, pos: int, line: int) -> Token | None:
    if text.startswith("/*", pos):
        close = text.find("*/", pos + 2)
        if close < 0:
            return _token(
                Kind.BAD, text, pos, len(text), line, problem=f"unterminated comment at line {line}"
            )
        return _token(Kind.COMMENT, text, pos, close + 2, line)
    if (text.startswith("#", pos) and not text.startswith("#[", pos)) or text.startswith("//", pos):
        end = pos
        while end < len(text) and text[end] != "\n" and not text.startswith("?>", end):
            end += 1
        return _token(Kind.COMMENT, text, pos, end, line)
    return None


def _lex_string(text: str, pos: int, line: int) -> Token | None:
    quote = text[pos]
    if quote not in "'\"`":
        return None
    end = _string_end(text, pos, quote)
    if end < 0:
        return _token(
            Kind.BAD, text, pos, len(text), line, problem=f"unterminated string at line {line}"
        )
    body = text[pos + 1 : end - 1]
    if quote == "'":
        return _token(Kind.STRING, text, pos, end, line, value=_single_quoted(body))
    if quote == "`":
        return _token(Kind.STRING, text, pos, end, line, problem="runs a shell command")
    if _INTERPOLATION.search(body.replace("\\\\", "").replace("\\$", "")):
        return _token(
            Kind.STRING, text, pos, end, line, problem="interpolates variables into a string"
        )
    return _token(Kind.STRING, text, pos, end, line, value=_double_quoted(body))


def _lex_heredoc(text: str, pos: int, line: int) -> Token | None:
    heredoc = _HEREDOC.match(text, pos)
    if heredoc is None:
        return None
    closing = re.compile(rf"^[ \t]*{re.escape(heredoc['label'])}\b", re.MULTILINE)
    found = closing.search(text, heredoc.end())
    if found is None:
        return _token(
            Kind.BAD, text, pos, len(text), line, problem=f"unterminated heredoc at line {line}"
        )
    return _token(Kind.HEREDOC, text, pos, found.end(), line, problem="is a heredoc")


def _lex_word(text: str, pos: int, line: int) -> Token | None:
    char = text[pos]
    if char.isdigit() or (char == "." and text[pos + 1 : pos + 2].isdigit()):
        number = _NUMBER.match(text, pos)
        if number:
            return _token(Kind.NUMBER, text, pos, number.end(), line, value=_number(number[0]))
    if variable := _VARIABLE.match(text, pos):
        return _token(Kind.VARIABLE, text, pos, variable.end(), line)
    if name := _NAME.match(text, pos):
        return _token(Kind.NAME, text, pos, name.end(), line)
    return None


def _lex_space(text: str, pos: int, line: int) -> Token | None:
    space = _SPACE.match(text, pos)
    return _token(Kind.SPACE, text, pos, space.end(), line) if space else None


_LEXERS = (_lex_space, _lex_close, _lex_comment, _lex_string, _lex_heredoc, _lex_word)


def _php_token(text: str, pos: int, line: int) -> Token:
    for lexer in _LEXERS:
        token = lexer(text, pos, line)
        if token is not None:
            return token
    for punct in _PUNCTS:
        if text.startswith(punct, pos):
            return _token(Kind.PUNCT, text, pos, pos + len(punct), line)
    return _token(Kind.PUNCT, text, pos, pos + 1, line)


_BASES = {"0x": 16, "0b": 2, "0o": 8}


def _number(literal: str) -> int | float:
    lower = literal.replace("_", "").lower()
    try:
        if lower[:2] in _BASES:
            return int(lower[2:], _BASES[lower[:2]])
        if "." in lower or "e" in lower:
            return float(lower)
        if len(lower) > 1 and lower.startswith("0"):  # PHP's old octal: 0755
            return int(lower, 8) if lower.isdigit() and "8" not in lower and "9" not in lower else 0
        return int(lower)
    except (ValueError, OverflowError):
        return 0


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
