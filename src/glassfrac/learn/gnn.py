"""LISTI25's graph network (:mod:`glassfrac.learn.listi`, kind ``gnn``) on PyTorch Geometric.

Attention convolution: α_ij = softmax_j((W_q h_i)·(W_k h_j + W_ke e_ij)/√d) over the bonds
j → i and the self loop (edge features 0), message m_i = Σ_j α_ij (W_v h_j + W_ve e_ij), dense
update ReLU(W_u [h_i, m_i]). The key and the value have their own edge projections, which
PyG's ``TransformerConv`` (one edge projection for both) does not; the segment softmax, the
sum over bonds, the self loops and the mean pooling are PyG's.
"""

import math

import torch
from torch import nn
from torch_geometric.nn import global_mean_pool
from torch_geometric.utils import add_self_loops, scatter, softmax

from glassfrac.learn.windows import EDGE_FEATURES, NODE_FEATURES


class AttentionConv(nn.Module):
    """Graph convolution with scaled dot-product attention over neighbours and a dense update."""

    def __init__(self, dim: int, edge_dim: int):
        super().__init__()
        self.dim = dim
        self.nodes = nn.Linear(dim, 3 * dim)  # query, key, value
        self.edges = nn.Linear(edge_dim, 2 * dim, bias=False)  # edge parts of key and value
        self.update = nn.Linear(2 * dim, dim)

    def forward(self, h, edge_index, e):
        """New node features from ``h`` (n, dim) over the bonds ``edge_index`` (2, m) source →
        target with features ``e`` (m, edge_dim)."""
        src, dst = edge_index
        q, k, v = self.nodes(h).split(self.dim, dim=1)
        ek, ev = self.edges(e).split(self.dim, dim=1)
        alpha = softmax((q[dst] * (k[src] + ek)).sum(-1) / math.sqrt(self.dim), dst, num_nodes=len(h))
        m = scatter(alpha[:, None] * (v[src] + ev), dst, dim=0, dim_size=len(h), reduce="sum")
        return torch.relu(self.update(torch.cat([h, m], -1)))


class ListiGNN(nn.Module):
    """LISTI25's graph network: embedding, two blocks of attention convolutions (two, then one),
    each followed by a dense ReLU layer, mean pooling per graph, MLP 20–10–5–1; width ``hidden``."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        node_dim, edge_dim = len(NODE_FEATURES), len(EDGE_FEATURES)
        self.embed = nn.Linear(node_dim, hidden)
        self.block1 = nn.ModuleList([AttentionConv(hidden, edge_dim), AttentionConv(hidden, edge_dim)])
        self.dense1 = nn.Linear(hidden, hidden)
        self.block2 = nn.ModuleList([AttentionConv(hidden, edge_dim)])
        self.dense2 = nn.Linear(hidden, hidden)
        self.head = nn.Sequential(nn.Linear(hidden, 20), nn.ReLU(), nn.Linear(20, 10), nn.ReLU(),
                                  nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 1))

    def forward(self, x, edge_index, edge_attr, batch, n_graphs: int):
        """One value per graph (n_graphs,) from node features ``x`` (n, node_dim), bonds
        ``edge_index`` (2, m) with features ``edge_attr`` (m, edge_dim) and graph numbers ``batch`` (n,)."""
        edge_index, e = add_self_loops(edge_index, edge_attr, fill_value=0.0, num_nodes=len(x))
        h = self.embed(x)
        for conv in self.block1:
            h = conv(h, edge_index, e)
        h = torch.relu(self.dense1(h))
        for conv in self.block2:
            h = conv(h, edge_index, e)
        h = torch.relu(self.dense2(h))
        return self.head(global_mean_pool(h, batch, n_graphs))[:, 0]
