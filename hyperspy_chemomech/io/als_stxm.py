"""ALS STXM image stacks: a ``.hdr`` text header and one ``.xim`` text image per energy.

The format ("SDF", written by the STXM control software of the ALS beamlines 5.3.2.2
and 11.0.2, and by converters for other STXMs) is read by MANTiS and aXis2000; this
reader follows MANTiS 3.3's (``mantis_xray/file_plugins/file_sdf.py``, B. Watts, PSI)
reading of it, which the tests check on a common fixture.
"""

import os
import re

import numpy as np

from ._files import check_file, describe, names_the_file, regular_positions_nm

_TOKEN = re.compile(r'"([^"]*)"|([{}()=;,])|([^\s{}()=;,"]+)')
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _number(word):
    for kind in (int, float):
        try:
            return kind(word)
        except ValueError:
            pass
    return word


class _Parser:
    """Recursive descent over the header's ``Name = value;`` structures and arrays."""

    def __init__(self, text, path):
        self.tokens = [(m.group(1), m.group(2), m.group(3)) for m in _TOKEN.finditer(text)]
        self.i = 0
        self.path = path

    def _error(self, what):
        raise ValueError(f"{self.path}: not an ALS STXM header ({what} at token {self.i})")

    def structure(self, closing=None):
        out = {}
        while self.i < len(self.tokens):
            quoted, punct, word = self.tokens[self.i]
            if punct == closing == "}":
                self.i += 1
                return out
            if punct == ";":  # stray separator
                self.i += 1
                continue
            if word is None:
                self._error(f"expected a name, got {quoted or punct!r}")
            words = []  # names may hold spaces ("Point Delay")
            while self.i < len(self.tokens) and self.tokens[self.i][2] is not None:
                words.append(self.tokens[self.i][2])
                self.i += 1
            name = " ".join(words)
            if self.i >= len(self.tokens) or self.tokens[self.i][1] != "=":
                self._error(f"expected '=' after {name!r}")
            self.i += 1
            out[name] = self.value()
            if self.i < len(self.tokens) and self.tokens[self.i][1] == ";":
                self.i += 1
        if closing is not None:
            self._error("unclosed '{'")
        return out

    def value(self):
        if self.i >= len(self.tokens):
            self._error("missing value")
        quoted, punct, word = self.tokens[self.i]
        self.i += 1
        if quoted is not None:
            return quoted
        if punct == "{":
            return self.structure("}")
        if punct == "(":
            return self.array()
        if word is not None:
            words = [word]  # unquoted values may hold spaces too
            while self.i < len(self.tokens) and self.tokens[self.i][2] is not None:
                words.append(self.tokens[self.i][2])
                self.i += 1
            return _number(words[0]) if len(words) == 1 else " ".join(words)
        self._error(f"unexpected {punct!r}")

    def array(self):
        out = []
        while self.i < len(self.tokens):
            quoted, punct, word = self.tokens[self.i]
            if punct == ")":
                self.i += 1
                return out
            if punct in (",", "}"):  # '}' : a converter's stray brace, as MANTiS skips
                self.i += 1
                continue
            out.append(self.value())
        self._error("unclosed '('")


def parse_hdr(path):
    """The header of an ALS STXM ``.hdr`` file as nested dicts and lists.

    Numbers become int or float, quoted strings str; an array ``(n, a, b, ...)``
    becomes the list ``[n, a, b, ...]`` (its first element is the count).
    """
    path = check_file(path, "an ALS STXM .hdr header")
    with open(path, "rb") as f:
        raw = f.read()
    if b"\x00" in raw[:4096] or b"=" not in raw:
        raise ValueError(f"{path} is not an ALS STXM .hdr header but {describe(path)}")
    text = raw.decode("latin-1")  # the control software writes 8-bit text (e.g. µ)
    return _Parser(text, path).structure()


def _axis(region, key, path):
    axis = region.get(key)
    if not isinstance(axis, dict) or not isinstance(axis.get("Points"), list):
        raise ValueError(f"{path}: the scan region has no {key} with Points")
    pts = axis["Points"]
    n = int(pts[0])
    values = np.asarray(pts[1:], dtype=float)
    if values.size != n:
        raise ValueError(f"{path}: {key} says {n} points but lists {values.size}")
    return axis, values


@names_the_file
def load_als_stxm(path, channel=0, region=0):
    """Read an ALS STXM image stack (``.hdr`` header + one ``.xim`` image per energy).

    Parameters
    ----------
    path : str or path-like
        The ``.hdr`` file; its images ``<name>_a000.xim``, ``<name>_a001.xim``, ...
        (channel letter, energy index; multi-region stacks add the region number)
        lie beside it.
    channel : int or str
        Detector channel, by index or by name (``Channels`` of the scan
        definition, e.g. "Counter0"); default the first.
    region : int
        Spatial region of a multi-region stack; default the first.

    Returns
    -------
    XrayAbsorptionSpectrum
        Counts, layout (y, x | energy): y along the header's QAxis (Sample Y), x
        along its PAxis (Sample X), each increasing (a scan run backwards is
        flipped); pixel size from the Points (um -> nm), offsets at the first
        position; energies (eV) from the StackAxis, sorted. ``metadata.Chemomech.
        als_stxm`` records the file, channel, region, scan type and flags, the
        dwell time per pixel (``dwell_ms``, ScanDefinition.Dwell), the time, and
        the storage-ring current of each image (``ring_current_mA``) when the
        header lists it.

    Raises
    ------
    FileNotFoundError
        No header, or an image the header promises is missing (named).
    ValueError
        Not an ALS header (the message says what it is), not an image stack, an
        unknown channel, an image of the wrong shape, an uneven grid; every message
        names the file.

    Notes
    -----
    Each ``.xim`` is a text matrix of integers, one line per QAxis point and one
    column per PAxis point, as MANTiS reads it (its array is our (x, y, energy)
    transpose). The format is described by the ALS STXM control software's
    header (Tyliszczak) and read by MANTiS [1]_ and aXis2000 [2]_.

    References
    ----------
    .. [1] M. Lerotic et al., "MANTiS: a program for the analysis of X-ray
       spectromicroscopy data", J. Synchrotron Rad. 21, 1206 (2014);
       mantis_xray/file_plugins/file_sdf.py (B. Watts).
    .. [2] A. P. Hitchcock, aXis2000, http://unicorn.mcmaster.ca/aXis2000.html
    """
    from .._metadata import record
    from ..signals import make_stack

    path = os.fspath(path)
    hdr = parse_hdr(path)
    sd = hdr.get("ScanDefinition")
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: no ScanDefinition in the header")
    flags = str(sd.get("Flags", ""))
    if flags not in ("Image Stack", "Multi-Region Image Stack"):
        raise ValueError(f"{path}: scan flags {flags!r} (type {sd.get('Type')!r}) are not an "
                         "image stack ('Image Stack' or 'Multi-Region Image Stack')")
    regions = sd.get("Regions")
    if not isinstance(regions, list) or len(regions) < 2:
        raise ValueError(f"{path}: no scan regions in the ScanDefinition")
    n_regions = int(regions[0])
    if not 0 <= region < n_regions:
        raise ValueError(f"{path}: region {region} requested, the stack has {n_regions}")
    reg = regions[region + 1]
    pax, xs = _axis(reg, "PAxis", path)
    qax, ys = _axis(reg, "QAxis", path)
    if "StackAxis" not in sd:
        raise ValueError(f"{path}: no StackAxis (energies) in the ScanDefinition")
    sax, energies = _axis(sd, "StackAxis", path)
    if str(sax.get("Unit", "eV")) not in ("eV", "ev"):
        raise ValueError(f"{path}: StackAxis unit {sax.get('Unit')!r} is not eV")
    # the scan's own channel list (the top-level one is the beamline's detector table)
    chans = sd.get("Channels", hdr.get("Channels"))
    names = ([c.get("Name") for c in chans[1:] if isinstance(c, dict)]
             if isinstance(chans, list) else [])
    if isinstance(channel, str):
        if channel not in names:
            raise ValueError(f"{path}: no channel {channel!r}; channels are {names}")
        channel = names.index(channel)
    if not 0 <= channel < max(len(names), 1):
        raise ValueError(f"{path}: channel {channel} requested, channels are {names}")
    xs_nm, dx = regular_positions_nm(xs, str(pax.get("Unit", "um")), "PAxis (Sample X)")
    ys_nm, dy = regular_positions_nm(ys, str(qax.get("Unit", "um")), "QAxis (Sample Y)")

    base = os.path.splitext(path)[0]
    suffix = str(region) if flags == "Multi-Region Image Stack" and n_regions > 1 else ""
    files = [f"{base}_{_LETTERS[channel]}{i:03d}{suffix}.xim" for i in range(energies.size)]
    missing = [os.path.basename(f) for f in files if not os.path.isfile(f)]
    if missing:
        raise FileNotFoundError(
            f"{path}: {len(missing)} of the {len(files)} images the header lists are "
            f"missing ({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}); an "
            "aborted stack? Read the energies that exist with stack_from_images")
    cube = np.empty((ys.size, xs.size, energies.size))
    for i, name in enumerate(files):
        try:
            image = np.loadtxt(name, ndmin=2)
        except ValueError as err:
            raise ValueError(f"{name}: not a text image of numbers ({err})") from err
        if image.shape != (ys.size, xs.size):
            raise ValueError(f"{name} has shape {image.shape}; the header gives "
                             f"{ys.size} QAxis x {xs.size} PAxis points")
        cube[..., i] = image
    if ys_nm[-1] < ys_nm[0]:
        cube, ys_nm = cube[::-1], ys_nm[::-1]
    if xs_nm[-1] < xs_nm[0]:
        cube, xs_nm = cube[:, ::-1], xs_nm[::-1]
    order = np.argsort(energies, kind="stable")
    if np.any(np.diff(energies[order]) == 0):
        raise ValueError(f"{path}: the StackAxis repeats an energy")
    stack = make_stack(cube[..., order], energies[order], pixel_size=(dy, dx), units="nm",
                       title=str(sd.get("Label", os.path.basename(path))),
                       quantity="Intensity (counts)")
    yax, xax = stack.axes_manager.navigation_axes[::-1]
    yax.offset, xax.offset = float(ys_nm[0]), float(xs_nm[0])
    stack.metadata.set_item("Chemomech.source.counts", True)
    ring = [hdr.get(f"Image{i:03d}_{region}", {}).get("StorageRingCurrent")
            for i in range(energies.size)]
    ring = (np.asarray(ring, float)[order] if all(isinstance(r, (int, float)) for r in ring)
            else None)
    record(stack, "als_stxm", file=path, channel=names[channel] if names else channel,
           region=int(region), scan_type=str(sd.get("Type", "")), flags=flags,
           dwell_ms=float(sd["Dwell"]) if "Dwell" in sd else None,
           time=str(hdr.get("Time", "")), ring_current_mA=ring)
    return stack
