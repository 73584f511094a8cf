"""
Check the conventions of an imported strain map
===============================================

Strain maps from other tools differ in sign and shear conventions (rotation sign,
engineering shear, y up). A defect-poor particle's distortion is compatible (a
displacement gradient); a map read with the wrong convention is visibly not.
:meth:`~hyperspy_chemomech.signals.StrainField.check_conventions` needs no
composition to tell.
"""

import numpy as np

from hyperspy_chemomech.signals import StrainField
from hyperspy_chemomech.simulate import make_particle

strain = make_particle(shape=(50, 80), noise=1e-4, seed=0).strain_field()
print("as given:", strain.check_conventions()["message"])

# %%
# The same map exported with the opposite rotation sign.
e11, e22, e12, theta = np.asarray(strain.data)
flipped = StrainField.from_components(e11, e22, e12, -theta,
                                      scale=strain.axes_manager[-1].scale)
check = flipped.check_conventions()
print("rotation flipped:", check["message"])
print({k: round(v, 3) for k, v in check["index"].items()})
flipped.plot()
