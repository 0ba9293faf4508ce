"""training/compare_anchors.py: the peer comparison relative to the mean rule, and the default-strength choice."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training.compare_anchors import beats, choose_strength, failures, read_anchor_table  # noqa: E402

ANCHORS = """
| task | method | EN | MI | CC | PSNR | FMI_pixel | FMI_dct | Qabf |
|---|---|---|---|---|---|---|---|---|
| PET-MRI | AdaFuse | 5.0 | 4.0 | 0.860 | 62.0 | 0.40 | 0.450 | 0.55 |
| PET-MRI | ASFE-Fusion | 5.0 | 3.6 | 0.869 | 62.0 | 0.30 | 0.440 | 0.50 |
| PET-MRI | TEA-Net | 5.0 | 3.9 | 0.810 | 60.0 | 0.60 | 0.410 | 0.73 |
| PET-MRI | mean(A,B) | 5.0 | 4.3 | 0.869 | 62.1 | 0.64 | 0.450 | 0.42 |

Another table that must not be read.
| task | μ | MI |
"""


def _means(**strengths):
    mean = {"MI": 4.0, "CC": 0.85, "PSNR": 62.0, "FMI_pixel": 0.65, "FMI_dct": 0.45, "Qabf": 0.43}
    out = {"mean": mean}
    for key, qabf in strengths.items():
        out[key.replace("_", ".").replace("wdualmine.", "wdualmine@")] = {**mean, "Qabf": qabf}
    return out


@pytest.fixture()
def anchors(tmp_path):
    path = tmp_path / "anchors.md"
    path.write_text(ANCHORS)
    return read_anchor_table(path)


def test_reads_only_the_first_table(anchors):
    assert set(anchors) == {("PET-MRI", m) for m in ("AdaFuse", "ASFE-Fusion", "TEA-Net", "mean(A,B)")}
    assert anchors[("PET-MRI", "AdaFuse")]["Qabf"] == 0.55


def test_beats_is_relative_to_the_mean_rule_with_cc_slack():
    assert beats(0.55, 0.42, 0.55, 0.42, "Qabf")  # equal gain over the mean rule
    assert beats(0.53, 0.40, 0.55, 0.42, "Qabf")  # +0.13 on our split, +0.13 on theirs
    assert not beats(0.549, 0.42, 0.55, 0.42, "Qabf")
    assert beats(0.8490, 0.85, 0.869, 0.869, "CC")  # CC may fall 0.001 short
    assert not beats(0.8489, 0.85, 0.869, 0.869, "CC")


def test_failures_and_choice(anchors):
    # Qabf deltas (vs mean 0.43) with the 0.03 margin: +0.16 (AdaFuse: 0.59) and +0.11 (ASFE: 0.54); every other
    # metric equals the mean
    means = _means(wdualmine_0_1=0.52, wdualmine_0_2=0.57, wdualmine_0_3=0.60, wdualmine_0_4=0.62)
    assert failures("PET-MRI", anchors, means, "wdualmine@0.1") == ["AdaFuse:Qabf", "ASFE-Fusion:Qabf"]
    assert failures("PET-MRI", anchors, means, "wdualmine@0.2") == ["AdaFuse:Qabf"]  # beats AdaFuse, not by 0.03
    assert failures("PET-MRI", anchors, means, "wdualmine@0.2", qabf_margin=0.0) == []
    assert failures("PET-MRI", anchors, means, "wdualmine@0.3") == []
    strength, failed = choose_strength("PET-MRI", anchors, means)
    assert (strength, failed) == (0.35, [])  # passing 0.3, 0.4 -> the middle of the range
    two = _means(wdualmine_0_1=0.52, wdualmine_0_3=0.59, wdualmine_0_35=0.60)
    assert choose_strength("PET-MRI", anchors, two) == (0.325, [])
    none_pass = _means(wdualmine_0_1=0.44, wdualmine_0_2=0.55)  # 2 failures, then 1
    assert choose_strength("PET-MRI", anchors, none_pass) == (0.2, ["AdaFuse:Qabf"])
