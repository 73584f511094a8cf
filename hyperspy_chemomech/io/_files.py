"""Opening the files the readers are given, with errors that name the file and the problem.

h5py and scipy say "file signature not found" or "Mat file appears to be truncated"
without the file's name, whatever the file really is. Here a file that cannot be
read is looked at first (missing, a folder, empty, text, an image, a MATLAB v5
file, ...) and the error says which file and what it is.
"""

import functools
import os

import numpy as np

from ..fields import LENGTH_TO_NM

#: leading bytes of formats users hand to the wrong reader -> what to call them
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"%PDF", "a PDF document"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"CDF\x01", "a NetCDF-3 file"),
    (b"CDF\x02", "a NetCDF-3 file"),
    (b"MATLAB 5.0 MAT-file", "a MATLAB v5 .mat file (not HDF5)"),
)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def check_file(path, what):
    """Raise a clear error unless ``path`` is an existing, non-empty regular file.

    Parameters
    ----------
    path : str or path-like
    what : str
        What the reader expects, for the message (e.g. "a NeXus NXstxm file").

    Returns
    -------
    str
        The path as a string.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file (expected {what})")
    if os.path.isdir(path):
        raise ValueError(f"{path} is a folder, not a file (expected {what})")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path} is empty (0 bytes); expected {what}")
    return path


def describe(path):
    """A short description of what the file looks like from its first bytes."""
    with open(path, "rb") as f:
        head = f.read(1024)
    size = os.path.getsize(path)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    # HDF5 may sit after a user block (MATLAB v7.3 writes 512 bytes)
    if any(head[o:o + 8] == HDF5_SIGNATURE for o in (0, 512)):
        return f"an HDF5 file of {size} bytes"
    for cut in range(4):  # the 1024 bytes may end inside a UTF-8 character
        try:
            text = head[:len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if all(c.isprintable() or c in "\r\n\t" for c in text):
            first = text.strip().splitlines()[0][:40] if text.strip() else ""
            return f"a text file (starting {first!r})"
        break
    return f"a file of unknown format (first bytes {head[:8]!r}, {size} bytes)"


def open_hdf5(path, what):
    """Open ``path`` read-only with h5py, or raise naming the file and the problem.

    Parameters
    ----------
    path : str or path-like
    what : str
        What the reader expects, for the message.

    Returns
    -------
    h5py.File

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A folder, an empty file, not HDF5 (the message says what it looks like:
        text, PNG, ...), or an HDF5 file that h5py cannot open (corrupted
        superblock, truncated).
    """
    import h5py

    path = check_file(path, what)
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path} is not an HDF5 file but {describe(path)}; expected {what}")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(
            f"{path} has an HDF5 signature but cannot be opened: it is corrupted or "
            f"truncated (h5py: {err}); expected {what}"
        ) from err


def names_the_file(reader):
    """Decorate a reader so that its ValueErrors, KeyErrors and OSErrors name the file it read.

    The file is the reader's first argument, when it is a path; messages that
    already name it are left as they are.
    """

    @functools.wraps(reader)
    def wrapper(source, *args, **kwargs):
        try:
            return reader(source, *args, **kwargs)
        except (ValueError, KeyError) as err:
            if not isinstance(source, (str, os.PathLike)):
                raise
            path = os.fspath(source)
            msg = str(err.args[0]) if err.args else type(err).__name__
            if path in msg:
                raise
            raise ValueError(f"{path}: {msg}") from err
        except OSError as err:  # h5py reading a damaged dataset, permissions, ...
            if not isinstance(source, (str, os.PathLike)) or os.fspath(source) in str(err):
                raise
            raise type(err)(f"{os.fspath(source)}: cannot be read, the file may be corrupted "
                            f"or truncated ({err})") from err

    return wrapper


def regular_positions_nm(values, unit, name):
    """Scan positions in nm, checked to form a regular grid (``@names_the_file`` adds the file).

    Parameters
    ----------
    values : array_like
        Positions along one scan axis, in ``unit``.
    unit : str
        A length unit of :data:`hyperspy_chemomech.fields.LENGTH_TO_NM`.
    name : str
        The axis, for the error messages.

    Returns
    -------
    positions : numpy.ndarray
        In nm.
    step : float
        Mean step (nm), positive.
    """
    if unit not in LENGTH_TO_NM:
        raise ValueError(f"{name}: unknown length unit {unit!r} (known: {', '.join(LENGTH_TO_NM)})")
    pos = np.asarray(values, dtype=float).ravel() * LENGTH_TO_NM[unit]
    if pos.size < 2:
        raise ValueError(f"{name} needs at least two positions")
    step = np.diff(pos)
    if not (np.all(step > 0) or np.all(step < 0)):
        raise ValueError(f"{name} positions are not monotonic")
    mean = abs(pos[-1] - pos[0]) / (pos.size - 1)
    if np.max(np.abs(np.abs(step) - mean)) > 0.05 * mean:
        raise ValueError(
            f"{name} positions are not evenly spaced (steps {np.abs(step).min():.4g}-"
            f"{np.abs(step).max():.4g} nm); interpolate onto a regular grid first")
    return pos, mean
