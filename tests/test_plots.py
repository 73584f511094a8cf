"""Every signal class's plot() renders headless with the titles, labels and units a reader needs."""

import io

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def particle():
    from hyperspy_chemomech.simulate import make_particle

    p = make_particle(shape=(48, 80), pixel_size=5.0, noise=1e-4, seed=3)
    strain, comp = p.strain_field(), p.composition_map()
    law = strain.learn_eigenstrain(comp, degree=1)
    return strain, comp, law, strain.decompose(comp, law)


@pytest.fixture(scope="module")
def dislocated():
    from hyperspy_chemomech.signals import StrainField
    from hyperspy_chemomech.simulate import dislocation_strain

    maps = dislocation_strain((60, 90), positions=[(30.3, 25.6), (25, 65)],
                              burgers=[(0.5, 0.2), (-0.3, 0.4)], pixel_size=2.0)
    return StrainField.from_components(*maps, scale=2.0)


def _colorbar_label(ax):
    cb = ax.images[0].colorbar
    assert cb is not None, f"panel {ax.get_title()!r} has no colour bar"
    return cb.ax.get_ylabel() or cb.ax.get_xlabel()


def _image_axes(fig):
    return [a for a in fig.axes if a.images and a.images[0].colorbar is not None]


def _has_scalebar(ax, units="nm"):
    texts = [t.get_text() for t in ax.texts]
    texts += [c.txt_label.get_text() for c in ax.artists if hasattr(c, "txt_label")]
    return any(t.strip().endswith(units) for t in texts)


def test_strain_field_panels(particle):
    strain = particle[0]
    before = np.array(strain.data, copy=True)
    fig = strain.plot()
    axes = _image_axes(fig)
    assert [a.get_title() for a in axes] == ["e11", "e22", "e12 (tensor shear)",
                                             "theta (rotation)"]
    assert [_colorbar_label(a) for a in axes] == ["strain"] * 3 + ["rotation (rad)"]
    for a in axes:
        assert a.get_xlabel() == "x (nm)" and a.get_ylabel() == "y (nm)"
        assert _has_scalebar(a), a.get_title()
        im = a.images[0]
        lo, hi = im.get_clim()
        assert lo == pytest.approx(-hi) and hi > 0            # centred on zero
        assert im.get_cmap().name.startswith("RdBu_r")
        assert im.get_cmap().get_bad()[3] == 0                # NaN transparent
        assert np.ma.getmaskarray(im.get_array()).sum() == (~strain.particle_mask).sum()
    clims = [a.images[0].get_clim() for a in axes]
    assert clims[0] == clims[1] == clims[2]                  # strains share one scale
    e = np.abs(np.asarray(strain.data)[:3])
    assert clims[0][1] == pytest.approx(np.nanpercentile(e, 99))
    th = np.abs(np.asarray(strain.data)[3])
    assert clims[3][1] == pytest.approx(np.nanpercentile(th, 99))  # the rotation its own
    np.testing.assert_array_equal(strain.data, before)      # the data is not touched
    buf = io.BytesIO()
    fig.savefig(buf, format="png")                            # it renders
    assert buf.tell() > 10000


def test_strain_field_plot_rejects_unknown_keywords(particle):
    with pytest.raises(TypeError, match="colour_map"):
        particle[0].plot(colour_map="jet")


def test_collection_gets_a_navigator_despite_nan(particle):
    from hyperspy_chemomech.signals import StrainField
    from hyperspy_chemomech.signals._plotting import nan_navigator

    strain = particle[0]
    stack = StrainField(np.stack([np.asarray(strain.data)] * 3))
    for new, old in zip(stack.axes_manager.signal_axes, strain.axes_manager.signal_axes):
        new.scale, new.units, new.name = old.scale, old.units, old.name
    nav = nan_navigator(stack)
    assert nav.data.shape == (3, 4) and np.all(np.isfinite(nav.data))
    fig = stack.plot()
    assert fig is stack._plot.signal_plot.figure
    assert np.all(np.isfinite(stack._plot.navigator_plot.ax.images[0].get_array()))


def test_composition_map_on_zero_one(particle):
    comp = particle[1]
    fig = comp.plot()
    im = comp._plot.signal_plot.ax.images[0]
    assert fig is comp._plot.signal_plot.figure
    assert im.get_clim() == (0.0, 1.0)
    assert comp._plot.signal_plot._colorbar.ax.get_ylabel() == "Li fraction X"


def test_eigenstrain_law_plot(particle):
    law = particle[2]
    fig = law.plot()
    main = [a for a in fig.axes if a.get_xlabel()]
    assert [a.get_title() for a in main] == ["[100] component", "[001] component"]
    for a in main:
        assert a.get_xlabel() == "X (Li fraction)"
        assert a.get_ylabel() == "eps0(X) - eps0(0) (strain)"
        assert a.get_xlim() == (0.0, 1.0)
    labels = main[0].get_legend_handles_labels()[1]
    assert "learned law" in labels and "95 % band" in labels
    slope = law.vegard()["slopes"][0]
    assert f"Vegard fit ({slope:.4f} per unit X)" in labels
    density = [a for a in fig.axes if a.get_ylabel() == "pixels per X bin"]
    assert len(density) == 2
    # the band drawn is the law's band
    poly = main[0].collections[0].get_paths()[0].vertices
    assert np.ptp(poly[:, 1]) >= 2 * law.band()[0].min()
    assert fig._suptitle.get_text() == law.metadata.General.title
    fig = law.plot(level=0.68, vegard=False, density=False)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "68 % band" in labels and not any(lb.startswith("Vegard") for lb in labels)


def test_eigenstrain_law_plot_rejects_hyperspy_keywords(particle):
    with pytest.raises(TypeError, match="navigator"):
        particle[2].plot(navigator=None)


def test_stress_panels_in_gpa(particle):
    parts = particle[3]
    fig = parts.plot_stress()
    axes = _image_axes(fig)
    assert [a.get_title() for a in axes] == ["sigma_11", "sigma_22", "sigma_12"]
    assert [_colorbar_label(a) for a in axes] == ["stress (GPa)"] * 3
    clims = {a.images[0].get_clim() for a in axes}
    assert len(clims) == 1                                   # one scale for the three
    lo, hi = clims.pop()
    assert lo == -hi and hi == pytest.approx(np.nanpercentile(np.abs(parts.stress.data), 99))


def test_nye_panels_and_dislocation_map(dislocated):
    from hyperspy_chemomech.signals import plot_component_maps

    rho = dislocated.dislocation_density()
    fig = plot_component_maps(rho, per_row=3)
    axes = _image_axes(fig)
    assert [a.get_title() for a in axes] == ["alpha_x", "alpha_y", "|alpha|"]
    assert [_colorbar_label(a) for a in axes] == ["alpha_x (nm^-1)", "alpha_y (nm^-1)",
                                                  "|alpha| (nm^-1)"]
    assert axes[2].images[0].get_clim()[0] == 0.0            # a magnitude runs from zero
    assert axes[0].images[0].get_clim() == axes[1].images[0].get_clim()

    found = dislocated.find_dislocations()
    assert len(found) == 2
    fig = dislocated.plot_dislocations(found)
    ax = fig.axes[0]
    assert ax.get_title() == "2 dislocation core(s) and Burgers vectors on |alpha|"
    assert _colorbar_label(ax) == "|alpha| Nye magnitude (nm^-1)"
    assert ax.get_xlabel() == "x (nm)" and _has_scalebar(ax)
    quiver = [c for c in ax.collections if isinstance(c, matplotlib.quiver.Quiver)]
    assert len(quiver) == 1 and quiver[0].N == 2
    # arrows point along b (image frame: y down)
    np.testing.assert_allclose(np.arctan2(quiver[0].V, quiver[0].U),
                               np.arctan2(found["b_y"], found["b_x"]), atol=1e-6)
    assert sorted(t.get_text() for t in ax.texts if t.get_text().startswith("|b|")) == \
        sorted(f"|b| {b:.2f} nm" for b in np.hypot(found["b_x"], found["b_y"]))
    with pytest.raises(TypeError, match="structured array"):
        dislocated.plot_dislocations(np.zeros(3))


def test_decomposition_overview_has_units(particle):
    fig = particle[3].plot()
    assert fig.axes[0].get_title() == "e11"


def test_library_never_chooses_a_backend():
    """Only the CLI may call matplotlib.use (a user's interactive backend stays)."""
    import ast
    from pathlib import Path

    import hyperspy_chemomech

    root = Path(hyperspy_chemomech.__file__).parent
    bad = []
    for path in root.rglob("*.py"):
        if path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "use" and \
                    isinstance(node.value, ast.Name) and node.value.id == "matplotlib":
                bad.append(str(path.relative_to(root)))
    assert not bad, f"matplotlib.use in library code: {bad}"


def test_hyperspy_view_and_markers(dislocated):
    field = dislocated.deepcopy()
    fig = field.plot(style="hyperspy")
    assert fig is field._plot.signal_plot.figure
    nav = field._plot.navigator_plot
    assert np.all(np.isfinite(nav.ax.lines[0].get_ydata()))   # 4 component means
    plt.close("all")
    field = dislocated.deepcopy()
    field.add_marker(field.dislocation_markers(), permanent=True)   # plots the view first
    assert field._plot is not None and field._plot.signal_plot is not None
    with pytest.raises(ValueError, match="style"):
        field.plot(style="grid")


def test_xray_stack_plot_labels_and_navigator():
    from hyperspy_chemomech.simulate import correlative_particle

    stack = correlative_particle(shape=(60, 100), seed=1).stack
    had_quantity = stack.metadata.has_item("Signal.quantity")
    fig = stack.plot()
    sp = stack._plot.signal_plot
    assert fig is sp.figure
    assert sp.ax.get_xlabel().startswith("Energy") and "eV" in sp.ax.get_xlabel()
    assert sp.ax.get_ylabel() in ("Transmitted intensity (counts)",
                                  str(stack.metadata.get_item("Signal.quantity", "")))
    assert stack.metadata.has_item("Signal.quantity") == had_quantity  # metadata untouched
    nav = stack._plot.navigator_plot.ax.images[0].get_array()
    assert np.isfinite(nav).all()
    plt.close("all")
    od = stack.to_optical_density(i0="auto")
    od.plot()
    assert od._plot.signal_plot.ax.get_ylabel() == "Optical density"


def test_composition_plot_leaves_metadata(particle):
    comp = particle[1].deepcopy()
    comp.metadata.Signal.__dict__.pop("quantity", None)
    if comp.metadata.has_item("Signal.quantity"):
        del comp.metadata.Signal.quantity
    comp.plot()
    assert comp._plot.signal_plot._colorbar.ax.get_ylabel() == "Li fraction X"
    assert not comp.metadata.has_item("Signal.quantity")
