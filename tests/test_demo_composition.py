"""The composition step of the demo: runs, saves figures, meets its accuracy."""

import json

import numpy as np

from hyperspy_chemomech._demo import run_demo
from hyperspy_chemomech._demo_steps import composition_step
from hyperspy_chemomech.signals import CompositionMap


def test_composition_step_fills_state_and_is_accurate():
    saved = []
    state = {"seed": 1, "size": 48, "figure": lambda name, fig: saved.append(name)}
    out = composition_step(state)
    assert len(saved) >= 2 and all(n.startswith("composition") for n in saved)
    assert isinstance(state["composition"], CompositionMap)
    truth = state["truth_composition"]
    assert truth["X"].shape == state["composition"].data.shape == (48, 48)
    assert out["rms_error_X"] < 0.03
    assert out["drift_error_px"] < 0.2
    assert out["mask_agreement"] > 0.98
    # the figure of merit is what it says: recompute it from the state
    inside = truth["mask"] & state["composition"].particle_mask
    err = np.asarray(state["composition"].data)[inside] - truth["X"][inside]
    assert out["rms_error_X"] == np.sqrt(np.mean(err**2))
    assert set(out["timings_s"]) >= {"optical_density", "align_energies", "composition_map"}


def test_run_demo_writes_report(tmp_path):
    summary = run_demo(out=tmp_path, seed=0, size=40, verbose=False, steps=["composition"])
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["steps"]["composition"]["rms_error_X"] < 0.03
    for name in summary["figures"]:
        assert (tmp_path / name).stat().st_size > 1000
    assert (tmp_path / "index.html").exists()
