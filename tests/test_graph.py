"""jaxnet.graph: the logistic step's jaxpr, evaluated equation by equation, with
the lecture's nodes named where an equation computes one."""

import jax
import jax.numpy as jnp

from jaxnet.deep import model_cost
from jaxnet.graph import labelled_equations, logistic_nodes, side_by_side
from jaxnet.logistic import propagate, to_layers


def test_propagate_and_autodiff_graphs_name_the_lecture_nodes():
    params = {"w": jnp.array([[0.5], [-1.0]]), "b": jnp.asarray(0.25)}
    X = jnp.array([[1.0, 2.0, -1.0], [3.0, 0.5, -3.2]])
    Y = jnp.array([[1.0, 0.0, 1.0]])
    nodes = logistic_nodes(params, X, Y)
    hand = labelled_equations(propagate, params, X, Y, nodes=nodes)
    auto = labelled_equations(
        jax.value_and_grad(lambda p: model_cost(to_layers(p), X, Y, ("sigmoid",))),
        params,
        nodes=nodes,
    )
    hand_nodes = [node for _, node in hand[1]]
    auto_nodes = [node for _, node in auto[1]]
    # both compute z and the gradients; only the hand-written step has dz = a - y
    # as one equation (a `sub` of a and y); autodiff reaches dz / m as a sum
    for node in ("z = w^T x + b", "dw = (1/m) x dz^T", "db = (1/m) sum dz"):
        assert node in hand_nodes and node in auto_nodes, node
    dz_row = hand[1][hand_nodes.index("dz = a - y")][0]
    assert " = sub " in dz_row and dz_row.startswith("v")
    assert "dz = a - y" not in auto_nodes
    assert any("= x" in text for text in hand[0])  # X is recognised as the input x
    table = side_by_side(hand, auto, ("propagate", "value_and_grad"))
    assert table.count("\n") >= max(len(hand[1]), len(auto[1])) + 3
    assert "propagate" in table.splitlines()[3] and "node" in table.splitlines()[3]
