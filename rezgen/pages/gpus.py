"""The GPU picker: a section with `selector = "gpus"` on data with several GPUs lets the page show one GPU.

Its charts that are not per-GPU already (no `by (id)`: the averages, sums and ratios over every GPU) get a twin per
GPU whose query selects that GPU's series alone (`id="<gpu>"` added to each GPU metric's selector, as Rezolus's
picker does), in a hidden group per GPU: evaluated, pushed live and shipped like any plot, drawn only when the page
picks that GPU. A static site moves them out of the section's data file, into a file per GPU loaded when picked.
GPUs are named by their model from the system description (`systeminfo.gpus`, in `id` order) when it has them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any

from rezgen.dashboards import Group, Section
from rezgen.pages.catalog import quoted_label
from rezgen.store.store import Store

GPUS = "gpus"
GPU_PREFIXES = ("gpu_", "gpmu_")
BY_ID = re.compile(r"\bby\s*\(\s*id\s*\)")
GPU_SELECTOR = re.compile(r"\b((?:gpu|gpmu)_\w+)(?:\{([^}]*)\})?")
TWIN = "@gpu"  # a twin's id: <plot id>@gpu<id>


def gpu_ids(store: Store) -> list[str]:
    """The `id` values of the GPU metrics' series, in numeric order."""
    ids = {series.key.label("id") for series in store if series.key.metric.startswith(GPU_PREFIXES)}
    found = [i for i in ids if i]
    return sorted(found, key=lambda i: (not i.isdigit(), int(i) if i.isdigit() else 0, i))


def gpu_models(systeminfo: dict[str, Any] | None, ids: list[str]) -> dict[str, str]:
    """Each GPU's model name where the system description lists the GPUs (its list is in `id` order)."""
    listed = (systeminfo or {}).get("gpus")
    if not isinstance(listed, list):
        return {}
    out = {}
    for gpu in ids:
        if gpu.isdigit() and int(gpu) < len(listed) and isinstance(listed[int(gpu)], dict):
            name = listed[int(gpu)].get("name")
            if isinstance(name, str) and name:
                out[gpu] = name
    return out


def gpu_query(query: str, gpu: str) -> str:
    """The query over one GPU: `id="<gpu>"` added to every GPU metric's selector."""
    matcher = f'id="{quoted_label(gpu)}"'

    def one(match: re.Match[str]) -> str:
        inner = match.group(2)
        return f"{match.group(1)}{{{matcher}{', ' + inner if inner and inner.strip() else ''}}}"

    return GPU_SELECTOR.sub(one, query)


def with_gpu_twins(section: Section, store: Store) -> Section:
    """The section with a hidden group of per-GPU twins per GPU, when the data has several GPUs."""
    if section.selector != GPUS or any(g.hidden for g in section.groups):
        return section
    ids = gpu_ids(store)
    if len(ids) < 2:
        return section
    plots = [p for p in section.plots if p.kind != "heatmap" and not BY_ID.search(p.query)]
    twins = [Group(f"GPU {gpu}", [dataclasses.replace(p, id=f"{p.id}{TWIN}{gpu}", query=gpu_query(p.query, gpu))
                                  for p in plots], hidden=True) for gpu in ids]
    return dataclasses.replace(section, groups=[*section.groups, *twins])


def gpu_file(gpu: str) -> str:
    """The data file of one GPU's twins (a digest: `id` values come from the data)."""
    return hashlib.sha256(gpu.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def with_gpu_selector(section: Section, payload: dict[str, Any], systeminfo: dict[str, Any] | None,
                      files: bool = True) -> dict[str, dict[str, Any]]:
    """Adds the picker (`gpus`: ids, models, the plots it changes) to the payload of a section with twins (in
    place); with `files` (a static site), moves each GPU's twins out into a file of its own: {file: {gpu, plots}}."""
    hidden = [g for g in section.groups if g.hidden]
    if section.selector != GPUS or not hidden:
        return {}
    ids = [g.name.removeprefix("GPU ") for g in hidden]
    shown = {p["id"] for g in payload["groups"] for p in g["plots"]}
    changed = sorted({p.id.split(TWIN)[0] for g in hidden for p in g.plots if p.id in shown})
    payload["gpus"] = {"ids": ids, "models": gpu_models(systeminfo, ids), "plots": changed}
    if not files:
        return {}
    out = {}
    names = {g.name for g in hidden}
    for group in [g for g in payload["groups"] if g["name"] in names]:
        gpu = group["name"].removeprefix("GPU ")
        out[gpu_file(gpu)] = {"gpu": gpu, "plots": {p["id"].split(TWIN)[0]: p for p in group["plots"]}}
    payload["groups"] = [g for g in payload["groups"] if g["name"] not in names]
    payload["gpus"]["files"] = {gpu: gpu_file(gpu) for gpu in ids}
    return out
