"""The bundle declares what it needs, as the MONAI model zoo installs it.

The zoo's CI (``ci/get_bundle_requirements.py``) installs exactly ``monai_version``, ``pytorch_version``,
``numpy_version`` and the ``required_packages_version`` / ``optional_packages_version`` entries of
``configs/metadata.json`` as ``name==version`` before it runs a bundle. So every third-party module that the
bundle's code imports (``scripts/**/*.py``, the configs' ``"$import ..."`` lines and dotted ``_target_`` names)
must map to a declared distribution, at the version installed here and pinned in ``requirements.txt``.
"""
from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "monai_bundle"
META = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
OWN_PACKAGE = "scripts"  # the bundle's own code

# metadata keys of the three packages the bundle specification names, and of the rest
VERSION_KEYS = {"monai": "monai_version", "torch": "pytorch_version", "numpy": "numpy_version"}
PACKAGE_KEYS = ("required_packages_version", "optional_packages_version")

# Declared although no import in the bundle names them; each reason is checked below.
NOT_IMPORTED = {
    "tensorboard": "TensorBoardStatsHandler in configs/train.json writes through torch.utils.tensorboard",
    "pywavelets": "pytorch_wavelets imports pywt without declaring it in its distribution's requirements",
    "setuptools": "pytorch_wavelets 1.3.0 imports pkg_resources, which setuptools >= 82 no longer ships",
}


def normalize(name: str) -> str:
    """PEP 503 name: pytorch_wavelets, PyTorch-Wavelets and pytorch.wavelets are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> dict[str, str]:
    """Normalized distribution name -> declared version, over every key the zoo installs from."""
    versions = {dist: META[key] for dist, key in VERSION_KEYS.items()}
    for key in PACKAGE_KEYS:
        versions.update(META.get(key, {}))
    return {normalize(name): version for name, version in versions.items()}


def python_imports(source: str) -> set[str]:
    """Top-level modules of the absolute imports in Python source (relative imports are the file's package)."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def config_strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_" and isinstance(value, str):
                yield "_target_", value
            else:
                yield from config_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from config_strings(value)
    elif isinstance(node, str):
        yield "value", node


def config_imports(config: Path) -> set[str]:
    """Modules of the "$import ..." / "$from ... import" expressions and of the dotted _target_ names."""
    modules = set()
    for kind, text in config_strings(json.loads(config.read_text())):
        if kind == "_target_" and "." in text:  # a bare name is resolved among MONAI's components
            modules.add(text.split(".")[0])
        elif kind == "value" and re.match(r"\$\s*(import|from)\s", text):
            modules |= python_imports(text[1:].strip())
    return modules


def bundle_imports() -> dict[str, list[str]]:
    """Top-level third-party module -> the bundle files that import it."""
    found: dict[str, set[str]] = {}
    sources = [(p, python_imports(p.read_text())) for p in sorted(BUNDLE.glob("scripts/**/*.py"))]
    sources += [(p, config_imports(p)) for p in sorted(BUNDLE.glob("configs/*.json")) if p.name != "metadata.json"]
    for path, modules in sources:
        for module in modules:
            found.setdefault(module, set()).add(str(path.relative_to(BUNDLE)))
    return {
        module: sorted(files)
        for module, files in found.items()
        if module not in sys.stdlib_module_names and module != OWN_PACKAGE
    }


def providers(module: str) -> set[str]:
    return {normalize(d) for d in importlib.metadata.packages_distributions().get(module, [])}


def meta_package_parts(dist: str) -> set[str]:
    """The requirements of a distribution that ships no module of its own (``itk`` installs ``itk-core`` etc.)."""
    shipping = {normalize(d) for ds in importlib.metadata.packages_distributions().values() for d in ds}
    if dist in shipping:
        return set()
    parts = set()
    for line in importlib.metadata.requires(dist) or []:
        requirement = Requirement(line)
        if requirement.marker is None:
            parts.add(normalize(requirement.name))
    return parts


def covering_distributions() -> dict[str, str]:
    """Every distribution a declared one puts in place -> the declared one."""
    covered = {}
    for dist in declared():
        covered[dist] = dist
        for part in meta_package_parts(dist):
            covered.setdefault(part, dist)
    return covered


def pinned() -> dict[str, Requirement]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            requirement = Requirement(line)
            pins[normalize(requirement.name)] = requirement
    return pins


def test_the_scan_finds_the_bundle_imports():
    """The scan itself: the imports every part of the bundle is known to make are among those it reports."""
    imports = bundle_imports()
    assert {"torch", "monai", "numpy", "pytorch_wavelets"} <= set(imports)
    assert "configs/train.json" in imports["torch"]  # "$import torch" and the torch.optim.Adam _target_
    assert "scripts/wavelets.py" in imports["pytorch_wavelets"]
    assert not {"os", "json", "logging", OWN_PACKAGE} & set(imports)


def test_every_imported_package_is_declared_in_the_metadata():
    covered = covering_distributions()
    undeclared = []
    for module, files in sorted(bundle_imports().items()):
        dists = providers(module)
        assert dists, f"{module} (imported by {files}) is not installed: no distribution provides it"
        if not dists & set(covered):
            undeclared.append(f"{module} (distribution {sorted(dists)}, imported by {', '.join(files)})")
    assert not undeclared, "imported but not declared in configs/metadata.json: " + "; ".join(undeclared)


def test_every_declared_package_is_needed():
    """No stale entry: each declared distribution is imported by the bundle or is in NOT_IMPORTED."""
    covered = covering_distributions()
    used = {covered[d] for module in bundle_imports() for d in providers(module) if d in covered}
    not_imported = set(declared()) - used
    stale = not_imported - set(NOT_IMPORTED)
    assert not stale, f"declared in configs/metadata.json, imported nowhere in the bundle: {sorted(stale)}"
    assert not_imported == set(NOT_IMPORTED), f"NOT_IMPORTED lists imported or undeclared packages: {not_imported}"


def test_the_declared_but_not_imported_packages_are_needed():
    assert "TensorBoardStatsHandler" in (BUNDLE / "configs" / "train.json").read_text()
    wavelets = Path(importlib.util.find_spec("pytorch_wavelets").origin).parent
    wavelet_imports = set().union(*(python_imports(p.read_text()) for p in wavelets.rglob("*.py")))
    assert {"pywt", "pkg_resources"} <= wavelet_imports
    own_requirements = {normalize(Requirement(r).name) for r in importlib.metadata.requires("pytorch-wavelets")}
    assert not {"pywavelets", "setuptools"} & own_requirements  # hence declared by the bundle
    assert providers("pywt") == {"pywavelets"} and providers("pkg_resources") == {"setuptools"}
    assert Version(declared()["setuptools"]) < Version("82")


def test_declared_versions_are_the_installed_and_pinned_ones():
    pins = pinned()
    wrong = []
    for dist, version in sorted(declared().items()):
        installed = Version(importlib.metadata.version(dist)).public  # 2.13.0+cpu is torch 2.13.0
        if installed != Version(version).public:
            wrong.append(f"{dist}: declared {version}, installed {installed}")
        if dist not in pins:
            wrong.append(f"{dist}: declared {version}, not in requirements.txt")
        elif not pins[dist].specifier.contains(version):
            wrong.append(f"{dist}: declared {version}, requirements.txt pins {pins[dist]}")
    assert not wrong, "; ".join(wrong)


def test_metadata_uses_one_package_key():
    """MONAI >= 1.4 renames ``optional_packages_version`` to ``required_packages_version`` when it reads the
    metadata (a deprecated alias), so a bundle that used both would lose one list: only the current key."""
    assert "required_packages_version" in META and "optional_packages_version" not in META
