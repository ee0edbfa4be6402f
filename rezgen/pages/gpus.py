"""The GPU picker: a section with `selector = "gpus"` on data with several GPUs lets the page show one GPU.

Its charts that are not per-GPU already (no `by (id)`: the averages, sums and ratios over every GPU) are evaluated
once more per GPU, with the GPU's `id` added to the scope (the series of other GPUs left out, as Rezolus's picker
adds `id="<gpu>"` to such queries), into a data file per GPU; the page swaps them in when a GPU is picked. GPUs are
named by their model from the system description (`systeminfo.gpus`, in `id` order) when it has them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from rezgen.dashboards import Plot, Section
from rezgen.plotdata.evaluation import Scope
from rezgen.store.store import Store

GPUS = "gpus"
GPU_PREFIXES = ("gpu_", "gpmu_")
BY_ID = re.compile(r"\bby\s*\(\s*id\s*\)")


def gpu_ids(store: Store) -> list[str]:
    """The `id` values of the GPU metrics' series, in numeric order."""
    ids = {series.key.label("id") for series in store if series.key.metric.startswith(GPU_PREFIXES)} - {None, ""}
    return sorted((i for i in ids if i is not None), key=lambda i: (not i.isdigit(), int(i) if i.isdigit() else 0, i))


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


def filterable(section: Section) -> list[Plot]:
    """The section's plots a GPU pick changes: those not per GPU already."""
    return [p for p in section.plots if p.kind != "heatmap" and not BY_ID.search(p.query)]


def gpu_file(gpu: str) -> str:
    """The data file of one GPU's charts (a digest: `id` values come from the data)."""
    return hashlib.sha256(gpu.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def with_gpu_selector(section: Section, payload: dict[str, Any], store: Store, systeminfo: dict[str, Any] | None,
                      scope: Scope, evaluate: Callable[[Plot, Scope], dict[str, Any] | None]
                      ) -> dict[str, dict[str, Any]]:
    """Adds the picker (`gpus`) to the payload of a GPU section on data with several GPUs (in place) and returns
    each GPU's data file, {file: {gpu, plots}}; {} otherwise. `evaluate(plot, scope)` gives a plot's data."""
    if section.selector != GPUS:
        return {}
    ids = gpu_ids(store)
    if len(ids) < 2:
        return {}
    shown = {p["id"] for g in payload["groups"] for p in g["plots"]}
    plots = [p for p in filterable(section) if p.id in shown]
    files = {}
    for gpu in ids:
        data = {p.id: d for p in plots if (d := evaluate(p, (*scope, ("id", gpu)))) is not None}
        files[gpu_file(gpu)] = {"gpu": gpu, "plots": data}
    models = gpu_models(systeminfo, ids)
    payload["gpus"] = {"ids": ids, "models": models, "files": {gpu: gpu_file(gpu) for gpu in ids},
                       "plots": [p.id for p in plots]}
    return files
