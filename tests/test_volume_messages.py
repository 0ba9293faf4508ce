"""Every failure of the bundle command is one line, ``error: ...``, on stderr, and a non-zero exit (issue 15).

Most cases run the real command in-process (``scripts.volume.cli.main``: fire parses the arguments as on the
command line, ``monai.bundle.run`` evaluates configs/inference.json); two run ``python -m monai.bundle`` in a
subprocess, which is what users type (seconds each, so only two).
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_volume_support import CHANNELS, make_affine, small_models, smooth_volume

from scripts.volume import FusionInputError, save_volume
from scripts.volume.cli import error_line, main, parse_command_line

SHAPE, AFFINE = (32, 32, 6), make_affine((1.0, 1.0, 3.0), (-16.0, -16.0, -9.0))
MONAI_NOTICE = "parsing config_file"  # MONAI's security notice about config files, printed on every run


@pytest.fixture
def setup(tmp_path, bundle_root, monkeypatch):
    """(pair of inputs, models folder, output folder) with the bundle folder as working directory."""
    monkeypatch.chdir(bundle_root)
    pair = (save_volume(smooth_volume(SHAPE, AFFINE, 1), tmp_path / "ct.nii.gz"),
            save_volume(smooth_volume(SHAPE, AFFINE, 2), tmp_path / "mri.nii.gz"))
    return pair, small_models(tmp_path / "models", bundle_root), tmp_path / "out"


def command(setup, *args, models=None) -> list[str]:
    (a, b), models_dir, out = setup
    base = {"--image_a": str(a), "--image_b": str(b), "--output_dir": str(out),
            "--ckpt_path": str((models or models_dir) / "model.pt"), "--channels": str(CHANNELS), "--device": "cpu"}
    options = [item for key, value in base.items() if key not in args for item in (key, value)]
    return ["run", "--config_file", "configs/inference.json", *options, *args]


def one_error_line(capsys, code: int) -> str:
    err = own_lines(capsys.readouterr().err)
    assert code == 1 and len(err) == 1 and err[0].startswith("error: "), err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.mark.parametrize("args, message", [
    (("--strenght", "0.5"), "unknown option --strenght; did you mean '--strength'?"),
    (("--imagea", "x.nii.gz"), "unknown option --imagea; did you mean '--image_a'?"),
    (("--runner#strenght", "1"), "unknown option --runner#strenght; did you mean '--runner#strength'?"),
    (("--models_dir", "models"), "unknown option --models_dir; it was replaced by --ckpt_path"),
    (("--task", "ct-mri"), "unknown task 'ct-mri'"),
    (("--task", "MRI-CT"), "did you mean 'CT-MRI'?"),
    (("--strength", "5"), "strength must be in [0, 1]"),
    (("--register", "maybe"), "register must be true or false"),
    (("--output_suffix", ".png"), "unsupported --output_suffix '.png'"),
    (("--device", "tpu"), "unknown device 'tpu'"),
    (("--batch_size", "0"), "batch_size must be a positive integer"),
    (("--image_b", "nowhere.nii.gz"), "input volume not found: nowhere.nii.gz"),
])
def test_bad_options_are_one_line(setup, capsys, args, message):
    hashes = [p.read_bytes() for p in setup[0]]
    line = one_error_line(capsys, main(command(setup, *args)))
    assert message in line
    assert [p.read_bytes() for p in setup[0]] == hashes and not setup[2].exists()


def test_same_file_corrupt_input_and_corrupt_weights_are_one_line(setup, capsys, tmp_path):
    (a, _), _, out = setup
    assert "image_a and image_b are the same file" in one_error_line(capsys, main(command(setup, "--image_b", str(a))))
    bad = tmp_path / "bad.nii.gz"
    data = bytearray(a.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)
    bad.write_bytes(bytes(data))
    assert "bad.nii.gz is corrupt" in one_error_line(capsys, main(command(setup, "--image_a", str(bad))))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.pt").write_bytes(b"\x80\x02garbage" * 50)
    line = one_error_line(capsys, main(command(setup, models=tmp_path / "broken")))
    assert "cannot read weights file" in line and "weights_only" not in line
    assert not out.exists()


def test_a_good_run_exits_zero_and_debug_shows_the_traceback(setup, capsys):
    assert main(command(setup)) == 0
    assert "wrote" in capsys.readouterr().out and (setup[2] / "ct_fused.nii.gz").exists()
    assert main(command(setup, "--debug", "true", "--strength", "7")) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: strength must be in")


def test_command_line_parsing_and_the_error_chain():
    assert parse_command_line(["run", "--a", "1", "--b=2", "--flag", "--c", "x"]) == {
        "a": "1", "b": "2", "flag": True, "c": "x"}
    try:
        try:
            raise FusionInputError("volume A is constant")
        except FusionInputError as inner:
            raise RuntimeError("Failed to evaluate ConfigExpression: \"$@runner.run()\"") from inner
    except RuntimeError as outer:
        assert error_line(outer) == "error: volume A is constant"
    assert "unexpected; rerun with --debug true" in error_line(TypeError("bug"))


def bundle_command(bundle_root, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(bundle_root)}
    return subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file", "configs/inference.json",
                           *args], cwd=bundle_root, env=env, capture_output=True, text=True, timeout=120)


def own_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(MONAI_NOTICE)]


def test_the_real_command_line_prints_one_line(bundle_root, tmp_path):
    """Through ``python -m monai.bundle``: a misspelled option and a corrupt input, one line each, exit 1."""
    sample = bundle_root / "sample_data"
    done = bundle_command(bundle_root, "--image_a", str(sample / "ct_case2.nii.gz"), "--image_b",
                          str(sample / "mri_case2.nii.gz"), "--output_dir", str(tmp_path / "out"), "--strenght", "1")
    assert done.returncode == 1 and own_lines(done.stderr) == [
        "error: unknown option --strenght; did you mean '--strength'?"], done.stderr
    bad = tmp_path / "ct.nii.gz"
    data = bytearray((sample / "ct_case2.nii.gz").read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(b ^ 0xFF for b in data[len(data) // 2: len(data) // 2 + 64])
    bad.write_bytes(bytes(data))
    done = bundle_command(bundle_root, "--image_a", str(bad), "--image_b", str(sample / "mri_case2.nii.gz"),
                          "--output_dir", str(tmp_path / "out"))
    (line,) = own_lines(done.stderr)
    assert done.returncode == 1 and line.startswith(f"error: {bad} is corrupt: its gzip data fail the integrity")
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
