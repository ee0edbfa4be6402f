"""The static site's Fleet page (data with several hosts): the page and its KPIs' data scripts (see pages.fleet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from rezgen.pages.fleet import FLEET_DATA, KPIS, fleet_page, kpi_payload
from rezgen.pages.model import data_script
from rezgen.pages.templating import write_page


def fleet_data(recording: Any) -> dict[str, dict[str, Any]]:
    """Each KPI's payload, by id."""
    start, end = recording.time_range
    return {kpi.id: kpi_payload(recording.store, kpi, start, end, recording.interval_ns) for kpi in KPIS}


def write_fleet(env: jinja2.Environment, work: Path, site: dict[str, Any], payloads: dict[str, dict[str, Any]],
                events: list[dict[str, Any]]) -> str:
    """Writes fleet.html and its data; the page's name."""
    for kpi_id, payload in payloads.items():
        data = work / FLEET_DATA.format(kpi=kpi_id)
        data.parent.mkdir(parents=True, exist_ok=True)
        data.write_bytes(data_script(f"fleet/{kpi_id}", payload))
    write_page(env, "fleet.html", work / "fleet.html", site=site, page=fleet_page(), events=events)
    return "fleet.html"
