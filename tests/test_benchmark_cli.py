"""The benchmark CLI end to end on tiny synthetic HMIF folders (gray CT-MRI, colour PET-MRI)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from scripts.metrics import METRIC_NAMES
from training import benchmark
from training.methods import Method, expand_methods
from training.report import read_csv

NAMES = ("1007", "1008", "1014", "2021")  # slice % 7 == 0 -> validation: 1007, 1014, 2021
VAL = ("1007", "1014", "2021")
SHAPE = (40, 48)


def _write_task(root, task, modality, colour):
    rng = np.random.default_rng(len(task))
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    for i, name in enumerate(NAMES):
        blob = np.exp(-((yy - 20 - i) ** 2 + (xx - 24) ** 2) / 120.0)
        mri = np.clip(160 * blob + 40 * np.sin(xx / 3.0) ** 2 + rng.normal(0, 4, SHAPE), 0, 255).astype(np.uint8)
        func = np.clip(220 * np.exp(-((yy - 14) ** 2 + (xx - 30 + i) ** 2) / 60.0), 0, 255).astype(np.uint8)
        if colour:  # pseudo-colour: hot-like map
            func = np.dstack([func, (func * 0.6).astype(np.uint8), (255 - func) // 4])
        for sub, img in ((modality, func), ("MRI", mri)):
            (root / task / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / task / sub / f"{name}.png")


@pytest.fixture(scope="module")
def hmif_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("hmif")
    _write_task(root, "CT-MRI", "CT", colour=False)
    _write_task(root, "PET-MRI", "PET", colour=True)
    return root


def test_run_gray_task_validation_split(hmif_root, tmp_path):
    out = tmp_path / "ct"
    benchmark.main(["run", "--task", "CT-MRI", "--data", str(hmif_root), "--split", "val", "--out", str(out),
                    "--methods", "mean,max,dwt,lp,gff,blend", "--mu", "0.1", "0.3", "--workers", "1"])
    methods = ["mean", "max", "dwt", "lp", "gff", "blend@0.1", "blend@0.3"]
    for m in methods:
        files = sorted(p.stem for p in (out / m).glob("*.png"))
        assert files == list(VAL)
        with Image.open(out / m / "1007.png") as im:
            assert im.mode == "L" and im.size == (SHAPE[1], SHAPE[0])
    rows = read_csv(out / "metrics.csv")
    assert list(rows[0]) == ["method", "name", *METRIC_NAMES]
    assert len(rows) == len(methods) * len(VAL)
    assert {r["method"] for r in rows} == set(methods)
    mean_cc = np.mean([r["CC"] for r in rows if r["method"] == "mean"])
    max_cc = np.mean([r["CC"] for r in rows if r["method"] == "max"])
    assert mean_cc > max_cc  # averaging correlates best with both sources
    report = (out / "report.md").read_text()
    assert "## Mean ± std over images" in report and "## Median over images" in report
    assert "| blend@0.3 | 3 |" in report and "**" in report and "val (3 pairs)" in report
    for figure in ("metric_bars.png", "tradeoff_cc_qabf.png", "montage.png"):
        assert (out / figure).stat().st_size > 5000


def test_fuse_then_evaluate_colour_task(hmif_root, tmp_path):
    out = tmp_path / "pet"
    task_dir = hmif_root / "PET-MRI"  # the task folder itself is accepted too
    benchmark.main(["fuse", "--task", "PET-MRI", "--data", str(task_dir), "--out", str(out), "--methods", "mean,gff"])
    with Image.open(out / "mean" / "1008.png") as im:
        fused = np.asarray(im)
    assert fused.shape == (*SHAPE, 3)
    # the fused Y is the mean of the PET Y and the MRI; Cb/Cr come from the PET image
    from scripts.color import rgb_to_ycbcr
    from scripts.data import read_png
    pet, mri = read_png(task_dir / "PET" / "1008.png"), read_png(task_dir / "MRI" / "1008.png")
    y_out = rgb_to_ycbcr(fused / 255.0)[..., 0]
    assert np.abs(y_out - (rgb_to_ycbcr(pet)[..., 0] + mri) / 2).max() < 0.02
    (out / "notes").mkdir()  # a folder without fused images is not a method
    benchmark.main(["evaluate", "--task", "PET-MRI", "--data", str(hmif_root), "--fused", str(out),
                    "--workers", "2"])
    rows = read_csv(out / "metrics.csv")
    assert len(rows) == 2 * len(NAMES) and {r["method"] for r in rows} == {"mean", "gff"}
    assert all(np.isfinite(r[m]) for r in rows for m in METRIC_NAMES)


def test_wdualmine_strength_sweep(hmif_root, tmp_path, request):
    """The network path: weights from --models-dir, one folder per strength; strength 0 is the mean."""
    torch = pytest.importorskip("torch")
    from scripts.network import WDualMine
    from training.methods import shipped_architecture

    models = tmp_path / "models"
    models.mkdir()
    threads = torch.get_num_threads()
    request.addfinalizer(lambda: torch.set_num_threads(threads))  # --threads 1 below sets it process-wide
    torch.manual_seed(0)
    torch.save(WDualMine(**shipped_architecture()).state_dict(), models / "model.pt")
    out = tmp_path / "net"
    benchmark.main(["fuse", "--task", "CT-MRI", "--data", str(hmif_root), "--split", "val", "--out", str(out),
                    "--methods", "wdualmine,mean", "--strength", "0", "0.5", "--models-dir", str(models),
                    "--batch", "2", "--device", "cpu", "--threads", "1"])
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["mean", "wdualmine@0", "wdualmine@0.5"]
    for name in VAL:
        at_zero = np.asarray(Image.open(out / "wdualmine@0" / f"{name}.png")).astype(int)
        mean = np.asarray(Image.open(out / "mean" / f"{name}.png")).astype(int)
        assert np.abs(at_zero - mean).max() <= 1
    benchmark.main(["fuse", "--task", "CT-MRI", "--data", str(hmif_root), "--split", "val", "--out", str(out),
                    "--methods", "max"])
    times = json.loads((out / benchmark.FUSE_TIMES).read_text())
    assert set(times) == {"wdualmine@0", "wdualmine@0.5", "mean", "max"}  # a later run adds to the record


def test_method_names():
    methods = expand_methods(["wdualmine", "mean", "blend", "blend@0.3", "mean"], strengths=[0.25, 1], mus=[])
    assert [m.label for m in methods] == ["wdualmine@0.25", "wdualmine@1", "mean", "blend@0.05", "blend@0.3"]
    assert [m.label for m in expand_methods(["wdualmine"])] == ["wdualmine"]
    assert Method.from_label("blend@0.1") == Method("blend", 0.1)
    assert Method.from_label("adafuse") == Method("adafuse")
    labels = ["wdualmine@0.5", "adafuse", "blend@0.3", "max", "blend@0.05", "mean"]
    assert sorted(labels, key=lambda s: Method.from_label(s).sort_key()) == [
        "mean", "max", "blend@0.05", "blend@0.3", "adafuse", "wdualmine@0.5"]
    with pytest.raises(ValueError):
        expand_methods(["nope"])
    sweep = expand_methods(["select", "select@0.3"], lams=[0.25, 1])
    assert [m.label for m in sweep] == ["select@0.25", "select@1", "select@0.3"]
    assert [m.label for m in expand_methods(["select"])] == ["select@0.5"]


def test_dominance_check_names_the_baselines_at_least_as_good_on_all_six_metrics():
    from training.report import DOMINANCE_METRICS, dominance_lines, dominated_by

    def row(**values):
        return {m: {"mean": values.get(m, 1.0), "std": 0.0, "median": values.get(m, 1.0), "n": 3}
                for m in DOMINANCE_METRICS}

    summary = {"mean": row(Qabf=0.3), "select@0.5": row(Qabf=0.6), "gain@1.1": row(MI=0.5, Qabf=0.9),
               "wdualmine@0.5": row(Qabf=0.5), "wdualmine@1": row(Qabf=0.7)}
    assert dominated_by(summary, "wdualmine@0.5", ["mean", "select@0.5", "gain@1.1"]) == ["select@0.5"]
    assert dominated_by(summary, "wdualmine@1", ["mean", "select@0.5", "gain@1.1"]) == []
    lines = dominance_lines(summary)
    assert "| wdualmine@0.5 | dominated by select@0.5 | |" in lines
    assert "| wdualmine@1 | not dominated | select@0.5: the network leads on 1 of 6 (Qabf +0.1) |" in lines


def test_ablation_table_lists_the_rules_once_and_every_variant(tmp_path):
    from scripts.metrics import METRIC_NAMES
    from training.ablation_table import table
    from training.report import write_csv

    for variant, qabf in (("full", 0.6), ("no_gate", 0.5)):
        rows = [{"name": "1", "method": method, **{m: value for m in METRIC_NAMES}}
                for method, value in (("mean", 0.3), ("select@1", 0.55), ("wdualmine@1", qabf))]
        (tmp_path / variant / "bench").mkdir(parents=True)
        write_csv(rows, tmp_path / variant / "bench" / "metrics.csv")
    lines = table(tmp_path, ["full", "no_gate", "missing"])
    names = [line.split("|")[1].strip() for line in lines[2:]]
    assert names == ["mean", "select@1", "full λ@1", "no_gate λ@1", "missing"]
    assert "0.600" in lines[4] and "0.500" in lines[5] and "not run" in lines[6]
