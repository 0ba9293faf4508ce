"""configs/metadata.json against the bundle specification, network I/O against the metadata, TorchScript export.

All through the ``monai.bundle`` Python API (the functions behind ``python -m monai.bundle verify_metadata``,
``verify_net_in_out`` and ``ckpt_export``), in process. ``verify_metadata`` runs with the network blocked: it must
find the schema at ``--filepath`` (``docs/meta_schema_20240725.json``) and never download it.

Also the rest of what a model-zoo reviewer reads: the copyright holder is the LICENSE's, the model card
(``docs/README.md``) has the zoo template's sections and names nothing outside the bundle, and
``download_large_files`` verifies the weights ``large_files.yml`` declares without the network.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from monai.apps.utils import HashCheckError
from monai.bundle import (
    ConfigParser,
    ckpt_export,
    download_large_files,
    verify_metadata,
    verify_net_in_out,
)

from scripts.network import WDualMine

BUNDLE = Path(__file__).resolve().parents[1] / "monai_bundle"
META = BUNDLE / "configs" / "metadata.json"
SCHEMA = BUNDLE / "docs" / "meta_schema_20240725.json"
NETWORK_CONFIGS = [c for c in ("train.json", "inference.json") if (BUNDLE / "configs" / c).is_file()]


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def metadata() -> dict:
    return json.loads(META.read_text())


def test_metadata_verifies_offline_against_the_kept_schema(offline):
    verify_metadata(meta_file=str(META), filepath=str(SCHEMA))


def test_kept_schema_is_the_one_the_metadata_names(metadata):
    assert metadata["schema"].endswith("/" + SCHEMA.name)
    assert "meta_schema_20240725" in metadata["schema"]


@pytest.mark.parametrize("field", ["network_data_format", "required_packages_version", "numpy_version", "copyright"])
def test_schema_rejects_metadata_without_a_required_field(offline, metadata, tmp_path, field):
    broken = {k: v for k, v in metadata.items() if k != field}
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match=field):
        verify_metadata(meta_file=str(path), filepath=str(SCHEMA))


def test_schema_rejects_an_incomplete_tensor_description(offline, metadata, tmp_path):
    broken = json.loads(json.dumps(metadata))
    del broken["network_data_format"]["outputs"]["pred"]["value_range"]
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="value_range"):
        verify_metadata(meta_file=str(path), filepath=str(SCHEMA))


def test_metadata_content(metadata):
    assert metadata["version"] == "0.4.0" and {"0.1.0", "0.2.0", "0.3.0", "0.4.0"} <= set(metadata["changelog"])
    assert list(metadata["changelog"])[0] == metadata["version"]  # newest first, as in the zoo's bundles
    assert metadata["name"] == "W-DUALMINE multimodal medical image fusion"
    assert metadata["required_packages_version"]["pytorch-wavelets"] == "1.3.0"
    for package in ("itk", "nibabel", "pytorch-ignite", "fire"):
        assert package in metadata["required_packages_version"]
    # MONAI >= 1.4 treats `optional_packages_version` as a deprecated alias and renames it over
    # `required_packages_version` when reading the metadata, which would drop the required list
    assert "optional_packages_version" not in metadata
    parser = ConfigParser()
    parser.read_meta(str(META))
    assert parser.get_parsed_content("_meta_#required_packages_version#pytorch-wavelets") == "1.3.0"
    # the zoo's verify_bundle checks the properties of every app listed here; none is claimed
    assert metadata["supported_apps"] == {}
    # both the volumes inference reads (through ITK) and the PNG slices training reads
    assert "itk" in metadata["data_type"] and "png" in metadata["data_type"]

    image = metadata["network_data_format"]["inputs"]["image"]
    pred = metadata["network_data_format"]["outputs"]["pred"]
    assert (image["num_channels"], pred["num_channels"]) == (2, 1)
    assert image["value_range"] == pred["value_range"] == [0, 1]
    assert set(image["channel_def"]) == {"0", "1"} and pred["channel_def"] == {"0": "fused image"}
    assert not image["is_patch_data"]
    assert any("2601.08920" in r for r in metadata["references"])
    assert any("AANLIB" in r for r in metadata["references"])


def test_copyright_holder_is_the_licence_holder(metadata):
    """One holder: the metadata's copyright statement is the LICENSE's copyright line, word for word."""
    licence_lines = [line.strip() for line in (BUNDLE / "LICENSE").read_text().splitlines()]
    assert metadata["copyright"] in licence_lines
    holder = re.sub(r"^Copyright (\(c\) )?(\d{4} )?", "", metadata["copyright"])
    assert metadata["authors"].startswith(holder)


@pytest.mark.parametrize("config", NETWORK_CONFIGS)
def test_network_in_out_matches_the_metadata(config):
    verify_net_in_out(net_id="network_def", meta_file=str(META), config_file=str(BUNDLE / "configs" / config),
                      n=1, any=1)


def test_any_input_size_is_accepted(metadata):
    """The metadata declares 256x256 but any H, W works (the network pads to a multiple of 32 and crops back)."""
    net = WDualMine().eval()
    with torch.no_grad():
        for h, w in ((45, 70), (17, 100)):
            assert net(torch.rand(1, metadata["network_data_format"]["inputs"]["image"]["num_channels"], h, w)).shape \
                == (1, metadata["network_data_format"]["outputs"]["pred"]["num_channels"], h, w)


def test_ckpt_export_torchscript_equals_eager(tmp_path):
    config = BUNDLE / "configs" / NETWORK_CONFIGS[-1]  # inference.json when it exists
    net = ConfigParser.load_config_file(str(config))
    torch.manual_seed(0)
    parser = ConfigParser(net)
    eager = WDualMine(channels=net["channels"], strength=parser.get_parsed_content("strength"),
                      residual_mode=net["residual_mode"], decoder=net["decoder"])
    with torch.no_grad():  # a non-trivial network: the zero-initialised residual head would hide the decoder
        for p in eager.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ckpt = tmp_path / "model.pt"
    torch.save(eager.state_dict(), ckpt)

    ts_path = tmp_path / "model.ts"
    ckpt_export(net_id="network_def", filepath=str(ts_path), ckpt_file=str(ckpt), meta_file=str(META),
                config_file=str(config))
    extra = {"metadata.json": "", config.name: ""}
    scripted = torch.jit.load(str(ts_path), _extra_files=extra)
    assert json.loads(extra["metadata.json"])["name"] == "W-DUALMINE multimodal medical image fusion"
    assert json.loads(extra[config.name])["network_def"]["_target_"] == "scripts.network.WDualMine"

    eager.eval()
    with torch.no_grad():
        for shape in ((1, 2, 64, 64), (2, 2, 45, 70)):
            x = torch.rand(shape)
            expected = eager(x)
            assert float((expected - x.mean(dim=1, keepdim=True)).abs().max()) > 1e-3  # not just the mean image
            assert float((scripted(x) - expected).abs().max()) <= 1e-5


# ---- the model card, docs/README.md: the zoo template's sections, self-contained in the bundle ----

CARD = BUNDLE / "docs" / "README.md"
# the model zoo's docs/readme_template.md (Model Description as "Model Overview", the zoo bundles' name for it),
# with the bundle commands, the training and the licence sections of the zoo's own bundles
CARD_SECTIONS = ["Authors", "Tags", "Model Overview", "Data", "Preprocessing", "Training", "Performance",
                 "MONAI Bundle Commands", "System Configuration", "Limitations", "Citation Info", "References",
                 "License"]
# folders of the repository around the bundle, which a bundle on its own (a model-zoo copy) does not have
# (and the bundle's own folder name in the repository: a zoo copy is named after the bundle)
OUTSIDE_FOLDERS = ("training", "tests", "shared", "WDualMineExtension", ".venv", "out", ".ci", "monai_bundle")
DOCS_TEXT = sorted(p for p in (BUNDLE / "docs").rglob("*") if p.suffix in (".md", ".txt"))


@pytest.fixture(scope="module")
def card() -> str:
    return CARD.read_text()


def prose(text: str) -> str:
    """The card without its fenced code blocks (commands take placeholders and files the user supplies)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def test_card_has_the_model_zoo_template_sections(card):
    headings = [re.sub(r"[#*]", "", line).strip() for line in card.splitlines() if line.startswith("#")]
    missing = [s for s in CARD_SECTIONS if s not in headings]
    assert not missing, f"sections missing from docs/README.md: {missing}"
    order = [headings.index(s) for s in CARD_SECTIONS]
    assert order == sorted(order), "sections out of the template's order"


@pytest.mark.parametrize("doc", DOCS_TEXT, ids=lambda p: str(p.relative_to(BUNDLE)))
def test_docs_name_no_path_outside_the_bundle(doc):
    """The card, the benchmark reports it links and the data licence: no path of the repository around."""
    text = doc.read_text()
    assert "../" not in text and "..\\" not in text
    outside = "|".join(re.escape(folder) for folder in OUTSIDE_FOLDERS)
    hits = re.findall(rf"(?<![\w./-])(?:{outside})/[\w./<>-]*", text)
    assert not hits, f"paths of the repository outside the bundle: {hits}"
    local = re.findall(r"(?<![\w:/.])/(?:work|home|root|tmp|Users|mnt)/\S*", text)
    assert not local, f"absolute local paths: {local}"


def test_card_links_resolve_inside_the_bundle(card):
    links = re.findall(r"\]\(([^)\s]+)\)", card)
    relative = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert relative, "the card links its images and reports"
    for link in relative:
        target = (CARD.parent / link.split("#")[0]).resolve()
        assert target.is_relative_to(BUNDLE), link
        assert target.exists(), f"{link}: no such file in the bundle"


def test_card_images_exist_and_fit_the_zoo_size_limit(card):
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", card)
    assert {"learning_curves.png", "benchmark/ct-mri/montage.png", "benchmark/pet-mri/montage.png",
            "benchmark/spect-mri/montage.png"} <= set(images)
    # check-added-large-files of the zoo: 1 MB; only the weights are declared in large_files.yml
    for path in (BUNDLE / "docs").rglob("*"):
        if path.is_file():
            assert path.stat().st_size <= 1024 * 1024, f"{path.relative_to(BUNDLE)} is over 1 MB"


def test_card_file_names_in_the_text_are_bundle_files(card):
    """Every file the prose names in code spans is a file of the bundle (from its root, or from docs/)."""
    spans = re.findall(r"`([^`\s]+\.(?:py|json|yml|conf|pt|md|txt|png))`", prose(card))
    paths = [span for span in spans if "/" in span and not set("<*|") & set(span)]  # not patterns
    assert "scripts/network.py" in paths and "models/model.pt" in paths
    for path in paths:
        assert (BUNDLE / path).is_file() or (CARD.parent / path).is_file(), f"{path}: not a file of the bundle"


def test_card_default_strength_rows_match_the_metadata_eval_metrics(card, metadata):
    """The bold row of each task's table (the model at its default strength) is metadata's eval_metrics."""
    columns = ["MI", "CC", "PSNR", "FMI_pixel", "FMI_dct", "Qabf"]
    rows = re.findall(r"^\| \*\*wdualmine@([\d.]+)\*\* \|(.*)\|$", card, flags=re.M)
    tasks = re.findall(r"^\*\*(\w+-MRI)\*\* \(\d+ pairs", card, flags=re.M)
    assert tasks == ["CT-MRI", "PET-MRI", "SPECT-MRI"] and len(rows) == 3
    for task, (strength, cells) in zip(tasks, rows):
        for column, cell in zip(columns, cells.split("|")):
            cell = cell.strip()
            expected = metadata["eval_metrics"][f"{task}_val_default_strength{strength}_{column}"]
            tolerance = 0.5 * 10 ** -len(cell.split(".")[1]) + 1e-9
            assert abs(float(cell) - expected) <= tolerance, (task, column, cell, expected)


# ---- large_files.yml: models/model.pt with its md5; download_large_files verifies the present file offline ----


def large_files() -> list[dict]:
    return yaml.safe_load((BUNDLE / "large_files.yml").read_text())["large_files"]


def test_large_files_are_declared_with_the_hash_of_the_shipped_file():
    entries = {entry["path"]: entry for entry in large_files()}
    assert "models/model.pt" in entries
    for path, entry in entries.items():
        assert entry["hash_type"] == "md5"
        assert hashlib.md5((BUNDLE / path).read_bytes()).hexdigest() == entry["hash_val"], path


def test_download_large_files_verifies_the_present_weights_offline(offline):
    download_large_files(bundle_path=str(BUNDLE))


def test_download_large_files_refuses_a_file_with_another_hash(offline, tmp_path):
    shutil.copy(BUNDLE / "large_files.yml", tmp_path / "large_files.yml")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.pt").write_bytes(b"not the shipped weights")
    with pytest.raises(HashCheckError):
        download_large_files(bundle_path=str(tmp_path))


def test_download_large_files_command_succeeds_offline():
    """The command line of the model card, with every socket refused in the process that runs it."""
    runner = (
        "import runpy, socket, sys\n"
        "def refuse(*a, **k):\n"
        "    raise OSError('network access attempted')\n"
        "socket.socket.connect = socket.socket.connect_ex = socket.create_connection = refuse\n"
        "runpy.run_module('monai.bundle', run_name='__main__')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", runner, "download_large_files", "--bundle_path", str(BUNDLE)],
        capture_output=True,
        text=True,
        cwd=BUNDLE.parent,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verified 'model.pt'" in result.stdout + result.stderr
