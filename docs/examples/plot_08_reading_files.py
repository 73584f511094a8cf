"""
Read strain maps written by other tools
=======================================

Maps from MATLAB (the ``.mat`` files of Deng et al.'s code: ``exx, eyy, exy,
theta, FP, LFP``) and from py4DSTEM (``e_xx, e_yy, e_xy, theta``, indexed
``[Rx, Ry]``) become a :class:`~hyperspy_chemomech.signals.StrainField` in the image
frame, and, for the ``.mat``, a
:class:`~hyperspy_chemomech.signals.CompositionMap`. Here both files are written
from a synthetic particle first (with :func:`scipy.io.savemat`), then read back.
"""

import tempfile
from pathlib import Path

import numpy as np
from scipy.io import savemat

import hyperspy_chemomech as hcm
from hyperspy_chemomech.simulate import make_particle

p = make_particle(shape=(40, 64), pixel_size=5.0, noise=1e-4, seed=5)
e11, e22, e12, theta = (np.nan_to_num(c) for c in p.strain)   # MATLAB files hold no NaN
X = np.nan_to_num(p.X_observed)
folder = Path(tempfile.mkdtemp())
savemat(folder / "particle.mat", {"exx": e11, "eyy": e22, "exy": e12, "theta": theta,
                                  "FP": (1 - X) * p.mask, "LFP": X * p.mask,
                                  "mask": p.mask.astype(float)})
strain, comp, images = hcm.io.load_correlative_mat(folder / "particle.mat", pixel_size=5.0,
                                                   frame="image")
print(strain, comp)
print("largest difference to the original e11:",
      float(np.nanmax(np.abs(np.asarray(strain.data)[0] - p.strain[0]))))

# %%
# py4DSTEM's x is the first array axis (rows) and its strain is that of the
# reciprocal lattice: to first order its ``e_xx`` is our e22 and ``e_yy`` our e11.
# The reader rebuilds the exact distortion and swaps the axes.
py4d = {"e_xx": e22, "e_yy": e11, "e_xy": e12, "theta": theta, "mask": p.mask}
strain2 = hcm.io.load_py4dstem_strain(py4d, pixel_size=5.0)
diff = np.abs(np.asarray(strain2.data)[:, p.mask] - np.asarray(strain.data)[:, p.mask])
print("largest difference to the .mat route (second order in the strain):", diff.max())
strain2.plot()
