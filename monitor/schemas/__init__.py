"""JSON Schema files of the event contracts (DESIGN §4), one per type, shipped in the package.

The files are generated from :mod:`monitor.events`; ``python -m monitor.schemas`` rewrites them and a test
checks that the shipped files match the code and validate real records.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from monitor.events import EVENT_TYPES, json_schema


def load_schema(event_type: str) -> dict[str, Any]:
    """The shipped JSON Schema of ``event_type`` (e.g. ``"ArticleScored"``)."""
    text = resources.files("monitor.schemas").joinpath(f"{event_type}.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def render(cls_name: str) -> str:
    cls = next(c for c in EVENT_TYPES if c.event_type == cls_name)
    return json.dumps(json_schema(cls), indent=2, sort_keys=True) + "\n"


def write_all(folder: Path) -> list[Path]:
    paths = []
    for cls in EVENT_TYPES:
        path = folder / f"{cls.event_type}.json"
        path.write_text(render(cls.event_type), encoding="utf-8")
        paths.append(path)
    return paths
