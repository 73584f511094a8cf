"""The end-to-end demo on a synthetic particle: ``python -m hyperspy_chemomech demo``.

Each step is a function ``step(state) -> dict`` that reads and adds to ``state``,
may save figures through ``state["figure"](name, fig)``, and returns the figures of
merit that go into ``summary.json``. Steps are added as capabilities land.
"""

import html
import json
import time
from pathlib import Path


def _step_composition(state):
    """X-ray stack -> optical density -> drift correction -> composition map."""
    from ._demo_steps import composition_step

    return composition_step(state)


STEPS = [
    ("composition", _step_composition),
]


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
        Grid size (px) of the synthetic data; ``None`` uses each step's default.
    verbose : bool
        Print progress per step.
    steps : list of str, optional
        Run only these steps (default all).

    Returns
    -------
    dict
        The summary also written to ``summary.json``; ``summary["report"]`` is the
        path of ``index.html``.
    """
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

    state = {"seed": seed, "size": size, "figure": figure, "out": out}
    summary = {"seed": seed, "size": size, "steps": {}, "timings_s": {}}
    chosen = [s for s in STEPS if steps is None or s[0] in steps]
    for i, (name, func) in enumerate(chosen, 1):
        if verbose:
            print(f"[{i}/{len(chosen)}] {name} ...", flush=True)
        t0 = time.perf_counter()
        summary["steps"][name] = func(state)
        summary["timings_s"][name] = round(time.perf_counter() - t0, 3)
        if verbose:
            print(f"      done in {summary['timings_s'][name]:.1f} s", flush=True)
    summary["figures"] = figures
    report = out / "index.html"
    summary["report"] = str(report)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    _write_html(report, summary)
    return summary


def _write_html(path, summary):
    rows = "\n".join(
        f"<figure><img src='{html.escape(f)}' alt='{html.escape(f)}'>"
        f"<figcaption>{html.escape(f)}</figcaption></figure>"
        for f in summary["figures"]
    )
    body = html.escape(json.dumps(summary["steps"], indent=2, default=float))
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<title>hyperspy_chemomech demo</title>"
        "<style>img{max-width:100%}figure{display:inline-block;margin:1em}</style>"
        "</head><body><h1>hyperspy_chemomech demo report</h1>"
        f"{rows}<h2>Summary</h2><pre>{body}</pre></body></html>"
    )
