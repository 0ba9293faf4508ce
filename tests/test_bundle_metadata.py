"""configs/metadata.json against the bundle specification, network I/O against the metadata, TorchScript export.

All through the ``monai.bundle`` Python API (the functions behind ``python -m monai.bundle verify_metadata``,
``verify_net_in_out`` and ``ckpt_export``), in process. ``verify_metadata`` runs with the network blocked: it must
find the schema at ``--filepath`` (``docs/meta_schema_20240725.json``) and never download it.
"""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser, ckpt_export, verify_metadata, verify_net_in_out

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
    assert metadata["version"] == "0.3.0" and {"0.1.0", "0.2.0", "0.3.0"} <= set(metadata["changelog"])
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

    image = metadata["network_data_format"]["inputs"]["image"]
    pred = metadata["network_data_format"]["outputs"]["pred"]
    assert (image["num_channels"], pred["num_channels"]) == (2, 1)
    assert image["value_range"] == pred["value_range"] == [0, 1]
    assert set(image["channel_def"]) == {"0", "1"} and pred["channel_def"] == {"0": "fused image"}
    assert not image["is_patch_data"]
    assert any("2601.08920" in r for r in metadata["references"])
    assert any("AANLIB" in r for r in metadata["references"])


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
