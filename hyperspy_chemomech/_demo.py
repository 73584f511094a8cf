"""The end-to-end demo on a synthetic particle: ``python -m hyperspy_chemomech demo``.

Each step is a function ``step(state) -> dict`` (in :mod:`._demo_steps`) that reads
and adds to ``state``, saves figures through ``state["figure"](name, fig, caption,
look_for, numbers)``, and returns the figures of merit (against the synthetic truth)
that go into ``summary.json``: simulate, composition, registration, learning,
decomposition. The report, ``index.html``, is one self-contained page (figures
embedded): warnings of the run, a summary table, a captioned figure per step,
settings and versions.
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
    if size is not None and (isinstance(size, bool) or int(size) != size or size < 60):
        # the demo particle carries 5 dislocations 12 px apart and an X-ray grid 4x coarser
        raise ValueError(f"--size must be an integer >= 60 (px of the strain grid's short side), "
                         f"got {size!r}")
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

    def load(path, what, signal_type=None, reader=None):
        # every reading error names the argument and the file it came from
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{what} {path}: no such file")
        try:
            s = reader(path) if reader is not None else hs.load(path)
            if isinstance(s, list):
                raise ValueError(f"holds {len(s)} signals, expected one")
            if signal_type and s._signal_type != signal_type:
                s.set_signal_type(signal_type)
                if s._signal_type != signal_type:
                    raise ValueError(
                        f"holds a {type(s).__name__} of dimensions {s.axes_manager._get_dimension_str()}"
                        f" that cannot be a {signal_type} signal")
        except Exception as err:  # noqa: BLE001 - re-raised with the file named
            raise ValueError(f"{what} {path}: {err}") from err
        return s

    # the options first: a typo fails at once, not after minutes of work
    import math

    if crystal_angle is not None:   # None: the frame stored with the strain field
        try:
            crystal_angle = float(crystal_angle)
        except (TypeError, ValueError):
            crystal_angle = math.nan
        if not math.isfinite(crystal_angle):
            raise ValueError("--crystal-angle must be a finite angle in radians")
    if plane not in ("stress", "strain"):
        raise ValueError(f"--plane must be 'stress' or 'strain', got {plane!r}")
    if boundary not in ("free", "dirichlet"):
        raise ValueError(f"--boundary must be 'free' or 'dirichlet', got {boundary!r}")
    xray = Path(xray)
    if xray.suffix.lower() in (".h5", ".hdf5", ".nxs"):
        from .io import load_nxstxm

        stack = load(xray, "--xray", reader=load_nxstxm)
    else:
        stack = load(xray, "--xray", "xray_absorption")
    if Path(strain).suffix.lower() == ".mat":
        from .io import load_correlative_mat

        strain_field = load(strain, "--strain",
                            reader=lambda p: load_correlative_mat(p, pixel_size=pixel_size)[0])
    else:
        strain_field = load(strain, "--strain", "strain_field")
    if len(references) < 2:
        raise ValueError(f"--references needs at least two files (delithiated first, lithiated "
                         f"last), got {len(references)}")
    state = {"stack": stack, "references": [load(r, "--references") for r in references],
             "strain": strain_field, "stem_image": load(stem_image, "--stem"),
             "learn_options": {"material": material, "crystal_angle": crystal_angle,
                               "plane": plane, "boundary": boundary}}
    inputs = {"xray": str(xray), "references": [str(r) for r in references],
              "strain": str(strain), "stem_image": str(stem_image), "material": material,
              "crystal_angle": crystal_angle, "plane": plane, "boundary": boundary}
    return _run_chain(state, _steps()[1:], out, verbose, {"inputs": inputs})


def _run_chain(state, chain, out, verbose, header):
    """Run ``chain`` on ``state``, write figures, ``summary.json`` and ``index.html``."""
    import warnings

    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = []

    def figure(name, fig, caption="", look_for="", numbers=""):
        path = out / f"{name}.png"
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        figures.append({"file": path.name, "step": current[0], "caption": caption,
                        "look_for": look_for, "numbers": numbers})

    current = [""]
    state.update(figure=figure, out=out)
    summary = dict(header, steps={}, timings_s={})
    caught = []
    t_start = time.perf_counter()
    for i, (name, func) in enumerate(chain, 1):
        if verbose:
            print(f"[{i}/{len(chain)}] {name} ...", flush=True)
        current[0] = name
        t0 = time.perf_counter()
        # the report lists every warning of the run at the top (they are shown too)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            summary["steps"][name] = func(state)
        for m in w:
            caught.append({"step": name, "category": m.category.__name__,
                           "message": str(m.message)})
            warnings.showwarning(m.message, m.category, m.filename, m.lineno)
        summary["timings_s"][name] = round(time.perf_counter() - t0, 3)
        if verbose:
            print(f"      done in {summary['timings_s'][name]:.1f} s", flush=True)
    summary["total_time_s"] = round(time.perf_counter() - t_start, 3)
    summary["figures"] = [f["file"] for f in figures]
    summary["warnings"] = caught
    summary["versions"] = _versions()
    summary["settings"] = _settings(state)
    report = out / "index.html"
    summary["report"] = str(report)
    summary = _jsonable(summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    from ._demo_steps import summary_rows

    _write_html(report, summary, figures, summary_rows(summary["steps"]))
    return summary


def _versions():
    """Versions of Python, the platform and the packages the chain used."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in ("hyperspy_chemomech", "hyperspy", "numpy", "scipy", "matplotlib", "dask",
                 "scikit-image", "pyxem"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _settings(state):
    """What the run used: the options given and those the law recorded."""
    out = dict(state.get("learn_options", {}))
    law = state.get("law")
    if law is not None and law.metadata.has_item("Chemomech.law.settings"):
        rec = law.metadata.Chemomech.law.settings.as_dictionary()
        out.update({f"law: {k}": v for k, v in rec.items()})
        info = law.metadata.Chemomech.law
        out.update({"law: basis": str(info.basis), "law: degree": int(info.degree),
                    "law: method": str(info.method)})
    parts = state.get("decomposition")
    if parts is not None:
        out.update({f"decomposition: {k}": v for k, v in parts.settings.items()})
    return out


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


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;
 padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;
 margin-top:1.6em}
.lead{color:#555}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.num{font-family:monospace;white-space:nowrap;vertical-align:middle}
.ok{color:#1a7f37}.bad{color:#b3261e;font-weight:bold}
.warn{background:#fff4e5;border-left:4px solid #f0a020;padding:.5em 1em;margin:1em 0}
.nowarn{background:#eef8ee;border-left:4px solid #1a7f37;padding:.5em 1em;margin:1em 0}
figure{margin:1.2em 0 2em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.93em;margin-top:.4em}figcaption b{color:#333}
code{background:#f4f4f4;padding:0 .2em}
"""


def _verdict_class(verdict):
    v = verdict.lower()
    if any(w in v for w in ("poor", "wrong", "outside", "rejected")):
        return "bad"
    return "ok" if verdict else ""


def _write_html(path, summary, figures, rows):
    """One self-contained page (figures embedded as base64 PNG) that reads like a lab note."""
    import base64

    e = html.escape
    out = Path(path).parent
    demo = "inputs" not in summary
    title = ("hyperspy_chemomech demo: a synthetic LixFePO4 particle" if demo
             else "hyperspy_chemomech run")
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}"
             f"</title><style>{_CSS}</style></head><body><h1>{e(title)}</h1>"]
    if demo:
        parts.append(
            "<p class='lead'>One particle seen twice, as in a correlative experiment: an X-ray "
            "spectral stack across the Fe L-edge (composition) and a 4D-STEM strain map, on "
            "different grids. The chain finds the composition, registers the two images, "
            "learns how the lattice expands with composition (the eigenstrain law) and splits "
            "the strain into its chemical, coherency and residual parts. The data is "
            "synthetic, so every result is compared with the truth.</p>")
    else:
        parts.append("<p class='lead'>The chain on the files listed under Settings: "
                     "composition, registration, eigenstrain law, decomposition.</p>")
    warns = summary.get("warnings", [])
    if warns:
        counted = {}
        for w in warns:
            key = (w["step"], w["category"], w["message"])
            counted[key] = counted.get(key, 0) + 1
        items = "".join(f"<li><b>{e(s)}</b>: {e(c)}: {e(m)}"
                        f"{f' ({n} times)' if n > 1 else ''}</li>"
                        for (s, c, m), n in counted.items())
        parts.append(f"<div class='warn'><b>{len(warns)} warning(s) during the run</b>"
                     f"<ul>{items}</ul></div>")
    else:
        parts.append("<div class='nowarn'>No warnings during the run.</div>")
    parts.append("<h2>Summary</h2><table><tr><th>quantity</th><th>value</th>"
                 "<th>95 % interval</th><th>truth</th><th>verdict</th></tr>")
    for q, v, ci, t, verdict in rows:
        parts.append(f"<tr><td>{e(q)}</td><td class='num'>{e(v)}</td><td class='num'>{e(ci)}"
                     f"</td><td class='num'>{e(t)}</td><td class='{_verdict_class(verdict)}'>"
                     f"{e(verdict)}</td></tr>")
    parts.append("</table>")
    step_titles = {"simulate": "The data", "composition": "Composition from the X-ray stack",
                   "registration": "Registration of the two images",
                   "learning": "The eigenstrain law", "decomposition": "Decomposition"}
    last = None
    n = 0
    for f in figures:
        if f["step"] != last:
            last = f["step"]
            secs = summary["timings_s"].get(last)
            parts.append(f"<h2>{e(step_titles.get(last, last))}"
                         f"{f' <small>({secs:.1f} s)</small>' if secs is not None else ''}</h2>")
        n += 1
        data = base64.b64encode((out / f["file"]).read_bytes()).decode("ascii")
        cap = f"<b>Figure {n}.</b> {e(f['caption'])}"
        if f["look_for"]:
            cap += f"<br><b>What to look for:</b> {e(f['look_for'])}"
        if f["numbers"]:
            cap += f"<br><b>Numbers:</b> {e(f['numbers'])}"
        parts.append(f"<figure id='{e(f['file'])}'><img src='data:image/png;base64,{data}' "
                     f"alt='{e(f['file'])}: {e(f['caption'][:80])}'>"
                     f"<figcaption>{cap}</figcaption></figure>")
    parts.append("<h2>Settings and versions</h2><table>")
    header = {k: v for k, v in summary.items() if k in ("seed", "size")}
    header.update(summary.get("inputs", {}))
    header.update(summary.get("settings", {}))
    for k, v in header.items():
        v = f"{v:.4g}" if isinstance(v, float) else v
        parts.append(f"<tr><th>{e(str(k))}</th><td class='num'>{e(str(v))}</td></tr>")
    parts.append(f"<tr><th>run time</th><td class='num'>{summary.get('total_time_s', 0):.1f} s "
                 f"({e(', '.join(f'{k} {v:.1f} s' for k, v in summary['timings_s'].items()))})"
                 "</td></tr>")
    for k, v in summary.get("versions", {}).items():
        parts.append(f"<tr><th>{e(k)}</th><td class='num'>{e(str(v))}</td></tr>")
    parts.append("</table><p>All numbers are also in <code>summary.json</code>; the figures "
                 "are beside this page as PNG.</p></body></html>")
    Path(path).write_text("\n".join(parts), encoding="utf-8")
