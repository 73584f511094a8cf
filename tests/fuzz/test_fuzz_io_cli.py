"""Fuzz set (issue 15): files and the command line.

``load_correlative_mat`` on damaged MATLAB files, and ``python -m
hyperspy_chemomech run|demo``: every failure is one line on stderr naming the
problem (the option or the file), exit code 2, no traceback.
"""

import subprocess
import sys

import numpy as np
import pytest
from _oracles import _record, expect_error, expect_truth, run_truth

from hyperspy_chemomech.__main__ import main
from hyperspy_chemomech.io import load_correlative_mat

# ------------------------------------------------------------------- .mat files
SHAPE = (24, 30)


def _mat_vars(**changes):
    rng = np.random.default_rng(0)
    ny, nx = SHAPE
    mask = np.zeros(SHAPE)
    mask[4:20, 5:25] = 1
    lfp = np.where(mask > 0, np.linspace(0, 1, nx)[None, :].repeat(ny, 0), 0.0)
    v = {"exx": rng.normal(0, 1e-3, SHAPE), "eyy": rng.normal(0, 1e-3, SHAPE),
         "exy": rng.normal(0, 1e-3, SHAPE), "theta": rng.normal(0, 1e-3, SHAPE),
         "FP": (1 - lfp) * mask, "LFP": lfp * mask, "mask": mask, "rot": 0.3,
         "pixel_size": 5.0}
    for k, val in changes.items():
        if val is None:
            v.pop(k)
        else:
            v[k] = val
    return v


def _write_mat(tmp_path, name="m.mat", **changes):
    from scipy.io import savemat

    path = tmp_path / name
    savemat(path, _mat_vars(**changes))
    return path


MAT_BAD = [
    ({"pixel_size": 0.0}, ("pixel_size",)), ({"pixel_size": np.nan}, ("pixel_size",)),
    ({"pixel_size": -5.0}, ("pixel_size",)), ({"pixel_size": np.inf}, ("pixel_size",)),
    ({"pixel_size": np.ones(3)}, ("pixel_size",)), ({"rot": np.nan}, ("rot",)),
    ({"rot": np.inf}, ("rot",)), ({"rot": np.ones(2)}, ("rot",)),
    ({"FP": np.zeros(SHAPE), "LFP": np.zeros(SHAPE)}, ("FP", "LFP")),
    ({"FP": np.full(SHAPE, np.nan), "LFP": np.full(SHAPE, np.nan)}, ("FP", "LFP")),
    ({"exx": None}, ("exx",)), ({"FP": None}, ("FP",)), ({"theta": None}, ("theta",)),
    ({"eyy": np.zeros((5, 5))}, ("eyy",)), ({"exx": np.zeros(10)}, ("exx",)),
    ({"pixel_size": None}, ("pixel size",)),
    ({"exx": np.zeros(SHAPE) + 1e-3j}, ("exx", "complex")),
    ({"LFP": np.ones(SHAPE) + 1j}, ("LFP", "complex")),
    ({"exx": np.full(SHAPE, "a")}, ("exx",)),
]


@pytest.mark.parametrize("changes, names", MAT_BAD, ids=[str(sorted(c))[:30] + str(i)
                                                         for i, (c, _) in enumerate(MAT_BAD)])
def test_mat_bad_file(tmp_path, changes, names):
    path = _write_mat(tmp_path, **changes)
    expect_error(load_correlative_mat, path, names=names)


@pytest.mark.parametrize("kwargs, names", [
    ({"pixel_size": 0.0}, ("pixel_size",)), ({"pixel_size": np.nan}, ("pixel_size",)),
    ({"pixel_size": (5.0, -1.0)}, ("pixel_size",)), ({"rot": np.inf}, ("rot",)),
    ({"frame": "lab"}, ("frame",)), ({"threshold": 1e9}, ("threshold",)),
    ({"threshold": np.nan}, ("threshold",)),
])
def test_mat_bad_arguments(tmp_path, kwargs, names):
    path = _write_mat(tmp_path)
    expect_error(load_correlative_mat, path, names=names, **kwargs)


def test_mat_missing_file(tmp_path):
    expect_error(load_correlative_mat, tmp_path / "none.mat", exc=(OSError, ValueError),
                 names=("none.mat",))


def test_mat_correct(tmp_path):
    path = _write_mat(tmp_path)
    maps = run_truth(load_correlative_mat, path)
    X = np.asarray(maps[1].data)
    want = np.linspace(0, 1, SHAPE[1])[None, :].repeat(SHAPE[0], 0)
    inside = np.isfinite(X)
    ok = (np.allclose(X[inside], want[inside]) and inside[4:20, 8:25].all()
          and maps[0].axes_manager.signal_axes[0].scale == 5.0)
    expect_truth(ok, "X = LFP / (FP + LFP) or the pixel size is wrong")


# --------------------------------------------------------------- command line
def cli(argv, capsys, names):
    """Oracle for one failing command line: exit 2, one line naming ``names``."""
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    except Exception as err:  # noqa: BLE001
        _record("obscure")
        pytest.fail(f"obscure: the CLI raised {type(err).__name__}: {err}")
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    msg = " ".join(lines).lower()
    missing = [n for n in names if not any(a.lower() in msg for a in
                                           (n if isinstance(n, tuple) else (n,)))]
    if rc == 0:
        _record("silent")
        pytest.fail(f"silent: exit code 0 for {argv}")
    if rc != 2 or len(lines) != 1 or "Traceback" in err or missing:
        _record("obscure")
        pytest.fail(f"obscure: exit {rc}, {len(lines)} lines, missing {missing}: {err!r}")
    _record("clear error")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A user's files, small: counts stack, two references, strain, dark field."""
    from hyperspy_chemomech.simulate import correlative_particle

    d = tmp_path_factory.mktemp("cli")
    c = correlative_particle(shape=(60, 100), seed=0, n_dislocations=0, n_energies=30)
    c.stack.save(d / "stack.hspy")
    for name, ref in zip(("fp", "lfp"), c.references):
        ref.save(d / f"{name}.hspy")
    c.particle.strain_field().save(d / "strain.hspy")
    c.stem_image.save(d / "df.hspy")
    (d / "junk.hspy").write_bytes(b"\x00not an hdf5 file" * 10)
    from scipy.io import savemat

    savemat(d / "empty.mat", _mat_vars(FP=np.zeros(SHAPE), LFP=np.zeros(SHAPE)))
    return d


def _args(d, **over):
    a = {"--xray": [str(d / "stack.hspy")],
         "--references": [str(d / "fp.hspy"), str(d / "lfp.hspy")],
         "--strain": [str(d / "strain.hspy")], "--stem": [str(d / "df.hspy")],
         "--out": [str(d / "out")]}
    for k, v in over.items():
        key = "--" + k.replace("_", "-")
        if v is None:
            a.pop(key)
        else:
            a[key] = v if isinstance(v, list) else [v]
    argv = ["run"]
    for k, v in a.items():
        argv += [k] + v
    return argv


CLI_CASES = [
    ({"xray": None}, ("--xray",)), ({"strain": None}, ("--strain",)),
    ({"references": None}, ("--references",)), ({"stem": None}, ("--stem",)),
    ({"plane": "shell"}, ("--plane",)), ({"boundary": "glued"}, ("--boundary",)),
    ({"crystal_angle": "abc"}, ("--crystal-angle",)), ({"crystal_angle": "nan"}, ("--crystal-angle",)),
    ({"crystal_angle": "inf"}, ("--crystal-angle",)), ({"material": "unobtanium"}, ("unobtanium",)),
    ({"xray": "missing.hspy"}, ("--xray", "missing.hspy")),
    ({"strain": "missing.hspy"}, ("--strain", "missing.hspy")),
    ({"stem": "missing.hspy"}, ("--stem", "missing.hspy")),
    ({"references": ["fp_missing.hspy", "lfp.hspy"]}, ("--references", "fp_missing.hspy")),
    ({"references": ["ONE"]}, ("--references",)),
    ({"xray": "JUNK"}, ("--xray", "junk.hspy")), ({"strain": "JUNK"}, ("--strain", "junk.hspy")),
    ({"references": ["JUNK", "LFP"]}, ("--references", "junk.hspy")),
    ({"strain": "EMPTYMAT"}, ("--strain", "empty.mat")),
    ({"references": ["LFP", "FP"]}, ("order",)),
    ({"references": ["FP", "FP"]}, (("reference", "linearly dependent"),)),
    ({"xray": "STRAIN"}, ("--xray",)),
]


@pytest.mark.parametrize("over, names", CLI_CASES, ids=[str(o)[:40] for o, _ in CLI_CASES])
def test_cli_run_failure(files, capsys, over, names):
    sub = {"JUNK": str(files / "junk.hspy"), "EMPTYMAT": str(files / "empty.mat"),
           "LFP": str(files / "lfp.hspy"), "FP": str(files / "fp.hspy"),
           "ONE": str(files / "fp.hspy"), "STRAIN": str(files / "strain.hspy")}
    over = {k: ([sub.get(x, x) for x in v] if isinstance(v, list) else sub.get(v, v))
            for k, v in over.items()}
    cli(_args(files, **over), capsys, names)


@pytest.mark.parametrize("argv, names", [
    ([], ("command",)), (["nonsense"], ("nonsense",)), (["demo", "--size", "0"], ("--size",)),
    (["demo", "--size", "-5"], ("--size",)), (["demo", "--size", "10"], ("--size",)),
    (["demo", "--seed", "abc"], ("--seed",)), (["demo", "--size", "big"], ("--size",)),
    (["run", "--bogus", "1"], (("--bogus", "arguments"),)),
])
def test_cli_argument_failure(capsys, argv, names):
    cli(argv, capsys, names)


def test_cli_subprocess_one_line(tmp_path):
    """The real entry point: exit code 2, one line, no traceback."""
    r = subprocess.run([sys.executable, "-m", "hyperspy_chemomech", "run", "--xray",
                        str(tmp_path / "x.hspy"), "--references", "a", "b", "--strain", "s",
                        "--stem", "d"], capture_output=True, text=True, timeout=120)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    ok = r.returncode == 2 and len(lines) == 1 and "x.hspy" in lines[0] and "Traceback" not in r.stderr
    if not ok:
        _record("obscure")
    expect_truth(ok, f"exit {r.returncode}, stderr {r.stderr!r}")
