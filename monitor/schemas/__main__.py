"""``python -m monitor.schemas``: regenerate the shipped JSON Schema files from the event types."""

from __future__ import annotations

from pathlib import Path

from monitor.schemas import write_all

for written in write_all(Path(__file__).parent):
    print(written)
