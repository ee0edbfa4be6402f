"""Every document a code comment cites exists in docs/, and every cited section has a heading there.

Citation forms: a path (`docs/recording-format.md`), a file name (`dashboards.md`, `agent-protocol.md`), or a
short name followed by a section sign: "format doc" / "recording-format" (docs/recording-format.md), "protocol" /
"agent-protocol" (docs/agent-protocol.md). Section references are `§N`, `§N.M`, lists (`§1.1, §2.9`) and ranges
(`§1–3`, `§1.7–1.8`, `§2.3–§2.5`); each section of a range must have a heading (`## N.` or `### N.M`).

In rezgen/ and templates/ every section sign must belong to a document: the nearest one cited before it in the
same file. In tests/ and benchmarks/ only section signs on the same line as a document are checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
STRICT_ROOTS = ("rezgen", "templates")
LOOSE_ROOTS = ("tests", "benchmarks")
SUFFIXES = {".py", ".js", ".html", ".css", ".toml"}

ALIASES = {"format doc": "recording-format", "recording-format": "recording-format",
           "agent-protocol": "agent-protocol", "protocol": "agent-protocol"}
DOC = re.compile(
    r"docs/(?P<path>[a-z][a-z0-9_-]*)\.md"
    r"|\b(?P<file>[a-z][a-z0-9_-]*)\.md\b"
    r"|\b(?P<alias>format doc|recording-format|agent-protocol|protocol)\b",
    re.IGNORECASE,
)
SECTION = re.compile(r"§\s?(\d+(?:\.\d+)*)(?:\s?[–-]\s?§?\s?(\d+(?:\.\d+)*))?")
ALIAS_REACH = re.compile(r'[^"\n§]{0,30}§')  # a short name cites a document only when a section sign follows
HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)


def _sections(first: str, last: str | None) -> list[str]:
    """The sections a reference names: `2.3–2.5` is 2.3, 2.4 and 2.5."""
    if last is None:
        return [first]
    a, b = first.split("."), last.split(".")
    if len(a) == len(b) and a[:-1] == b[:-1] and int(a[-1]) <= int(b[-1]):
        return [".".join([*a[:-1], str(n)]) for n in range(int(a[-1]), int(b[-1]) + 1)]
    return [first, last]


def citations() -> list[tuple[str, str | None, str | None]]:
    """(where, document name or None for a section sign with no document, section or None)."""
    found = []
    for root, strict in [(r, True) for r in STRICT_ROOTS] + [(r, False) for r in LOOSE_ROOTS]:
        for path in sorted((ROOT / root).rglob("*")):
            if path.suffix not in SUFFIXES or path == Path(__file__).resolve() or not path.is_file():
                continue
            current = None  # the document the next section sign belongs to
            for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                where = f"{path.relative_to(ROOT)}:{number}"
                if not strict:
                    current = None
                events = [(m.start(), "doc", m) for m in DOC.finditer(line)]
                events += [(m.start(), "section", m) for m in SECTION.finditer(line)]
                for _, kind, match in sorted(events, key=lambda e: e[0]):
                    if kind == "doc":
                        name = match["path"] or match["file"]
                        if name is None:
                            if not ALIAS_REACH.match(line, match.end()):
                                continue
                            name = ALIASES[match["alias"].lower()]
                        elif match["file"] and name.lower() == "readme":
                            continue
                        current = name
                        found.append((where, name, None))
                    elif current is not None or strict:
                        for section in _sections(match[1], match[2]):
                            found.append((where, current, section))
    return found


def headings(name: str) -> list[str]:
    return HEADING.findall((DOCS / f"{name}.md").read_text(encoding="utf-8"))


def test_the_scan_finds_the_citations():
    found = citations()
    assert {name for _, name, _ in found} >= {"recording-format", "agent-protocol", "dashboards"}
    assert ("rezgen/agent/schema.py:1", "agent-protocol", "2.6") in found
    assert _sections("1", "3") == ["1", "2", "3"] and _sections("2.3", "2.5") == ["2.3", "2.4", "2.5"]


def test_every_cited_document_and_section_exists():
    problems = []
    for where, name, section in citations():
        if name is None:
            problems.append(f"{where}: §{section} follows no cited document")
        elif not (DOCS / f"{name}.md").is_file():
            problems.append(f"{where}: docs/{name}.md does not exist")
        elif section is not None and section not in headings(name):
            problems.append(f"{where}: docs/{name}.md has no section {section}")
    assert not problems, "\n".join(dict.fromkeys(problems))


@pytest.mark.parametrize("doc", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_section_numbers_are_unique(doc):
    numbers = headings(doc.stem)
    assert len(numbers) == len(set(numbers)), [n for n in numbers if numbers.count(n) > 1]
