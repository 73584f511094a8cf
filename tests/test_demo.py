"""The end-to-end demo: every step runs, the report is complete, results match the truth."""

import json

import numpy as np
import pytest

from hyperspy_chemomech.__main__ import main
from hyperspy_chemomech._demo import run_demo
from hyperspy_chemomech._demo_steps import demo_shape

#: short side (px) of the strain grid the tests run the chain on (100 x 167 px):
#: small, so fast, yet within 5 % of the true slopes, as at the default 150 x 250
SMALL = 100


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    summary = run_demo(out=out, seed=0, size=SMALL, verbose=False)
    return out, summary


def test_report_is_complete(demo):
    out, summary = demo
    saved = json.loads((out / "summary.json").read_text())
    assert set(saved["steps"]) == {"simulate", "composition", "registration", "learning",
                                   "decomposition"}
    assert len(saved["figures"]) >= 4
    html = (out / "index.html").read_text()
    for name in saved["figures"]:
        assert (out / name).stat().st_size > 5000  # a real picture, not an empty canvas
        assert f"<figure id='{name}'><img src='data:image/png;base64," in html
    # self-contained: every image is embedded, nothing refers to a file beside the page
    assert html.count("data:image/png;base64,") == len(saved["figures"])
    assert "src='" + saved["figures"][0] not in html
    # a lab note: captions with what to look for and the numbers, a verdict table
    assert html.count("<b>What to look for:</b>") == len(saved["figures"])
    assert html.count("<b>Numbers:</b>") == len(saved["figures"])
    assert "<th>95 % interval</th><th>truth</th><th>verdict</th>" in html
    assert "Vegard slope [100] (per unit X)" in html and "inside the interval" in html
    assert "Settings and versions" in html and f"<th>numpy</th><td class='num'>{np.__version__}" \
        in html
    assert html.index("warning") < html.index("<h2>Summary</h2>")
    assert {"stress.png", "strain.png", "law.png", "dislocations.png"} <= set(saved["figures"])


def test_report_lists_warnings_first(tmp_path):
    import warnings

    import matplotlib.pyplot as plt

    from hyperspy_chemomech._demo import _run_chain

    def step(state):
        warnings.warn("the reference spectra overlap badly", UserWarning)
        fig, ax = plt.subplots()
        ax.plot([0, 1])
        state["figure"]("one", fig, "a line", "that it rises", "slope 1")
        return {"X_mean": 0.5, "n_particle_pixels": 1, "max_drift_found_px": 0.0}

    with pytest.warns(UserWarning, match="overlap badly"):
        summary = _run_chain({}, [("composition", step)], tmp_path, False, {"inputs": {}})
    assert summary["warnings"] == [{"step": "composition", "category": "UserWarning",
                                    "message": "the reference spectra overlap badly"}]
    html = (tmp_path / "index.html").read_text()
    assert html.index("1 warning(s) during the run") < html.index("<h2>Summary</h2>")
    assert "the reference spectra overlap badly" in html
    assert "<b>Figure 1.</b> a line" in html and "mean X in the particle" in html


def test_summary_matches_the_truth(demo):
    out, _ = demo
    s = json.loads((out / "summary.json").read_text())["steps"]
    assert s["simulate"]["strain_grid_px"] == list(demo_shape(SMALL))
    # a drift misalignment of ~0.05 px between frames already doubles this (0.03-0.045)
    assert s["composition"]["rms_error_X"] < 0.03
    assert s["registration"]["mirror_right"]
    assert s["registration"]["median_error_px"] < 1.0
    rel = np.abs(np.array(s["learning"]["slopes"]) / np.array(s["learning"]["true_slopes"]) - 1)
    assert np.all(rel < 0.05), rel
    assert s["decomposition"]["dislocations_matched_3px"] >= 4


def test_unknown_step_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown demo step"):
        run_demo(out=tmp_path, steps=["magic"], verbose=False)


def test_command_line_runs_the_first_step(tmp_path, capsys):
    # the CLI wires arguments through; the full chain is covered above
    from hyperspy_chemomech import _demo

    rc = _demo.run_demo(out=tmp_path, seed=1, size=60, verbose=True, steps=["simulate"])
    assert (tmp_path / "data.png").exists() and rc["steps"]["simulate"]["n_dislocations"] == 5
    assert "[1/1] simulate" in capsys.readouterr().out
    assert main(["nonsense"]) == 2          # one line, exit code 2
    assert "invalid choice" in capsys.readouterr().err


def test_run_on_user_files(tmp_path, capsys):
    """`python -m hyperspy_chemomech run` on files written like a user's."""
    from hyperspy_chemomech.simulate import correlative_particle

    c = correlative_particle(shape=demo_shape(SMALL), seed=0, stiffness="composition")
    c.stack.save(tmp_path / "stack.hspy")
    for name, ref in zip(("fp", "lfp"), c.references):
        ref.save(tmp_path / f"{name}.hspy")
    c.particle.strain_field().save(tmp_path / "strain.hspy")
    c.stem_image.save(tmp_path / "df.hspy")
    out = tmp_path / "report"
    rc = main(["run", "--xray", str(tmp_path / "stack.hspy"), "--references",
               str(tmp_path / "fp.hspy"), str(tmp_path / "lfp.hspy"), "--strain",
               str(tmp_path / "strain.hspy"), "--stem", str(tmp_path / "df.hspy"),
               "--out", str(out)])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert set(s["steps"]) == {"composition", "registration", "learning", "decomposition"}
    rel = np.abs(np.array(s["steps"]["learning"]["slopes"]) / c.particle.law.slopes - 1)
    assert np.all(rel < 0.05), rel
    assert s["steps"]["decomposition"]["dislocations_found"] >= 4
    # a failure is one line naming the problem, exit code 2
    assert main(["run", "--xray", str(tmp_path / "nope.hspy"), "--references", "a", "--strain",
                 "b", "--stem", "c"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --xray") and "no such file" in err, err
    assert len(err.splitlines()) == 1, err
