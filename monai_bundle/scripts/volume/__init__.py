"""Volume fusion, Slicer-free: the same code serves the command line (``configs/inference.json``), the bundle's
evaluation (``configs/evaluate.json``), the demo and the 3D Slicer module.

Public API::

    from scripts.volume import Volume, FusionOptions, FusionInputError, FusionCancelled
    from scripts.volume import fuse_volumes, load_volume, save_volume

    a, b = load_volume("ct.nii.gz"), load_volume("mri.nrrd")
    fused = fuse_volumes(a, b, FusionOptions(task="CT-MRI", strength=0.5))
    save_volume(fused, "ct_fused.nii.gz")

Modules by role: :mod:`.types` (data types), :mod:`.options` (strict option checks), :mod:`.integrity` (inputs
read to the end and checked), :mod:`.io` (read / atomic write), :mod:`.outputs` (output claims, formats,
folders), :mod:`.geometry` (reference grid, overlap, slab resampling), :mod:`.normalize` (intensity presets),
:mod:`.plausibility` (intensity warnings), :mod:`.registration` (optional, checked rigid ITK registration),
:mod:`.slicing` (slice-wise inference), :mod:`.color_fusion` (PET/SPECT colour), :mod:`.pipeline` (the whole
fusion, slab by slab), :mod:`.runner` (command line and evaluation runners), :mod:`.engine` (the MONAI evaluator
that runs them over a dataset of pairs, one or several processes), :mod:`.cli` (strict command line, one line
per error).
"""

from .io import load_volume, save_volume
from .pipeline import fuse_volumes, fuse_volumes_detailed
from .types import FusionCancelled, FusionInputError, FusionOptions, FusionResult, Volume

__all__ = [
    "Volume",
    "FusionOptions",
    "FusionResult",
    "FusionInputError",
    "FusionCancelled",
    "fuse_volumes",
    "fuse_volumes_detailed",
    "load_volume",
    "save_volume",
]
