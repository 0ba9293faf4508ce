"""First-use dependency installation (WDualMineLib.dependencies), with the Slicer calls replaced by recorders."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "WDualMineExtension"))

from WDualMineLib import dependencies as deps  # noqa: E402

EVERY_REQUIREMENT = (deps.TORCH_REQUIREMENT, *deps.PIP_REQUIREMENTS,
                     *(r for group in deps.FEATURE_REQUIREMENTS.values() for r in group))
NOTHING_INSTALLED = {}
#: The project's own environment (.venv, built from requirements.txt) holds every package the module installs.
ALL_INSTALLED = {name: deps.installed_version(name) for name in (deps.split_requirement(r)[0] for r in EVERY_REQUIREMENT)}


class Recorder:
    """Plays Slicer for the installer: consent answer, pip, PyTorchUtils; installs update ``versions``."""

    def __init__(self, versions, consent=True, torch_utils=True, pip_error=None):
        self.versions, self.consent, self.pip_error = dict(versions), consent, pip_error
        self.has_torch_utils = torch_utils
        self.questions, self.pip_calls, self.torch_calls = [], [], []

    def confirm(self, text):
        self.questions.append(text)
        return self.consent

    def pip_install(self, args):
        self.pip_calls.append(args)
        if self.pip_error:
            raise self.pip_error
        for requirement in args[1:]:
            name, specifiers = deps.split_requirement(requirement)
            self.versions[name] = ALL_INSTALLED[name]

    def torch_utils(self):
        if not self.has_torch_utils:
            raise deps.DependencyError(deps.PYTORCH_EXTENSION_MISSING)
        recorder = self

        class PyTorchUtilsLogic:
            def installTorch(self, askConfirmation=False, forceComputationBackend=None, torchVersionRequirement=None):
                recorder.torch_calls.append((askConfirmation, torchVersionRequirement))
                recorder.versions["torch"] = "2.13.0"
                return object()

        return PyTorchUtilsLogic()

    def installer(self):
        return deps.DependencyInstaller(self.pip_install, self.confirm, self.torch_utils, self.versions.get)


def test_requirement_parsing_and_version_comparison():
    assert deps.split_requirement("setuptools>=77.0.3,<82") == ("setuptools", [(">=", "77.0.3"), ("<", "82")])
    assert deps.version_key("2.13.0+cpu") == (2, 13) and deps.version_key("1.6.1rc1") == (1, 6, 1)
    assert deps.satisfies("81.0.0", [(">=", "77.0.3"), ("<", "82")])
    assert not deps.satisfies("84.1", [("<", "82")])
    assert deps.satisfies("2.13.0+cpu", [(">=", "2.8")]) and not deps.satisfies("2.7.1", [(">=", "2.8")])
    assert deps.satisfies("1.6.1", [("==", "1.6.1")]) and not deps.satisfies(None, [])
    with pytest.raises(ValueError):
        deps.split_requirement("monai~=1.6")


def test_the_project_environment_meets_every_requirement_of_the_module():
    unmet = [r for r in EVERY_REQUIREMENT if not deps.satisfies(ALL_INSTALLED[deps.split_requirement(r)[0]],
                                                                   deps.split_requirement(r)[1])]
    assert unmet == []


def test_nothing_to_do_when_everything_is_installed():
    recorder = Recorder(ALL_INSTALLED)
    report = recorder.installer().ensure(features=("color", "register"))
    assert report.installed == [] and not report.needs_restart
    assert recorder.questions == recorder.pip_calls == recorder.torch_calls == []


def test_first_use_asks_once_then_installs_torch_via_pytorchutils_and_the_rest_with_no_deps():
    recorder = Recorder(NOTHING_INSTALLED)
    report = recorder.installer().ensure(ask=True)
    assert len(recorder.questions) == 1 and "monai==1.6.1" in recorder.questions[0]
    assert recorder.torch_calls == [(False, ">=2.8")]
    assert recorder.pip_calls == [["--no-deps", *deps.PIP_REQUIREMENTS]]
    assert report.installed == [deps.TORCH_REQUIREMENT, *deps.PIP_REQUIREMENTS]


def test_optional_features_add_their_packages_only_when_used():
    recorder = Recorder({k: v for k, v in ALL_INSTALLED.items() if not k.startswith("itk")})
    installer = recorder.installer()
    assert installer.missing() == [] and installer.missing(("color",)) == []
    assert installer.missing(("register",)) == list(deps.FEATURE_REQUIREMENTS["register"])
    installer.ensure(ask=False, features=("register",))
    assert recorder.pip_calls == [["--no-deps", *deps.FEATURE_REQUIREMENTS["register"]]]


def test_an_outdated_setuptools_alone_is_replaced():
    recorder = Recorder({**ALL_INSTALLED, "setuptools": "84.0.0"})
    recorder.installer().ensure(ask=False)
    assert recorder.questions == [] and recorder.pip_calls == [["--no-deps", "setuptools>=77.0.3,<82"]]


def test_declining_consent_installs_nothing_and_says_why():
    recorder = Recorder(NOTHING_INSTALLED, consent=False)
    with pytest.raises(deps.DependencyError, match="declined"):
        recorder.installer().ensure()
    assert recorder.pip_calls == recorder.torch_calls == []


def test_missing_pytorch_extension_tells_the_user_to_install_it():
    recorder = Recorder({k: v for k, v in ALL_INSTALLED.items() if k != "torch"}, torch_utils=False)
    with pytest.raises(deps.DependencyError, match="Extensions Manager"):
        recorder.installer().ensure(ask=False)
    assert recorder.pip_calls == []


def test_pip_failure_becomes_a_message_with_advice():
    recorder = Recorder({**ALL_INSTALLED, "monai": None}, pip_error=OSError("proxy refused"))
    with pytest.raises(deps.DependencyError, match="proxy refused.*internet connection"):
        recorder.installer().ensure(ask=False)


def test_replacing_an_already_imported_package_asks_for_a_restart(monkeypatch):
    monkeypatch.setitem(sys.modules, "monai", object())
    recorder = Recorder({**ALL_INSTALLED, "monai": "1.5.0"})
    report = recorder.installer().ensure(ask=False)
    assert report.needs_restart and "monai" in report.restart_reason and "Restart Slicer" in report.restart_reason


def test_torch_and_simpleitk_are_never_pip_installed():
    names = {deps.split_requirement(r)[0].lower() for r in deps.PIP_REQUIREMENTS}
    assert not names & set(deps.PROTECTED_PACKAGES)
    recorder = Recorder(NOTHING_INSTALLED)
    with pytest.raises(deps.DependencyError, match="refusing"):
        recorder.installer()._pip(["SimpleITK==2.4"])


def test_pins_agree_with_the_repository_requirements():
    pinned = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            pinned[re.split(r"[<>=!~\[]", line)[0].lower()] = line.replace(" ", "")
    checked = 0
    for requirement in EVERY_REQUIREMENT:
        name, specifiers = deps.split_requirement(requirement)
        if specifiers and name.lower() in pinned and name != "torch":
            assert pinned[name.lower()] == requirement, f"{requirement} differs from requirements.txt"
            checked += 1
    assert checked >= 5
