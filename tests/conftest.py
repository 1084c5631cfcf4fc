"""Shared pytest setup for every test folder."""

from __future__ import annotations

import sys
from pathlib import Path

# The test helpers live in tests/harness/ and are imported as ``harness``; make that work in any
# pytest import mode (importlib mode does not put tests/ on sys.path by itself).
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)
