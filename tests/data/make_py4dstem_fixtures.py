"""Write the py4DSTEM strain-map fixtures of tests/test_io_py4dstem.py with py4DSTEM itself.

Environment that wrote the committed files (py4DSTEM 0.14 pins numpy < 2, so this
runs in its own virtual environment, not the project's):

    python 3.11.7, py4DSTEM 0.14.18, emdfile 0.0.16, numpy 1.26.4
    python -m venv /work/venv-py4dstem
    /work/venv-py4dstem/bin/pip install py4DSTEM==0.14.18 emdfile==0.0.16 'numpy<2'
    MPLBACKEND=Agg /work/venv-py4dstem/bin/python tests/data/make_py4dstem_fixtures.py

Imposed strain (exact, image frame: x = scan column = Ry, y = scan row = Rx; tensor
shear; rotation positive from +x toward +y), on a 12 x 16 scan (Rx, Ry) with an
elliptical particle (vacuum outside: only the direct beam, so py4DSTEM's own fit
fails there and its mask is 0):

    H(y, x) = f(x) * H0,  f = smoothstep((x - 3) / 5), 0 for x <= 3, 1 for x >= 8
    H0 = [[e11, e12 - theta], [e12 + theta, e22]]
    e11 = +0.012, e22 = -0.008, e12 = +0.005, theta = -0.004 (rad)

The reference region (py4DSTEM's ``gvects`` ROI) is the particle's pixels with
x <= 3, where H = 0. Each diffraction pattern (72 x 72 px, detector rows along scan
rows, columns along scan columns, no rotation or flip) holds disks of radius 3 px at
``centre + A g``, ``A = inv(I + H).T`` the reciprocal distortion, for the lattice
g = n (21, 4) + m (-5, 18) px ((gx, gy) = (column, row)), drawn with a linear
anti-aliased edge. py4DSTEM then runs its ordinary strain workflow: template-matched
disk detection (multicorr, upsample 32), origin at the pattern centre, QR rotation 0,
StrainMap.choose_basis_vectors / fit_basis_vectors / get_strain(gvects=ROI).

Files written next to this script (py4DSTEM.save):

- ``py4dstem_strainmap.h5``: the StrainMap alone (a root-level emdfile Array with
  slices e_xx, e_yy, e_xy, theta, mask, error; labels in the dim vector ``dim2``
  named ``_labels_``) and the root calibration (R_pixel_size 2.5 nm).
- ``py4dstem_tree_rotated.h5``: the BraggVectors with their tree, so the StrainMap
  (recomputed with ``coordinate_rotation=25`` degrees) is a nested group under them.
- ``py4dstem_realslice.h5``: the unrotated RealSlice ``strainmap_g1g2`` that
  ``get_strain`` computes (slices e_xx, e_yy, e_xy, theta, mask; no calibration).
- ``py4dstem_truth.npz``: the imposed components (e11, e22, e12, theta on (Rx, Ry)),
  the particle, the reference region, and py4DSTEM's own in-memory arrays of each
  file (``<file>_<label>``), for comparison with what our reader makes of the files.
"""

import os
import sys
import warnings

os.environ.setdefault("MPLBACKEND", "Agg")

import emdfile  # noqa: E402
import numpy as np  # noqa: E402
import py4DSTEM  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RX, RY, Q = 12, 16, 72
H0 = {"e11": 0.012, "e22": -0.008, "e12": 0.005, "theta": -0.004}
ROTATION_DEG = 25.0
R_PIXEL_NM = 2.5
DISK_RADIUS = 3.0
G1, G2 = np.array([21.0, 4.0]), np.array([-5.0, 18.0])  # (gx, gy) = (column, row), px


def imposed_field():
    y, x = np.mgrid[0:RX, 0:RY].astype(float)
    s = np.clip((x - 3) / 5.0, 0, 1)
    f = s * s * (3 - 2 * s)
    particle = ((y - 5.5) / 5.0) ** 2 + ((x - 8.5) / 7.0) ** 2 <= 1.0
    H = np.zeros((RX, RY, 2, 2))
    H[..., 0, 0] = H0["e11"] * f
    H[..., 1, 1] = H0["e22"] * f
    H[..., 0, 1] = (H0["e12"] - H0["theta"]) * f
    H[..., 1, 0] = (H0["e12"] + H0["theta"]) * f
    reference = particle & (x <= 3)
    return H, f, particle, reference


def patterns(H, particle):
    rows, cols = np.mgrid[0:Q, 0:Q].astype(float)
    centre = Q / 2.0
    data = np.zeros((RX, RY, Q, Q), np.float32)
    for i in range(RX):
        for j in range(RY):
            A = np.linalg.inv(np.eye(2) + H[i, j]).T
            pat = np.zeros((Q, Q))
            for n in range(-3, 4):
                for m in range(-3, 4):
                    if (n, m) != (0, 0) and not particle[i, j]:
                        continue  # vacuum: the direct beam only
                    gx, gy = A @ (n * G1 + m * G2)
                    r0, c0 = centre + gy, centre + gx
                    edge = DISK_RADIUS + 2
                    if not (edge < r0 < Q - edge and edge < c0 < Q - edge):
                        continue
                    d = np.hypot(rows - r0, cols - c0)
                    weight = 1.0 if (n, m) == (0, 0) else 0.5
                    pat += weight * np.clip(DISK_RADIUS - d + 0.5, 0, 1)
            data[i, j] = pat
    return data


def main():
    H, f, particle, reference = imposed_field()
    dc = py4DSTEM.DataCube(data=patterns(H, particle))
    probe = py4DSTEM.Probe.generate_synthetic_probe(DISK_RADIUS, 1.0, (Q, Q))
    kernel = probe.get_kernel(mode="sigmoid", origin=(Q / 2, Q / 2),
                              radii=(1.5 * DISK_RADIUS, 3 * DISK_RADIUS))
    bv = dc.find_Bragg_disks(template=kernel, corrPower=1.0, sigma_cc=0,
                             subpixel="multicorr", upsample_factor=32,
                             minAbsoluteIntensity=0.05, minRelativeIntensity=0,
                             minPeakSpacing=8, edgeBoundary=2, maxNumPeaks=40)
    cal = bv.calibration
    cal.set_origin((np.full((RX, RY), Q / 2.0), np.full((RX, RY), Q / 2.0)))
    cal.set_R_pixel_size(R_PIXEL_NM)
    cal.set_R_pixel_units("nm")
    cal.set_QR_rotation_degrees(0.0)
    cal.set_QR_flip(False)
    bv.setcal(center=True, ellipse=False, pixel=False, rotate=True)

    sm = py4DSTEM.StrainMap(braggvectors=bv)
    sm.choose_basis_vectors(minSpacing=5, maxNumPeaks=20, edgeBoundary=2)
    sm.set_max_peak_spacing(3)
    sm.fit_basis_vectors()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm.get_strain(gvects=reference)
    labels = list(sm.slicelabels)
    own = {"py4dstem_strainmap_" + k: np.array(sm.get_slice(k).data) for k in labels}
    py4DSTEM.save(os.path.join(HERE, "py4dstem_strainmap.h5"), sm, mode="o")

    g1g2 = sm.strainmap_g1g2  # the unrotated RealSlice behind get_strain
    own.update({"py4dstem_realslice_" + k: np.array(g1g2.get_slice(k).data)
                for k in g1g2.slicelabels})
    py4DSTEM.save(os.path.join(HERE, "py4dstem_realslice.h5"), g1g2, mode="o")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm.get_strain(gvects=reference, coordinate_rotation=ROTATION_DEG)
    own.update({"py4dstem_tree_rotated_" + k: np.array(sm.get_slice(k).data)
                for k in labels})
    py4DSTEM.save(os.path.join(HERE, "py4dstem_tree_rotated.h5"), bv, mode="o", tree=True)

    comps = np.stack([H[..., 0, 0], H[..., 1, 1], 0.5 * (H[..., 0, 1] + H[..., 1, 0]),
                      0.5 * (H[..., 1, 0] - H[..., 0, 1])])
    np.savez_compressed(
        os.path.join(HERE, "py4dstem_truth.npz"), components=comps, f=f,
        particle=particle, reference=reference, rotation_deg=ROTATION_DEG,
        r_pixel_nm=R_PIXEL_NM, versions=np.array([sys.version.split()[0],
                                                  py4DSTEM.__version__,
                                                  emdfile.__version__, np.__version__]),
        **own)
    print("wrote fixtures with python", sys.version.split()[0], "py4DSTEM",
          py4DSTEM.__version__, "emdfile", emdfile.__version__, "numpy", np.__version__)


if __name__ == "__main__":
    main()
