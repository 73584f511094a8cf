"""Distribution: sdist and wheel, licence, version from the tag, registry, recipe, citation.

The builds run from a clone of this work tree (uncommitted and untracked, not ignored,
files included) made with symbolic links disabled, as on Windows by default, and tagged
with a test version; they need git and no network (``--no-isolation``, ``--no-index``).
"""

import json
import os
import re
import shutil
import site
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

import hyperspy_chemomech as hcm

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
REGISTRY = ROOT / "hyperspy_chemomech" / "hyperspy_extension.yaml"
TAG_VERSION = "9.8.7"  # a version no real tag has, so a match can only come from our tag
SIGNAL_TYPES = {
    "XrayAbsorptionSpectrum": "xray_absorption",
    "CompositionMap": "composition_map",
    "StrainField": "strain_field",
    "EigenstrainLaw": "eigenstrain_law",
}
SEED_DOI = "10.1038/s41563-021-01191-0"
# PyPI name -> conda-forge name, where they differ (the conda-forge packages without the
# optional extras that pip's names would pull in)
CONDA_NAMES = {"hyperspy": "hyperspy-base", "dask": "dask-core", "matplotlib": "matplotlib-base",
               "msgpack": "msgpack-python"}


def _run(cmd, cwd=None, ok=True, **kw):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, **kw)
    if ok:
        assert r.returncode == 0, f"{cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _git(*args, cwd=ROOT, ok=True):
    return _run(["git", *args], cwd=cwd, ok=ok)


def _require_git_checkout():
    if shutil.which("git") is None:
        pytest.skip("git is not installed: the packaging tests build from a clone")
    if _git("rev-parse", "--is-inside-work-tree", ok=False).returncode != 0:
        pytest.skip(f"{ROOT} is not a git work tree (an unpacked sdist?): nothing to clone")


@pytest.fixture(scope="module")
def tagged_clone(tmp_path_factory):
    """A clone of the work tree as it is now, without symlinks, tagged v9.8.7."""
    _require_git_checkout()
    dest = tmp_path_factory.mktemp("clone") / "hyperspy_chemomech"
    _git("-c", "core.symlinks=false", "clone", "-q", "--no-hardlinks",
         "-c", "core.symlinks=false", ROOT, dest)
    # the work tree's own state, so a test run checks what is on disk, not only HEAD
    diff = _run(["git", "diff", "HEAD", "--binary"], cwd=ROOT).stdout
    if diff.strip():
        _run(["git", "apply", "--whitespace=nowarn", "-"], cwd=dest, input=diff)
    untracked = _git("ls-files", "--others", "--exclude-standard", "-z").stdout.split("\0")
    for rel in filter(None, untracked):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target, follow_symlinks=True)
    ident = ["-c", "user.name=packaging test", "-c", "user.email=test@localhost",
             "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]
    _git("add", "-A", cwd=dest)
    _git(*ident, "commit", "-q", "--allow-empty", "--no-verify", "-m", "release test", cwd=dest)
    _git(*ident, "tag", f"v{TAG_VERSION}", cwd=dest)
    return dest


@pytest.fixture(scope="module")
def dists(tagged_clone, tmp_path_factory):
    """(sdist, wheel) built from the tagged clone: the wheel is built from the sdist."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, tagged_clone])
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def _venv(path):
    """A fresh environment that sees this one's packages (HyperSpy, NumPy...: no network).

    Without its own pip: on Python 3.11 that would bring an old setuptools that shadows
    ours and cannot read the SPDX licence; this environment's pip installs into it.
    """
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", path])
    python = path / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    if sys.prefix != sys.base_prefix:
        # run from a virtual environment: --system-site-packages reaches only the base
        # interpreter's packages, so add this environment's (after the new one's own)
        purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
        dirs = [d for d in site.getsitepackages() if Path(d).is_dir()]
        line = "import site; " + "; ".join(f"site.addsitedir({d!r})" for d in dirs)
        (Path(purelib.stdout.strip()) / "_outer_environment.pth").write_text(line + "\n")
    return python


def _pip_install(python, *args):
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
          "--no-index", *args])


# what an installed copy reports, run in the fresh environment, outside any source tree
_PROBE = r"""
import io, json, contextlib, importlib.metadata as md
import hyperspy.api as hs
from hyperspy.extensions import ALL_EXTENSIONS
import hyperspy_chemomech as hcm
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    hs.print_known_signal_types()
s = hs.signals.Signal2D([[[0.0]]] * 4)
s.set_signal_type("strain_field")
print(json.dumps({
    "file": hcm.__file__,
    "version": hcm.__version__,
    "registered": {k: v["signal_type"] for k, v in ALL_EXTENSIONS["signals"].items()
                   if v["module"].startswith("hyperspy_chemomech")},
    "printed": buf.getvalue(),
    "strain_class": type(s).__name__,
    "strain_module_file": __import__(type(s).__module__, fromlist=["x"]).__file__,
    "dist_files": [str(f) for f in (md.files("hyperspy_chemomech") or [])],
}))
"""


def _probe(python, cwd):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["MPLBACKEND"] = "Agg"
    r = _run([python, "-c", _PROBE], cwd=cwd, env=env)
    return json.loads(r.stdout.strip().splitlines()[-1])


def _check_registered(info):
    for cls, stype in SIGNAL_TYPES.items():
        assert info["registered"].get(cls) == stype, (cls, info["registered"])
        assert info["registered"].get("Lazy" + cls) == stype, ("Lazy" + cls, info["registered"])
        assert stype in info["printed"]
    assert "XAS, STXM" in info["printed"]
    assert info["strain_class"] == "StrainField"


# -- the wheel -----------------------------------------------------------------------------
def test_wheel_contents(dists, tagged_clone):
    _, wheel = dists
    assert wheel.name.startswith(f"hyperspy_chemomech-{TAG_VERSION}-py3-none-any")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = f"hyperspy_chemomech-{TAG_VERSION}.dist-info/"
        meta = z.read(info + "METADATA").decode()
        licence = z.read(info + "licenses/LICENSE").decode()
        registry = z.read("hyperspy_chemomech/hyperspy_extension.yaml").decode()
        eps = z.read(info + "entry_points.txt").decode()
    # the package, every module of it, and nothing else: no tests, docs, fixtures, data
    modules = {p.relative_to(tagged_clone).as_posix()
               for p in (tagged_clone / "hyperspy_chemomech").rglob("*.py")}
    assert modules and modules <= names
    outside = {n for n in names if not n.startswith(("hyperspy_chemomech/", info))}
    assert not outside, outside
    assert not [n for n in names if re.search(r"(^|/)(tests?|fixtures|shared|realdata|docs)/", n)]
    assert not [n for n in names if n.endswith((".mat", ".hspy", ".zspy", ".h5", ".png", ".jpg"))]
    assert registry == REGISTRY.read_text()
    assert "[hyperspy.extensions]" in eps and "hyperspy_chemomech = hyperspy_chemomech" in eps
    assert licence == (ROOT / "LICENSE").read_text()
    assert f"Version: {TAG_VERSION}\n" in meta
    assert "License-Expression: GPL-3.0-or-later\n" in meta
    assert "License-File: LICENSE\n" in meta
    assert "Description-Content-Type: text/markdown" in meta


def test_sdist_contents(dists, tagged_clone):
    sdist, _ = dists
    top = f"hyperspy_chemomech-{TAG_VERSION}/"
    with tarfile.open(sdist) as t:
        names = {n[len(top):] for n in t.getnames() if n.startswith(top)}
        pkg_info = t.extractfile(top + "PKG-INFO").read().decode()
    expected = {p.relative_to(tagged_clone).as_posix()
                for pattern in ("tests/*.py", "docs/**/*.rst", "docs/conf.py")
                for p in tagged_clone.glob(pattern)}
    assert "tests/test_packaging.py" in expected and "docs/index.rst" in expected
    assert expected <= names, expected - names
    for f in ("LICENSE", "README.md", "CHANGELOG.md", "CITATION.cff", "CONTRIBUTING.md",
              "pyproject.toml", "recipe/meta.yaml", "hyperspy_chemomech/hyperspy_extension.yaml"):
        assert f in names, f
    assert f"Version: {TAG_VERSION}\n" in pkg_info


def test_twine_check_passes(dists):
    r = _run([sys.executable, "-m", "twine", "check", "--strict", *dists])
    assert r.stdout.count("PASSED") == 2, r.stdout


def test_wheel_in_fresh_venv_registers_signal_types(dists, tmp_path):
    _, wheel = dists
    python = _venv(tmp_path / "venv")
    _pip_install(python, wheel)
    info = _probe(python, cwd=tmp_path)
    # the copy that answers is the wheel's, not this checkout or another installed one
    venv = (tmp_path / "venv").resolve()
    assert Path(info["file"]).resolve().is_relative_to(venv)
    assert info["version"] == TAG_VERSION
    assert any(f.endswith("licenses/LICENSE") for f in info["dist_files"]), info["dist_files"]
    _check_registered(info)
    assert Path(info["strain_module_file"]).resolve().is_relative_to(venv)


def test_editable_clone_without_symlinks_registers_signal_types(tagged_clone, tmp_path):
    assert _git("config", "core.symlinks", cwd=tagged_clone).stdout.strip() == "false"
    yaml_file = tagged_clone / "hyperspy_chemomech" / "hyperspy_extension.yaml"
    assert yaml_file.is_file() and not yaml_file.is_symlink()
    python = _venv(tmp_path / "venv")
    _pip_install(python, "--no-build-isolation", "-e", tagged_clone)
    info = _probe(python, cwd=tmp_path)
    assert Path(info["file"]).resolve().is_relative_to(tagged_clone.resolve())
    assert info["version"] == TAG_VERSION
    _check_registered(info)


def test_source_archive_without_git_builds_with_the_fallback_version(tagged_clone, tmp_path):
    """A download of the sources (no .git, no tag) still builds a complete wheel."""
    src = tmp_path / "src"
    src.mkdir()
    archive = tmp_path / "src.tar"
    _git("archive", "--format=tar", "-o", archive, "HEAD", cwd=tagged_clone)
    with tarfile.open(archive) as t:
        # the safe filter where this Python has it (3.10.12+, 3.11.4+)
        t.extractall(src, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    assert not (src / ".git").exists()
    _run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
          tmp_path / "dist", src])
    fallback = PYPROJECT["tool"]["setuptools_scm"]["fallback_version"]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name.startswith(f"hyperspy_chemomech-{fallback}-")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert "hyperspy_chemomech/hyperspy_extension.yaml" in names
    assert f"hyperspy_chemomech-{fallback}.dist-info/licenses/LICENSE" in names


def test_no_symbolic_links_tracked():
    """A tracked link becomes a text file holding its target in a clone without symlinks."""
    _require_git_checkout()
    links = [line for line in _git("ls-files", "-s").stdout.splitlines()
             if line.startswith("120000")]
    assert not links, links


# -- metadata ------------------------------------------------------------------------------
def test_licence_metadata():
    project = PYPROJECT["project"]
    assert project["license"] == "GPL-3.0-or-later"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("GNU GENERAL PUBLIC LICENSE")
    assert "Version 3, 29 June 2007" in text and "END OF TERMS AND CONDITIONS" in text
    # PEP 639: a licence classifier beside an SPDX expression is an error
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]


def test_classifiers_are_known_to_pypi():
    import trove_classifiers

    unknown = set(PYPROJECT["project"]["classifiers"]) - trove_classifiers.classifiers
    assert not unknown, unknown


def test_version_is_dynamic_and_exposed():
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools_scm"]["fallback_version"]
    assert isinstance(hcm.__version__, str) and hcm.__version__
    assert "__version__" in dir(hcm)


def test_every_recorded_step_carries_the_version(rng):
    import hyperspy.api as hs

    from hyperspy_chemomech._metadata import record, recorded

    s = hs.signals.Signal2D(rng.random((3, 4)))
    record(s, "some_step", answer=1)
    assert recorded(s, "some_step") == {"version": hcm.__version__, "answer": 1}
    # a real step writes it too
    stack = hs.signals.Signal1D(rng.uniform(50, 100, (4, 5, 6)))
    stack.axes_manager[-1].units = "eV"
    stack.set_signal_type("xray_absorption")
    od = stack.to_optical_density(i0=100.0)
    assert od.metadata.Chemomech.optical_density.version == hcm.__version__


def test_learned_law_carries_the_version():
    from hyperspy_chemomech.simulate.particle import make_particle

    p = make_particle(shape=(40, 60), pixel_size=4.0, seed=3)
    law = p.strain_field().learn_eigenstrain(p.composition_map(), degree=1,
                                             composition_resolution=0.0)
    assert law.metadata.Chemomech.law.version == hcm.__version__
    assert law.metadata.Chemomech.law.basis == "legendre"  # the fit's own node is kept


def test_build_requirements_can_read_the_metadata():
    requires = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    by_name = {r.name: r.specifier for r in requires}
    # setuptools 77 is the first to read an SPDX `license` string and `license-files`
    assert by_name["setuptools"].contains("77.0") and not by_name["setuptools"].contains("76.9")
    assert "setuptools-scm" in by_name


# -- conda-forge recipe --------------------------------------------------------------------
def _recipe():
    text = (ROOT / "recipe" / "meta.yaml").read_text()
    jinja = dict(re.findall(r'{%\s*set\s+(\w+)\s*=\s*"([^"]*)"\s*%}', text))
    text = re.sub(r"{%.*?%}", "", text)
    text = re.sub(r"{{\s*(\w+)\s*}}", lambda m: jinja.get(m.group(1), m.group(1)), text)
    text = re.sub(r"{{.*?}}", "JINJA", text)
    return yaml.safe_load(text), jinja


def _conda_spec(line):
    name, _, spec = line.partition(" ")
    return name, SpecifierSet(spec.replace(" ", ""))


def _pip_specs(requirements):
    out = {}
    for r in map(Requirement, requirements):
        out[CONDA_NAMES.get(r.name, r.name)] = r.specifier
    return out


def test_recipe_run_requirements_match_pyproject():
    recipe, jinja = _recipe()
    run = dict(_conda_spec(x) for x in recipe["requirements"]["run"])
    python = run.pop("python")
    assert python == SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert jinja["python_min"] == PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert run == _pip_specs(PYPROJECT["project"]["dependencies"])
    # optional extras are constraints, not requirements, of the conda package
    extras = PYPROJECT["project"]["optional-dependencies"]
    optional = _pip_specs(extras["diffraction"] + extras["ebsd"])
    assert dict(map(_conda_spec, recipe["requirements"]["run_constrained"])) == optional
    # the build backend in the recipe's host environment is pyproject's
    host = dict(_conda_spec(x) for x in recipe["requirements"]["host"]
                if x.startswith(("setuptools ", "setuptools-scm ")))
    build = _pip_specs(PYPROJECT["build-system"]["requires"])
    assert host == build


def test_recipe_metadata_and_tests():
    recipe, jinja = _recipe()
    # conda-forge spells the PyPI name with dashes; the source URL uses the PyPI name
    assert recipe["package"]["name"] == PYPROJECT["project"]["name"].replace("_", "-")
    assert jinja["name"] == PYPROJECT["project"]["name"]
    assert recipe["build"]["noarch"] == "python"
    assert recipe["about"]["license"] == PYPROJECT["project"]["license"]
    assert recipe["about"]["license_file"] == "LICENSE"
    scripts = PYPROJECT["project"]["scripts"]
    assert recipe["build"]["entry_points"] == [f"{k} = {v}" for k, v in scripts.items()]
    assert "hyperspy_chemomech" in recipe["test"]["imports"]
    commands = " ".join(recipe["test"]["commands"])
    assert "hs.print_known_signal_types()" in commands
    for cls in SIGNAL_TYPES:
        assert cls in commands


# -- citation, changelog, contributing -----------------------------------------------------
def test_citation_file_names_the_seed_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["license"] == PYPROJECT["project"]["license"]
    paper = cff["preferred-citation"]
    assert paper["doi"] == SEED_DOI
    assert (paper["journal"], paper["volume"], paper["start"], paper["year"]) == (
        "Nature Materials", 21, 547, 2022)
    assert paper["authors"][0]["family-names"] == "Deng"
    for page in ("README.md", "docs/index.rst"):
        text = (ROOT / page).read_text()
        assert SEED_DOI in text and "Deng et al." in text, page


def test_changelog_keeps_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog")
    assert "## [Unreleased]" in text and "keepachangelog.com" in text
    sections = re.findall(r"^### (\w+)", text, flags=re.M)
    assert sections and set(sections) <= {"Added", "Changed", "Deprecated", "Removed",
                                          "Fixed", "Security"}


def test_contributing_lists_our_signal_types():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    registry = yaml.safe_load(REGISTRY.read_text())["signals"]
    rows = re.findall(r"^\| (\w+) \| ([^|]*)\| (\w+) \| hyperspy_chemomech \|$", text, flags=re.M)
    listed = {cls: (stype, aliases.strip()) for stype, aliases, cls in rows}
    expected = {cls: (e["signal_type"], ", ".join(e.get("signal_type_aliases", [])))
                for cls, e in registry.items() if not e["lazy"]}
    assert listed == expected
