"""Outputs (issue 15): kept unless --overwrite, claimed exclusively by one run, stale partial files of a killed run
cleaned up, a datalist summary with --continue_on_error, no new empty folder after a failure, and the device and
output format checked before any volume is read."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from test_volume_support import MeanFusionNet, make_affine, smooth_volume

import scripts.volume.runner as runner_module
from scripts.volume import FusionInputError, Volume, save_volume
from scripts.volume.outputs import OutputClaim
from scripts.volume.runner import VolumeFusionRunner

SHAPE, AFFINE = (32, 32, 6), make_affine((1.0, 1.0, 3.0), (-16.0, -16.0, -9.0))


@pytest.fixture
def pair(tmp_path):
    return (save_volume(smooth_volume(SHAPE, AFFINE, 1), tmp_path / "ct.nii.gz"),
            save_volume(smooth_volume(SHAPE, AFFINE, 2), tmp_path / "mri.nii.gz"))


def runner(*args, **kwargs) -> VolumeFusionRunner:
    kwargs.setdefault("network", MeanFusionNet())
    return VolumeFusionRunner(*args, show_progress=False, **kwargs)


def flat_file(tmp_path):
    """A constant volume: refused when its pair is fused (after the checks that need no data)."""
    return save_volume(Volume(np.zeros(SHAPE, np.float32), AFFINE), tmp_path / "flat.nii.gz")


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_an_existing_output_is_kept_unless_overwrite(tmp_path, pair):
    out = tmp_path / "out"
    out.mkdir()
    (out / "ct_fused.nii.gz").write_bytes(b"an earlier result")
    with pytest.raises(FusionInputError, match=r"ct_fused\.nii\.gz exists; it was kept: pass --overwrite true"):
        runner(*pair, output_dir=out).run()
    assert (out / "ct_fused.nii.gz").read_bytes() == b"an earlier result" and names(out) == ["ct_fused.nii.gz"]
    runner(*pair, output_dir=out, overwrite="true").run()
    assert (out / "ct_fused.nii.gz").read_bytes()[:2] == b"\x1f\x8b" and names(out) == ["ct_fused.nii.gz"]


def test_concurrent_runs_cannot_both_write_one_file(tmp_path, pair):
    """Three runs into one folder at once: one writes, the two others are refused (claimed or existing)."""
    out, barrier, outcomes = tmp_path / "out", threading.Barrier(3), []

    def one_run():
        barrier.wait()
        try:
            runner(*pair, output_dir=out).run()
            outcomes.append("wrote")
        except FusionInputError as error:
            outcomes.append(str(error))

    threads = [threading.Thread(target=one_run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("wrote") == 1, outcomes
    assert all("being written by another run" in o or "exists; it was kept" in o for o in outcomes if o != "wrote")
    assert names(out) == ["ct_fused.nii.gz"]


def test_a_live_claim_stops_a_second_run_before_it_reads_anything(tmp_path, pair, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    held = OutputClaim(out / "ct_fused.nii.gz").acquire()
    monkeypatch.setattr(runner_module, "load_volume", lambda *a, **k: pytest.fail("a volume was read"))
    with pytest.raises(FusionInputError, match=rf"being written by another run \(process {os.getpid()}\)"):
        runner(*pair, output_dir=out).run()
    held.release()
    assert names(out) == []


def test_leftovers_of_a_killed_run_are_cleaned_up(tmp_path, pair, bundle_root, capsys):
    """kill -9 during the write leaves the lock of a dead process and a hidden partial file: the next run takes
    the lock over, deletes the partial file and says so."""
    out = tmp_path / "out"
    out.mkdir()
    target = out / "ct_fused.nii.gz"
    killed = subprocess.run([sys.executable, "-c", f"""
import os, signal, sys
sys.path.insert(0, {str(bundle_root)!r})
from scripts.volume.io import partial_name
from scripts.volume.outputs import OutputClaim
OutputClaim({str(target)!r}).acquire()
open(os.path.join({str(out)!r}, partial_name({str(target)!r})), "wb").write(b"half a volume")
os.kill(os.getpid(), signal.SIGKILL)
"""])
    assert killed.returncode == -9 and len(names(out)) == 2  # the lock and the partial file
    runner(*pair, output_dir=out).run()
    assert names(out) == ["ct_fused.nii.gz"]
    printed = capsys.readouterr().out
    assert "removed the stale lock of an interrupted run" in printed
    assert "removed a partial file left by an interrupted run: .ct_fused.nii.gz." in printed


def test_a_failed_run_leaves_no_new_folder(tmp_path, pair):
    nested = tmp_path / "new" / "deeper"
    constant = flat_file(tmp_path)
    with pytest.raises(FusionInputError, match="constant"):
        runner(constant, pair[1], output_dir=nested).run()
    assert not (tmp_path / "new").exists()


def test_device_and_output_format_are_checked_before_any_volume_is_read(tmp_path, pair, monkeypatch):
    monkeypatch.setattr(runner_module, "verify_volume_file", lambda *a: pytest.fail("a volume was read"))
    monkeypatch.setattr(runner_module, "load_volume", lambda *a, **k: pytest.fail("a volume was read"))
    with pytest.raises(FusionInputError, match=r"unsupported --output_suffix '\.png'"):
        runner(*pair, output_dir=tmp_path / "out", suffix=".png").run()
    with pytest.raises(FusionInputError, match="unknown device 'tpu'"):
        runner(*pair, output_dir=tmp_path / "out", device="tpu").run()
    assert not (tmp_path / "out").exists()


def datalist(tmp_path, pair, extra):
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps([{"image_a": pair[0].name, "image_b": pair[1].name}] + extra))
    return path


def test_datalist_continue_on_error_summary(tmp_path, pair, capsys):
    """A pair that fails (constant volume) is reported with its reason; the others are written; the run then
    ends with an error, so the exit status says that something failed."""
    flat = flat_file(tmp_path)
    third = save_volume(smooth_volume(SHAPE, AFFINE, 4), tmp_path / "ct_03.nii.gz")
    pairs = datalist(tmp_path, pair, [{"image_a": flat.name, "image_b": pair[1].name},
                                      {"image_a": third.name, "image_b": pair[1].name}])
    out = tmp_path / "out"
    with pytest.raises(FusionInputError, match="1 of 3 pairs failed"):
        runner(datalist=pairs, output_dir=out, continue_on_error=True).run()
    printed = capsys.readouterr().out
    assert "summary: 2 written, 1 failed, 0 skipped" in printed
    assert "failed  " in printed and "flat.nii.gz: volume A is constant" in printed
    assert names(out) == ["ct_03_fused.nii.gz", "ct_fused.nii.gz"]


def test_datalist_stopping_at_a_failure_says_what_was_done(tmp_path, pair, capsys):
    flat = flat_file(tmp_path)
    third = save_volume(smooth_volume(SHAPE, AFFINE, 4), tmp_path / "ct_03.nii.gz")
    pairs = datalist(tmp_path, pair, [{"image_a": flat.name, "image_b": pair[1].name},
                                      {"image_a": third.name, "image_b": pair[1].name}])
    with pytest.raises(FusionInputError, match="constant"):
        runner(datalist=pairs, output_dir=tmp_path / "out").run()
    printed = capsys.readouterr().out
    assert "summary: 1 written, 1 failed, 0 skipped, 1 not attempted" in printed and "ct_03.nii.gz" in printed
    assert names(tmp_path / "out") == ["ct_fused.nii.gz"]


def test_datalist_rerun_skips_existing_outputs(tmp_path, pair, capsys):
    pairs = datalist(tmp_path, pair, [])
    runner(datalist=pairs, output_dir=tmp_path / "out").run()
    before = (tmp_path / "out" / "ct_fused.nii.gz").read_bytes()
    assert runner(datalist=pairs, output_dir=tmp_path / "out").run() == []
    assert "summary: 0 written, 0 failed, 1 skipped" in capsys.readouterr().out
    assert (tmp_path / "out" / "ct_fused.nii.gz").read_bytes() == before


def test_an_output_that_appears_during_the_run_is_not_replaced(tmp_path, pair, monkeypatch):
    """The final rename is a hard link: it fails instead of replacing a file another program created."""
    out = tmp_path / "out"
    original = runner_module.save_volume

    def late_arrival(volume, path, overwrite=True):
        path.write_bytes(b"someone else's result")
        return original(volume, path, overwrite)

    monkeypatch.setattr(runner_module, "save_volume", late_arrival)
    with pytest.raises(FusionInputError, match="appeared while this run was writing it"):
        runner(*pair, output_dir=out).run()
    assert (out / "ct_fused.nii.gz").read_bytes() == b"someone else's result" and names(out) == ["ct_fused.nii.gz"]
