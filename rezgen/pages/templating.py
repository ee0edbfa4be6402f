"""The Jinja2 environment of the pages: user templates over the defaults, compiled before any data is computed,
and a page rendered to its file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from rezgen.errors import RezgenError
from rezgen.pages.model import render
from rezgen.resources import resource_dir


class SiteError(RezgenError):
    """A template problem; the message is one line for the user."""


PAGE_TEMPLATES = ("section.html", "metrics.html", "system.html")


def template_environment(templates: Path | None = None) -> jinja2.Environment:
    """User templates (if any) first, then the defaults, which stay reachable as `default:<name>`.

    The page templates are compiled here, so a broken one is reported before any data is computed.
    """
    if templates is not None and not Path(templates).is_dir():
        raise SiteError(f"{templates}: no such templates directory")
    default = jinja2.FileSystemLoader(str(resource_dir("templates")))
    loaders: list[jinja2.BaseLoader] = [jinja2.FileSystemLoader(str(templates))] if templates else []
    loaders += [default, jinja2.PrefixLoader({"default": default}, delimiter=":")]
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), autoescape=True, undefined=jinja2.StrictUndefined,
                             bytecode_cache=_bytecode_cache())
    for name in PAGE_TEMPLATES:
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            raise SiteError(f"{exc.filename or exc.name}:{exc.lineno}: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise SiteError(f"template {name}: {exc.message or exc}") from None
    return env


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates kept across builds (compiling them costs a build ~0.1 s): Jinja's cache in a private
    directory of the temporary directory, keyed by each template's source, so an edited template is compiled
    again. None where that directory cannot be made."""
    try:
        return jinja2.FileSystemBytecodeCache()
    except (OSError, RuntimeError):
        return None


def write_page(env: jinja2.Environment, template: str, path: Path, **context: Any) -> None:
    try:
        html = render(env, template, **context)
    except jinja2.TemplateError as exc:
        raise SiteError(f"template {template}: {exc.message or exc}") from None
    path.write_text(html, encoding="utf-8")
