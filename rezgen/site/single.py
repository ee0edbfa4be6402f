"""`rezgen build --single-file report.html`: the static site as one self-contained HTML file, for a ticket.

The site is built as usual (in a temporary directory), then folded into its front page: styles and scripts inline,
every data script an inert block (`<script type="text/x-rezgen-data" data-src=…>`) that `single.js` runs when the
page asks for that file, and each other page a `<template>` the sidebar switches to (a tabbed document). Nothing
is left to fetch, so the file opens anywhere, from any directory, with no request leaving the page. The metric
browser (a data file per metric) and the query explorer (it needs a server) are left out of the report.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rezgen.errors import RezgenError
from rezgen.site.build import BuildReport, build_site

LEFT_OUT = ("metrics.html", "query.html")  # pages a single file does not carry (see the module's doc)
STYLE = re.compile(r'<link rel="stylesheet" href="(static/css/[^"]+)">')
SCRIPT = re.compile(r'<script src="(static/[^"]+)"></script>')
DATA_TAG = re.compile(r'<script defer src="data/[^"]*" id="section-data"></script>\n?')
BODY = re.compile(r'<body class="kind-([^"]*)" data-route="([^"]*)" data-kind="([^"]*)" data-data="([^"]*)"')
TITLE = re.compile(r'<h1 class="page-title">(.*?)</h1>', re.S)
CONTENT = re.compile(r'<main class="content" id="content">(.*?)</main>', re.S)
NAV_LINK = re.compile(r'\s*<li><a href="([^"]+)" data-nav[^>]*>.*?</a></li>', re.S)


class SingleFileError(RezgenError):
    """A site that cannot be folded into one file (a user template without the default page's landmarks)."""


def build_single_file(recording: Any, path: Path, **options: Any) -> tuple[BuildReport, int]:
    """Build the site of `recording` and write it as the one file `path` (temp + rename); (report, its size)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        report = build_site(recording, work / "site", **options)
        text = fold(work / "site")
        partial = work / "report.html"
        partial.write_text(text, encoding="utf-8")
        partial.chmod(0o644)
        os.replace(partial, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.output = path
    return report, path.stat().st_size


def fold(site: Path) -> str:
    """The site in `site` as one HTML document."""
    shell = (site / "index.html").read_text(encoding="utf-8")
    pages = [href for href in dict.fromkeys(NAV_LINK.findall(shell)) if href not in LEFT_OUT
             and (site / href).is_file()]
    templates = "".join(_template(site, href) for href in pages)
    shell = NAV_LINK.sub(lambda m: "" if m.group(1) in LEFT_OUT else m.group(0), shell)
    shell = DATA_TAG.sub("", shell)
    shell = STYLE.sub(lambda m: f"<style>\n{_read(site, m.group(1))}</style>", shell)
    blocks = "".join(_data_block(site, file) for file in sorted((site / "data").rglob("*.js"))
                     if "metrics" not in file.relative_to(site / "data").parts[1:2])
    first = shell.find('<script src="static/js/units.js">')
    if first < 0:
        raise SingleFileError("the page template has no units.js script to fold the report around")
    shell = shell[:first] + templates + blocks + shell[first:]

    def script(match: re.Match[str]) -> str:
        src = match.group(1)
        inline = f"<script>\n{_script_text(_read(site, src))}</script>"
        if src == "static/js/data.js":  # the single file's loader goes right after the one it wraps
            inline += f"\n<script>\n{_script_text(_read(site, 'static/js/single.js'))}</script>"
        return inline

    shell = SCRIPT.sub(script, shell)
    if re.search(r'(?<![\w-])(?:src|href)="(?:static|data)/', shell):
        raise SingleFileError("the page template refers to a file the report would not hold")
    return shell


def _template(site: Path, href: str) -> str:
    page = (site / href).read_text(encoding="utf-8")
    body, title, content = BODY.search(page), TITLE.search(page), CONTENT.search(page)
    if not (body and title and content):
        raise SingleFileError(f"{href}: the page template lacks the default page's body, title or content")
    name = html.escape(html.unescape(title.group(1).strip()), quote=True)
    return (f'<template data-href="{href}" data-route="{body.group(2)}" data-kind="{body.group(3)}" '
            f'data-data="{body.group(4)}" data-title="{name}">{content.group(1)}</template>\n')


def _data_block(site: Path, file: Path) -> str:
    text = file.read_text(encoding="ascii")  # data scripts are ASCII with <, > and & escaped (pages.model)
    if "</" in text:
        raise SingleFileError(f"{file}: a data script that could close its block")
    return f'<script type="text/x-rezgen-data" data-src="{file.relative_to(site).as_posix()}">{text}</script>\n'


def _read(site: Path, name: str) -> str:
    return (site / name).read_text(encoding="utf-8")


def _script_text(text: str) -> str:
    """A script's text made safe inside <script>…</script>: only `</script` (in a string, a regex or a comment,
    where `<\\/` means the same) or `<!--` could end or change the block."""
    if "<!--" in text:
        raise SingleFileError("a script holds '<!--', which would change how the report's HTML is read")
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.I)
