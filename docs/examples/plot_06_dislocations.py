"""
Find dislocations and their Burgers vectors
===========================================

An edge dislocation makes a strain field that is not the gradient of a
displacement; the Nye tensor (the curl of the distortion) is its Burgers content
per area. :meth:`~hyperspy_chemomech.signals.StrainField.find_dislocations` locates
the cores and integrates each Burgers vector; here two dislocations of known
Burgers vectors.
"""

# sphinx_gallery_thumbnail_number = 2
import numpy as np

from hyperspy_chemomech.signals import StrainField, plot_component_maps
from hyperspy_chemomech.simulate import dislocation_strain

maps = dislocation_strain((60, 90), positions=[(30.3, 25.6), (25, 65)],
                          burgers=[(0.5, 0.2), (-0.3, 0.4)], pixel_size=2.0)
field = StrainField.from_components(*maps, scale=2.0)
found = field.find_dislocations()
print(found[["x", "y", "b_x", "b_y"]])
print("|b| (nm):", np.round(np.hypot(found["b_x"], found["b_y"]), 3))

# %%
# The Nye tensor as panels: alpha_x and alpha_y on one signed scale, the
# magnitude ``|alpha|`` from zero.
plot_component_maps(field.dislocation_density(), per_row=3)

# %%
# The magnitude ``|alpha|`` with the cores and Burgers vectors drawn.
field.plot_dislocations(found)
