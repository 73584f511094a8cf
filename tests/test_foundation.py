"""Package foundation: extension registry, signal classes, save/load, import cost."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import hyperspy.api as hs

import hyperspy_chemomech as hcm

ROOT = Path(__file__).resolve().parents[1]

CLASSES = {
    "XrayAbsorptionSpectrum": ("xray_absorption", 1),
    "CompositionMap": ("composition_map", 2),
    "StrainField": ("strain_field", 2),
    "EigenstrainLaw": ("eigenstrain_law", 1),
}


def _example(name, lazy=False):
    rng = np.random.default_rng(0)
    if name == "XrayAbsorptionSpectrum":
        s = hs.signals.Signal1D(rng.random((3, 4, 6)))
        s.axes_manager[-1].units = "eV"
    elif name == "CompositionMap":
        s = hs.signals.Signal2D(rng.random((5, 6)))
    elif name == "StrainField":
        s = hcm.StrainField.from_components(*rng.random((4, 5, 6)), scale=2.5)
    else:
        s = hs.signals.Signal1D(rng.random((2, 11)))
        s.axes_manager[-1].scale = 0.1
    s.set_signal_type(CLASSES[name][0])
    s.metadata.set_item("Chemomech.test.answer", 42)
    return s.as_lazy() if lazy else s


REGISTRY = ROOT / "hyperspy_chemomech" / "hyperspy_extension.yaml"


def test_registry_is_one_plain_file():
    # a link breaks clones without symlink support (Windows' default): no signal types
    assert REGISTRY.is_file() and not REGISTRY.is_symlink()
    assert not (ROOT / "extensions.yaml").exists(), "a second registry copy would drift"
    reg = yaml.safe_load(REGISTRY.read_text())["signals"]
    for name, (stype, dim) in CLASSES.items():
        for cls_name, lazy in ((name, False), ("Lazy" + name, True)):
            entry = reg[cls_name]
            assert entry["signal_type"] == stype
            assert entry["signal_dimension"] == dim
            assert entry["lazy"] is lazy
            module = __import__(entry["module"], fromlist=[cls_name])
            cls = getattr(module, cls_name)
            assert cls._signal_type == stype
            assert getattr(cls, "_lazy", False) is lazy


def test_print_known_signal_types_lists_ours(capsys):
    hs.print_known_signal_types()
    out = capsys.readouterr().out
    for stype, _ in CLASSES.values():
        assert stype in out
    assert "XAS" in out and "STXM" in out


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize("lazy", [False, True])
def test_set_signal_type_switches_class(name, lazy):
    s = _example(name, lazy=lazy)
    expected = ("Lazy" if lazy else "") + name
    assert type(s).__name__ == expected


@pytest.mark.parametrize("alias", ["XAS", "STXM"])
def test_aliases(alias):
    s = hs.signals.Signal1D(np.ones((2, 3)))
    s.set_signal_type(alias)
    assert type(s).__name__ == "XrayAbsorptionSpectrum"


@pytest.mark.parametrize("name", CLASSES)
@pytest.mark.parametrize("ext", ["hspy", "zspy"])
def test_save_load_round_trip(tmp_path, name, ext):
    s = _example(name)
    f = tmp_path / f"s.{ext}"
    s.save(f)
    r = hs.load(f)
    assert type(r).__name__ == name
    assert r.metadata.Chemomech.test.answer == 42
    np.testing.assert_array_equal(np.asarray(r.data), np.asarray(s.data))
    for a, b in zip(s.axes_manager._axes, r.axes_manager._axes):
        assert a.scale == b.scale and a.units == b.units


def test_lazy_load_gives_lazy_twin(tmp_path):
    s = _example("StrainField")
    s.save(tmp_path / "s.zspy")
    r = hs.load(tmp_path / "s.zspy", lazy=True)
    assert type(r).__name__ == "LazyStrainField"


def test_import_does_not_pull_heavy_packages():
    code = (
        "import sys, hyperspy.api, hyperspy_chemomech as h;"
        "h.signals; h.StrainField;"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('pyxem','orix','kikuchipy')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_strain_field_layout_validation():
    s = hs.signals.Signal2D(np.zeros((3, 5, 5)))
    s.set_signal_type("strain_field")
    with pytest.raises(ValueError, match="navigation shape"):
        s.validate()
    with pytest.raises(ValueError, match="same shape|one shape"):
        hcm.StrainField.from_components(np.zeros((2, 2)), np.zeros((2, 3)),
                                        np.zeros((2, 2)), np.zeros((2, 2)))
    good = hcm.StrainField.from_components(*np.zeros((4, 3, 3)), scale=1.0, units="nm")
    good.validate()
    uncal = hs.signals.Signal2D(np.zeros((4, 3, 3)))
    uncal.set_signal_type("strain_field")
    with pytest.raises(ValueError, match="calibration"):
        uncal.validate()


def test_strain_field_components():
    e = np.arange(4 * 3 * 2, dtype=float).reshape(4, 3, 2)
    s = hcm.StrainField.from_components(*e, scale=(2.0, 3.0))
    np.testing.assert_array_equal(s.e11.data, e[0])
    np.testing.assert_array_equal(s.theta.data, e[3])
    assert s.axes_manager.signal_axes[0].scale == 3.0  # x
    assert s.axes_manager.signal_axes[1].scale == 2.0  # y
