"""The simulation cell: a 2D or 3D lattice with periodic flags per axis."""

import numpy as np

from glassfrac.core.errors import InputError


class Box:
    """A periodic (or partly periodic) cell in 2 or 3 dimensions.

    ``cell`` holds the lattice vectors as rows (ASE convention), in Å; a 1D array of lengths
    gives an orthogonal cell. ``pbc`` is one flag or one per axis. ``origin`` is the corner of
    the cell (LAMMPS ``xlo ylo zlo``), so coordinates read from files are kept as they were.
    Along a non-periodic axis the cell vector only sets the extent used for output.
    """

    def __init__(self, cell, pbc=True, origin=None):
        cell = np.array(cell, dtype=float)
        if cell.ndim == 1:
            cell = np.diag(cell)
        if cell.ndim != 2 or cell.shape[0] != cell.shape[1] or cell.shape[0] not in (2, 3):
            raise InputError(f"cell must be 2x2 or 3x3 (or 2 or 3 lengths), got shape {cell.shape}")
        dim = cell.shape[0]
        pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (dim,)).copy()
        if pbc.any() and abs(np.linalg.det(cell[np.ix_(pbc, pbc)])) < 1e-12:
            raise InputError("periodic cell vectors are degenerate (zero area/volume)")
        origin = np.zeros(dim) if origin is None else np.array(origin, dtype=float)
        if origin.shape != (dim,):
            raise InputError(f"origin must have {dim} components, got shape {origin.shape}")
        self._cell = cell
        self._pbc = pbc
        self._origin = origin
        for a in (self._cell, self._pbc, self._origin):
            a.flags.writeable = False

    @property
    def cell(self) -> np.ndarray:
        """Lattice vectors as rows, Å (read-only)."""
        return self._cell

    @property
    def pbc(self) -> np.ndarray:
        """Periodic flag per axis (read-only)."""
        return self._pbc

    @property
    def origin(self) -> np.ndarray:
        """Cell corner, Å."""
        return self._origin

    @property
    def dim(self) -> int:
        return self._cell.shape[0]

    @property
    def lengths(self) -> np.ndarray:
        """Lengths of the lattice vectors, Å."""
        return np.linalg.norm(self._cell, axis=1)

    @property
    def volume(self) -> float:
        """Volume in Å^3 (3D) or area in Å^2 (2D) of the cell."""
        return float(abs(np.linalg.det(self._cell)))

    @property
    def area(self) -> float:
        """Area of the cell in the plane of its first two vectors, Å^2."""
        a, b = self._cell[0], self._cell[1]
        if self.dim == 2:
            return float(abs(a[0] * b[1] - a[1] * b[0]))
        return float(np.linalg.norm(np.cross(a, b)))

    def _basis(self) -> np.ndarray:
        """The cell with degenerate open-axis vectors replaced by unit normals (invertible)."""
        if abs(np.linalg.det(self._cell)) > 1e-12:
            return self._cell
        basis = self._cell.copy()
        for axis in np.flatnonzero(~self._pbc):
            if np.linalg.norm(basis[axis]) < 1e-12:
                basis[axis] = 0.0
                others = [basis[k] for k in range(self.dim) if k != axis]
                if self.dim == 3:
                    normal = np.cross(others[0], others[1])
                else:
                    normal = np.array([-others[0][1], others[0][0]])
                basis[axis] = normal / np.linalg.norm(normal) if np.linalg.norm(normal) > 1e-12 \
                    else np.eye(self.dim)[axis]
        if abs(np.linalg.det(basis)) < 1e-12:
            basis = np.where(self._pbc[:, None], basis, np.eye(self.dim))
        return basis

    def fractional(self, positions) -> np.ndarray:
        """Fractional coordinates of Cartesian ``positions`` (N, dim).

        Along an open axis whose cell vector is zero, the coordinate is in Å along a unit normal.
        """
        return np.linalg.solve(self._basis().T, (np.asarray(positions, float) - self._origin).T).T

    def cartesian(self, fractional) -> np.ndarray:
        """Cartesian coordinates (Å) of ``fractional`` coordinates."""
        return np.asarray(fractional, float) @ self._basis() + self._origin

    def wrap(self, positions) -> np.ndarray:
        """Positions mapped into the cell along periodic axes."""
        f = self.fractional(positions)
        f[:, self._pbc] -= np.floor(f[:, self._pbc])
        f[:, self._pbc] %= 1.0  # floor of values like -1e-17 gives 1.0 after subtraction
        return self.cartesian(f)

    def minimum_image(self, vectors) -> np.ndarray:
        """Shortest periodic image of difference ``vectors`` (N, dim), Å.

        Rounds fractional components, which is exact for cells whose skew is moderate (all
        angles within 60–120°); strongly sheared cells should be reduced first.
        """
        vectors = np.asarray(vectors, float)
        basis = self._basis()
        f = np.linalg.solve(basis.T, vectors.T).T
        f[..., self._pbc] -= np.round(f[..., self._pbc])
        return f @ basis

    def image_shift(self, images) -> np.ndarray:
        """Cartesian translation (Å) of integer periodic ``images`` (N, dim)."""
        return np.asarray(images, float) @ self._cell

    def deformed(self, F) -> "Box":
        """Box after the affine map x -> F x (F is dim x dim, e.g. diag(1+eps, 1))."""
        F = np.asarray(F, float)
        return Box(self._cell @ F.T, self._pbc, self._origin @ F.T)

    def with_cell(self, cell) -> "Box":
        return Box(cell, self._pbc, self._origin)

    def to_3d(self, height: float = 0.0) -> "Box":
        """The same box as a 3D one (non-periodic z of length ``height``)."""
        if self.dim == 3:
            return self
        cell = np.zeros((3, 3))
        cell[:2, :2] = self._cell
        cell[2, 2] = height
        return Box(cell, list(self._pbc) + [False], list(self._origin) + [0.0])

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, Box)
            and other.dim == self.dim
            and np.array_equal(other.cell, self.cell)
            and np.array_equal(other.pbc, self.pbc)
            and np.array_equal(other.origin, self.origin)
        )

    def __repr__(self) -> str:
        rows = ", ".join("[" + ", ".join(f"{v:.6g}" for v in row) + "]" for row in self._cell)
        return f"Box(cell=[{rows}], pbc={self._pbc.tolist()})"
