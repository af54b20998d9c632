"""A small reader of gettext .po files (the subset makemessages writes), for the translation tests.

No package needed: each entry's context, singular, plural, translations and flags.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Entry:
    msgctxt: str | None = None
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False


def _unquote(text: str) -> str:
    return ast.literal_eval(text) if text else ""


def read_po(path: Path) -> list[Entry]:
    """Every entry of the file, the header (msgid "") included, in order."""
    entries: list[Entry] = []
    entry = Entry()
    key: tuple[str, int] | None = None
    started = False

    def finish() -> None:
        nonlocal entry, key, started
        if started:
            entries.append(entry)
        entry, key, started = Entry(), None, False

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):
            entry.obsolete = True
            continue
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        started = True
        if line.startswith('"'):
            if key is None:
                raise ValueError(f"{path}: a continuation line with nothing to continue: {raw!r}")
            name, index = key
            value = _unquote(line)
            if name == "msgstr":
                entry.msgstr[index] += value
            else:
                setattr(entry, name, (getattr(entry, name) or "") + value)
            continue
        word, _, rest = line.partition(" ")
        if word.startswith("msgstr["):
            index = int(word[len("msgstr[") : -1])
            entry.msgstr[index] = _unquote(rest)
            key = ("msgstr", index)
        elif word == "msgstr":
            entry.msgstr[0] = _unquote(rest)
            key = ("msgstr", 0)
        elif word in ("msgid", "msgid_plural", "msgctxt"):
            if word == "msgctxt" or (word == "msgid" and entry.msgid):
                pass
            setattr(entry, word, _unquote(rest))
            key = (word, 0)
        else:
            raise ValueError(f"{path}: a line this reader does not know: {raw!r}")
    finish()
    return entries
