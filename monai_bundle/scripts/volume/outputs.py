"""Output files of the command line: supported formats, folders created only as needed, and exclusive claims.

A run *claims* each output before it reads any volume: it creates ``.<name>.lock`` beside it with
``O_CREAT | O_EXCL`` (atomic on local and NFSv3+ file systems), holding the process id and host name. A second
run that wants the same file finds the lock and stops at once with a message naming the holder, instead of
both computing and the last one silently winning. A lock whose process is gone (same host) is stale - the run
was killed - and is taken over; the ``.<name>.*.part*`` temporary files of that interrupted run
(:func:`scripts.volume.io.partial_name`) are deleted at the same moment, while the lock guarantees that nobody
is writing them. Claiming also proves that the folder is writable.

:class:`OutputFolders` remembers which folders a run created, so that a run that fails leaves no new empty
folder behind.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from .io import error_reason
from .types import FusionInputError

__all__ = ["WRITABLE_SUFFIXES", "check_output_suffix", "OutputFolders", "OutputClaim"]

#: Extensions of the 3-D formats the writers support: NIfTI (nibabel), NRRD and MetaImage (ITK).
WRITABLE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
_STARTING = 10.0  # seconds: a lock without a process id yet is that young at most


def check_output_suffix(suffix: str) -> str:
    """``suffix`` (e.g. ``_fused.nii.gz``) when it ends in a writable 3-D format; else a FusionInputError."""
    if not isinstance(suffix, str) or not suffix.lower().endswith(WRITABLE_SUFFIXES) or "/" in suffix:
        raise FusionInputError(
            f"unsupported --output_suffix {suffix!r}: it must end in a 3-D volume format, "
            f"one of {', '.join(WRITABLE_SUFFIXES)} (e.g. '_fused.nii.gz')"
        )
    return suffix


class OutputFolders:
    """Creates output folders and removes, on :meth:`remove_unused`, those it created that stayed empty."""

    def __init__(self):
        self.created: list[Path] = []

    def make(self, folder: Path) -> None:
        """Create ``folder`` and its missing parents (remembered); a FusionInputError when that fails."""
        missing = []
        probe = Path(folder).absolute()
        while not probe.exists() and probe != probe.parent:
            missing.append(probe)
            probe = probe.parent
        blocker = next((p for p in Path(folder).absolute().parents if p.is_file()), None)
        if Path(folder).is_file() or blocker is not None:
            raise FusionInputError(
                f"the output folder {folder} cannot be created: {blocker or folder} is a file; "
                "choose another --output_dir"
            )
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FusionInputError(f"cannot create the output folder {folder}: {error_reason(exc)}") from exc
        self.created.extend(missing)  # deepest first

    def remove_unused(self) -> None:
        """Remove the created folders that are still empty (deepest first)."""
        for folder in self.created:
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty: something was written into it, keep it
        self.created.clear()


def _holder(lock: Path) -> tuple[int | None, str]:
    """(process id, host) written in a lock file; ``(None, '')`` when it cannot be read."""
    try:
        pid, host = lock.read_text().split()[:2]
        return int(pid), host
    except (OSError, ValueError):
        return None, ""


def _age(path: Path) -> float:
    """Seconds since ``path`` was modified (infinite when it is gone)."""
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return float("inf")


def _alive(pid: int) -> bool:
    if pid == 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


class OutputClaim:
    """The exclusive right of this run to write ``path``; :meth:`release` gives it back (idempotent)."""

    def __init__(self, path: str | Path, overwrite: bool = False):
        self.path = Path(path)
        self.overwrite = overwrite
        self.lock = self.path.with_name(f".{self.path.name}.lock")
        self.held = False
        self.notes: list[str] = []

    def acquire(self) -> "OutputClaim":
        """Take the lock (or a stale one), delete stale partial files; refuse an existing output without
        ``overwrite``. Raises FusionInputError (held by another run, folder not writable, output exists)."""
        host = socket.gethostname()
        for _ in range(2):
            try:
                descriptor = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pid, holder_host = _holder(self.lock)
                if pid is None and _age(self.lock) < _STARTING:  # its run is still writing its id
                    pid, holder_host = 0, host
                if pid is not None and (holder_host != host or _alive(pid)):
                    where = f"process {pid or '(starting)'}" + ("" if holder_host == host else f" on {holder_host}")
                    raise FusionInputError(
                        f"{self.path} is being written by another run ({where}); wait for it, or choose another "
                        f"--output_dir (if no run is active, delete {self.lock})"
                    ) from None
                self.lock.unlink(missing_ok=True)  # stale: its run was killed
                self.notes.append(f"removed the stale lock of an interrupted run: {self.lock.name}")
                continue
            except OSError as exc:
                raise FusionInputError(
                    f"the output folder {self.path.parent} is not writable: {error_reason(exc)}"
                ) from exc
            with os.fdopen(descriptor, "w") as handle:
                handle.write(f"{os.getpid()} {host}\n")
            self.held = True
            break
        else:
            raise FusionInputError(f"cannot claim {self.path}: its lock {self.lock} keeps reappearing")
        for stale in self.path.parent.glob(f".{self.path.name}.*.part*"):
            stale.unlink(missing_ok=True)
            self.notes.append(f"removed a partial file left by an interrupted run: {stale.name}")
        if self.path.exists() and not self.overwrite:
            self.release()
            raise FusionInputError(
                f"{self.path} exists; it was kept: pass --overwrite true to replace it, or "
                "choose another --output_dir"
            )
        if self.path.is_dir():
            self.release()
            raise FusionInputError(f"the output path {self.path} is an existing folder")
        return self

    def release(self) -> None:
        if self.held:
            self.lock.unlink(missing_ok=True)
            self.held = False
