"""Fusion methods of the benchmark: names, their one parameter, and batched fusion of Y-channel pairs.

A method is a family with an optional numeric parameter, written ``family@param`` (also its output folder):
``wdualmine@0.5`` is the bundle network at residual strength 0.5, ``blend@0.1`` the mean-max blend at mu 0.1,
plain ``mean`` / ``max`` / ``dwt`` / ``lp`` / ``gff`` the classical rules of :mod:`training.baselines`, and
plain ``wdualmine`` the network at the strength it was loaded with.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from training.baselines import BASELINES, DEFAULT_PARAMS, fuse_baseline

NETWORK = "wdualmine"


@dataclass(frozen=True)
class Method:
    """One fusion method: ``family`` (``wdualmine`` or a baseline) and its optional parameter."""

    family: str
    param: float | None = None

    @property
    def label(self) -> str:
        """``family`` or ``family@param`` (``%g``): the output folder and the row name in every table."""
        return self.family if self.param is None else f"{self.family}@{self.param:g}"

    @classmethod
    def from_label(cls, label: str) -> "Method":
        """Inverse of :attr:`label`; any other folder name (an external method's outputs) is a plain family."""
        family, sep, value = label.partition("@")
        if sep:
            try:
                return cls(family, float(value))
            except ValueError:
                pass
        return cls(label)

    def sort_key(self) -> tuple:
        """Baselines in :data:`BASELINES` order, then other families by name, the network last; param ascending."""
        families = list(BASELINES)
        rank = families.index(self.family) if self.family in families else (len(families) + (self.family == NETWORK))
        return rank, self.family, -1.0 if self.param is None else self.param


def expand_methods(names: Iterable[str], strengths: Iterable[float] = (), mus: Iterable[float] = (),
                   gains: Iterable[float] = (), lams: Iterable[float] = ()) -> list[Method]:
    """Methods from CLI names: ``wdualmine`` expands to one method per ``strengths`` value (when given),
    ``blend`` to one per ``mus`` value, ``gain`` to one per ``gains`` value and ``select`` to one per ``lams`` value
    (the default parameter when none);
    ``family@param`` is taken as written."""
    strengths = list(strengths)
    params = {"blend": list(mus), "gain": list(gains), "select": list(lams)}
    out: list[Method] = []
    for name in (n.strip() for n in names):
        if not name:
            continue
        method = Method.from_label(name)
        if method.family != NETWORK and method.family not in BASELINES:
            raise ValueError(f"unknown method {name!r}; expected {NETWORK} or one of {', '.join(BASELINES)}")
        if method.param is not None:
            out.append(method)
        elif method.family == NETWORK:
            out += [Method(NETWORK, s) for s in strengths] or [method]
        elif method.family in DEFAULT_PARAMS:
            values = params.get(method.family, [])
            out += [Method(method.family, v) for v in values] or [Method(method.family, DEFAULT_PARAMS[method.family][1])]
        else:
            out.append(method)
    return list(dict.fromkeys(out))  # drop repeats, keep order


def shipped_architecture(residual_mode: str | None = None, decoder: str | None = None,
                         overrides: dict | None = None) -> dict:
    """The architecture of the shipped weights as ``configs/inference.json`` declares it (channels, residual mode
    and decoder), with optional overrides for weights trained otherwise (ablations: any keyword of
    ``scripts.network.WDualMine`` in ``overrides``, e.g. ``{"gate": False}``)."""
    from monai.bundle import ConfigParser

    config = ConfigParser()
    config.read_config(str(Path(__file__).resolve().parents[1] / "monai_bundle" / "configs" / "inference.json"))
    kwargs = {key: config[key] for key in ("channels", "residual_mode", "decoder")}
    if residual_mode is not None:
        kwargs["residual_mode"] = residual_mode
    if decoder is not None:
        kwargs["decoder"] = decoder
    return {**kwargs, **(overrides or {})}


class NetworkFuser:
    """The bundle's W-DUALMINE for one task, run on batches under ``torch.inference_mode``."""

    def __init__(self, task: str, models_dir: str | Path | None = None, device: str | None = None,
                 threads: int | None = None, network_kwargs: dict | None = None):
        import torch
        from scripts.weights import load_network, weights_file

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.network = load_network(task, weights_file(models_dir), device=self.device, **(network_kwargs or {}))
        self.default_strength = float(self.network.strength)

    def __call__(self, x: np.ndarray, strength: float | None = None) -> np.ndarray:
        """(B, 2, H, W) float in [0, 1] (functional/CT Y, MRI) -> (B, H, W) fused float32 in [0, 1]."""
        torch = self._torch
        self.network.strength = self.default_strength if strength is None else float(strength)
        with torch.inference_mode():
            out = self.network(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device))
        return out[:, 0].float().cpu().numpy()


def fuse_batch(method: Method, x: np.ndarray, network: NetworkFuser | None = None) -> np.ndarray:
    """Fuse a (B, 2, H, W) batch of Y-channel pairs with ``method`` -> (B, H, W) in [0, 1]."""
    if method.family == NETWORK:
        if network is None:
            raise ValueError("the wdualmine method needs a loaded network")
        return network(x, method.param)
    return np.stack([fuse_baseline(method.family, pair[0], pair[1], method.param) for pair in x])
