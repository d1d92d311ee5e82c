"""Safe file names for ids that come from outside: namespaces, workflow ids, run ids, app names.

A name means the same thing on every filesystem, so two ids never share a file:

- it is ASCII made of `a-z 0-9 - _ .` and escapes, so Unicode normalisation (macOS) cannot
  merge two names, and it has no uppercase letters: `X` is written `!x`, so case-insensitive
  filesystems cannot merge them either (the Go module cache escapes uppercase the same way);
- every other character is its UTF-8 bytes as `%hh` (lowercase hex): `/`, `\\`, NUL, control
  characters and spaces cannot reach the filesystem;
- a leading dot (hidden, `..`) and a trailing dot (stripped by Windows) are escaped, as is the
  first letter of a Windows device name (`con`, `nul.txt`, `com1`); the empty id is `=`;
- an encoding longer than MAX_NAME keeps a readable prefix and ends in `~` and 40 hex digits of
  the id's SHA-256, so paths stay short for ids of any length. Short names never contain `~`.

`decode_name` inverts a short name exactly; a hashed name's id is kept beside it by the caller
(a run's metadata file).
"""

from __future__ import annotations

import hashlib
import re
import string

__all__ = ["MAX_NAME", "decode_name", "encode_name", "is_hashed"]

MAX_NAME = 100
"""The longest name written out in full; longer encodings are hashed (see module docstring)."""

_LITERAL = frozenset(string.ascii_lowercase + string.digits + "-_.")
_UPPER = frozenset(string.ascii_uppercase)
_EMPTY = "="
_HASH_MARK = "~"
_HASH_DIGITS = 40
_PREFIX_LIMIT = MAX_NAME - 1 - _HASH_DIGITS
_DEVICES = frozenset(
    ["con", "prn", "aux", "nul"] + [f"{stem}{n}" for stem in ("com", "lpt") for n in range(10)]
)
_HEX = re.compile("[0-9a-f]{2}")


def _escape(char: str) -> str:
    raw = char.encode("utf-8", "surrogatepass")
    return "".join(f"%{byte:02x}" for byte in raw)


def _token(char: str) -> str:
    if char in _LITERAL:
        return char
    if char in _UPPER:
        return "!" + char.lower()
    return _escape(char)


def _is_device(name: str) -> bool:
    return name.split(".", 1)[0] in _DEVICES


def encode_name(value: str) -> str:
    """The file name of `value`: one safe path component, distinct for distinct values."""
    if not value:
        return _EMPTY
    tokens = [_token(char) for char in value]
    if value[0] == ".":
        tokens[0] = _escape(".")
    if value[-1] == ".":
        tokens[-1] = _escape(".")
    name = "".join(tokens)
    if _is_device(name):
        tokens[0] = _escape(value[0])
        name = "".join(tokens)
    if len(name) <= MAX_NAME:
        return name
    prefix, size = [], 0
    for token in tokens:
        if size + len(token) > _PREFIX_LIMIT:
            break
        prefix.append(token)
        size += len(token)
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return "".join(prefix) + _HASH_MARK + digest[:_HASH_DIGITS]


def is_hashed(name: str) -> bool:
    """Whether `name` is a hashed one, whose full id is kept elsewhere."""
    return _HASH_MARK in name


def decode_name(name: str) -> str | None:
    """The id whose name is `name`, or None for a hashed name. Raises ValueError for a name
    `encode_name` would not write."""
    if is_hashed(name):
        return None
    if name == _EMPTY:
        return ""
    raw, i = bytearray(), 0
    while i < len(name):
        char = name[i]
        if char in _LITERAL:
            raw.append(ord(char))
            i += 1
        elif char == "!" and name[i + 1 : i + 2] in _LITERAL and name[i + 1].isalpha():
            raw.append(ord(name[i + 1].upper()))
            i += 2
        elif char == "%" and _HEX.fullmatch(name[i + 1 : i + 3]):
            raw.append(int(name[i + 1 : i + 3], 16))
            i += 3
        else:
            raise ValueError(f"not a runhistory file name: {name!r} (at {i})")
    try:
        value = raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise ValueError(f"not a runhistory file name: {name!r} (bad UTF-8)") from None
    if encode_name(value) != name:
        raise ValueError(f"not a runhistory file name: {name!r} (not canonical)")
    return value
