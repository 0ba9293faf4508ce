"""Find the W-DUALMINE MONAI bundle and import its volume pipeline (``scripts.volume``) and weights loader.

Slicer and the command line share one implementation of fusion: the bundle's ``scripts`` package. The
module looks for the bundle, in this order:

1. the folder named by the environment variable ``WDUALMINE_BUNDLE`` (a developer's override);
2. ``<module dir>/Resources/WDualMineBundle`` - where the extension's CMake installs ``monai_bundle`` (scripts,
   configs, models) in a built extension;
3. ``<module dir>/../monai_bundle`` - the repository layout, when the module is added from a source checkout.

A folder qualifies when it holds the volume pipeline, ``scripts/volume/`` (or a single ``scripts/volume.py``).
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

BUNDLE_ENV = "WDUALMINE_BUNDLE"
MODULE_DIR = Path(__file__).resolve().parents[1]


class BundleNotFoundError(FileNotFoundError):
    """The bundle folder is not where the module looks for it."""


def candidate_dirs(module_dir: Path = MODULE_DIR) -> list[Path]:
    """The places searched for the bundle, in order of preference."""
    dirs = []
    if os.environ.get(BUNDLE_ENV):
        dirs.append(Path(os.environ[BUNDLE_ENV]).expanduser())
    dirs += [module_dir / "Resources" / "WDualMineBundle", module_dir.parent / "monai_bundle"]
    return dirs


def has_pipeline(folder: Path) -> bool:
    """Whether ``folder`` holds the bundle's volume pipeline (a package or a single module)."""
    scripts = folder / "scripts"
    return (scripts / "volume" / "__init__.py").is_file() or (scripts / "volume.py").is_file()


def find_bundle(module_dir: Path = MODULE_DIR) -> Path:
    """The first candidate folder that holds the volume pipeline."""
    for candidate in candidate_dirs(module_dir):
        if has_pipeline(candidate):
            return candidate.resolve()
    searched = "\n".join(f"  {d}" for d in candidate_dirs(module_dir))
    raise BundleNotFoundError(
        "The W-DUALMINE bundle was not found. Searched:\n"
        f"{searched}\nSet the environment variable {BUNDLE_ENV} to the monai_bundle folder, or rebuild the extension."
    )


def import_bundle_module(bundle_dir: Path, name: str):
    """Import ``scripts.<name>`` from ``bundle_dir``, refusing a different package that is also called ``scripts``."""
    bundle_dir = Path(bundle_dir).resolve()
    if str(bundle_dir) not in sys.path:
        sys.path.insert(0, str(bundle_dir))
    loaded = sys.modules.get("scripts")
    if loaded is not None:
        origin = Path(getattr(loaded, "__file__", "") or "").resolve()
        if bundle_dir not in origin.parents:
            raise ImportError(
                f"Another Python package named 'scripts' is already loaded from {origin}; "
                "restart Slicer so that the W-DUALMINE bundle's package can be imported."
            )
    return importlib.import_module(f"scripts.{name}")
