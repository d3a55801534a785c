"""A small Vision Transformer (ViT, Dosovitskiy et al. 2021) written out op by op (plain torch).

The attention is explicit -- no ``torch.nn.MultiheadAttention``, no ``scaled_dot_product_attention`` --
so that both ONNX exporters emit plain ``MatMul`` / ``Softmax`` / ``Transpose`` / ``Reshape`` nodes::

    x (N, C, S, S) -> Conv(C -> D, kernel = stride = P)                   patch embedding, (S/P)^2 tokens
                   -> flatten, transpose to (N, tokens, D)
                   -> concat a learned class token (expanded to the batch)  (N, tokens + 1, D)
                   -> + learned position embedding
                   -> depth x [ x + Attn(LN(x));  x + MLP(LN(x)) ]          pre-norm blocks
                   -> LN -> class token (row 0) -> Linear(D -> classes)      logits

    Attn(h) = Linear_o( merge_heads( softmax((Q K^T) * d^-1/2, last axis) V ) ),
              Q, K, V = split_heads(Linear_q(h)), split_heads(Linear_k(h)), split_heads(Linear_v(h))
    split_heads: reshape (N, T, D) -> (N, T, H, d), transpose -> (N, H, T, d), d = D / H
    MLP(h)  = Linear(GELU(Linear(h)))   (exact, erf-based GELU)

Head reshapes use ``-1`` for the batch and the token count fixed at construction, so the exported
``Reshape`` shapes are constants. ``readout="mean"`` averages the tokens instead of taking the class
token (and builds no class token).

Importable by path: ``sys.path.insert(0, "<repo>/examples/models"); import vit``.
"""

from __future__ import annotations

import torch
from torch import nn

READOUTS = ("cls", "mean")


class Attention(nn.Module):
    """Multi-head self-attention with separate Q, K, V projections."""

    def __init__(self, dim: int, heads: int, tokens: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be a multiple of heads ({heads})")
        self.heads, self.head_dim, self.tokens = heads, dim // heads, tokens
        self.scale = self.head_dim ** -0.5
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        return t.reshape(-1, self.tokens, self.heads, self.head_dim).transpose(1, 2)  # (N, H, T, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        a = torch.matmul(q, k.transpose(-2, -1)) * self.scale  # (N, H, T, T)
        a = torch.softmax(a, dim=-1)
        o = torch.matmul(a, v).transpose(1, 2)  # (N, T, H, d)
        return self.out(o.reshape(-1, self.tokens, self.heads * self.head_dim))


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, tokens: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, tokens)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """(N, in_channels, image_size, image_size) -> (N, num_classes) logits; see the module docstring."""

    def __init__(self, image_size: int = 28, patch: int = 7, in_channels: int = 1, num_classes: int = 10,
                 dim: int = 64, depth: int = 4, heads: int = 4, mlp_dim: int = 128, readout: str = "cls") -> None:
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image_size ({image_size}) must be a multiple of patch ({patch})")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        if min(dim, depth, heads, mlp_dim, num_classes, in_channels) < 1:
            raise ValueError("dim, depth, heads, mlp_dim, num_classes and in_channels must be >= 1")
        self.readout = readout
        self.patches = (image_size // patch) ** 2
        tokens = self.patches + (readout == "cls")
        self.embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if readout == "cls" else None
        self.pos = nn.Parameter(torch.zeros(1, tokens, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_dim, tokens) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self._init()

    @torch.no_grad()
    def _init(self) -> None:
        nn.init.trunc_normal_(self.pos, std=0.02)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x).flatten(2).transpose(1, 2)  # (N, patches, D)
        if self.cls_token is not None:
            h = torch.cat([self.cls_token.expand(h.shape[0], -1, -1), h], dim=1)
        h = self.norm(self.blocks(h + self.pos))
        h = h[:, 0] if self.readout == "cls" else h.mean(dim=1)
        return self.head(h)
