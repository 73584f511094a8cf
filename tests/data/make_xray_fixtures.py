"""Write the ALS STXM (.hdr + .xim) and CXI ptychography fixtures of tests/test_io_xray_formats.py.

No peer ships a writer for either format, so the files follow the formats' published
descriptions and what their peers' readers expect:

- ALS STXM "SDF" stacks: a text header ``<name>.hdr`` of nested ``Name = value;``
  structures, ``{...}`` and ``(count, ...)`` arrays (ScanDefinition: Type, Flags,
  Dwell in ms, Regions with PAxis = Sample X and QAxis = Sample Y, Points in um,
  StackAxis = Energy in eV; Channels), and one text image per energy,
  ``<name>_a000.xim``, ``<name>_a001.xim``, ... (channel letter, energy index),
  one line per QAxis point, one integer per PAxis point, tab separated; after the
  ScanDefinition the beamline's channel table (``Channels``), motors, ``ImageScan``
  and one ``ImageNNN_0`` record per image (storage-ring current, energy, time), as
  the converters that write 11.0.2-style headers for MANTiS do. As read
  by MANTiS 3.3 (mantis_xray/file_plugins/file_sdf.py, B. Watts, PSI) and aXis2000.
- CXI (Maia, Nature Methods 9, 854 (2012); cxidb.org/cxi.html), as the ALS COSMIC
  beamline writes ptychography reconstructions and pySTXM's ``readCXI`` reads them
  (D. Shapiro): ``cxi_version``; ``entry_1/instrument_1/source_1/energy`` (J);
  ``entry_1/image_1/data`` the complex object; ``entry_1/instrument_1/detector_1/
  corner_position`` (m), from which the object's pixel is ``lambda / (2 NA)``,
  ``NA = |(cx, cy)| / sqrt(2) / cz``. One file per energy.

- NXstxm, twice: written by nexusformat (``nxstxm_nexusformat.h5``), and the variant
  MANTiS 3.3 reads (``nxstxm_mantis.h5``: 1-element string arrays, bytes ``@axes``,
  ``count_time``); stack (E, y, x) = (4, 5, 6), x from 120.0 um in 0.03 um steps,
  y from -8.0 um in 0.025 um steps, energies 706, 707.5, 708.2, 712 eV, counts
  2000 + 100 e + 10 y + x, dwell 2 ms.

Run with MANTiS (and nexusformat) installed to also record how MANTiS reads the STXM stack
(``als_stxm_mantis.npz``), the peer reading our reader must match::

    python -m venv /work/venv-mantis && /work/venv-mantis/bin/pip install mantis-xray==3.3.0 nexusformat==2.1.0
    /work/venv-mantis/bin/python tests/data/make_xray_fixtures.py

Written with python 3.11.7, numpy 2.4.x, h5py 3.16, mantis-xray 3.3.0, nexusformat 2.1.0.

Truth (also in ``xray_truth.npz``): STXM stack 7 (x) x 5 (y) px, x from 4012.50 um in
steps of 0.04 um (40 nm), y from 2101.00 um in steps of 0.05 um (50 nm), energies
700, 705, 708.5, 710 eV, dwell 1.5 ms, storage-ring current 500.12, 499.87,
499.61, 499.35 mA per image, counts = 1000 + 100 e + 10 y + x (e, y, x the
indices). CXI: 3 energies (706, 708, 710 eV), objects 20 x 28 px of 5.0 nm, amplitude
``0.9 exp(-OD / 2)`` with OD a disk of 0.4 + 0.1 e inside, phase ``0.3 + 0.05 e`` inside
(rad), 0 outside.
"""

import os
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
STXM = os.path.join(HERE, "als_stxm")
CXI = os.path.join(HERE, "cxi")
NX, NY = 7, 5
X0, DX, Y0, DY = 4012.50, 0.04, 2101.00, 0.05  # um
ENERGIES = [700.0, 705.0, 708.5, 710.0]
DWELL_MS = 1.5
RING_MA = [500.12, 499.87, 499.61, 499.35]  # storage-ring current per image (mA)
CXI_ENERGIES = [706.0, 708.0, 710.0]
CXI_SHAPE = (20, 28)
CXI_PIXEL_NM = 5.0
EV = 1.602176634e-19  # J
HC = 6.62607015e-34 * 299792458 / EV  # eV m (exact SI constants)


def _points(n, start, step):
    return ", ".join(f"{start + i * step:.2f}" for i in range(n))


def stxm_counts():
    e, y, x = np.meshgrid(np.arange(len(ENERGIES)), np.arange(NY), np.arange(NX), indexing="ij")
    return 1000 + 100 * e + 10 * y + x  # (energy, y, x)


def write_stxm():
    os.makedirs(STXM, exist_ok=True)
    energies = ", ".join(f"{e:g}" for e in ENERGIES)
    hdr = f"""ScanDefinition = {{ Label = "Stack_001.hdr"; Type = "Image Scan"; Flags = "Image Stack"; Dwell = {DWELL_MS:g};
\tRegions = (1,
{{
\t\t\tPAxis = {{ Name = "Sample X"; Unit = "um"; Min = {X0:.2f}; Max = {X0 + (NX - 1) * DX:.2f}; Dir = 1;
\t\t\t\tPoints = ({NX}, {_points(NX, X0, DX)});
}};
\t\t\tQAxis = {{ Name = "Sample Y"; Unit = "um"; Min = {Y0:.2f}; Max = {Y0 + (NY - 1) * DY:.2f}; Dir = 1;
\t\t\t\tPoints = ({NY}, {_points(NY, Y0, DY)});
}};
}});
\tStackAxis = {{ Name = "Energy"; Unit = "eV"; Min = {min(ENERGIES):g}; Max = {max(ENERGIES):g}; Dir = 1;
\t\tPoints = ({len(ENERGIES)}, {energies});
}};
\tChannels = (1,
{{ Name = "Counter0"; Unit = "counts";}});
}};
 Time = "2016 Jun 14 17:36:11"; BeamFeedback = true; ShutterAutomatic = true;

Channels = (1,
{{ ID = 4; Type = 0; Name = "Counter0"; Controler = 0; DeviceNumber = 0; UnitName = "counts"; LinearCoefficient = 1; ConstantCoefficient = 0;ProcessString = "C2";}});

SampleX = {{ Name = "Sample X"; LastPosition = {X0 + 0.12:.2f};}};
ImageScan = {{ ScanType = "Image (Line - unidirection)"; Stage = "Automatic"; Shutter = "Automatic"; Interferometry = "Off"; SingleEnergy = false; AutoShutterPointScan = true;
\tEnergyRegions = (1,
{{ StartEnergy = {min(ENERGIES):g}; EndEnergy = {max(ENERGIES):g}; Range = {max(ENERGIES) - min(ENERGIES):g}; Step = 1; Points = {len(ENERGIES)}; DwellTime = {DWELL_MS:g};}});
 Point Delay = 0.0; LineDelay = 50; AccelDist = 1; MultipleRegions = False;
}};
"""
    for i, energy in enumerate(ENERGIES):
        hdr += (f"Image{i:03d}_0 = {{StorageRingCurrent = {RING_MA[i]:.2f}; Energy = {energy:.3f}; "
                f"Time = \"2016 Jun 14 17:{36 + i}:11\"; ZP_dest = 0.0; ZP_error = 0.0;}};\n")
    with open(os.path.join(STXM, "Stack_001.hdr"), "w", newline="\r\n") as f:
        f.write(hdr)
    for i, image in enumerate(stxm_counts()):
        np.savetxt(os.path.join(STXM, f"Stack_001_a{i:03d}.xim"), image, fmt="%d",
                   delimiter="\t")


def cxi_truth():
    ny, nx = CXI_SHAPE
    y, x = np.mgrid[0:ny, 0:nx]
    inside = (y - 9.5) ** 2 + (x - 13.5) ** 2 <= 20
    od = np.stack([np.where(inside, 0.4 + 0.1 * i, 0.0) for i in range(len(CXI_ENERGIES))])
    phase = np.stack([np.where(inside, 0.3 + 0.05 * i, 0.0) for i in range(len(CXI_ENERGIES))])
    return od, phase


def write_cxi():
    os.makedirs(CXI, exist_ok=True)
    od, phase = cxi_truth()
    cz = 0.08  # m, sample to detector
    for i, energy in enumerate(CXI_ENERGIES):
        wavelength = HC / energy
        na = wavelength / (2 * CXI_PIXEL_NM * 1e-9)  # the detector crop that gives 5 nm
        obj = (0.9 * np.exp(-od[i] / 2) * np.exp(1j * phase[i])).astype(np.complex64)
        with h5py.File(os.path.join(CXI, f"NS_200101{i:03d}_ccdframes_0_0.cxi"), "w") as f:
            f["cxi_version"] = 140
            f["entry_1/start_time"] = "2020-01-01T12:00:00"
            f["entry_1/instrument_1/name"] = "COSMIC"
            f["entry_1/instrument_1/source_1/name"] = "ALS"
            f["entry_1/instrument_1/source_1/energy"] = energy * EV
            d = f.create_group("entry_1/instrument_1/detector_1")
            d["distance"] = cz
            d["x_pixel_size"] = d["y_pixel_size"] = 30e-6
            d["corner_position"] = np.array([na * cz, na * cz, cz])
            f["entry_1/image_1/data"] = obj
            f["entry_1/image_1/data_space"] = "real"
            f["entry_1/image_1/process_1/final_illumination"] = np.ones((4, 4), np.complex64)


NXSTXM = dict(shape=(4, 5, 6), x0=120.0, dx=0.03, y0=-8.0, dy=0.025,
              energies=[706.0, 707.5, 708.2, 712.0], dwell_ms=2.0)  # (E, y, x), um, eV


def nxstxm_counts():
    ne, ny, nx = NXSTXM["shape"]
    e, y, x = np.meshgrid(np.arange(ne), np.arange(ny), np.arange(nx), indexing="ij")
    return (2000 + 100 * e + 10 * y + x).astype(np.int32)


def _nxstxm_axes():
    ne, ny, nx = NXSTXM["shape"]
    return (np.asarray(NXSTXM["energies"]), NXSTXM["y0"] + NXSTXM["dy"] * np.arange(ny),
            NXSTXM["x0"] + NXSTXM["dx"] * np.arange(nx))


def write_nxstxm():
    """NXstxm twice: written by nexusformat (the NeXus peer's writer), and the variant
    MANTiS 3.3 reads (1-element string arrays, bytes @axes, count_time)."""
    energy, sy, sx = _nxstxm_axes()
    counts = nxstxm_counts()
    dwell = np.full(counts.shape[0], NXSTXM["dwell_ms"])
    try:
        from nexusformat.nexus import NXdata, NXentry, NXfield, NXmonitor, NXroot
    except ImportError:
        print("nexusformat not importable: nxstxm_nexusformat.h5 not (re)written")
    else:
        entry = NXentry(definition="NXstxm", title="LFP particle (nexusformat)")
        entry["counts"] = NXdata(
            NXfield(counts, name="data"),
            [NXfield(energy, name="energy", units="eV"),
             NXfield(sy, name="sample_y", units="um"),
             NXfield(sx, name="sample_x", units="um")])
        entry["counts"]["stxm_scan_type"] = "sample image stack"
        entry["counts"]["count_time"] = NXfield(dwell, units="ms")
        entry["control"] = NXmonitor(data=NXfield(np.linspace(1.0, 1.1, counts.shape[0])))
        NXroot(entry1=entry).save(os.path.join(HERE, "nxstxm_nexusformat.h5"), mode="w")
    s = lambda v: np.array([v.encode()])  # noqa: E731  MANTiS indexes [0] and decodes
    with h5py.File(os.path.join(HERE, "nxstxm_mantis.h5"), "w") as f:
        e = f.create_group("entry1")
        e.attrs["NX_class"] = b"NXentry"
        e["definition"] = s("NXstxm")
        e["title"] = s("LFP particle (MANTiS variant)")
        d = e.create_group("counts")
        d.attrs["NX_class"] = b"NXdata"
        d.attrs["signal"] = b"data"
        d.attrs["axes"] = np.array([b"energy", b"sample_y", b"sample_x"])
        d["stxm_scan_type"] = s("sample image stack")
        d["data"] = counts
        d["energy"], d["sample_y"], d["sample_x"] = energy, sy, sx
        d["energy"].attrs["units"] = b"eV"
        d["sample_y"].attrs["units"] = d["sample_x"].attrs["units"] = b"um"
        d["count_time"] = dwell


def record_mantis():
    """How MANTiS 3.3 reads the STXM stack (skipped where MANTiS is not installed)."""
    try:
        from mantis_xray.file_plugins import file_sdf
    except ImportError:
        print("mantis_xray not importable: als_stxm_mantis.npz not (re)written")
        return
    from importlib.metadata import version

    class Stack:
        def fill_h5_struct_from_stk(self):
            pass

    s = Stack()
    file_sdf.read(os.path.join(STXM, "Stack_001.hdr"), s, selection=(0, 0))
    np.savez(os.path.join(HERE, "als_stxm_mantis.npz"), absdata=s.absdata, ev=s.ev,
             x_dist=s.x_dist, y_dist=s.y_dist, data_dwell=s.data_dwell,
             mantis_version=version("mantis-xray"))
    print("recorded MANTiS", version("mantis-xray"), "reading:", s.absdata.shape)
    from mantis_xray.file_plugins import file_nexus_hdf5

    n = Stack()
    path = os.path.join(HERE, "nxstxm_mantis.h5")
    assert file_nexus_hdf5.identify(path)
    file_nexus_hdf5.read(path, n, selection=(0, 0, 0))  # no ring-current normalisation
    np.savez(os.path.join(HERE, "nxstxm_mantis_reading.npz"), absdata=n.absdata, ev=n.ev,
             x_dist=n.x_dist, y_dist=n.y_dist, data_dwell=n.data_dwell,
             mantis_version=version("mantis-xray"))


def main():
    write_stxm()
    write_cxi()
    write_nxstxm()
    od, phase = cxi_truth()
    np.savez(os.path.join(HERE, "xray_truth.npz"), stxm_counts=stxm_counts(),
             energies=ENERGIES, dwell_ms=DWELL_MS, ring_ma=RING_MA, cxi_energies=CXI_ENERGIES, cxi_od=od,
             cxi_phase=phase, cxi_pixel_nm=CXI_PIXEL_NM, nxstxm_counts=nxstxm_counts(),
             nxstxm_energies=NXSTXM["energies"], nxstxm_dwell_ms=NXSTXM["dwell_ms"])
    record_mantis()
    print("python", sys.version.split()[0], "numpy", np.__version__, "h5py", h5py.__version__)


if __name__ == "__main__":
    main()
