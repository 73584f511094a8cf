import os

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _no_progressbar_noise():
    """Silence progress bars in tests unless a test asks for them explicitly."""
    from hyperspy.defaults_parser import preferences

    old = preferences.General.show_progressbar
    preferences.General.show_progressbar = False
    yield
    preferences.General.show_progressbar = old


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
