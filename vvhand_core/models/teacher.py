"""Teacher confidence network: scores every rendered view from A2J's head outputs.

Per view and joint, the 64 maps (16 anchors x {response, dx, dy, depth}) of A2J go
through a small CNN (conv3x3-64/BN/ReLU/maxpool(3,2) -> conv3x3-128/BN/ReLU/
maxpool(3,2) -> conv2x2-d_model), averaged over joints and space into one vector per
view. The pools round up (ceil mode) and maps smaller than a kernel are edge-padded to
its size, so every crop size works (176 px: 11 -> 5 -> 2 -> 1, as the release; 128 px:
8 -> 4 -> 2 -> 1; 96 px: 6 -> 3 -> 1 -> padded to 2 -> 1). One post-norm self-attention
layer across the views (no positional encoding, so any number of views V) and a
Linear(d_model, 1) give one logit per view.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from vvhand_core.models.a2j import ANCHORS_PER_CELL
from vvhand_core.models.configs import TeacherConfig

POOL = 3  # max-pool kernel (stride 2)
FINAL_KERNEL = 2  # the last convolution's kernel


class MultiHeadSelfAttention(nn.Module):
    """Self-attention with ``num_heads`` heads of size ``head_dim`` (d_k = d_v)."""

    def __init__(self, d_model: int, num_heads: int, head_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_heads, self.head_dim, self.dropout = num_heads, head_dim, dropout
        inner = num_heads * head_dim
        self.qkv = nn.Linear(d_model, 3 * inner)
        self.proj = nn.Linear(inner, d_model)

    def forward(self, x: Tensor) -> Tensor:
        """(B, V, d_model) -> (B, V, d_model)."""
        b, v, _ = x.shape
        qkv = self.qkv(x).view(b, v, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2],
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(b, v, -1))


class ViewAttentionLayer(nn.Module):
    """Post-norm transformer encoder layer: LN(x + MHA(x)), then LN(x + FF(x))."""

    def __init__(self, config: TeacherConfig) -> None:
        super().__init__()
        d = config.d_model
        self.attn = MultiHeadSelfAttention(d, config.num_heads, config.head_dim, config.dropout)
        self.norm1 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, config.ff_dim), nn.ReLU(inplace=True),
                                nn.Dropout(config.dropout), nn.Linear(config.ff_dim, d))
        self.norm2 = nn.LayerNorm(d)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        """(B, V, d_model) -> (B, V, d_model)."""
        x = self.norm1(x + self.drop(self.attn(x)))
        return self.norm2(x + self.drop(self.ff(x)))


class _Pool(nn.Module):
    """Max-pool (3, stride 2, ceil mode) that edge-pads maps smaller than the kernel."""

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C, ceil((H' - 3) / 2) + 1, ...), H' = max(H, 3)."""
        return F.max_pool2d(_at_least(x, POOL), POOL, 2, ceil_mode=True)


def _at_least(x: Tensor, size: int) -> Tensor:
    """Replicate-pad the right/bottom edges of (N, C, H, W) maps to at least size x size."""
    ph, pw = max(0, size - x.shape[-2]), max(0, size - x.shape[-1])
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


class _FinalConv(nn.Conv2d):
    """The encoder's last 2x2 convolution, edge-padding 1x1 maps to 2x2 first."""

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, d_model, max(H, 2) - 1, max(W, 2) - 1)."""
        return super().forward(_at_least(x, FINAL_KERNEL))


class Teacher(nn.Module):
    """``forward(features (B, V, J, 64, H_c, W_c))`` -> view logits (B, V).

    ``features`` is :meth:`A2JOutput.teacher_input` of the B*V rendered views reshaped
    to (B, V, ...) (see :func:`teacher_features`).
    """

    def __init__(self, config: TeacherConfig) -> None:
        super().__init__()
        self.config = config
        in_ch = 4 * ANCHORS_PER_CELL
        self.encoder = nn.Sequential(
            nn.Conv2d(in_ch, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64),
            nn.ReLU(inplace=True), _Pool(),
            nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128),
            nn.ReLU(inplace=True), _Pool(),
            _FinalConv(128, config.d_model, FINAL_KERNEL),
        )
        self.attention = ViewAttentionLayer(config)
        self.out = nn.Linear(config.d_model, 1)

    def encode(self, features: Tensor) -> Tensor:
        """(B, V, J, 64, H_c, W_c) -> per-view vectors (B, V, d_model)."""
        b, v, j = features.shape[:3]
        f = self.encoder(features.reshape(b * v * j, *features.shape[3:]))
        return f.reshape(b, v, j, f.shape[1], -1).mean(dim=(2, 4))

    def forward(self, features: Tensor) -> Tensor:
        """View logits (B, V)."""
        if features.dim() != 6 or features.shape[3] != 4 * ANCHORS_PER_CELL:
            raise ValueError(f"teacher expects (B, V, J, 64, H, W), got {tuple(features.shape)}")
        return self.out(self.attention(self.encode(features))).squeeze(-1)


def teacher_features(teacher_input: Tensor, num_views: int) -> Tensor:
    """(B*V, J, 64, H, W) from A2J (frame-major, views consecutive) -> (B, V, J, 64, H, W)."""
    n = teacher_input.shape[0]
    if n % num_views:
        raise ValueError(f"{n} A2J outputs are not a multiple of {num_views} views")
    return teacher_input.reshape(n // num_views, num_views, *teacher_input.shape[1:])
