"""Shared pytest fixtures. The bundle's ``scripts`` package and ``training`` are importable from here."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "monai_bundle"
SHARED = Path(os.environ.get("WDM_SHARED", REPO.parent / "shared"))

for p in (str(BUNDLE), str(REPO)):
    if p not in sys.path:
        sys.path.insert(0, p)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared (metric vectors, HMIF training split); skips the test when absent (a user's clone has none)."""
    if not (SHARED / "reference").is_dir():
        pytest.skip(f"../shared not found at {SHARED}: conformance data are only on the developers' machines")
    return SHARED


@pytest.fixture(scope="session")
def bundle_root() -> Path:
    return BUNDLE
