"""The two recordings of a compare, as the command line names them: `[ALIAS=]PATH`.

An alias names a recording's series and legend everywhere (`base`, `exp p99`); it defaults to the file name's stem.
Aliases go into chart series names, HTML and JSON, so they are kept to a small safe alphabet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from rezgen.errors import RezgenError

ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,31}")


class CompareError(RezgenError):
    """Arguments of a compare that cannot work: not two recordings, a bad or repeated alias."""


@dataclass(frozen=True)
class Input:
    alias: str
    path: Path


def parse_input(argument: str) -> Input:
    """`ALIAS=PATH` or `PATH`; an existing file whose name holds "=" is a path, not an alias."""
    if "=" in argument and not Path(argument).exists():
        alias, named = argument.split("=", 1)
        if not ALIAS.fullmatch(alias):
            raise CompareError(f"bad alias {alias!r}: use up to 32 letters, digits or _.+- (starting with a letter "
                               f"or digit)")
        if not named:
            raise CompareError(f"alias {alias!r} names no recording")
        return Input(alias, Path(named))
    path = Path(argument)
    alias = re.sub(r"[^A-Za-z0-9_.+-]", "_", path.stem)[:32].lstrip("_.+-") or "recording"
    return Input(alias, path)


def parse_inputs(arguments: tuple[str, ...] | list[str]) -> tuple[Input, Input]:
    """Exactly two recordings with different aliases (the second of two equal stems becomes `<stem>-2`)."""
    if len(arguments) != 2:
        raise CompareError(f"a compare takes two recordings, not {len(arguments)}")
    a, b = (parse_input(argument) for argument in arguments)
    if a.alias == b.alias:
        if "=" in arguments[1] and not Path(arguments[1]).exists():
            raise CompareError(f"both recordings are named {a.alias!r}: give them different aliases")
        b = Input(f"{b.alias[:30]}-2", b.path)
    return a, b
