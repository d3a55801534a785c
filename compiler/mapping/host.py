"""Graded units placed off the neuro cores (the transformer's LayerNorm, softmax, GELU / SiLU and
two-input MatMul units of ``snnc.ir.graded``): a target runs them on the processors its profile names
in ``[units]`` (``TargetProfile.units``); a target without them refuses such a network by name.

The neuro cores still receive the units' messages (a projection from a unit is an input of the core
holding its target, like the network input's); the projections into a unit are the unit's own work.
"""

from __future__ import annotations

import numpy as np

from snnc.ir import GradedFunctionUnit, Network, Node

from ..errors import MappingError
from ..targets import TargetProfile


def is_host_unit(node: Node) -> bool:
    return isinstance(node, GradedFunctionUnit)


def host_units(net: Network) -> list[Node]:
    return [n for n in net.ordered_nodes() if is_host_unit(n)]


def host_unit_bits(net: Network, target: TargetProfile) -> int | None:
    """The width the network's host units are held to (None: it has none); a target without a
    ``[units]`` resource refuses them, naming them."""
    units = host_units(net)
    if not units:
        return None
    if target.units is None:
        names = ", ".join(f"'{u.name}' ({type(u).__name__})" for u in units[:4]) + (" ..." if len(units) > 4 else "")
        raise MappingError(f"target '{target.name}' has no processors for graded units ([units] in its profile), and "
                           f"the network has {len(units)}: {names}; they are not neuro-core operations. Use a target "
                           "whose profile names such a resource (loihi, loihi2) or add a [units] section with --profile")
    return target.units.state_bits


def host_placement(net: Network, target: TargetProfile) -> dict | None:
    """The placement entry of the host units (None when the network has none): the resource, and per
    unit its kind, its values and the port values it updates per step."""
    units = host_units(net)
    if not units:
        return None
    host_unit_bits(net, target)
    rows = [{"name": u.name, "kind": type(u).__name__, "values": int(u.size),
             "port_values": int(sum(int(np.prod(u.port_shape(p))) for p in u.PORTS)),
             "weights": int(sum(int(np.count_nonzero(p.weight)) for p in net.incoming(u.name)))} for u in units]
    return {"resource": target.units.resource, "processors_per_chip": target.units.processors,
            "state_bits": target.units.state_bits, "units": rows}
