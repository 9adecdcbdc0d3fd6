"""MoCoGAN-HD's motion generator: an LSTM that walks a StyleGAN2 latent w through W space.

Our own implementation of ``RNNModule`` (Tian et al., ICLR 2021), with the published key names:

    (h_0, c_0) = enc_cell(w_0)                       LSTMCell, zero initial state
    (h_t, c_t) = cell(e_t, (h_{t-1}, c_{t-1}))       e_t ~ N(0, I), one per step
    m_t        = tanh(h_t @ w + b)                   ``w`` (h_dim, n_pca) multiplies from the right
    w_t        = w_{t-1} + w_residual * m_t @ P      P = pca_comp[:n_pca] * pca_stdev[:n_pca, None]

``pca_comp`` / ``pca_stdev`` are plain tensors set with ``set_pca`` (they are not in the ``.pth`` file).
``fc1``/``fc2`` reconstruct e_t from (h_t, c_t); training uses them, inference does not.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Trajectory:
    """What the motion generator produced for B clips of T steps (batch-major rows b * T + t)."""

    w: torch.Tensor  # (B * T, z_dim), row 0 of each clip is the starting w
    h: torch.Tensor  # (B, T, h_dim): h_0 (from enc_cell) ... h_{T-1}
    c: torch.Tensor  # (B, T, h_dim)
    e_rec: torch.Tensor | None  # (B * (T - 1), z_dim), None for T == 1


class RNNModule(nn.Module):
    def __init__(self, z_dim: int = 512, h_dim: int = 384, n_pca: int = 384, w_residual: float = 0.2):
        super().__init__()
        self.z_dim, self.h_dim, self.n_pca, self.w_residual = z_dim, h_dim, n_pca, w_residual
        self.enc_cell = nn.LSTMCell(z_dim, h_dim)
        self.cell = nn.LSTMCell(z_dim, h_dim)
        self.w = nn.Parameter(torch.randn(h_dim, n_pca) * 0.02)
        self.b = nn.Parameter(torch.zeros(n_pca))
        self.fc1 = nn.Linear(h_dim * 2, z_dim)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(z_dim, z_dim)
        self.pca_comp = torch.zeros(n_pca, z_dim)
        self.pca_stdev = torch.ones(n_pca)

    def set_pca(self, components: torch.Tensor, stdev: torch.Tensor) -> None:
        """The PCA basis of W: ``components`` (>= n_pca, z_dim) rows, ``stdev`` (>= n_pca,) descending."""
        if components.ndim != 2 or components.shape[0] < self.n_pca or components.shape[1] != self.z_dim:
            raise ValueError(f"pca_comp must be (>= {self.n_pca}, {self.z_dim}), got {tuple(components.shape)}")
        if stdev.ndim != 1 or stdev.shape[0] < self.n_pca:
            raise ValueError(f"pca_stdev must be (>= {self.n_pca},), got {tuple(stdev.shape)}")
        self.pca_comp = components[: self.n_pca].float()
        self.pca_stdev = stdev[: self.n_pca].float()

    def _apply(self, fn, recurse=True):  # .to(device) also moves the PCA tensors (plain attributes)
        out = super()._apply(fn, recurse)
        self.pca_comp, self.pca_stdev = fn(self.pca_comp), fn(self.pca_stdev)
        return out

    def basis(self) -> torch.Tensor:
        return self.pca_comp * self.pca_stdev[:, None]

    def forward(self, w0: torch.Tensor, eps: torch.Tensor) -> Trajectory:
        """``w0`` (B, z_dim) and the step noise ``eps`` (T - 1, B, z_dim) -> the T-step trajectory."""
        basis = self.basis()
        h, c = self.enc_cell(w0)
        ws, hs, cs = [w0], [h], [c]
        for e in eps:
            h, c = self.cell(e, (h, c))
            m = torch.tanh(h @ self.w + self.b)
            ws.append(ws[-1] + self.w_residual * (m @ basis))
            hs.append(h)
            cs.append(c)
        w = torch.stack(ws, dim=1).reshape(-1, self.z_dim)
        h_all, c_all = torch.stack(hs, dim=1), torch.stack(cs, dim=1)
        e_rec = None
        if len(eps):
            hc = torch.cat([h_all[:, 1:].reshape(-1, self.h_dim), c_all[:, 1:].reshape(-1, self.h_dim)], dim=1)
            e_rec = self.fc2(self.relu(self.fc1(hc)))
        return Trajectory(w=w, h=h_all, c=c_all, e_rec=e_rec)
