"""The PHP tokenizer behind :mod:`healer_wordpress.php`, which is where to import it from.

Source is read the way PHP's own lexer reads it: comments are comments, strings are decoded
with PHP's escape rules for both quote styles, and only literal strings and numbers are given
a value (a string that interpolates or runs a shell command says why it has none). Nothing here
raises on bad input: an unterminated string, heredoc or comment becomes a ``BAD`` token, the
rest of the file. Offsets are into the text, and the tokens cover every character exactly once.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from typing import Any

import attrs

__all__ = ["Kind", "Scalar", "Token", "tokenize"]

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
