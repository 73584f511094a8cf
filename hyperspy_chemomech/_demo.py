"""The end-to-end demo on a synthetic particle: ``python -m hyperspy_chemomech demo``.

Each step is a function ``step(state) -> dict`` (in :mod:`._demo_steps`) that reads
and adds to ``state``, saves figures through ``state["figure"](name, fig)``, and
returns the figures of merit (against the synthetic truth) that go into
``summary.json``: simulate, composition, registration, learning, decomposition.
"""

import html
import json
import time
from pathlib import Path


def _steps():
    from . import _demo_steps as d

    return [
        ("simulate", d.simulate_step),
        ("composition", d.composition_step),
        ("registration", d.registration_step),
        ("learning", d.learning_step),
        ("decomposition", d.decomposition_step),
    ]


STEP_NAMES = ("simulate", "composition", "registration", "learning", "decomposition")


def run_demo(out="chemomech_demo", seed=0, size=None, verbose=True, steps=None):
    """Run the demo chain and write a report folder.

    Parameters
    ----------
    out : str or Path
        Report folder (created); receives ``index.html``, the figures as PNG and
        ``summary.json``.
    seed : int
        Seed of the synthetic data.
    size : int, optional
        Short side (px) of the strain grid; ``None`` uses 150 (150 x 250 px).
    verbose : bool
        Print progress per step.
    steps : list of str, optional
        Run the chain up to and including the last of these steps (default all);
        later steps need the earlier ones.

    Returns
    -------
    dict
        The summary also written to ``summary.json``; ``summary["report"]`` is the
        path of ``index.html``.
    """
    chain = _steps()
    if steps is not None:
        unknown = set(steps) - set(STEP_NAMES)
        if unknown:
            raise ValueError(f"unknown demo step(s) {sorted(unknown)}; steps are {STEP_NAMES}")
        chain = chain[:max(STEP_NAMES.index(s) for s in steps) + 1]
    return _run_chain({"seed": seed, "size": size}, chain, out, verbose,
                      {"seed": seed, "size": size})


def run_mat(mat, pixel_size=None, out="chemomech_run", material="LixFePO4", crystal_angle=None,
            plane="stress", boundary="free", verbose=True):
    """Run learning and decomposition on a correlative MATLAB file (one grid).

    The file holds strain and composition already registered (e.g. the authors'
    LFP50_P2.mat), so there is nothing to register: it is read by
    :func:`~hyperspy_chemomech.io.load_correlative_mat` (frame found as it
    documents) and passed to the same calls a user makes,
    ``strain.learn_eigenstrain(comp, ...)`` then ``strain.decompose(comp, law)``.

    Parameters
    ----------
    mat : str or Path
        The .mat file.
    pixel_size : float, optional
        Pixel size (nm); needed when the file holds none.
    out : str or Path
        Report folder.
    material : str
        Stiffness (default ``LixFePO4``: C(X) between FePO4 and LiFePO4).
    crystal_angle : float, optional
        Angle (rad) from +x to [100]; default the frame the reader found.
    plane, boundary : str
        As for :meth:`StrainField.learn_eigenstrain`.
    verbose : bool

    Returns
    -------
    dict
        The summary, also written to ``summary.json``.
    """
    from .io import load_correlative_mat

    mat = Path(mat)
    if not mat.exists():
        raise FileNotFoundError(f"no such file: {mat}")
    maps = load_correlative_mat(mat, pixel_size=pixel_size)
    options = {"material": material, "crystal_angle": crystal_angle, "plane": plane,
               "boundary": boundary}
    state = {"strain": maps.strain, "composition_on_strain": maps.composition,
             "learn_options": options}
    from ._metadata import get_frame

    inputs = {"mat": str(mat), "pixel_size_nm": pixel_size, **options,
              "frame": _jsonable(get_frame(maps.strain))}
    chain = [c for c in _steps() if c[0] in ("learning", "decomposition")]
    return _run_chain(state, chain, out, verbose, {"inputs": inputs})


def run_files(xray, references, strain, stem_image, out="chemomech_run", material="LixFePO4",
              crystal_angle=None, plane="stress", boundary="free", verbose=True,
              pixel_size=None):
    """Run the chain (composition, registration, learning, decomposition) on user files.

    Parameters
    ----------
    xray : str or Path
        X-ray stack: a HyperSpy file (``.hspy``, ``.zspy``; made an
        ``xray_absorption`` signal if it is not one) or NeXus NXstxm (``.h5``,
        ``.hdf5``, ``.nxs``), transmitted counts, energy in eV, calibrated axes.
    references : list of str or Path
        Reference spectra (HyperSpy files), delithiated first, lithiated last.
    strain : str or Path
        The strain field (``strain_field`` HyperSpy file, or a MATLAB ``.mat`` read
        by :func:`~hyperspy_chemomech.io.load_correlative_mat`).
    stem_image : str or Path
        An image on the strain grid to register the X-ray thickness onto (e.g. a
        virtual dark field), calibrated in nm.
    out : str or Path
        Report folder.
    material : str
        Material for the stiffness (``LixFePO4`` = C(X) between the end members,
        ``LiFePO4``, ``FePO4`` or a registered name).
    crystal_angle : float, optional
        Angle from +x to the crystal [100] axis (rad); default the frame stored
        with the strain field (else 0).
    plane : {"stress", "strain"}
        Plane stress (thin platelet) or plane strain.
    boundary : {"free", "dirichlet"}
        ``"dirichlet"`` when the strain map cuts the particle: its edge is held at
        the measured displacement, in the learning and the decomposition.
    verbose : bool
    pixel_size : float, optional
        Pixel size (nm) of a ``.mat`` strain file that holds none.

    Returns
    -------
    dict
        The summary, also written to ``summary.json``.
    """
    import hyperspy.api as hs

    def load(path, signal_type=None):
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no such file: {path}")
        s = hs.load(path)
        if signal_type and s._signal_type != signal_type:
            s.set_signal_type(signal_type)
        return s

    xray = Path(xray)
    if xray.suffix.lower() in (".h5", ".hdf5", ".nxs"):
        from .io import load_nxstxm

        stack = load_nxstxm(xray)
    else:
        stack = load(xray, "xray_absorption")
    if Path(strain).suffix.lower() == ".mat":
        from .io import load_correlative_mat

        strain_field = load_correlative_mat(strain, pixel_size=pixel_size)[0]
    else:
        strain_field = load(strain, "strain_field")
    state = {"stack": stack, "references": [load(r) for r in references],
             "strain": strain_field, "stem_image": load(stem_image),
             "learn_options": {"material": material, "crystal_angle": crystal_angle,
                               "plane": plane, "boundary": boundary}}
    inputs = {"xray": str(xray), "references": [str(r) for r in references],
              "strain": str(strain), "stem_image": str(stem_image), "material": material,
              "crystal_angle": crystal_angle, "plane": plane, "boundary": boundary}
    return _run_chain(state, _steps()[1:], out, verbose, {"inputs": inputs})


def _run_chain(state, chain, out, verbose, header):
    """Run ``chain`` on ``state``, write figures, ``summary.json`` and ``index.html``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = []

    def figure(name, fig):
        path = out / f"{name}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        figures.append(path.name)

    state.update(figure=figure, out=out)
    summary = dict(header, steps={}, timings_s={})
    for i, (name, func) in enumerate(chain, 1):
        if verbose:
            print(f"[{i}/{len(chain)}] {name} ...", flush=True)
        t0 = time.perf_counter()
        summary["steps"][name] = func(state)
        summary["timings_s"][name] = round(time.perf_counter() - t0, 3)
        if verbose:
            print(f"      done in {summary['timings_s'][name]:.1f} s", flush=True)
    summary["figures"] = figures
    report = out / "index.html"
    summary["report"] = str(report)
    summary = _jsonable(summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    _write_html(report, summary)
    return summary


def _jsonable(o):
    """numpy arrays and scalars inside ``o`` as plain Python (for summary.json)."""
    import numpy as np

    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, np.generic):
        return o.item()
    return o


def _write_html(path, summary):
    rows = "\n".join(
        f"<figure><img src='{html.escape(f)}' alt='{html.escape(f)}'>"
        f"<figcaption>{html.escape(f)}</figcaption></figure>"
        for f in summary["figures"]
    )
    body = html.escape(json.dumps(summary["steps"], indent=2))
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<title>hyperspy_chemomech demo</title>"
        "<style>img{max-width:100%}figure{display:inline-block;margin:1em}</style>"
        "</head><body><h1>hyperspy_chemomech demo report</h1>"
        f"{rows}<h2>Summary</h2><pre>{body}</pre></body></html>"
    )
