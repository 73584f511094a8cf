"""Click landmark pairs on the moving and the fixed image (matplotlib)."""

import numpy as np


class LandmarkPicker:
    """Collects clicked points on two axes shown in calibrated coordinates.

    Left click adds a point to the image clicked, right click removes the last
    point of that image; picking ends when both images have ``n`` points.

    Parameters
    ----------
    ax_moving, ax_fixed : matplotlib.axes.Axes
        Axes showing the images with ``extent`` in nm, so click positions are (x, y) nm.
    n : int
        Number of pairs.
    """

    def __init__(self, ax_moving, ax_fixed, n):
        self.axes = {"moving": ax_moving, "fixed": ax_fixed}
        self.points = {"moving": [], "fixed": []}
        self.markers = {"moving": [], "fixed": []}
        self.n = int(n)

    @property
    def done(self):
        return all(len(p) >= self.n for p in self.points.values())

    def on_click(self, event):
        """Matplotlib ``button_press_event`` handler."""
        for key, ax in self.axes.items():
            if event.inaxes is not ax or event.xdata is None:
                continue
            pts, marks = self.points[key], self.markers[key]
            if event.button == 3:
                if pts:
                    pts.pop()
                    for m in marks.pop():
                        m.remove()
            elif len(pts) < self.n:
                pts.append((float(event.xdata), float(event.ydata)))
                marks.append([ax.plot(event.xdata, event.ydata, "r+", ms=12)[0],
                              ax.annotate(str(len(pts)), (event.xdata, event.ydata), color="r")])
            ax.figure.canvas.draw_idle()
        if self.done:
            self.axes["fixed"].figure.canvas.stop_event_loop()

    def result(self):
        """(moving_xy, fixed_xy), each (n, 2) in nm, paired in click order."""
        if not self.done:
            raise ValueError(
                f"landmark picking stopped early: {len(self.points['moving'])} moving and "
                f"{len(self.points['fixed'])} fixed points of {self.n}"
            )
        return (np.array(self.points["moving"][: self.n]), np.array(self.points["fixed"][: self.n]))


def pick_landmarks(moving, fixed, n=4, timeout=0):
    """Click ``n`` corresponding points on the moving and the fixed image.

    Shows both images side by side in calibrated coordinates; click a feature on
    one image and the same feature on the other, in the same order on both
    (left click adds, right click removes the last point of that image). The
    result feeds ``hcm.register(..., landmarks=...)`` or
    :meth:`CorrelativeTransform.from_landmarks`. Needs an interactive matplotlib
    backend.

    Parameters
    ----------
    moving, fixed : hyperspy.signals.Signal2D
        Calibrated images.
    n : int
        Number of pairs (2 fix a similarity without mirror, 3 or more a mirror or an affine map).
    timeout : float
        Seconds to wait (0: until done).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Moving and fixed (x, y) positions in nm, shape (n, 2) each.
    """
    import matplotlib.pyplot as plt

    from ._signals import grid_of, image_data

    if int(n) < 2:
        raise ValueError(f"need at least 2 landmark pairs, got {n}")
    fig, (ax_m, ax_f) = plt.subplots(1, 2, figsize=(11, 5))
    for ax, sig, name in ((ax_m, moving, "moving"), (ax_f, fixed, "fixed")):
        g = grid_of(sig, name)
        ny, nx = g.shape
        extent = [g.offset[1] - g.scale[1] / 2, g.offset[1] + g.scale[1] * (nx - 0.5),
                  g.offset[0] + g.scale[0] * (ny - 0.5), g.offset[0] - g.scale[0] / 2]
        ax.imshow(image_data(sig, name), cmap="gray", extent=extent)
        ax.set_title(f"{name}: click {n} points")
        ax.set_xlabel("x (nm)")
        ax.set_ylabel("y (nm)")
    picker = LandmarkPicker(ax_m, ax_f, n)
    cid = fig.canvas.mpl_connect("button_press_event", picker.on_click)
    plt.show(block=False)
    fig.canvas.start_event_loop(timeout=timeout)
    fig.canvas.mpl_disconnect(cid)
    return picker.result()
