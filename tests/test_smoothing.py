"""Randomized smoothing (advtransfer.smoothing) against closed forms, scipy and hand-computed cases."""

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from advtransfer import smoothing


class Halfspace(nn.Module):
    """Two classes split by the hyperplane w.x + b = 0: P(f(x + e) = 1) = Phi((w.x + b) / (sigma ||w||))."""

    def __init__(self, w: torch.Tensor, b: float):
        super().__init__()
        self.w, self.b = nn.Parameter(w.clone()), b
        self.largest_batch = 0

    def forward(self, x):
        self.largest_batch = max(self.largest_batch, len(x))
        score = x.flatten(1) @ self.w.flatten() + self.b
        return torch.stack([-score, score], 1)


class Constant(nn.Module):
    def __init__(self, label: int, classes: int = 4):
        super().__init__()
        self.label, self.classes = label, classes
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        out = torch.zeros(len(x), self.classes)
        out[:, self.label] = 1.0
        return out


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def halfspace_case():
    w = torch.randn(1, 3, 4, 4, generator=gen(1))
    x = torch.rand(5, 1, 3, 4, 4, generator=gen(2)).squeeze(1)
    return Halfspace(w, b=-float((x.flatten(1) @ w.flatten()).mean())), x


def test_clopper_pearson_matches_scipy_exact_interval():
    # the one-sided (1 - alpha) bound is the lower end of the two-sided exact interval at level 1 - 2 alpha
    for k, n, alpha in [(1, 10, 0.05), (73, 100, 0.001), (999, 1000, 0.001), (50, 50, 0.01)]:
        low = stats.binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact").low
        assert smoothing.clopper_pearson_lower(k, n, alpha) == pytest.approx(low, rel=1e-9)
    assert smoothing.clopper_pearson_lower(0, 10, 0.05) == 0.0
    # all n successes: P(Bin(n, p) = n) = p^n = alpha
    assert smoothing.clopper_pearson_lower(100, 100, 0.001) == pytest.approx(0.001 ** (1 / 100), rel=1e-12)


def test_radius_formula():
    p = np.array([0.5, 0.8413447460685429, 0.99])
    np.testing.assert_allclose(smoothing.certified_radius(p, 0.25), [0.0, 0.25, 0.25 * 2.3263478740408408], atol=1e-12)


def test_counts_match_the_halfspace_probability():
    model, x = halfspace_case()
    sigma, n = 0.5, 4000
    counts = smoothing.class_counts(model, x, sigma=sigma, n=n, generator=gen(), batch_size=777)
    assert counts.shape == (5, 2) and (counts.sum(1) == n).all()
    margin = (x.flatten(1) @ model.w.detach().flatten() + model.b) / (sigma * model.w.detach().norm())
    p1 = stats.norm.cdf(margin.numpy())
    se = np.sqrt(p1 * (1 - p1) / n)
    assert np.all(np.abs(counts[:, 1].numpy() / n - p1) <= 4 * se + 1e-12)


def test_memory_is_bounded_by_the_chunk_whatever_n():
    model, x = halfspace_case()
    for n in (10, 1000, 20000):
        model.largest_batch = 0
        smoothing.class_counts(model, x, sigma=0.1, n=n, generator=gen(), batch_size=256)
        assert model.largest_batch == min(256, len(x) * n)


def test_counts_are_seeded_and_leave_the_model_as_it_was():
    model, x = halfspace_case()
    model.train()
    a = smoothing.class_counts(model, x, sigma=0.3, n=300, generator=gen(5), batch_size=100)
    b = smoothing.class_counts(model, x, sigma=0.3, n=300, generator=gen(5), batch_size=100)
    assert torch.equal(a, b) and model.training
    c = smoothing.class_counts(model, x, sigma=0.3, n=300, generator=gen(6), batch_size=100)
    assert not torch.equal(a, c)


def test_certify_constant_model_has_the_closed_form_radius():
    x = torch.rand(3, 1, 2, 2, generator=gen())
    sigma, n, alpha = 0.5, 500, 0.001
    cert = smoothing.certify(Constant(2), x, sigma=sigma, n0=10, n=n, alpha=alpha, generator=gen())
    assert (cert.prediction == 2).all()
    expected = sigma * stats.norm.ppf(alpha ** (1 / n))
    np.testing.assert_allclose(cert.radius, expected, rtol=1e-10)
    assert (cert.counts_estimation[:, 2] == n).all() and (cert.counts_selection[:, 2] == 10).all()


def test_certify_abstains_on_a_coin_flip():
    # x on the hyperplane: P(class 1) = 1/2, so no lower bound can exceed 1/2
    w = torch.ones(1, 1, 2, 2)
    x = torch.full((4, 1, 2, 2), 0.5)
    cert = smoothing.certify(Halfspace(w, b=-2.0), x, sigma=0.25, n0=20, n=2000, alpha=0.001, generator=gen())
    assert (cert.prediction == smoothing.ABSTAIN).all() and (cert.radius == 0).all()
    assert (cert.p_lower < 0.5).all()


def test_certify_uses_fresh_noise_for_estimation():
    model, x = halfspace_case()
    cert = smoothing.certify(model, x, sigma=0.5, n0=50, n=50, alpha=0.01, generator=gen())
    assert not np.array_equal(cert.counts_selection, cert.counts_estimation)


def test_predict_binomial_test_by_hand():
    # binomial test of 60 of 100 at 1/2: p = 0.0569 > 0.05 -> abstain; 70 of 100: p = 7.9e-5 -> predict
    counts = np.array([[60, 40, 0], [0, 30, 70], [0, 0, 0], [5, 5, 90]])
    assert list(smoothing.smoothed_prediction(counts, 0.05)) == [-1, 2, -1, 2]
    assert stats.binomtest(60, 100, 0.5).pvalue == pytest.approx(0.0569, abs=1e-4)
    # ties between the top two always abstain
    assert smoothing.smoothed_prediction(np.array([[50, 50]]), 0.5)[0] == smoothing.ABSTAIN


def test_predict_on_a_confident_model():
    x = torch.rand(3, 1, 2, 2, generator=gen())
    assert (smoothing.predict(Constant(1), x, sigma=1.0, n=100, alpha=0.001, generator=gen()) == 1).all()


def test_certified_accuracy_by_hand():
    prediction = np.array([0, 1, -1, 2])
    radius = np.array([0.5, 0.1, 0.0, 1.0])
    labels = np.array([0, 0, 1, 2])
    np.testing.assert_allclose(smoothing.certified_accuracy(prediction, radius, labels, [0.0, 0.25, 0.75, 2.0]),
                               [0.5, 0.5, 0.25, 0.0])  # fmt: skip


def test_bad_arguments():
    model, x = halfspace_case()
    with pytest.raises(ValueError, match="n .*must be >= 1"):
        smoothing.class_counts(model, x, sigma=0.1, n=0, generator=gen())
    with pytest.raises(ValueError, match="sigma"):
        smoothing.class_counts(model, x, sigma=-1.0, n=5, generator=gen())


def test_certify_agrees_with_adversarial_robustness_toolbox():
    """Same model, sigma, n0, n and alpha: both radii lie in the band the binomial noise allows around the
    exact probability (P(class 1) = Phi(m) for an image at margin m sigma from a hyperplane)."""
    from art.estimators.certification.randomized_smoothing import PyTorchRandomizedSmoothing

    sigma, n0, n, alpha = 0.5, 50, 2000, 0.001
    margins = np.array([0.5, 1.0, 1.5, 2.5])
    w = torch.zeros(1, 1, 2, 2)
    w[0, 0, 0, 0] = 1.0
    x = torch.zeros(len(margins), 1, 2, 2)
    x[:, 0, 0, 0] = torch.tensor(margins * sigma, dtype=torch.float32)
    model = Halfspace(w, b=0.0).eval()
    ours = smoothing.certify(model, x, sigma=sigma, n0=n0, n=n, alpha=alpha, generator=gen(), batch_size=500)
    art = PyTorchRandomizedSmoothing(model, loss=nn.CrossEntropyLoss(), input_shape=(1, 2, 2), nb_classes=2,
                                     device_type="cpu", sample_size=n0, scale=sigma, alpha=alpha)  # fmt: skip
    np.random.seed(0)
    art_prediction, art_radius = art.certify(x.numpy(), n=n, batch_size=500)
    p = stats.norm.cdf(margins)
    spread = 4 * np.sqrt(n * p * (1 - p))
    low, high = (smoothing.certified_radius(smoothing.clopper_pearson_lower(np.clip(k, 0, n), n, alpha), sigma)
                 for k in (np.floor(n * p - spread), np.ceil(n * p + spread)))  # fmt: skip
    assert (ours.prediction == 1).all() and (art_prediction == 1).all()
    for radius in (ours.radius, art_radius):
        assert np.all((radius >= low - 1e-9) & (radius <= high + 1e-9)), (radius, low, high)
    np.testing.assert_allclose(ours.radius, art_radius, atol=np.max(high - low))
