"""Installs the Python packages the module needs into Slicer's Python: on first use, with the user's consent.

* ``torch`` comes from the PyTorch extension's ``PyTorchUtils`` (it picks the CUDA or CPU build that fits the
  computer). When that extension is missing the user is told to install it; this module never pip-installs torch.
* ``monai`` and ``pytorch_wavelets`` are pinned and installed with ``slicer.util.pip_install([... "--no-deps"])``
  together with the rest of what they need (``six``, ``PyWavelets``), so pip can never replace Slicer's own
  ``torch``, ``SimpleITK`` or ``numpy``. ``pytorch_wavelets`` imports ``pkg_resources``, which setuptools 82
  removed, hence ``setuptools<82``.
* Colour output needs matplotlib and rigid registration needs ITK (``itk``, not Slicer's SimpleITK); they are
  installed the first time those options are used.
* A package that was already imported in this Slicer session and gets replaced needs a restart; the report says so.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import re
import sys
from dataclasses import dataclass, field
from typing import Callable

#: monai 1.6.1 needs torch >= 2.8.
TORCH_REQUIREMENT = "torch>=2.8"
#: What any fusion needs besides torch and numpy, complete (``--no-deps``): monai and pytorch_wavelets, whose
#: declared dependencies would drag in torch; PyWavelets, which pytorch_wavelets imports without declaring it;
#: pillow for the bundle's data module.
PIP_REQUIREMENTS = (
    "setuptools>=77.0.3,<82", "six", "PyWavelets==1.9.0", "monai==1.6.1", "pytorch-wavelets==1.3.0", "pillow",
)
#: Extra packages of optional features (colour output: matplotlib's colour maps; rigid registration: ITK),
#: each list complete so that it too installs with ``--no-deps`` and cannot upgrade Slicer's numpy.
FEATURE_REQUIREMENTS = {
    "color": ("matplotlib==3.11.2", "contourpy", "cycler", "fonttools", "kiwisolver", "pyparsing",
              "python-dateutil", "tzdata", "packaging"),
    "register": ("itk==5.4.7", "itk-core==5.4.7", "itk-numerics==5.4.7", "itk-io==5.4.7", "itk-filtering==5.4.7",
                 "itk-registration==5.4.7", "itk-segmentation==5.4.7"),
}
#: Packages Slicer ships or manages itself, which this module must never ask pip to install.
PROTECTED_PACKAGES = ("torch", "simpleitk")
#: Import names that differ from the distribution name, to tell whether replacing it needs a restart.
IMPORT_NAMES = {
    "setuptools": ("setuptools", "pkg_resources"),
    "pywavelets": ("pywt",),
    "pillow": ("PIL",),
    "python-dateutil": ("dateutil",),
}
PYTORCH_EXTENSION_MISSING = (
    "W-DUALMINE needs PyTorch, which Slicer installs through the PyTorch extension. Open the Extensions "
    "Manager (View > Extensions Manager), install 'PyTorch', restart Slicer, then click Apply again."
)


class DependencyError(RuntimeError):
    """A dependency is missing and could not (or may not) be installed; the message tells the user what to do."""


def split_requirement(text: str) -> tuple[str, list[tuple[str, str]]]:
    """``"setuptools>=77.0.3,<82"`` -> ``("setuptools", [(">=", "77.0.3"), ("<", "82")])``."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", text)
    if not match:
        raise ValueError(f"not a requirement: {text!r}")
    name, rest = match.groups()
    specifiers = []
    for part in filter(None, (p.strip() for p in rest.split(","))):
        spec = re.fullmatch(r"(==|>=|<=|>|<|!=)\s*([0-9][0-9A-Za-z.+\-]*)", part)
        if not spec:
            raise ValueError(f"unsupported version specifier {part!r} in {text!r}")
        specifiers.append(spec.groups())
    return name, specifiers


def version_key(version: str) -> tuple[int, ...]:
    """Numeric release part of a version: ``"2.13.0+cpu"`` -> ``(2, 13, 0)``; ``"1.6.1rc1"`` -> ``(1, 6, 1)``."""
    release = re.match(r"[0-9]+(\.[0-9]+)*", version.strip())
    if not release:
        raise ValueError(f"not a version: {version!r}")
    key = [int(p) for p in release.group(0).split(".")]
    while len(key) > 1 and key[-1] == 0:
        key.pop()
    return tuple(key)


def satisfies(version: str | None, specifiers: list[tuple[str, str]]) -> bool:
    """Whether an installed ``version`` (``None`` = not installed) meets every specifier."""
    if version is None:
        return False
    have = version_key(version)
    tests = {
        "==": lambda w: have == w, "!=": lambda w: have != w, ">=": lambda w: have >= w,
        "<=": lambda w: have <= w, ">": lambda w: have > w, "<": lambda w: have < w,
    }
    return all(tests[op](version_key(wanted)) for op, wanted in specifiers)


def installed_version(name: str) -> str | None:
    """Version of an installed distribution, or ``None``."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass
class InstallReport:
    """What :meth:`DependencyInstaller.ensure` did."""

    installed: list[str] = field(default_factory=list)
    restart_reason: str | None = None

    @property
    def needs_restart(self) -> bool:
        return self.restart_reason is not None


def _slicer_pip_install(args: list[str]) -> None:
    import slicer

    slicer.util.pip_install(args)


def _slicer_confirm(text: str) -> bool:
    import slicer

    return bool(slicer.util.confirmOkCancelDisplay(text, windowTitle="W-DUALMINE: install dependencies"))


def _slicer_torch_utils():
    try:
        import PyTorchUtils
    except ImportError as error:
        raise DependencyError(PYTORCH_EXTENSION_MISSING) from error
    return PyTorchUtils.PyTorchUtilsLogic()


class DependencyInstaller:
    """Checks and installs the module's Python dependencies. The Slicer calls are injectable for tests."""

    def __init__(
        self,
        pip_install: Callable[[list[str]], None] = _slicer_pip_install,
        confirm: Callable[[str], bool] = _slicer_confirm,
        torch_utils: Callable[[], object] = _slicer_torch_utils,
        version_of: Callable[[str], str | None] = installed_version,
    ):
        self._pip_install = pip_install
        self._confirm = confirm
        self._torch_utils = torch_utils
        self._version_of = version_of

    def missing(self, features: tuple[str, ...] = ()) -> list[str]:
        """Requirements (torch's included) of fusion with ``features`` that the environment does not satisfy."""
        wanted = [TORCH_REQUIREMENT, *PIP_REQUIREMENTS]
        for feature in features:
            wanted += FEATURE_REQUIREMENTS[feature]
        return [r for r in wanted if not self._satisfied(r)]

    def _satisfied(self, requirement: str) -> bool:
        name, specifiers = split_requirement(requirement)
        return satisfies(self._version_of(name), specifiers)

    def ensure(self, ask: bool = True, features: tuple[str, ...] = ()) -> InstallReport:
        """Install what fusion with ``features`` lacks (asking first when ``ask``).

        Raises :class:`DependencyError` on refusal or failure.
        """
        report = InstallReport()
        missing = self.missing(features)
        if not missing:
            return report
        if ask and not self._confirm(
            "W-DUALMINE needs these Python packages, which are not installed yet:\n  "
            + "\n  ".join(missing)
            + "\n\nDownload and install them now? This takes a few minutes and needs an internet connection."
        ):
            raise DependencyError("Installation declined: W-DUALMINE cannot run without " + ", ".join(missing) + ".")
        reasons = [self._replaced_in_session(r) for r in missing]
        if TORCH_REQUIREMENT in missing:
            self._install_torch()
        packages = [r for r in missing if r != TORCH_REQUIREMENT]
        if packages:
            self._pip(packages)
        importlib.invalidate_caches()
        still = self.missing(features)
        if still:
            raise DependencyError("Installation finished but these requirements are still not met: " + ", ".join(still))
        report.installed = missing
        reasons = [r for r in reasons if r]
        if reasons:
            report.restart_reason = (
                "Restart Slicer to finish the installation: " + "; ".join(reasons) + " was already loaded in this session."
            )
        return report

    def _replaced_in_session(self, requirement: str) -> str | None:
        """The package name when a module it provides is already imported (replacing it then needs a restart)."""
        name = split_requirement(requirement)[0].lower()
        default = ("itk",) if name.startswith("itk") else (name.replace("-", "_"),)
        if any(module in sys.modules for module in IMPORT_NAMES.get(name, default)):
            return name
        return None

    def _install_torch(self) -> None:
        logic = self._torch_utils()
        _, specifiers = split_requirement(TORCH_REQUIREMENT)
        version_requirement = ",".join(op + v for op, v in specifiers)
        if logic.installTorch(askConfirmation=False, torchVersionRequirement=version_requirement) is None:
            raise DependencyError("PyTorch was not installed. Install it from the PyTorch Utils module, then try again.")

    def _pip(self, requirements: list[str]) -> None:
        for requirement in requirements:
            if split_requirement(requirement)[0].lower() in PROTECTED_PACKAGES:
                raise DependencyError(f"refusing to pip-install {requirement}: Slicer manages that package itself")
        try:
            self._pip_install(["--no-deps", *requirements])
        except Exception as error:
            raise DependencyError(
                f"pip could not install {' '.join(requirements)} ({error}). Check the internet connection and proxy "
                "settings, then try again; see Troubleshooting in the module's README for installing by hand."
            ) from error
