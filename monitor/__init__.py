"""India-US news monitor: feeds -> bus -> classifier -> signals and alerts."""

from __future__ import annotations

__version__ = "0.1.0"
