"""Multi-order interactions (advtransfer.interactions, Ren et al. 2021) against closed forms, the exact oracle and
the decomposition identity; the batched, deduplicating estimator against a per-mask loop."""

import itertools

import pytest
import torch
from torch import nn

from advtransfer import interactions as it


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def table_function(table: torch.Tensor):
    """A set function given by its values on all subsets (bit k of the index = player k)."""
    n = table.numel().bit_length() - 1
    return lambda masks: table[(masks.long() << torch.arange(n)).sum(1)]


class Linear2(nn.Module):
    """Two logits, w.x and 0: with logit_margin of label 0 the score is w.x, additive in the cells."""

    def __init__(self, shape, seed=0):
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape, generator=gen(seed), dtype=torch.float64))

    def forward(self, x):
        score = (x * self.w).flatten(1).sum(1)
        return torch.stack([score, torch.zeros_like(score)], 1)


class Product(nn.Module):
    """Two logits, x_i x_j and 0 (pixels i and j of the flattened image)."""

    def __init__(self, i, j):
        super().__init__()
        self.i, self.j = i, j
        self.dummy = nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def forward(self, x):
        flat = x.flatten(1)
        prod = flat[:, self.i] * flat[:, self.j]
        return torch.stack([prod, torch.zeros_like(prod)], 1)


class Counting(nn.Module):
    """A small random nonlinear net on (1, 4, 6) images that counts the inputs it sees."""

    def __init__(self, dtype=torch.float64, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(24, 16), nn.Tanh(), nn.Linear(16, 3)).to(dtype)
        self.seen = 0

    def forward(self, x):
        self.seen += len(x)
        return self.net(x)


def nonlinear_case(dtype=torch.float64):
    model = Counting(dtype).eval()
    x = torch.rand(1, 4, 6, generator=gen(3), dtype=dtype)
    return model, x


# --------------------------------------------------------------------------------------------- 1. additive


def test_additive_set_function_has_no_interactions():
    w = torch.randn(6, generator=gen(1), dtype=torch.float64)

    def v(masks):
        return masks.double() @ w

    assert it.interactions_exact(v, 6).abs().max() < 1e-12
    assert it.interaction_exact(v, 6, 0, 5, 2) == pytest.approx(0, abs=1e-12)
    deltas = it.interaction_deltas(v, torch.tensor([[0, 1], [2, 5]]), [0, 2, 4], 8, 6, gen())
    assert deltas.abs().max() < 1e-12


def test_linear_model_on_grid_cells_has_no_interactions():
    x = torch.rand(2, 3, 9, 8, generator=gen(2), dtype=torch.float64)
    model = Linear2((3, 9, 8)).eval()
    v = it.model_set_function(model, x[0], 0, (3, 2), 0.0, kind="logit_margin")
    assert it.interactions_exact(v, 6).abs().max() < 1e-12
    est = it.estimate_interactions(model, x, torch.tensor([0, 0]), (3, 3), [0.0, 0.3, 0.6, 1.0], 5, 4, 0.0, gen(),
                                   kind="logit_margin")  # fmt: skip
    assert est.interactions.shape == (2, 5, 4) and est.deltas.abs().max() < 1e-12


# --------------------------------------------------------------------------------------------- 2. product


def test_product_of_two_inputs_interacts_only_in_its_pair_at_every_order():
    x = torch.rand(1, 2, 3, generator=gen(4), dtype=torch.float64) + 0.5
    i, j = 1, 4  # cells of a 2 x 3 grid over a 2 x 3 image are single pixels
    model = Product(i, j)
    v = it.model_set_function(model, x, 0, (2, 3), 0.0, kind="logit_margin")
    exact = it.interactions_exact(v, 6)
    expected = torch.zeros(6, 6, dtype=torch.float64)
    expected[i, j] = expected[j, i] = x.flatten()[i] * x.flatten()[j]
    torch.testing.assert_close(exact, expected.expand(5, 6, 6), rtol=0, atol=1e-12)
    assert it.interaction_exact(v, 6, i, j, 3) == pytest.approx(float(expected[i, j]), abs=1e-12)

    for adjacent in (True, False):
        est = it.estimate_interactions(model, x[None], [0], (2, 3), [0.1 * k for k in range(11)], 40, 3, 0.0,
                                       gen(5), kind="logit_margin", adjacent=adjacent)  # fmt: skip
        assert est.orders == [0, 1, 2, 3, 4]
        pairs = est.pairs[0]
        want = expected[pairs[:, 0], pairs[:, 1]][:, None].expand(-1, 5)
        assert ((pairs[:, 0] == i) & (pairs[:, 1] == j)).any()  # the interacting pair was drawn
        torch.testing.assert_close(est.interactions[0], want, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------- 3. identity


@pytest.mark.parametrize("n", [4, 5, 6, 7])
def test_decomposition_identity_on_random_set_functions(n):
    for seed in range(3):
        table = torch.randn(2**n, generator=gen(seed), dtype=torch.float64)
        lhs, rhs = it.decomposition_sides(table_function(table), n)
        assert lhs == pytest.approx(rhs, abs=1e-10)
    # and with the grid masking of a real model
    model, x = nonlinear_case()
    lhs, rhs = it.decomposition_sides(it.model_set_function(model, x, 2, (2, 3), x.mean()), 6)
    assert lhs == pytest.approx(rhs, abs=1e-10)


def test_exact_oracle_matches_the_definition_by_hand():
    table = torch.randn(2**4, generator=gen(7), dtype=torch.float64)
    v = table_function(table)
    # I^(1)(0, 1) over S = {2}, {3}: bit masks 0b0111 - 0b0101 - 0b0110 + 0b0100 and 0b1011 - 0b1001 - 0b1010 + 0b1000
    by_hand = ((table[7] - table[5] - table[6] + table[4]) + (table[11] - table[9] - table[10] + table[8])) / 2
    assert it.interaction_exact(v, 4, 0, 1, 1) == pytest.approx(float(by_hand), abs=1e-12)
    assert it.interactions_exact(v, 4)[1, 0, 1] == pytest.approx(float(by_hand), abs=1e-12)


# --------------------------------------------------------------------------------------------- 4. unbiased


def test_sampled_mean_is_within_four_standard_errors_of_the_exact_interaction():
    model, x = nonlinear_case()
    v = it.model_set_function(model, x, 1, (2, 3), 0.5)
    pairs = torch.tensor([[0, 1], [1, 4], [2, 3]])
    contexts = 3000
    deltas = it.interaction_deltas(v, pairs, [0, 1, 2, 3, 4], contexts, 6, gen(8))
    assert v.forwards_run <= 2**6 < v.forwards_needed == 4 * 3 * 5 * contexts  # each distinct subset once
    exact = it.interactions_exact(v, 6)
    assert exact[:, pairs[:, 0], pairs[:, 1]].abs().min() > 1e-6  # a genuinely nonlinear model
    for (p, (i, j)), m in itertools.product(enumerate(pairs.tolist()), range(5)):
        mean, se = deltas[p, m].mean(), deltas[p, m].std() / contexts**0.5
        assert abs(mean - exact[m, i, j]) <= 4 * se + 1e-12, (i, j, m)


def test_contexts_are_subsets_of_the_right_size_without_the_pair():
    s = it.sample_contexts(7, 2, 5, 3, 500, gen(9))
    assert s.shape == (500, 7) and (s.sum(1) == 3).all() and not s[:, [2, 5]].any()
    counts = torch.unique(s, dim=0, return_counts=True)[1]
    assert len(counts) == 10 and counts.min() > 25  # C(5, 3) subsets, about 50 each
    assert not it.sample_contexts(7, 2, 5, 0, 4, gen()).any()
    assert it.sample_contexts(7, 2, 5, 5, 4, gen()).sum(1).eq(5).all()


# --------------------------------------------------------------------------------------------- 5. one context


def test_estimator_equals_the_oracle_at_the_lowest_and_highest_order():
    model, x = nonlinear_case()
    images = torch.stack([x, 1 - x, x.flip(-1)])
    labels = torch.tensor([0, 1, 2])
    est = it.estimate_interactions(model, images, labels, (2, 3), [0.0, 1.0], 4, 3, 0.2, gen(10), adjacent=False)
    assert est.orders == [0, 4] and torch.equal(est.std, torch.zeros(3, 4, 2, dtype=torch.float64))
    for b, p in itertools.product(range(3), range(4)):
        v = it.model_set_function(model, images[b], int(labels[b]), (2, 3), 0.2)
        i, j = est.pairs[b, p].tolist()
        for k, m in enumerate(est.orders):
            assert float(est.interactions[b, p, k]) == pytest.approx(it.interaction_exact(v, 6, i, j, m), abs=1e-13)


# --------------------------------------------------------------------------------------------- 6. dedup


def test_dedup_runs_fewer_forwards_and_matches_a_per_mask_loop():
    model, x = nonlinear_case(torch.float32)
    baseline = torch.tensor([0.3])
    v = it.model_set_function(model, x, 1, (2, 3), baseline, batch_size=5)
    pairs = it.sample_pairs(2, 3, 4, gen(11))
    model.seen = 0
    deltas = it.interaction_deltas(v, pairs, [0], 3, 6, gen(12))
    assert v.forwards_needed == 4 * 4 * 3 and v.forwards_run == model.seen < v.forwards_needed
    masks = it.delta_masks(pairs, [0], 3, 6, gen(12))
    assert v.forwards_run == len(torch.unique(masks.reshape(-1, 6), dim=0))

    values = torch.zeros(masks.shape[:-1])
    with torch.no_grad():
        for index in itertools.product(*map(range, masks.shape[:-1])):
            one = it.masked_inputs(x, masks[index][None], 2, 3, baseline)
            values[index] = it.scores(model(one), 1)[0]
    torch.testing.assert_close(deltas, it.deltas_from_values(values), rtol=0, atol=1e-6)


def test_results_do_not_depend_on_batch_size_and_are_reproducible():
    model, x = nonlinear_case()
    images = torch.stack([x, 1 - x])
    runs = {
        b: it.estimate_interactions(model, images, [0, 2], (2, 3), [0.0, 0.5, 1.0], 3, 4, 0.5, gen(13), batch_size=b)
        for b in (1, 7, 10000)
    }
    for b in (7, 10000):
        torch.testing.assert_close(runs[b].deltas, runs[1].deltas, rtol=0, atol=1e-12)
        assert runs[b].forwards_run == runs[1].forwards_run < runs[1].forwards_needed == 2 * 4 * 3 * 3 * 4
    again = it.estimate_interactions(model, images, [0, 2], (2, 3), [0.0, 0.5, 1.0], 3, 4, 0.5, gen(13), batch_size=7)
    assert torch.equal(again.deltas, runs[7].deltas) and torch.equal(again.pairs, runs[7].pairs)
    other = it.estimate_interactions(model, images, [0, 2], (2, 3), [0.0, 0.5, 1.0], 3, 4, 0.5, gen(14), batch_size=7)
    assert not torch.equal(other.deltas, runs[7].deltas)


def test_model_mode_and_device_are_left_alone():
    model, x = nonlinear_case()
    model.train()
    it.estimate_interactions(model, x[None], [0], (2, 3), [0.5], 1, 2, 0.0, gen())
    assert model.training and it.model_device(model).type == "cpu"


# --------------------------------------------------------------------------------------------- 7. bad input


def test_bad_input_is_rejected_with_a_clear_message():
    v = table_function(torch.zeros(2**11, dtype=torch.float64))
    for call in (lambda: it.interactions_exact(v, 11), lambda: it.interaction_exact(v, 11, 0, 1, 0),
                 lambda: it.decomposition_sides(v, 11)):  # fmt: skip
        with pytest.raises(ValueError, match="n = 11"):
            call()
    model, x = nonlinear_case()
    with pytest.raises(ValueError, match="grid larger than the image"):
        it.model_set_function(model, x, 0, (5, 2), 0.0)
    with pytest.raises(ValueError, match="grid larger than the image"):
        it.estimate_interactions(model, x[None], [0], (2, 7), [0.5], 1, 1, 0.0, gen())
    with pytest.raises(ValueError, match="log_softmax, logit_margin"):
        it.scores(torch.zeros(2, 3), 0, "probability")
    with pytest.raises(ValueError, match="log_softmax, logit_margin"):
        it.model_set_function(model, x, 0, (2, 3), 0.0, kind="probability")
    with pytest.raises(ValueError, match="channel"):
        it.masked_inputs(x, torch.ones(1, 6, dtype=torch.bool), 2, 3, torch.zeros(3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        it.orders(10, [1.5])


# --------------------------------------------------------------------------------------------- 8. grid helpers


def test_orders_round_and_drop_duplicates():
    assert it.orders(49, [0.1, 0.5, 1.0]) == [5, 24, 47]
    assert it.orders(49, [round(0.1 * k, 1) for k in range(1, 11)]) == [5, 9, 14, 19, 24, 28, 33, 38, 42, 47]
    assert it.orders(6, [1.0, 0.1, 0.12, 0.5]) == [0, 2, 4]


def test_adjacent_and_random_pairs():
    assert set(it.adjacent_pairs(2, 2)) == {(0, 1), (2, 3), (0, 2), (1, 3)}
    assert len(it.adjacent_pairs(7, 7)) == 2 * 7 * 6
    near = it.sample_pairs(3, 4, 200, gen(15))
    assert set(map(tuple, near.tolist())) == set(it.adjacent_pairs(3, 4))
    anywhere = it.sample_pairs(3, 4, 2000, gen(16), adjacent=False)
    assert (anywhere[:, 0] < anywhere[:, 1]).all() and len(set(map(tuple, anywhere.tolist()))) == 66


@pytest.mark.parametrize("gh, gw, H, W", [(7, 7, 28, 28), (3, 3, 8, 8), (2, 3, 5, 7)])
def test_cell_masks_cover_every_pixel_once(gh, gw, H, W):
    n = gh * gw
    pixels = it.cell_masks_to_pixels(torch.eye(n, dtype=torch.bool), gh, gw, H, W)
    assert pixels.shape == (n, 1, H, W) and pixels.dtype == torch.float32
    assert torch.equal(pixels.sum(0), torch.ones(1, H, W)) and (pixels.flatten(1).sum(1) > 0).all()
    index = it.cell_index(gh, gw, H, W)
    assert index[0, W - 1] == gw - 1 and index[H - 1, 0] == (gh - 1) * gw and index[H - 1, W - 1] == n - 1


def test_masked_inputs_use_the_baseline_outside_present_cells():
    x = torch.rand(2, 4, 4, generator=gen(17))
    masks = torch.tensor([[True, False, False, True], [False] * 4])
    out = it.masked_inputs(x, masks, 2, 2, torch.tensor([0.1, 0.9]))
    assert torch.equal(out[0, :, :2, :2], x[:, :2, :2]) and torch.equal(out[0, :, 2:, 2:], x[:, 2:, 2:])
    assert (out[0, 0, :2, 2:] == 0.1).all() and (out[1, 1] == 0.9).all()
    image = torch.full((2, 4, 4), 0.25)
    assert (it.masked_inputs(x, masks, 2, 2, image)[1] == 0.25).all()


def test_scores_and_correct_classification():
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, -1.0]])
    torch.testing.assert_close(it.scores(logits, 0), logits.log_softmax(1)[:, 0])
    torch.testing.assert_close(it.scores(logits, 0, "logit_margin"), torch.tensor([1.0, -3.0]))
    model, x = nonlinear_case()
    images = torch.stack([x, 1 - x, x / 2])
    pred = model(images).argmax(1)
    assert it.correctly_classified(model, images, pred, batch_size=2).all()
    assert not it.correctly_classified(model, images, (pred + 1) % 3).any()


def test_strength_profile_and_high_order_share():
    inter = torch.tensor([[[1.0, -2.0, 3.0], [-1.0, 0.0, 1.0]]])  # 1 image, 2 pairs, 3 orders
    strength = it.interaction_strength(inter)
    torch.testing.assert_close(strength, torch.tensor([1.0, 1.0, 2.0]))
    torch.testing.assert_close(it.normalised_profile(strength), torch.tensor([0.75, 0.75, 1.5]))
    assert it.high_order_share(strength, [0.1, 0.5, 0.9]) == pytest.approx(0.5)
    assert it.high_order_share(strength, [0.1, 0.7, 0.9]) == pytest.approx(0.75)
