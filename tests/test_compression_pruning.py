"""Pruning masks (DESIGN §4 "Pruning"): exact counts, stable ties, scopes, torch oracle, masks that only
grow and stay zero through training, structured and random pruning, and clear errors."""
import numpy as np
import pytest
from conftest import require_oracle
from hypothesis import given, settings
from hypothesis import strategies as st

from pyquirk.compression import (apply_mask, layer_sparsity, output_layer, prune_magnitude, prune_random,
                                 prune_structured, random_mask_like, scope_specs, scope_sparsity, sparsity)
from pyquirk.nn import Conv1d, Dense, Flatten, Net, ReLU
from pyquirk.train import SGD, Adam, fit


def mlp(widths=(12, 9), n_in=7, n_out=4):
    layers = []
    for w in widths:
        layers += [Dense(w), ReLU()]
    return Net(layers + [Dense(n_out)], input_shape=(n_in,))


def distinct_theta(net, seed=0, dtype=np.float32):
    """θ with all magnitudes distinct (no ties): a random permutation of evenly spaced values."""
    rng = np.random.default_rng(seed)
    mags = (np.arange(net.n_params) + 1.0) / net.n_params
    return (rng.permutation(mags) * rng.choice([-1, 1], net.n_params)).astype(dtype)


def pruned_count(net, mask, specs):
    return sum(int((~mask[s.slice]).sum()) for s in specs)


# ----------------------------------------------------------------------------------- exact counts
@pytest.mark.parametrize("p", [0.0, 0.1, 0.25, 0.5, 0.77, 0.9, 0.999])
@pytest.mark.parametrize("scope", ["global", "layer"])
def test_exact_counts_weights_only(p, scope):
    net = mlp()
    theta = distinct_theta(net)
    mask = prune_magnitude(net, theta, p, scope=scope)
    specs = scope_specs(net)
    if scope == "global":
        assert pruned_count(net, mask, specs) == round(p * sum(s.size for s in specs))
    else:
        for s in specs:
            assert int((~mask[s.slice]).sum()) == round(p * s.size), s.name
    for s in net.layout:                       # biases are kept by default
        if s.kind == "bias":
            assert mask[s.slice].all()


def test_global_prunes_the_smallest_magnitudes():
    net = mlp()
    theta = distinct_theta(net, 3)
    mask = prune_magnitude(net, theta, 0.6)
    w = net.param_mask("weights")
    thr_pruned = np.abs(theta[w & ~mask]).max()
    assert thr_pruned < np.abs(theta[w & mask]).min()


def test_ties_fall_by_index_lower_first():
    net = mlp((3,), n_in=2, n_out=2)             # weights: 6 + 6
    theta = np.ones(net.n_params, np.float32)
    mask = prune_magnitude(net, theta, 0.5)      # all magnitudes tie: the 6 lowest flat indices go
    w = np.flatnonzero(net.param_mask("weights"))
    assert np.array_equal(np.flatnonzero(~mask), w[:6])
    theta[w[0]] = -0.0                           # +0 and −0 tie with each other
    theta[w[1]] = 0.0
    mask = prune_magnitude(net, theta, 1 / 12)
    assert np.array_equal(np.flatnonzero(~mask), w[:1])


def test_biases_option_and_keep_output_and_output_p():
    net = mlp()
    theta = distinct_theta(net, 1)
    m = prune_magnitude(net, theta, 0.5, biases=True)
    specs = scope_specs(net, biases=True)
    assert pruned_count(net, m, specs) == round(0.5 * sum(s.size for s in specs))
    m = prune_magnitude(net, theta, 0.5, keep_output=True)
    out = output_layer(net)
    assert all(m[s.slice].all() for s in net.layout if s.layer == out)
    m = prune_magnitude(net, theta, 0.2, scope="layer", output_p=0.1)
    for s in scope_specs(net):
        assert int((~m[s.slice]).sum()) == round((0.1 if s.layer == out else 0.2) * s.size)
    m = prune_magnitude(net, theta, 0.5, layers=["2.weight"])
    assert layer_sparsity(net, m)["2.weight"] == pytest.approx(round(0.5 * 108) / 108)
    assert layer_sparsity(net, m)["0.weight"] == 0.0


def test_population_prunes_each_member():
    net = mlp()
    theta = np.stack([distinct_theta(net, s) for s in range(3)])
    masks = prune_magnitude(net, theta, 0.5)
    assert masks.shape == theta.shape
    for e in range(3):
        assert np.array_equal(masks[e], prune_magnitude(net, theta[e], 0.5))


def test_conv_net_counts():
    net = Net([Conv1d(3, 3, padding=1), ReLU(), Flatten(), Dense(4)], input_shape=(2, 8))
    theta = distinct_theta(net, 5)
    mask = prune_magnitude(net, theta, 0.7, scope="layer")
    for s in scope_specs(net):
        assert int((~mask[s.slice]).sum()) == round(0.7 * s.size)


# ----------------------------------------------------------------------------------- torch oracle
def _torch_twin(seed):
    """``prune`` (torch.nn.utils.prune), an MLP, a tie-free float64 θ, the ``nn.Linear`` layers of its
    torch copy and its weight specs, in the same order."""
    torch = require_oracle("torch")
    from torch.nn.utils import prune

    from pyquirk.interop.torch import to_torch
    net = mlp((16, 11))
    theta = distinct_theta(net, seed, np.float64)
    linears = [m for m in to_torch(net, theta) if isinstance(m, torch.nn.Linear)]
    return prune, net, theta, linears, [s for s in net.layout if s.kind == "weight"]


def _assert_masks_match_torch(linears, specs, ours):
    for m, s in zip(linears, specs):
        assert np.array_equal(m.weight_mask.numpy().astype(bool).ravel(), ours[s.slice]), s.name


@pytest.mark.parametrize("p", [0.3, 0.9])
def test_global_matches_torch_global_unstructured(p):
    prune, net, theta, linears, specs = _torch_twin(7)
    prune.global_unstructured([(m, "weight") for m in linears], pruning_method=prune.L1Unstructured, amount=p)
    _assert_masks_match_torch(linears, specs, prune_magnitude(net, theta, p))


def test_layerwise_matches_torch_l1_unstructured():
    prune, net, theta, linears, specs = _torch_twin(8)
    ours = prune_magnitude(net, theta, 0.45, scope="layer")
    for m in linears:
        prune.l1_unstructured(m, "weight", amount=0.45)
    _assert_masks_match_torch(linears, specs, ours)


def test_structured_matches_torch_ln_structured():
    prune, net, theta, linears, specs = _torch_twin(9)
    ours = prune_structured(net, theta, 0.4, keep_output=True)
    for m in linears[:-1]:
        prune.ln_structured(m, "weight", amount=0.4, n=2, dim=0)
    _assert_masks_match_torch(linears[:-1], specs[:-1], ours)


# ----------------------------------------------------------------------------------- rounds and training
def test_rounds_prune_p_of_the_survivors_and_masks_only_grow():
    net = mlp()
    theta = distinct_theta(net, 2)
    mask, n = None, sum(s.size for s in scope_specs(net))
    alive = n
    for _ in range(5):
        new = prune_magnitude(net, theta, 0.3, mask=mask)
        assert mask is None or not (new & ~mask).any()
        k = round(0.3 * alive)
        alive -= k
        assert pruned_count(net, new, scope_specs(net)) == n - alive
        mask = new
        theta = apply_mask(theta, mask)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), p=st.floats(0.05, 0.95), scope=st.sampled_from(["global", "layer"]),
       rounds=st.integers(1, 3), biases=st.booleans())
def test_masked_training_keeps_pruned_entries_exactly_zero(seed, p, scope, rounds, biases):
    net = mlp((6,), n_in=5, n_out=3)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((24, 5)).astype(np.float32)
    y = rng.integers(0, 3, 24)
    theta, mask = net.init(seed), None
    for r in range(rounds):
        new = prune_magnitude(net, theta, p, scope=scope, mask=mask, biases=biases)
        if mask is not None:
            assert not (new & ~mask).any(), "a pruned entry came back"
        mask = new
        res = fit(net, apply_mask(theta, mask), X, y, Adam(1e-2) if r % 2 else SGD(0.1, momentum=0.9),
                  steps=7, batch_size=8, mask=mask, seeds=seed)
        theta = res.theta
        assert np.all(theta[~mask] == 0) and not np.signbit(theta[~mask]).any()


# ----------------------------------------------------------------------------------- random & structured
@pytest.mark.parametrize("scope", ["global", "layer"])
def test_random_pruning_exact_counts_and_seeded(scope):
    net = mlp()
    m1 = prune_random(net, 0.55, scope=scope, rng=3)
    m2 = prune_random(net, 0.55, scope=scope, rng=3)
    assert np.array_equal(m1, m2) and not np.array_equal(m1, prune_random(net, 0.55, scope=scope, rng=4))
    specs = scope_specs(net)
    if scope == "global":
        assert pruned_count(net, m1, specs) == round(0.55 * sum(s.size for s in specs))
    else:
        assert all(int((~m1[s.slice]).sum()) == round(0.55 * s.size) for s in specs)
    m3 = prune_random(net, 0.5, scope=scope, rng=5, mask=m1)
    assert not (m3 & ~m1).any()


def test_random_mask_like_keeps_per_tensor_counts():
    net = mlp()
    mask = prune_magnitude(net, distinct_theta(net), 0.8, scope="layer", output_p=0.4)
    rnd = random_mask_like(net, mask, rng=1, select="weights")
    for s in net.layout:
        assert rnd[s.slice].sum() == mask[s.slice].sum()
    assert not np.array_equal(rnd, mask)


def test_structured_removes_whole_units_with_their_bias():
    net = mlp((10, 8))
    theta = distinct_theta(net, 4)
    mask = prune_structured(net, theta, 0.5)
    for s in scope_specs(net, keep_output=True):
        rows = mask[s.slice].reshape(s.shape[0], -1)
        assert np.all(rows.all(1) | ~rows.any(1))           # whole rows only
        assert int((~rows.all(1)).sum()) == round(0.5 * s.shape[0])
        b = next(t for t in net.layout if t.layer == s.layer and t.kind == "bias")
        assert np.array_equal(mask[b.slice], rows.all(1))
    out = output_layer(net)
    assert all(mask[s.slice].all() for s in net.layout if s.layer == out)
    again = prune_structured(net, apply_mask(theta, mask), 0.5, mask=mask)
    s0 = scope_specs(net)[0]
    assert int((~again[s0.slice].reshape(10, -1).all(1)).sum()) == 5 + round(0.5 * 5)
    g = prune_structured(net, theta, 0.5, scope="global")
    units = sum(s.shape[0] for s in scope_specs(net, keep_output=True))
    assert sum(int((~g[s.slice].reshape(s.shape[0], -1).all(1)).sum())
               for s in scope_specs(net, keep_output=True)) == round(0.5 * units)


def test_sparsity_helpers():
    net = mlp()
    m = prune_magnitude(net, distinct_theta(net), 0.5, keep_output=True)
    assert scope_sparsity(net, m, keep_output=True) == pytest.approx(
        round(0.5 * sum(s.size for s in scope_specs(net, keep_output=True))) /
        sum(s.size for s in scope_specs(net, keep_output=True)))
    assert 0 < sparsity(net, m) < scope_sparsity(net, m, keep_output=True)


# ----------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan")])
def test_p_outside_unit_interval_raises_naming_p(p):
    net = mlp()
    with pytest.raises(ValueError, match=r"\bp must lie in"):
        prune_magnitude(net, distinct_theta(net), p)
    with pytest.raises(ValueError, match=r"\bp must lie in"):
        prune_random(net, p)
    with pytest.raises(ValueError, match=r"output_p must lie in"):
        prune_magnitude(net, distinct_theta(net), 0.5, scope="layer", output_p=p)


def test_unknown_scope_and_layer_names_raise():
    net = mlp()
    with pytest.raises(ValueError, match="unknown scope 'globl'"):
        prune_magnitude(net, distinct_theta(net), 0.5, scope="globl")
    with pytest.raises(ValueError, match=r"unknown layer or parameter name.*in layers"):
        prune_magnitude(net, distinct_theta(net), 0.5, layers=["9.weight"])
    with pytest.raises(ValueError, match="output_p needs scope='layer'"):
        prune_magnitude(net, distinct_theta(net), 0.5, output_p=0.1)


def test_empty_scope_raises():
    net = Net([Dense(3)], input_shape=(4,))
    with pytest.raises(ValueError, match="pruning scope is empty"):
        prune_magnitude(net, net.init(0), 0.5, keep_output=True)
    with pytest.raises(ValueError, match="pruning scope is empty"):
        prune_magnitude(mlp(), distinct_theta(mlp()), 0.5, layers=["0.bias"])


def test_bad_theta_and_mask_raise():
    net = mlp()
    theta = distinct_theta(net)
    with pytest.raises(ValueError, match="theta"):
        prune_magnitude(net, theta[:-1], 0.5)
    with pytest.raises(TypeError, match="mask must have dtype bool"):
        prune_magnitude(net, theta, 0.5, mask=np.ones(net.n_params))
    with pytest.raises(ValueError, match="mask must have shape"):
        prune_magnitude(net, theta, 0.5, mask=np.ones(3, bool))
    bad = theta.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        prune_magnitude(net, bad, 0.5)
