"""The static site's Fleet page (data with several hosts): the page and its data script (see pages.fleet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from rezgen.pages.fleet import FLEET_DATA, FLEET_KEY, fleet_page, fleet_payload
from rezgen.pages.model import data_script
from rezgen.pages.templating import write_page


def fleet_data(recording: Any) -> dict[str, Any]:
    """The page's payload."""
    start, end = recording.time_range
    return fleet_payload(recording.store, start, end, recording.interval_ns)


def write_fleet(env: jinja2.Environment, work: Path, site: dict[str, Any], payload: dict[str, Any],
                events: list[dict[str, Any]]) -> str:
    """Writes fleet.html and its data; the page's name."""
    data = work / FLEET_DATA
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_bytes(data_script(FLEET_KEY, payload))
    write_page(env, "fleet.html", work / "fleet.html", site=site, page=fleet_page(), events=events)
    return "fleet.html"
