"""Where rezgen's default dashboards and templates live.

In a source checkout they are the top-level `dashboards/` and `templates/` directories, which people edit;
an installed wheel carries the same files as the packages `rezgen.default_dashboards` / `rezgen.default_templates`.
"""

from __future__ import annotations

from pathlib import Path


def resource_dir(name: str) -> Path:
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    import importlib.resources  # here: its import costs every command 10 ms, and a checkout does not need it

    return Path(str(importlib.resources.files(f"rezgen.default_{name}")))
