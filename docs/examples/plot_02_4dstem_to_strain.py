"""
4D-STEM diffraction to a strain field (pyxem)
=============================================

Nano-beam diffraction patterns of a strained particle (a
:class:`pyxem.signals.ElectronDiffraction2D`) become strain and rotation maps: Bragg disks found
and refined in every pattern, a 2D lattice fitted, compared with the reference
lattice. The result is a :class:`~hyperspy_chemomech.signals.StrainField` in the
image frame, compared here with the simulation's truth.
"""

import numpy as np

import hyperspy_chemomech as hcm
from hyperspy_chemomech.simulate import synthetic_4dstem

dp, truth = synthetic_4dstem(scan_shape=(16, 16), detector_shape=(96, 96), seed=1)
print(dp)
strain = hcm.strain_from_diffraction(dp, show_progressbar=False)  # disk radius from the data
print("disk radius (px):", strain.metadata.Chemomech.strain_from_diffraction.disk_radius)
err = np.nanmax(np.abs(np.asarray(strain.data) - truth["components"]), axis=(1, 2))
print("largest error per component (e11, e22, e12, theta):", np.round(err, 5))

# %%
# The four components as labelled panels, strains on one colour scale.
strain.plot()
