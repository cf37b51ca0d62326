"""A catalogue of small random nets covering every layer type and activation."""
import numpy as np

from pyquirk.nn import (GELU, AvgPool, Conv1d, Conv2d, Dense, Flatten, Gate, Identity, LeakyReLU, MaxPool, Net,
                        ReLU, Sigmoid, Tanh)

ACTS = {"relu": ReLU, "leaky_relu": lambda: LeakyReLU(0.1), "tanh": Tanh, "sigmoid": Sigmoid,
        "gelu": GELU, "identity": Identity}


def mlp(act="tanh", loss="ce"):
    a = ACTS[act]
    return Net([Dense(6), a(), Dense(5), a(), Dense(3)], input_shape=(4,), loss=loss)


def cnn1d(act="tanh"):
    a = ACTS[act]
    return Net([Conv1d(3, 3, stride=1, padding=1), a(), MaxPool(2), Conv1d(2, 2, stride=2), a(),
                Flatten(), Dense(3)], input_shape=(2, 12))


def cnn2d(act="tanh"):
    a = ACTS[act]
    return Net([Conv2d(3, (2, 3), stride=(1, 2), padding=1), a(), AvgPool(2), Conv2d(2, (2, 1)), a(),
                MaxPool((1, 2), stride=1), Flatten(), Dense(3)], input_shape=(2, 7, 8))


NETS = {
    **{f"mlp-{a}": (lambda a=a: mlp(a)) for a in ACTS},
    "mlp-mse": lambda: mlp("tanh", loss="mse"),
    "cnn1d-maxpool": cnn1d,
    "cnn1d-gelu": lambda: cnn1d("gelu"),
    "cnn2d-pools": cnn2d,
    "cnn2d-relu": lambda: cnn2d("relu"),
    # HAT-style multiplicative unit gates after a dense layer and after a convolution
    "mlp-gated": lambda: Net([Dense(6), Gate(), ReLU(), Dense(5), Tanh(), Gate(), Dense(3)], input_shape=(4,)),
    "cnn1d-gated": lambda: Net([Conv1d(3, 3, padding=1), Gate(), Tanh(), Flatten(), Dense(3)],
                               input_shape=(2, 6)),
}


def problem(name, n=5, dtype=np.float64, seed=0):
    """(net, θ, X, y) with a random θ (non-zero biases) and random data."""
    net = NETS[name]()
    rng = np.random.default_rng(seed)
    theta = (rng.standard_normal(net.n_params) * 0.7).astype(dtype)
    X = rng.standard_normal((n,) + net.input_shape).astype(dtype)
    if net.loss_name == "mse":
        y = rng.standard_normal((n, net.n_outputs)).astype(dtype)
    else:
        y = rng.integers(0, net.n_outputs, n)
    return net, theta, X, y
