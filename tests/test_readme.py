"""The README's Python blocks run as written (the .mat one on the authors' real file)."""

import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
REAL_MAT = ROOT.parent / "shared" / "realdata" / "LFP50_P2.mat"
PATH_LINE = 'path = "LFP50_P2.mat"'


def _blocks():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_has_two_python_blocks():
    blocks = _blocks()
    assert len(blocks) == 2
    assert PATH_LINE in blocks[1] and "load_correlative_mat" in blocks[1]


def test_readme_synthetic_block_runs():
    import matplotlib.pyplot as plt

    ns = {}
    exec(compile(_blocks()[0], "README.md[block 1]", "exec"), ns)
    plt.close("all")
    # it does what it says: the learned slopes are the synthetic truth's
    np.testing.assert_allclose(ns["law"].vegard()["slopes"], ns["data"].particle.law.slopes,
                               rtol=0.05)
    assert len(ns["cores"]) >= 4


@pytest.fixture
def real_mat():
    if not REAL_MAT.exists():
        pytest.skip(f"real data absent: {REAL_MAT} (see shared/realdata/README.md)")
    return REAL_MAT


def test_readme_mat_block_runs_on_the_real_particle(real_mat):
    block = _blocks()[1].replace(PATH_LINE, f"path = {str(real_mat)!r}")
    assert str(real_mat) in block
    ns = {}
    exec(compile(block, "README.md[block 2]", "exec"), ns)
    v = ns["v"]
    assert np.all(np.isfinite(v["slopes"])) and np.asarray(v["ci95"]).shape == (2, 2)
    # LiFePO4 expands along [100] and shrinks along [001] on lithiation
    assert v["slopes"][0] > 0 > v["slopes"][1]
