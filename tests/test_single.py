"""`rezgen build --single-file`: one self-contained HTML file of the whole report, opened in a real headless
Chromium from a directory where it is alone, with every request recorded."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from browser import launched
from shared import shared_recording

from rezgen.site.single import SingleFileError, fold

REGISTER = re.compile(r'REZGEN\.register\("([^"]*)",(.*)\);\s*\Z', re.S)
GOAL_BYTES = 15_000_000


def rezgen(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rezgen", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def c16() -> Path:
    return shared_recording("c16.parquet")


@pytest.fixture(scope="module")
def report(c16: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = tmp_path_factory.mktemp("built") / "report.html"
    done = rezgen("build", c16, "--single-file", built, "-q")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {built} (")
    alone = tmp_path_factory.mktemp("alone") / "report.html"
    alone.write_bytes(built.read_bytes())
    assert [p.name for p in built.parent.iterdir()] == ["report.html"], "no temporary files are left behind"
    return alone


@pytest.fixture(scope="module")
def site(c16: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    assert rezgen("build", c16, "-o", out, "-q").returncode == 0
    return out


def test_the_c16_report_is_one_file_within_the_size_goal(report: Path):
    assert [p.name for p in report.parent.iterdir()] == ["report.html"]
    assert report.stat().st_size <= GOAL_BYTES
    # No tag of the page itself refers to a file but to a page the report holds as a template (service pages'
    # names have dashes); the scripts' own text is checked by the browser test below.
    text = report.read_text()
    held = set(re.findall(r'<template data-href="([^"]+)"', text))
    markup = re.sub(r"<(script|style|template)\b[^>]*>.*?</\1>", "", text, flags=re.S)
    links = re.findall(r'\s(?:src|href)="(?!#)([^"]*)"', markup)
    assert links and set(links) <= held, "no file is referred to"

def test_a_template_without_the_default_landmarks_is_one_clear_error(site: Path, tmp_path: Path):
    broken = tmp_path / "site"
    (broken / "data").mkdir(parents=True)
    (broken / "index.html").write_text("<html><body><p>mine</p></body></html>")
    with pytest.raises(SingleFileError, match=r"units\.js"):
        fold(broken)


@pytest.mark.browser
def test_the_report_opens_from_disk_with_no_request_leaving_the_page(report: Path, site: Path):
    with launched() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        requests: list[str] = []
        context.route("**/*", lambda route: (requests.append(route.request.url), route.abort()))
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        # The file itself is the only thing the browser reads: let that one through.
        context.unroute("**/*")
        context.route(lambda url: url != report.as_uri(), lambda route: (requests.append(route.request.url),
                                                                         route.abort()))
        page.goto(report.as_uri())
        page.wait_for_function("() => REZGEN.state.charts.length > 0", timeout=20000)
        # Every section's data is the directory site's data file, as it is.
        for route in ("overview", "cpu", "syscall"):
            held = page.evaluate(f"document.querySelector('script[data-src=\"data/_/{route}.js\"]').textContent")
            assert held == (site / "data" / "_" / f"{route}.js").read_text()
            assert json.loads(REGISTER.match(held).group(2))["route"] == route
        tabs = page.eval_on_selector_all(".nav a[data-nav]", "links => links.map(a => a.getAttribute('href'))")
        assert "metrics.html" not in tabs and "query.html" not in tabs and "system.html" in tabs
        for href in tabs:
            page.click(f'.nav a[href="{href}"]')
            title = page.text_content(f'.nav a[href="{href}"] .nav-label')
            assert page.text_content(".page-title") == title
            if href != "system.html":
                page.wait_for_function("() => REZGEN.state.charts.length > 0", timeout=20000)
        # A spectrum comes from the file too.
        page.click('.nav a[href="syscall.html"]')
        page.wait_for_function("() => REZGEN.state.charts.length > 0")
        page.locator('.panel:has([data-plot-id="syscall-total-latency"]) [data-spectrum="tail"]').click()
        page.wait_for_function("""() => document.querySelector('[data-plot-id="syscall-total-latency"]')
                                  .__rezgen.kind === 'spectrum'""")
        assert page.url == report.as_uri()
        assert requests == [] and errors == []
        context.close()
