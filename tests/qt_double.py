"""Qt side of the ``FakeSlicer`` test double: the widgets of the module's real ``.ui`` file, signals, QTimer.

Qt properties emit their change signal only when the value changes, spin boxes clamp and round like Qt, and
slots receive as many signal arguments as they accept (PythonQt's rule). ``load_ui`` builds the fakes from
the ``.ui`` file itself, so reading a widget name that the file does not define fails as it would in Slicer.
"""
from __future__ import annotations

import inspect
import xml.etree.ElementTree as ET


def _call_slot(slot, args):
    """Call ``slot`` with as many leading ``args`` as it accepts, like PythonQt."""
    try:
        params = inspect.signature(slot).parameters.values()
    except (TypeError, ValueError):
        return slot(*args)
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return slot(*args)
    return slot(*args[: sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)])


class FakeSignal:
    def __init__(self):
        self.slots = []

    def connect(self, slot):
        self.slots.append(slot)

    def emit(self, *args):
        for slot in list(self.slots):
            _call_slot(slot, args)


class FakeWidget:
    """A Qt widget: properties that emit ``<signal>`` on change (see ``SIGNALS``), enabled/visible/toolTip."""

    SIGNALS: dict = {}

    def __init__(self, name, properties):
        self.objectName, self.enabled, self.visible, self.toolTip = name, True, True, ""
        for signal in set(self.SIGNALS.values()) | {"clicked"}:
            object.__setattr__(self, signal, FakeSignal())
        for key, value in properties.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, key, value):
        old = self.__dict__.get(key, object())
        object.__setattr__(self, key, self._coerce(key, value))
        if key in self.SIGNALS and self.__dict__[key] != old:
            getattr(self, self.SIGNALS[key]).emit(self.__dict__[key])

    def _coerce(self, key, value):
        return value

    def connect(self, signature, slot):
        """PythonQt's string form, ``widget.connect("clicked(bool)", slot)``."""
        getattr(self, signature.split("(")[0]).connect(slot)

    def hide(self):
        self.visible = False

    def setVisible(self, visible):
        self.visible = bool(visible)


class FakeComboBox(FakeWidget):
    SIGNALS = {"currentIndex": "currentIndexChanged"}

    def __init__(self, name, properties):
        super().__init__(name, {"items": [], "currentIndex": -1, **properties})

    def clear(self):
        self.items.clear()
        self.currentIndex = -1

    def addItem(self, text):
        self.items.append(text)
        if self.currentIndex < 0:
            self.currentIndex = 0

    def _coerce(self, key, value):
        if key == "currentIndex" and not -1 <= value < len(self.items):
            return self.__dict__.get("currentIndex", -1)  # Qt ignores an out-of-range index
        return value


class FakeCheckBox(FakeWidget):
    SIGNALS = {"checked": "toggled"}

    def __init__(self, name, properties):
        super().__init__(name, {"checked": False, **properties})


class FakeSpinBox(FakeWidget):
    """QSpinBox / QDoubleSpinBox / ctkSliderWidget: clamps to [minimum, maximum], rounds to ``decimals``."""

    SIGNALS = {"value": "valueChanged"}

    def __init__(self, name, properties, integer=False, defaults=(0.0, 99.0, 2)):
        self.__dict__["integer"] = integer
        low, high, decimals = defaults
        super().__init__(name, {"minimum": low, "maximum": high, "decimals": decimals, "value": low, **properties})

    def _coerce(self, key, value):
        if key != "value":
            return value
        value = min(max(value, self.__dict__["minimum"]), self.__dict__["maximum"])
        return int(round(value)) if self.integer else round(float(value), self.__dict__["decimals"])


class FakeNodeComboBox(FakeWidget):
    """qMRMLNodeComboBox: ``currentNode()``, ``setCurrentNode``, ``currentNodeID``, ``currentNodeChanged``."""

    SIGNALS = {"_node": "currentNodeChanged"}

    def __init__(self, name, properties):
        super().__init__(name, {"_node": None, **properties})

    def setMRMLScene(self, scene):
        self.scene = scene

    def currentNode(self):
        return self._node

    def setCurrentNode(self, node):
        self._node = node

    @property
    def currentNodeID(self):
        return self._node.GetID() if self._node is not None else ""


class FakeProgressBar(FakeWidget):
    def __init__(self, name, properties):
        super().__init__(name, {"value": 0, "format": "%p%", **properties})


class FakeRootWidget(FakeWidget):
    def __init__(self, name, children):
        super().__init__(name, {})
        self.children = children

    def setMRMLScene(self, scene):
        for child in self.children.values():
            if isinstance(child, FakeNodeComboBox):
                child.setMRMLScene(scene)


WIDGET_CLASSES = {
    "QComboBox": FakeComboBox,
    "QCheckBox": FakeCheckBox,
    "QSpinBox": lambda n, p: FakeSpinBox(n, p, integer=True),
    "QDoubleSpinBox": FakeSpinBox,
    "ctkSliderWidget": lambda n, p: FakeSpinBox(n, p, defaults=(0.0, 100.0, 2)),
    "qMRMLNodeComboBox": FakeNodeComboBox,
    "QProgressBar": FakeProgressBar,
}


def _ui_property(element):
    """The Python value of a ``<property>`` element of a .ui file (numbers, booleans, strings)."""
    value = element[0]
    if value.tag in ("number", "double"):
        return float(value.text) if value.tag == "double" else int(value.text)
    if value.tag == "bool":
        return value.text == "true"
    return value.text or ""


def load_ui(path):
    """``slicer.util.loadUI``: a root widget whose named children are fakes made from the .ui file."""
    root_element = ET.parse(path).getroot().find("widget")
    children = {}
    for element in root_element.iter("widget"):
        if element is root_element:
            continue
        props = {p.get("name"): _ui_property(p) for p in element.findall("property") if len(p)}
        make = WIDGET_CLASSES.get(element.get("class"), FakeWidget)
        children[element.get("name")] = make(element.get("name"), props)
    return FakeRootWidget(root_element.get("name"), children)


class FakeTimer:
    """qt.QTimer; ``FakeSlicer.fire_timers`` plays the event loop."""

    def __init__(self, registry):
        self.timeout, self.active, self.interval, self.singleShot = FakeSignal(), False, 0, False
        registry.append(self)

    def setSingleShot(self, single):
        self.singleShot = single

    def setInterval(self, msec):
        self.interval = msec

    def start(self):
        self.active = True

    def stop(self):
        self.active = False
