"""configs/train.json as the MONAI model-zoo's CI checks a bundle (ci/unit_tests/test_*.py and utils.check_workflow
of Project-MONAI/model-zoo): a ``ConfigWorkflow(workflow_type="train")`` with ``dataset_dir`` overridden,
``initialize``, ``check_properties`` (every required and optional train property is defined - ``val_inferer`` is
``validate#inferer``, the inferer the evaluator uses), one tiny epoch with ``run`` and ``finalize``. In-process,
with ``bundle_root`` a temporary folder so that nothing is written to the repository.
"""
from __future__ import annotations

import pytest
from monai.bundle import ConfigWorkflow

from test_bundle_training import BUNDLE, SMALL_CHANNELS, make_tiny_hmif


def train_workflow(bundle_root, **overrides) -> ConfigWorkflow:
    return ConfigWorkflow(
        workflow_type="train",
        config_file=str(BUNDLE / "configs" / "train.json"),
        meta_file=str(BUNDLE / "configs" / "metadata.json"),
        logging_file=str(BUNDLE / "configs" / "logging.conf"),
        bundle_root=str(bundle_root),
        **overrides,
    )


def test_train_workflow_properties_and_one_tiny_epoch(tmp_path):
    workflow = train_workflow(
        tmp_path / "bundle",
        dataset_dir=str(make_tiny_hmif(tmp_path / "hmif")),
        max_epochs=1,
        val_interval=1,
        batch_size=2,
        patch_size=[32, 32],
        channels=SMALL_CHANNELS,
    )
    workflow.initialize()
    assert workflow.check_properties() == []
    evaluator = workflow.parser.get_parsed_content("validate#evaluator")
    assert evaluator.inferer is workflow.parser.get_parsed_content("validate#inferer")
    workflow.run()
    workflow.finalize()
    assert workflow.trainer.state.epoch == 1
    assert evaluator.state.metrics["val_loss"] > 0
    assert (tmp_path / "bundle" / "runs" / "ct-mri" / "model.pt").is_file()
    assert not (tmp_path / "bundle" / "models").exists()


def test_the_default_dataset_dir_is_inside_the_bundle_and_missing_says_what_to_pass(tmp_path):
    workflow = train_workflow(tmp_path)
    assert workflow.parser.get_parsed_content("dataset_dir") == str(tmp_path / "data" / "hmif")
    with pytest.raises(RuntimeError) as failure:  # MONAI wraps the error of a config expression
        workflow.initialize()
    assert isinstance(failure.value.__cause__, FileNotFoundError)
    message = str(failure.value.__cause__)
    assert message.startswith(f"dataset_dir {tmp_path / 'data' / 'hmif'} not found: pass --dataset_dir <HMIF folder>")
