"""The synthetic experiment's library functions (Section 4.1)."""

from __future__ import annotations

import pytest
import torch

from advtransfer import metrics, synthetic
from advtransfer.runtime import generator


@pytest.fixture(scope="module")
def small():
    data = synthetic.make_rbf_data(
        n_samples=200, dim=8, n_clusters=3, n_rbf=20, out_dim=4, width_scale=100.0, test_fraction=0.25,
        generator=generator(0),
    )  # fmt: skip
    target, losses = synthetic.make_target(data, hidden=32, steps=400, lr=0.01, seed=0)
    return data, target, losses


def test_data_in_unit_ball_split_and_not_constant(small):
    data, _, _ = small
    assert data.x_train.shape == (150, 8) and data.x_test.shape == (50, 8)
    norms = torch.cat([data.x_train, data.x_test]).norm(dim=1)
    assert norms.max() == pytest.approx(1.0, abs=1e-12)
    y = torch.cat([data.y_train, data.y_test])
    assert torch.allclose(y.std(dim=0), torch.ones(4, dtype=torch.float64), atol=1e-12)
    assert data.input_scale > 1


def test_data_is_reproducible_from_its_seed():
    kwargs = dict(n_samples=50, dim=3, n_clusters=2, n_rbf=5, out_dim=2, width_scale=10.0, test_fraction=0.2)
    a = synthetic.make_rbf_data(**kwargs, generator=generator(7))
    b = synthetic.make_rbf_data(**kwargs, generator=generator(7))
    c = synthetic.make_rbf_data(**kwargs, generator=generator(8))
    assert all(torch.equal(a.tensors()[k], b.tensors()[k]) for k in synthetic.RBF_TENSORS)
    assert not torch.equal(a.x_train, c.x_train)


def test_target_fits_better_than_the_mean(small):
    data, target, losses = small
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        held_out = metrics.squared_error(target(data.x_test), data.y_test)
    baseline = metrics.squared_error(data.y_train.mean(0).expand_as(data.y_test), data.y_test)
    assert held_out < baseline


def test_source_uses_the_real_scale_t_never_accumulated(small):
    _, target, _ = small
    v = synthetic.draw_perturbation(target, half_range=0.5, generator=generator(1))
    assert all(float(p.abs().max()) <= 0.5 for p in v.values())
    first = synthetic.perturbed_source(target, v, 0.3)
    again = synthetic.perturbed_source(synthetic.perturbed_source(target, v, 0.1), v, 0.3)  # not chained
    for name, p in first.named_parameters():
        expected = dict(target.named_parameters())[name] + 0.3 * v[name]
        assert torch.equal(p, expected)
    assert not torch.equal(first.hidden.weight, again.hidden.weight)
    assert torch.equal(synthetic.perturbed_source(target, v, 0.0).head.weight, target.head.weight)


@pytest.mark.parametrize("split", synthetic.SPLITS)
def test_theorem2_and_theorem3_bounds_hold_on_every_point_of_a_small_sweep(small, split):
    data, target, _ = small
    for seed in (1, 2, 3):
        v = synthetic.draw_perturbation(target, half_range=0.5, generator=generator(seed))
        for t in (0.0, 0.25, 0.5, 1.0, 2.0, 4.5):
            row = synthetic.sweep_point(
                target, synthetic.perturbed_source(target, v, t), data, split=split,
                attack_norm="l2", attack_eps=0.1, attack_steps=3, attack_step_size=0.05, generator=generator(seed),
            )  # fmt: skip
            assert row["grad_diff"] <= row["thm2_bound"], (seed, t, row)
            assert row["thm2_bound"] <= row["thm2_bound_lipschitz"], (seed, t, row)
            assert row["transfer_loss_affine"] <= row["thm3_bound"], (seed, t, row)
            assert all(0 <= row[k] <= 1 for k in ("tau1", "tau2", "alpha", "tau2_reverse"))
            # Proposition 1 before any clamp, and Theorem 1's identity on the scalar restriction
            assert -1e-12 <= row["tau2_unclamped"] <= 1 + 1e-12 and -1e-12 <= row["alpha_unclamped"] <= 1 + 1e-12
            assert row["tau2"] == pytest.approx(row["tau2_unclamped"], abs=1e-12)
            assert row["thm1_lhs"] == pytest.approx(row["thm1_rhs"], rel=1e-9, abs=1e-15), (seed, t, row)
            if t > 0:
                assert row["thm1_lhs"] > 0  # the identity is not 0 = 0


@pytest.mark.parametrize("split", synthetic.SPLITS)
def test_at_t0_everything_transfers_perfectly(small, split):
    data, target, _ = small
    row = synthetic.sweep_point(
        target, synthetic.perturbed_source(
            target, synthetic.draw_perturbation(target, half_range=0.5, generator=generator(1)), 0.0
        ), data,
        attack_norm="l2", attack_eps=0.1, attack_steps=3, attack_step_size=0.05, generator=generator(1), split=split,
    )  # fmt: skip
    assert row["tau1"] == pytest.approx(1, abs=1e-12) and row["tau2"] == pytest.approx(1, abs=1e-12)
    assert row["tau2_reverse"] == pytest.approx(1, abs=1e-12)
    assert row["grad_diff"] == pytest.approx(0, abs=1e-20)
    assert row["transfer_loss_affine"] == pytest.approx(row["target_loss"], rel=1e-12)  # g = identity


def test_last_layer_refit_recovers_a_linear_readout_of_the_features(small):
    """If y is exactly linear in f_S's hidden features, the refit loss is zero."""
    data, target, _ = small
    with torch.no_grad():
        exact = synthetic.RBFData(
            data.x_train, target(data.x_train), data.x_test, target(data.x_test), data.input_scale
        )
    for split in synthetic.SPLITS:
        assert float(synthetic.refit_last_layer(target, exact, split)) < 1e-18
        assert float(synthetic.refit_last_layer(target, data, split)) > 1e-3
    # the refit is fitted on the training sample: there it is least squares, so never above the target's
    # own last layer on that sample
    train_loss = float(metrics.squared_error(target(data.x_train), data.y_train).detach())
    assert float(synthetic.refit_last_layer(target, data, "train")) <= train_loss + 1e-12


def test_unknown_sample_is_refused(small):
    data, _, _ = small
    with pytest.raises(ValueError, match="unknown split 'test'"):
        data.sample("test")


def test_sweep_point_rejects_inputs_outside_the_unit_ball(small):
    data, target, _ = small
    scaled = synthetic.RBFData(data.x_train, data.y_train, 2 * data.x_test, data.y_test)
    with pytest.raises(ValueError, match="unit ball"):
        synthetic.sweep_point(target, target, scaled, attack_norm="l2", attack_eps=0.1, attack_steps=1,
                              attack_step_size=0.1, generator=generator(0))  # fmt: skip
