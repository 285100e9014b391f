"""Coordinates for a ring topology, computed once after the switching.

1. Tutte embedding of the dual triangulation on the torus: every ring centre at the mean of
   its neighbours (one sparse linear solve, box of the starting honeycomb). With positive
   weights this is a valid embedding (Gortler, Gotsman & Thurston 2006); Si go to the
   centroids of the dual triangles (as in FC22), which gives a valid but distorted network.
2. Real-space relaxation of the Si network (our choice among the options of protocols.md §1),
   by L-BFGS over Si positions and a uniform scale of the box (zero pressure; the honeycomb's
   aspect ratio is kept, as freeing it let 288-ring boxes drift by ±5 % and 64-ring ones by
   10 % in aspect; the relaxation with a real potential sets the final box):
   - Si–Si bonds of rest length d, stiffness 1;
   - for the two bonds of each ring corner, a Si–Si second-neighbour spring with the rest
     length 2·d·sin(θ_n/2) of a regular n-gon, θ_n = (n − 2)π/n, stiffness
     ``SECOND_NEIGHBOUR_STIFFNESS``: stiff bonds and soft angles, as in relaxed 2D silica
     (Si–Si within 1 %, O–Si–O spread by 10–18° in the JuMol samples);
   - ½·k·(A − A_n)² on the signed area of every ring, A_n that of the regular n-gon,
     k = ``RING_AREA_STIFFNESS``. Springs alone are blind to a ring turned inside out, and
     without this term a few small rings end up folded in strongly disordered samples
     (mu2 ≳ 2 at 2000 rings); with it, all of 70 samples of 288 rings (mu2 0.2–3.0) and 15
     of 2000 rings (mu2 1.0–2.5) relaxed to valid networks.
3. Check: every ring polygon simple and counter-clockwise, ring areas summing to the box area,
   no bond shorter than ``MIN_BOND``·d. Should it fail, the positions are pulled back towards
   the valid start, halving the step until valid; ``Embedding.method`` says so.

Lengths are in units of d; callers rescale.
"""

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.linalg import spsolve

from glassfrac.core.errors import ConvergenceError
from glassfrac.generate.checks import polygon_areas, ring_polygons
from glassfrac.generate.dual import DualLattice
from glassfrac.structure import Box

SECOND_NEIGHBOUR_STIFFNESS = 0.1
"""Stiffness of the second-neighbour (angle) springs relative to the bonds."""
RING_AREA_STIFFNESS = 0.3
"""Stiffness of the ring-area term ½·k·(A − A_n)², per d⁴."""
MIN_BOND = 0.25
"""Shortest Si–Si bond (units of d) a valid embedding may have."""


@dataclass
class Embedding:
    """Si positions (T, 2) and diagonal cell (2, 2) in units of d; Si ring triples (T, 3, CCW);
    Si–Si bonds (M, 2) with images (M, 2); how the geometry was obtained."""

    si_positions: np.ndarray
    cell: np.ndarray
    si_rings: np.ndarray
    bonds: np.ndarray
    bond_images: np.ndarray
    method: str


@dataclass
class SiTopology:
    """Si network of a ring topology: ``tris`` (T, 3) ring triples (CCW); ``bonds`` (M, 2), one
    per dual edge ``edges`` (M, 2) i–j (i < j): the triangle left of i→j, then the one right of
    it, whose apexes are ``apexes`` (M, 2); ``cycles``: Si of each ring, CCW; ``corner_bonds``
    (T, 3) the bonds of each Si in CCW order with ``corner_signs`` (+1 if the bond starts at
    that Si); corner c of a Si lies between its bonds c and c + 1, inside ring ``tris[:, c+1]``."""

    tris: np.ndarray
    bonds: np.ndarray
    edges: np.ndarray
    apexes: np.ndarray
    cycles: list
    corner_bonds: np.ndarray
    corner_signs: np.ndarray


def si_topology(dual: DualLattice) -> SiTopology:
    """The Si network (:class:`SiTopology`) of the ring topology ``dual``."""
    tris = dual.triangles()
    tri_index = {}
    for t, (a, b, c) in enumerate(tris.tolist()):
        tri_index[(a, b, c)] = tri_index[(b, c, a)] = tri_index[(c, a, b)] = t
    bonds, apexes, edges, cycles, edge_index = [], [], [], [], {}
    for i, nb in enumerate(dual.neighbours):
        deg = len(nb)
        cycles.append(np.array([tri_index[(i, nb[p], nb[(p + 1) % deg])] for p in range(deg)]))
        for p, j in enumerate(nb):
            if i < j:
                a, b = nb[(p + 1) % deg], nb[p - 1]
                edge_index[(i, j)] = len(bonds)
                bonds.append((tri_index[(i, j, a)], tri_index[(i, b, j)]))
                apexes.append((a, b))
                edges.append((i, j))
    # the bond of Si (r0, r1, r2) across dual edge r0-r1 starts at that Si iff r0 < r1
    ring_pairs = np.stack([tris, np.roll(tris, -1, axis=1)], axis=-1).reshape(-1, 2)
    corner_bonds = np.array([edge_index[(min(a, b), max(a, b))] for a, b in ring_pairs.tolist()],
                            dtype=np.int64).reshape(-1, 3)
    corner_signs = np.where(ring_pairs[:, 0] < ring_pairs[:, 1], 1.0, -1.0).reshape(-1, 3)
    as_array = [np.array(v, dtype=np.int64).reshape(-1, 2) for v in (bonds, edges, apexes)]
    return SiTopology(tris, *as_array, cycles, corner_bonds, corner_signs)


def tutte_positions(dual: DualLattice) -> np.ndarray:
    """Ring centres (N, 2) of the periodic Tutte embedding in ``dual.cell``; ring 0 stays put."""

    n = dual.n_rings
    edges = dual.edges()
    shift = dual.edge_shifts(edges) @ dual.cell
    i, j = edges.T
    deg = np.bincount(edges.ravel(), minlength=n).astype(float)
    lap = coo_matrix((np.concatenate([deg, -np.ones(2 * len(i))]),
                      (np.concatenate([np.arange(n), i, j]), np.concatenate([np.arange(n), j, i]))),
                     shape=(n, n)).tocsr()
    # sum_j (x_j + s_ij - x_i) = 0 for every ring i  ->  L x = b,  b_i = sum_j s_ij
    rhs = np.zeros((n, 2))
    np.add.at(rhs, i, shift)
    np.add.at(rhs, j, -shift)
    x0 = dual.positions[0]
    rhs -= np.outer(lap[:, 0].toarray().ravel(), x0)
    x = np.empty((n, 2))
    x[0] = x0
    x[1:] = spsolve(lap[1:, 1:].tocsc(), rhs[1:]).reshape(n - 1, 2)
    return x


def _centroids(dual: DualLattice, x, cell, tris) -> np.ndarray:
    """Si positions: centroid of each dual triangle, lifted next to its first ring."""
    sh = dual.shifts
    sb = np.array([sh[(a, b)] for a, b, _ in tris.tolist()], float) @ cell
    sc = np.array([sh[(a, c)] for a, _, c in tris.tolist()], float) @ cell
    return (x[tris[:, 0]] + x[tris[:, 1]] + sb + x[tris[:, 2]] + sc) / 3.0


def _bond_images(dual: DualLattice, x, cell, si_pos, topo: SiTopology) -> np.ndarray:
    """Images of the Si–Si bonds from the topology: the bond of dual edge i–j runs from the
    centroid of (i, j, a) to that of (i, b, j), i.e. by (x_b − x_a) / 3 with both lifted at i."""
    sh = dual.shifts
    i, (a, b) = topo.edges[:, 0], topo.apexes.T
    s_a = np.array([sh[(r, q)] for r, q in zip(i.tolist(), a.tolist(), strict=True)], float)
    s_b = np.array([sh[(r, q)] for r, q in zip(i.tolist(), b.tolist(), strict=True)], float)
    vec = (x[b] + s_b @ cell - x[a] - s_a @ cell) / 3.0
    p, q = topo.bonds.T
    return np.rint(np.linalg.solve(cell.T, (si_pos[p] + vec - si_pos[q]).T).T).astype(np.int64)


def spring_terms(topo: SiTopology, images, ring_sizes):
    """Springs of step 2: ``pairs`` (P, 2), ``images`` (P, 2), ``rest`` (P,), ``stiffness`` (P,);
    the first M are the bonds, then one second-neighbour spring per Si corner."""
    cb, cs = topo.corner_bonds, topo.corner_signs
    far = np.where(cs > 0, topo.bonds[cb, 1], topo.bonds[cb, 0])  # other end of each bond
    far_img = images[cb] * cs[..., None].astype(np.int64)
    n = np.asarray(ring_sizes)[np.roll(topo.tris, -1, axis=1)]
    m = len(topo.bonds)
    pairs = np.concatenate([topo.bonds, np.column_stack(
        [far.ravel(), np.roll(far, -1, axis=1).ravel()])])
    pair_images = np.concatenate([images, (np.roll(far_img, -1, axis=1) - far_img).reshape(-1, 2)])
    rest = np.concatenate([np.ones(m), (2.0 * np.sin(0.5 * (n - 2) * np.pi / n)).ravel()])
    stiffness = np.concatenate([np.ones(m), np.full(n.size, SECOND_NEIGHBOUR_STIFFNESS)])
    return pairs, pair_images, rest, stiffness


def relax_network(x0, lengths0, pairs, images, rest, stiffness, cycles,
                  area_stiffness: float = RING_AREA_STIFFNESS, gtol: float = 1e-5,
                  maxiter: int = 20000):
    """Minimise the springs and the ring-area term by L-BFGS over positions (N, 2) and a
    uniform scale of the rectangular box (lengths ``lengths0``, aspect kept); returns the
    positions and the box lengths. ``x0`` must be a valid embedding (it fixes the periodic
    images of the ring polygons)."""

    x0 = np.asarray(x0, float)
    lengths0 = np.asarray(lengths0, float)
    n, p = len(x0), len(pairs)
    i, j = np.asarray(pairs).T
    img = np.asarray(images, float)
    incidence = csr_matrix((np.repeat([1.0, -1.0], p),
                            (np.concatenate([j, i]), np.tile(np.arange(p), 2))), shape=(n, p))
    # ring polygons as flat vertex lists: atom, periodic offset, ring, next and previous vertex
    sizes = np.array([len(c) for c in cycles])
    atom = np.concatenate(cycles)
    offset = np.rint((np.concatenate(ring_polygons(x0, Box(np.diag(lengths0)), cycles))
                      - x0[atom]) / lengths0)
    ring = np.repeat(np.arange(len(cycles)), sizes)
    first = np.repeat(np.cumsum(sizes) - sizes, sizes)
    k = np.arange(len(atom)) - first
    nxt = first + (k + 1) % sizes[ring]
    prv = first + (k - 1) % sizes[ring]
    area0 = regular_polygon_area(sizes)
    to_atom = csr_matrix((np.ones(len(atom)), (atom, np.arange(len(atom)))),
                         shape=(n, len(atom)))

    shape = lengths0 / np.linalg.norm(lengths0)  # box = z[-1] * shape: a length variable

    def energy(z):
        x, box = z[:-1].reshape(n, 2), z[-1] * shape
        v = x[j] - x[i] + img * box
        r = np.sqrt(np.einsum("ij,ij->i", v, v))
        stretch = r - rest
        g = (stiffness * stretch / r)[:, None] * v
        verts = x[atom] + offset * box
        cross = verts[:, 0] * verts[nxt, 1] - verts[nxt, 0] * verts[:, 1]
        excess = 0.5 * np.bincount(ring, cross, len(sizes)) - area0
        f = 0.5 * area_stiffness * excess[ring]
        g_verts = f[:, None] * np.column_stack([verts[nxt, 1] - verts[prv, 1],
                                                verts[prv, 0] - verts[nxt, 0]])
        e = 0.5 * float(np.sum(stiffness * stretch**2)) + 0.5 * area_stiffness * float(
            excess @ excess)
        grad_x = incidence @ g + to_atom @ g_verts
        grad_box = np.einsum("ij,ij->j", g, img) + np.einsum("ij,ij->j", g_verts, offset)
        return e, np.concatenate([grad_x.ravel(), [grad_box @ shape]])

    res = minimize(energy, np.concatenate([x0.ravel(), [np.linalg.norm(lengths0)]]), jac=True,
                   method="L-BFGS-B",
                   options={"maxiter": maxiter, "gtol": gtol, "ftol": 0.0, "maxcor": 20})
    return res.x[:-1].reshape(n, 2), res.x[-1] * shape


def regular_polygon_area(n) -> np.ndarray:
    """Area of a regular n-gon of unit side, n / (4 tan(π/n))."""
    n = np.asarray(n, float)
    return n / (4.0 * np.tan(np.pi / n))


def _valid(si_pos, lengths, topo: SiTopology, images, min_bond: float = MIN_BOND) -> bool:
    box = Box(np.diag(lengths))
    p, q = topo.bonds.T
    bond_len = np.linalg.norm(si_pos[q] + images * lengths - si_pos[p], axis=1)
    if bond_len.min() <= min_bond:
        return False
    areas, simple = polygon_areas(ring_polygons(si_pos, box, topo.cycles))
    return bool((areas > 0).all() and simple.all()
                and abs(areas.sum() - box.area) < 1e-8 * box.area)


def embed(dual: DualLattice) -> Embedding:
    """Coordinates for ``dual`` (module docstring), in units of the bond length."""
    topo = si_topology(dual)
    x_t = tutte_positions(dual)
    si0 = _centroids(dual, x_t, dual.cell, topo.tris)
    images = _bond_images(dual, x_t, dual.cell, si0, topo)
    lengths0 = np.diag(dual.cell).copy()
    if not _valid(si0, lengths0, topo, images, min_bond=0.0):
        raise ConvergenceError("the Tutte embedding of this ring network gives an invalid Si "
                               "network (please report it with the seed)")
    x, lengths = relax_network(si0, lengths0, *spring_terms(topo, images, dual.sizes),
                               topo.cycles)
    result = (si0, lengths0, "tutte (relaxation rejected)")
    for k in range(13):
        f = 0.5**k
        xf, lf = si0 + f * (x - si0), lengths0 + f * (lengths - lengths0)
        if _valid(xf, lf, topo, images, min_bond=MIN_BOND if k == 0 else 0.0):
            result = (xf, lf, "relaxed" if k == 0 else f"relaxed, pulled back to {f:g}")
            break
    x, lengths, method = result
    return Embedding(x, np.diag(lengths), topo.tris, topo.bonds, images, method)
