"""The dual of a periodic 3-coordinated planar network: rings as nodes of a triangulation.

Each ring of the Si network is a node; two rings that share a Si–Si bond are joined by a dual
edge; each Si is a dual triangle (the three rings around it). Ring size = node degree.

The triangulation lives on a torus. ``neighbours[i]`` lists the rings adjacent to ring ``i``
in counter-clockwise order; ``shifts[(i, j)]`` is the lattice translation (integers, in units
of the cell vectors) of the copy of ring ``j`` that touches ring ``i``. Two rings share at most
one edge (moves that would create a second one are refused), so a ring pair names one edge.

Lengths are in units of the Si–Si bond length d of the starting honeycomb.
"""

import numpy as np

from glassfrac.core.errors import InputError

SQRT3 = float(np.sqrt(3.0))


class DualLattice:
    """Ring adjacency on a torus with CCW neighbour order and periodic shifts (module
    docstring); ``cell`` (2, 2) and ring ``positions`` (N, 2) are those of the honeycomb, in d."""

    def __init__(self, neighbours, shifts, cell, positions):
        self.neighbours = [list(map(int, nb)) for nb in neighbours]
        self.shifts = {(int(i), int(j)): (int(s[0]), int(s[1])) for (i, j), s in shifts.items()}
        self.cell = np.array(cell, dtype=float)
        self.positions = np.array(positions, dtype=float)

    @classmethod
    def honeycomb(cls, nx: int, ny: int) -> "DualLattice":
        """The perfect honeycomb of ``nx`` × ``ny`` hexagons in a rectangular periodic cell.

        Rings sit on a triangular lattice of spacing √3 d: rows along x, every second row offset
        by half a spacing, so ``ny`` must be even. Cell ``nx·√3 d × ny·1.5 d``; ring ``i`` is
        in row ``i // nx`` and column ``i % nx``.
        """
        nx, ny = int(nx), int(ny)
        if nx < 4 or ny < 4 or ny % 2:
            raise InputError(f"a periodic honeycomb needs nx >= 4 and an even ny >= 4 rings, "
                             f"got {nx} x {ny}")
        a, h = SQRT3, 1.5
        cell = np.diag([nx * a, ny * h])
        rows, cols = np.divmod(np.arange(nx * ny), nx)
        positions = np.column_stack([(cols + 0.5 * (rows % 2) + 0.25) * a, (rows + 0.5) * h])
        neighbours, shifts = [], {}
        for i in range(nx * ny):
            r, c = divmod(i, nx)
            odd = r % 2
            cand = [(r, c + 1), (r, c - 1)]
            for dr in (-1, 1):
                cand += [(r + dr, c - 1 + odd), (r + dr, c + odd)]
            ids, angles = [], []
            for rr, cc in cand:
                j = (rr % ny) * nx + cc % nx
                s = (cc // nx, rr // ny)
                d = positions[j] + np.array(s) @ cell - positions[i]
                ids.append(j)
                angles.append(np.arctan2(d[1], d[0]))
                shifts[(i, j)] = s
            neighbours.append([ids[k] for k in np.argsort(angles)])
        return cls(neighbours, shifts, cell, positions)

    # -- views ------------------------------------------------------------------------------
    @property
    def n_rings(self) -> int:
        return len(self.neighbours)

    @property
    def sizes(self) -> np.ndarray:
        """Ring sizes (node degrees)."""
        return np.array([len(nb) for nb in self.neighbours])

    def edges(self) -> np.ndarray:
        """Dual edges (E, 2), each ring pair once with i < j."""
        return np.array([(i, j) for i, nb in enumerate(self.neighbours) for j in nb if i < j],
                        dtype=np.int64).reshape(-1, 2)

    def edge_shifts(self, edges) -> np.ndarray:
        """Lattice shifts (E, 2) of ring j relative to ring i for ``edges`` (E, 2)."""
        return np.array([self.shifts[(int(i), int(j))] for i, j in edges],
                        dtype=np.int64).reshape(-1, 2)

    def triangles(self) -> np.ndarray:
        """The dual triangles (Si atoms), (T, 3) ring ids in CCW order, smallest id first.

        Ordered by first ring, then CCW around it, so the order is a function of topology only.
        """
        tris = []
        for i, nb in enumerate(self.neighbours):
            for p, j in enumerate(nb):
                k = nb[(p + 1) % len(nb)]
                if i < j and i < k:
                    tris.append((i, j, k))
        return np.array(tris, dtype=np.int64).reshape(-1, 3)

    # -- moves ------------------------------------------------------------------------------
    def switch(self, u: int, v: int, a: int, b: int) -> None:
        """Replace edge u–v by a–b, where ``a`` follows and ``b`` precedes ``v`` in the CCW
        order around ``u``: u, v lose a side, a, b gain one; the network stays planar and
        3-coordinated. The caller checks that u and v share exactly the two neighbours a and b
        and that a and b are not yet adjacent (``montecarlo.bond_switch`` does)."""
        nb = self.neighbours
        nb[u].remove(v)
        nb[v].remove(u)
        na = nb[a]
        na.insert(na.index(v), b)  # around a: ..., u, v, ... -> ..., u, b, v, ...
        nbb = nb[b]
        nbb.insert(nbb.index(u), a)  # around b: ..., v, u, ... -> ..., v, a, u, ...
        sh = self.shifts
        sa, sb = sh[(u, a)], sh[(u, b)]
        del sh[(u, v)], sh[(v, u)]
        sh[(a, b)] = (sb[0] - sa[0], sb[1] - sa[1])
        sh[(b, a)] = (sa[0] - sb[0], sa[1] - sb[1])

    def check(self) -> None:
        """Raise ValueError unless the structure is a consistent torus triangulation.

        Checks symmetric adjacency with opposite shifts, that every CCW-consecutive neighbour
        pair closes a triangle seen identically from its three corners with shifts summing to
        zero, no repeated neighbours, and Euler's relation (2 triangles per ring on a torus).
        """
        nb, sh = self.neighbours, self.shifts
        n_tri = 0
        for i, nbi in enumerate(nb):
            if len(set(nbi)) != len(nbi) or i in nbi:
                raise ValueError(f"ring {i} has repeated neighbours or itself as a neighbour")
            for p, j in enumerate(nbi):
                if i not in nb[j]:
                    raise ValueError(f"adjacency {i}-{j} is not symmetric")
                s_ij, s_ji = sh[(i, j)], sh[(j, i)]
                if (s_ij[0] + s_ji[0], s_ij[1] + s_ji[1]) != (0, 0):
                    raise ValueError(f"shifts of edge {i}-{j} are not opposite")
                k = nbi[(p + 1) % len(nbi)]
                nbj = nb[j]
                if nbj[(nbj.index(k) + 1) % len(nbj)] != i:
                    raise ValueError(f"triangle ({i}, {j}, {k}) is not consistent around {j}")
                s_jk, s_ki = sh[(j, k)], sh[(k, i)]
                if (s_ij[0] + s_jk[0] + s_ki[0], s_ij[1] + s_jk[1] + s_ki[1]) != (0, 0):
                    raise ValueError(f"shifts around triangle ({i}, {j}, {k}) do not close")
                n_tri += 1
        if n_tri != 3 * 2 * len(nb):
            raise ValueError(f"{n_tri // 3} triangles for {len(nb)} rings; a torus needs "
                             f"{2 * len(nb)}")
