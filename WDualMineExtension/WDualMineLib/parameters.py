"""The module's settings: one dataclass, its mapping to ``FusionOptions`` and to the MRML parameter node.

The parameter node (a ``vtkMRMLScriptedModuleNode``) stores strings, so every setting is written with
``SetParameter(name, text)`` and read back with ``GetParameter(name)``; it is saved with the scene. Input
volumes are node references, handled by the widget (``REFERENCE_ROLE``, ``SECOND_ROLE``, ``OUTPUT_ROLE``).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from . import bundle

#: Task presets, in the order the task combo box lists them (modality A first, MRI second).
TASKS = ("CT-MRI", "PET-MRI", "SPECT-MRI")
#: Tasks with a colour (RGB) output: the functional image is shown through a colour map.
COLOR_TASKS = ("PET-MRI", "SPECT-MRI")
#: Compute devices offered to the user.
DEVICES = ("auto", "cuda", "cpu")
#: Intensity normalisation kinds: the pipeline's per-task default, a window, or percentiles.
NORM_KINDS = ("auto", "window", "percentile")
#: Slice axes offered to the user: -1 lets the pipeline choose, else the voxel axis i, j or k.
SLICE_AXES = (-1, 0, 1, 2)
#: The grid of the output: ``b`` the MRI (the default: usually the finer grid) or ``a`` the CT/PET/SPECT.
REFERENCES = ("b", "a")


def _task_defaults():
    """The bundle's ``scripts/task_defaults.py`` (plain Python, no torch: usable before installing packages)."""
    return bundle.import_bundle_module(bundle.find_bundle(), "task_defaults")


def task_default_strength(task: str) -> float:
    """The bundle's default detail strength of ``task``."""
    return _task_defaults().default_strength(task)


def strength_range() -> tuple[float, float]:
    """The documented strength range (the bundle's ``STRENGTH_RANGE``), the bounds of the panel's slider."""
    return tuple(_task_defaults().STRENGTH_RANGE)


REFERENCE_ROLE = "ReferenceVolume"
SECOND_ROLE = "SecondVolume"
OUTPUT_ROLE = "OutputVolume"


@dataclass
class NormOverride:
    """Normalisation of one input: ``auto``, ``window`` (first = level, second = width) or ``percentile``
    (first = low, second = high, in percent)."""

    kind: str = "auto"
    first: float = 0.0
    second: float = 0.0

    def to_option(self) -> dict | None:
        """The ``norm_a`` / ``norm_b`` dictionary of ``FusionOptions``; ``None`` for the pipeline's default."""
        if self.kind == "auto":
            return None
        if self.kind == "window":
            if self.second <= 0:
                raise ValueError(f"window width must be positive, got {self.second}")
            return {"kind": "window", "level": float(self.first), "width": float(self.second)}
        if self.kind == "percentile":
            if not 0.0 <= self.first < self.second <= 100.0:
                raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {self.first}, {self.second}")
            return {"kind": "percentile", "low": float(self.first), "high": float(self.second)}
        raise ValueError(f"unknown normalisation kind {self.kind!r}; expected one of {NORM_KINDS}")


@dataclass
class FusionSettings:
    """Everything the user chooses besides the input volumes."""

    task: str = "CT-MRI"
    strength: float = field(default_factory=lambda: task_default_strength("CT-MRI"))
    device: str = "auto"
    slice_axis: int = -1
    register: bool = False
    color: bool = False
    batch_size: int = 8
    preview: bool = False
    reference: str = "b"
    norm_a: NormOverride = field(default_factory=NormOverride)
    norm_b: NormOverride = field(default_factory=NormOverride)

    def options_kwargs(self) -> dict:
        """Keyword arguments of the bundle's ``FusionOptions`` (input ``a`` is the CT/PET/SPECT, ``b`` the MRI);
        a ValueError names the setting that is out of range (the same checks as the command line)."""
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {TASKS}")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r}; expected one of {DEVICES}")
        if self.reference not in REFERENCES:
            raise ValueError(f"unknown output grid {self.reference!r}; expected one of {REFERENCES}")
        if int(self.batch_size) < 1:
            raise ValueError(f"Slices per batch must be at least 1, got {self.batch_size}")
        return {
            "task": self.task,
            "strength": _task_defaults().check_strength(self.strength),
            "reference": self.reference,
            "slice_axis": None if self.slice_axis < 0 else int(self.slice_axis),
            "device": self.device,
            "batch_size": int(self.batch_size),
            "register": bool(self.register),
            "norm_a": self.norm_a.to_option(),
            "norm_b": self.norm_b.to_option(),
            "color": bool(self.color),
        }

    def features(self, preview: bool = False) -> tuple[str, ...]:
        """Optional features this run needs packages for (``dependencies.FEATURE_REQUIREMENTS``).

        The live preview never registers, so it needs no registration packages.
        """
        wanted = (("color", self.color), ("register", self.register and not preview))
        return tuple(name for name, on in wanted if on)

    def to_parameters(self) -> dict[str, str]:
        """Flat ``{parameter name: text}`` view, e.g. ``{"Strength": "0.5", "NormAKind": "window", ...}``."""
        out = {}
        for name, owner, attr in _leaves(self):
            value = getattr(owner, attr)
            out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return out

    @classmethod
    def from_parameters(cls, parameters: dict[str, str]) -> "FusionSettings":
        """Inverse of :meth:`to_parameters`; missing or empty entries keep their defaults."""
        settings = cls()
        for name, owner, attr in _leaves(settings):
            text = parameters.get(name, "")
            if text != "":
                setattr(owner, attr, _parse(name, text, type(getattr(owner, attr))))
        return settings


def _parameter_name(*parts: str) -> str:
    """``("norm_a", "kind")`` -> ``"NormAKind"``."""
    return "".join(word.capitalize() for part in parts for word in part.split("_"))


def _leaves(settings: FusionSettings):
    """Yield ``(parameter name, owning object, attribute)`` for every leaf setting, nested ones included."""
    for f in fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, NormOverride):
            for sub in fields(value):
                yield _parameter_name(f.name, sub.name), value, sub.name
        else:
            yield _parameter_name(f.name), settings, f.name


def _parse(name: str, text: str, kind: type):
    """Text of parameter ``name`` from the parameter node -> a value of the setting's type; a ValueError that
    names the parameter when the text is not one (e.g. a scene edited by hand)."""
    if kind is bool:
        word = text.strip().lower()
        if word not in ("true", "1", "yes", "false", "0", "no"):
            raise ValueError(f"parameter {name} of the W-DUALMINE parameter node must be true or false, got {text!r}")
        return word in ("true", "1", "yes")
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"parameter {name} of the W-DUALMINE parameter node must be a {kind.__name__}, got "
                         f"{text!r}; set it again in the module panel") from None


def save_settings(parameter_node, settings: FusionSettings) -> None:
    """Write every setting into the parameter node (``SetParameter``)."""
    for name, text in settings.to_parameters().items():
        parameter_node.SetParameter(name, text)


def load_settings(parameter_node) -> FusionSettings:
    """Read the settings from the parameter node (``GetParameter``), defaults for what it lacks."""
    names = FusionSettings().to_parameters()
    return FusionSettings.from_parameters({name: parameter_node.GetParameter(name) or "" for name in names})
