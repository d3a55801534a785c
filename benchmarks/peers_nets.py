"""The networks of benchmarks/peers_bench.py rebuilt as float SNNs in SpikingJelly, Sinabs, snnTorch and
Norse (and a plain-torch float IF loop), from the compiled snnc IR, so that every contender runs the
same architecture, the same weights and the same T.

* Every projection becomes the float32 module the ANN had: a dense or convolution layer with weights
  W * 2^e / Theta (per output channel: every neuron then has threshold 1.0, the usual conversion), the
  bias B / Theta as the layer's bias, the input's 1/scale folded into the first layer. Where the
  compiler folded an average pool into the next layer (a 6x6 stride-2 conv, or a dense layer on the
  unpooled map), the peers get the original AvgPool2d + small layer back (``snnc.backends.torch``'s
  exact unfolding, the same one snnc runs), so they are not charged for the fold. A depthwise 1x1
  conv (a residual identity) is a per-channel scale. Residual joins add the two paths.
* Neurons: each framework's own integrate-and-fire neuron in its multi-step form, threshold 1.0:
  SpikingJelly ``IFNode(v_reset=None, step_mode="m")`` (soft reset), Sinabs ``IAFSqueeze`` with
  ``SingleSpike`` (soft reset; batch and time flattened), snnTorch ``Leaky(beta=1, reset_mechanism=
  "subtract")`` stepped over T, Norse ``IAF`` (its IF neuron; hard reset to 0, the only one it has).
* Execution: the frameworks' documented multi-step usage: the input repeated over T, every layer
  applied to all T*B samples at once, the neuron over T, activations freed after their last use.
  The readout sums its input over T. No gradients (``torch.no_grad``).

These are float networks: their spikes are not snnc's integer ones (no V0, float rounding, Norse's
hard reset); ``spike_rate`` in the results shows they do comparable work.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from snnc.backends.torch.linear import unfold_conv, unfold_dense
from snnc.ir import Conv2d, Dense, Input, Network, Population, SumPool2d


def _theta(net: Network, target: str, out_shape) -> np.ndarray:
    node = net.node(target)
    c = out_shape[0]
    th = np.asarray(node.threshold if isinstance(node, Population) else 1, dtype=np.float64)
    return np.broadcast_to(th, (c,)) if th.ndim == 0 else th


class ChannelScale(nn.Module):
    def __init__(self, w: torch.Tensor, stride):
        super().__init__()
        self.register_buffer("w", w.reshape(1, -1, 1, 1))
        self.stride = stride

    def forward(self, x):
        if self.stride != (1, 1):
            x = x[:, :, ::self.stride[0], ::self.stride[1]]
        return x * self.w


def projection_module(net: Network, p) -> nn.Module:
    """The float module of projection ``p`` (see the module doc)."""
    scale = float(2 ** p.exponent)
    src = net.node(p.source)
    if isinstance(src, Input):
        scale /= src.scale
    out_c = p.out_shape[0] if isinstance(p, (Conv2d, SumPool2d)) else int(np.prod(p.out_shape))
    theta = _theta(net, p.target, (out_c,))
    if isinstance(p, Dense):
        u = unfold_dense(p)
        w = (u.weight * (u.ay * u.ax)) if u is not None else p.weight
        lin = nn.Linear(w.shape[1], w.shape[0], bias=False)
        lin.weight.data = torch.as_tensor(w * scale / theta[:, None], dtype=torch.float32)
        if u is None:
            return nn.Sequential(nn.Flatten(), lin)
        return nn.Sequential(nn.AvgPool2d((u.ay, u.ax)), nn.Flatten(), lin)
    if isinstance(p, Conv2d):
        if p.weight.shape[1:] == (1, 1, 1) and p.groups == p.in_shape[0] == p.out_shape[0] and not any(p.padding):
            return ChannelScale(torch.as_tensor(p.weight.reshape(-1) * scale / theta, dtype=torch.float32), p.stride)
        u = unfold_conv(p)
        w, stride, pad = (p.weight, p.stride, p.padding) if u is None else (u.weight * (u.ay * u.ax), (1, 1), u.padding)
        t, l, b, r = pad
        conv = nn.Conv2d(p.in_shape[0], w.shape[0], w.shape[2:], stride, (t, l) if (t, l) == (b, r) else 0,
                         p.dilation if u is None else 1, p.groups, bias=False)
        conv.weight.data = torch.as_tensor(w * scale / theta[:, None, None, None], dtype=torch.float32)
        mods = [] if u is None else [nn.AvgPool2d((u.ay, u.ax))]
        if (t, l) != (b, r):
            mods.append(nn.ZeroPad2d((l, r, t, b)))
        return nn.Sequential(*mods, conv)
    if isinstance(p, SumPool2d):
        k = p.kernel[0] * p.kernel[1]
        f = float(p.weight) * scale * k
        t, l, b, r = p.padding
        pool = nn.AvgPool2d(p.kernel, p.stride, count_include_pad=True)
        w = torch.as_tensor(f / theta, dtype=torch.float32)
        return nn.Sequential(nn.ZeroPad2d((l, r, t, b)), pool, ChannelScale(w, (1, 1)))
    raise NotImplementedError(type(p).__name__)


# ---- neurons, multi-step: (T*B, ...) currents in the executor's layout -> spikes ----------------------
class SJNeuron(nn.Module):
    layout = "tb"

    def __init__(self, T, B):
        super().__init__()
        from spikingjelly.activation_based import neuron

        self.T, self.B = T, B
        self.node = neuron.IFNode(v_threshold=1.0, v_reset=None, step_mode="m")

    def forward(self, x):
        self.node.reset()
        return self.node(x.reshape((self.T, self.B) + x.shape[1:])).flatten(0, 1)


class SinabsNeuron(nn.Module):
    layout = "bt"

    def __init__(self, T, B):
        super().__init__()
        import sinabs.layers as sl
        from sinabs.activation import SingleSpike

        self.node = sl.IAFSqueeze(batch_size=B, spike_threshold=1.0, spike_fn=SingleSpike, min_v_mem=None)

    def forward(self, x):
        self.node.reset_states()
        return self.node(x)


class SnnTorchNeuron(nn.Module):
    layout = "tb"

    def __init__(self, T, B):
        super().__init__()
        import snntorch as snn

        self.T, self.B = T, B
        self.node = snn.Leaky(beta=1.0, threshold=1.0, reset_mechanism="subtract")

    def forward(self, x):
        x = x.reshape((self.T, self.B) + x.shape[1:])
        mem = self.node.init_leaky()
        out = []
        for t in range(self.T):
            spk, mem = self.node(x[t], mem)
            out.append(spk)
        return torch.stack(out).flatten(0, 1)


class NorseNeuron(nn.Module):
    layout = "tb"

    def __init__(self, T, B):
        super().__init__()
        import norse.torch as nt

        self.T, self.B = T, B
        self.node = nt.IAF(nt.IAFParameters(v_th=torch.tensor(1.0)))

    def forward(self, x):
        z, _ = self.node(x.reshape((self.T, self.B) + x.shape[1:]))
        return z.flatten(0, 1)


class TorchIFNeuron(nn.Module):
    """A plain float IF loop (soft reset), the baseline a user would write by hand."""

    layout = "tb"

    def __init__(self, T, B):
        super().__init__()
        self.T, self.B = T, B

    def forward(self, x):
        x = x.reshape((self.T, self.B) + x.shape[1:])
        v = torch.zeros_like(x[0])
        out = torch.empty_like(x)
        for t in range(self.T):
            v = v + x[t]
            s = (v >= 1.0).to(x.dtype)
            v = v - s
            out[t] = s
        return out.flatten(0, 1)


NEURONS = {"spikingjelly": SJNeuron, "sinabs": SinabsNeuron, "snntorch": SnnTorchNeuron, "norse": NorseNeuron,
           "torch": TorchIFNeuron}


class PeerNet(nn.Module):
    """The compiled network as a float SNN of one framework; ``forward(x)`` takes the float input
    (B, *shape) and returns the readouts summed over T, and the mean spike rate (when ``count_spikes``)."""

    def __init__(self, net: Network, framework: str, T: int, B: int):
        super().__init__()
        self.net, self.T, self.B = net, T, B
        cls = NEURONS[framework]
        self.layout = cls.layout
        self.proj = nn.ModuleDict({p.name.replace(".", "_"): projection_module(net, p) for p in net.projections})
        self.neurons = nn.ModuleDict({n.name.replace(".", "_"): cls(T, B) for n in net.populations})
        self.extra_bias = {}
        for node in net.ordered_nodes():   # the per-step bias B / Theta, as the first layer's bias
            b = np.asarray(getattr(node, "bias", 0), dtype=np.float64)
            if isinstance(node, Input) or not np.any(b != 0):
                continue
            c = node.shape[0]
            bias = torch.as_tensor(np.broadcast_to(b, (c,)) / _theta(net, node.name, (c,)), dtype=torch.float32)
            last = list(self.proj[self._key(net.incoming(node.name)[0].name)].modules())[-1]
            if isinstance(last, (nn.Linear, nn.Conv2d)) and (isinstance(last, nn.Conv2d) or len(node.shape) == 1):
                last.bias = nn.Parameter(bias)
            else:
                self.extra_bias[node.name] = bias.reshape((1, c) + (1,) * (len(node.shape) - 1))
        self.count_spikes = False
        self.eval()

    def _key(self, name: str) -> str:
        return name.replace(".", "_")

    def forward(self, x: torch.Tensor):
        T, B = self.T, self.B
        rep = x.unsqueeze(0).expand((T,) + x.shape) if self.layout == "tb" else x.unsqueeze(1).expand(
            (B, T) + x.shape[1:])
        acts = {}
        for node in self.net.inputs:
            acts[node.name] = rep.reshape((T * B,) + x.shape[1:])
        left = {n.name: len(self.net.outgoing(n.name)) for n in self.net.nodes}
        out, spikes, total = {}, 0.0, 0
        for node in self.net.ordered_nodes():
            if isinstance(node, Input):
                continue
            cur = None
            for p in self.net.incoming(node.name):
                y = self.proj[self._key(p.name)](acts[p.source])
                cur = y if cur is None else cur + y
                left[p.source] -= 1
                if left[p.source] == 0:
                    del acts[p.source]
            if node.name in self.extra_bias:
                cur = cur.reshape((T * B,) + tuple(node.shape)) + self.extra_bias[node.name]
            if isinstance(node, Population):
                s = self.neurons[self._key(node.name)](cur.reshape((T * B,) + tuple(node.shape)))
                if self.count_spikes:   # off in timed runs
                    spikes += float(s.sum())
                    total += s.numel()
                if left[node.name]:
                    acts[node.name] = s
            else:
                r = cur.reshape((T, B, -1) if self.layout == "tb" else (B, T, -1))
                out[node.name] = r.sum(0 if self.layout == "tb" else 1)
        return out, spikes / max(total, 1)
