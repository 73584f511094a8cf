"""The Sphinx documentation builds without warnings; the gallery runs; intersphinx resolves."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        capture_output=True, text=True,
    )
    # generated in the source tree: the API stubs and the gallery's pages
    shutil.rmtree(DOCS / "api" / "generated", ignore_errors=True)
    shutil.rmtree(DOCS / "gallery", ignore_errors=True)
    (DOCS / "sg_execution_times.rst").unlink(missing_ok=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    html = tmp_path / "html"
    assert (html / "index.html").exists()

    # the gallery: every example ran (its page shows its figures and its output)
    examples = sorted(p.stem for p in (DOCS / "examples").glob("plot_*.py"))
    assert len(examples) >= 8
    for name in examples:
        page = (html / "gallery" / f"{name}.html").read_text(encoding="utf-8")
        assert f"sphx_glr_{name}_001.png" in page, f"{name} made no figure"
        assert (html / "_images" / f"sphx_glr_{name}_001.png").stat().st_size > 5000
    index = (html / "gallery" / "index.html").read_text(encoding="utf-8")
    assert all(f"sphx_glr_{name}_thumb.png" in index for name in examples)

    # intersphinx from the committed inventories (no network): links to the projects' docs
    pages = "".join(p.read_text(encoding="utf-8") for p in (html / "gallery").glob("*.html"))
    for site in ("https://hyperspy.org/hyperspy-doc/", "https://numpy.org/doc/stable/",
                 "https://docs.scipy.org/doc/scipy/", "https://pyxem.readthedocs.io/"):
        assert re.search(f'href="{re.escape(site)}[^"]+"', pages), f"no link into {site}"
