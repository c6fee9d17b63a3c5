"""Source training schemes (advtransfer.robust) and the training loop's support for them."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from advtransfer import registry, robust, train
from advtransfer.models import SmallCNN
from advtransfer.train import TrainContext, TrainSettings, resolve_objective, train_classifier


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def tiny(seed=0, classes=3):
    torch.manual_seed(seed)
    return SmallCNN(classes, in_channels=1, image_size=8, width=4, hidden=8)


def batch(n=16, classes=3, seed=1):
    g = gen(seed)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, classes, (n,), generator=g)


PARAMS = {
    "ce": {},
    "noise": {"sigma": 0.25},
    "pgd_at": {"eps": 0.1, "steps": 3, "step_size": 0.04},
    "trades": {"eps": 0.1, "steps": 3, "step_size": 0.04, "beta": 6.0},
    "fast_at": {"eps": 0.1},
    "free_at": {"eps": 0.1},
    "supcon": {"temperature": 0.5},
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_one_step_lowers_its_own_loss(name):
    """A small gradient step on the objective's loss lowers that loss (same batch, same random draws)."""
    model, (x, y) = tiny(), batch()
    fn, params = resolve_objective(name, PARAMS[name])
    context = {k: v for k, v in {"generator": gen(7), "state": {}}.items() if k in train.objective_context(fn)}

    def loss():
        ctx = {k: (gen(7) if k == "generator" else {}) for k in context}  # the same draws every time
        return fn(model, x, y, **params, **ctx)[0]

    model.train()
    before = loss()
    before.backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= 1e-2 * p.grad
    model.zero_grad()
    assert loss().item() < before.item()


def test_rrm_loss_by_hand_and_teacher_untouched():
    student, teacher = tiny(0), tiny(1)
    x, y = batch()
    kept = {k: v.clone() for k, v in teacher.state_dict().items()}
    loss, logits = robust.rrm(student, x, y, lam=0.5, teacher=teacher.eval())
    with torch.no_grad():
        g_s, g_t = student.features(x), teacher.features(x)
        cos = (g_s * g_t).sum(1) / (g_s.norm(dim=1) * g_t.norm(dim=1))
        expected = 0.5 * F.cross_entropy(student.head(g_s), y) - cos.mean() + 1
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.equal(logits, student(x))
    loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    # training with it: the teacher the caller holds is never changed, the student is
    xs, ys = batch(40, seed=2)
    result = train_classifier(
        student, xs, ys, xs[:8], ys[:8], TrainSettings(epochs=1, batch_size=8, lr=0.05, momentum=0.9, weight_decay=0.0),
        TrainContext(seed=0, device="cpu", progress=False, objective="rrm", objective_params={"lam": 0.01},
                     teacher=teacher),
    )  # fmt: skip
    assert all(torch.equal(v, kept[k]) for k, v in teacher.state_dict().items())
    assert result.objective == "rrm" and result.objective_params == {"lam": 0.01}


def test_rrm_needs_a_teacher():
    x, y = batch()
    with pytest.raises(ValueError, match="needs a teacher"):
        train_classifier(tiny(), x, y, x, y,
                         TrainSettings(epochs=1, batch_size=8, lr=0.1, momentum=0.0, weight_decay=0.0),
                         TrainContext(seed=0, device="cpu", progress=False, objective="rrm",
                                      objective_params={"lam": 1.0}))  # fmt: skip


def test_loop_arguments_cannot_come_from_config():
    with pytest.raises(ValueError, match="supplied by the training loop"):
        resolve_objective("noise", {"sigma": 0.1, "generator": 3})


def test_pgd_examples_stay_in_the_ball_and_in_range():
    model, (x, y) = tiny(), batch()
    x = x.clamp(0.05, 0.95)
    x[0] = 0.0  # an image at the bound
    model.train()
    x_adv = robust.attacks.pgd_examples(model, x, y, eps=0.1, steps=5, step_size=0.05, generator=gen())
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert model.training and all(p.requires_grad for p in model.parameters())  # restored
    # and it raises the loss over the clean images
    with torch.no_grad():
        model.eval()
        assert F.cross_entropy(model(x_adv), y) > F.cross_entropy(model(x), y)


def test_evaluation_pgd_examples_are_the_same_in_any_batching():
    """An evaluation seeds each batch afresh: batches of 2 give each batch's examples exactly as attacking that
    batch alone does, and the step_factor vocabulary gives the step_size one (0.25 x 0.08 = 0.02)."""
    model, (x, y) = tiny(), batch()
    model.eval()
    whole = robust.attacks.pgd_examples(model, x, y, eps=0.08, steps=3, step_size=0.02, seed=7, batch_size=2)
    for i in range(0, len(x), 2):
        alone = robust.attacks.pgd_examples(model, x[i : i + 2], y[i : i + 2], eps=0.08, steps=3, step_size=0.02,
                                            seed=7)  # fmt: skip
        assert torch.equal(whole[i : i + 2], alone)
    a = robust.pgd_at(model, x, y, eps=0.08, steps=3, step_factor=0.25, generator=gen())
    b = robust.pgd_at(model, x, y, eps=0.08, steps=3, step_size=0.02, generator=gen())
    assert torch.equal(a[0], b[0])
    with pytest.raises(ValueError, match="pgd_at: give its PGD step"):
        robust.pgd_at(model, x, y, eps=0.08, steps=3, generator=gen())


def test_trades_search_starts_near_x_and_stays_in_the_ball():
    model, (x, y) = tiny(), batch()
    seen = []
    original = robust.attacks.pgd

    def spy(objective, center, **kw):
        out = original(objective, center, **kw)
        seen.append((center, kw["start"], out))
        return out

    robust.attacks.pgd = spy
    try:
        robust.trades(model, x, y, eps=0.05, steps=4, step_size=0.02, beta=1.0, generator=gen())
    finally:
        robust.attacks.pgd = original
    center, start, out = seen[0]
    assert torch.equal(center, x) and 0 < (start - x).abs().max() < 0.01
    assert (out - x).abs().max() <= 0.05 + 1e-6


def test_fast_at_is_one_fgsm_step_of_1_25_eps():
    model, (x, y) = tiny(), batch()
    calls = []
    original = robust.attacks.pgd
    robust.attacks.pgd = lambda objective, x, **kw: calls.append(kw) or original(objective, x, **kw)
    try:
        robust.fast_at(model, x, y, eps=0.08, generator=gen())
    finally:
        robust.attacks.pgd = original
    assert calls[0]["steps"] == 1 and calls[0]["step_size"] == pytest.approx(0.1) and calls[0]["eps"] == 0.08


def test_free_at_updates_the_perturbation_in_the_same_backward():
    model, (x, y) = tiny(), batch()
    state = {}
    loss, _ = robust.free_at(model, x, y, eps=0.1, state=state)
    assert torch.equal(state["delta"], torch.zeros_like(x))
    loss.backward()  # the hook updates delta from the same backward pass as the weights' gradients
    delta = state["delta"]
    step = torch.tensor(0.1)  # float32, as the buffer
    assert ((delta.abs() == step) | (delta == 0)).all() and (delta.abs() == step).any()
    # the next call starts from it; a smaller last batch uses its first rows
    loss2, _ = robust.free_at(model, x[:5], y[:5], eps=0.1, state=state)
    loss2.backward()
    assert state["delta"].shape == x.shape and (state["delta"].abs() <= 0.1 + 1e-7).all()


def test_replays_take_m_steps_per_batch_and_resume_exactly(tmp_path):
    x, y = batch(48, seed=3)
    settings = TrainSettings(epochs=2, batch_size=16, lr=0.05, momentum=0.9, weight_decay=0.0, replays=3)
    context = TrainContext(seed=0, device="cpu", progress=False, objective="free_at", objective_params={"eps": 0.05})
    steps = []
    original = torch.optim.SGD.step

    def counting(self, *a, **k):
        steps.append(1)
        return original(self, *a, **k)

    torch.optim.SGD.step = counting
    try:
        full = train_classifier(tiny(), x, y, x[:8], y[:8], settings, context)
    finally:
        torch.optim.SGD.step = original
    assert len(steps) == 2 * 3 * 3  # epochs x batches x replays
    checkpointed = dataclasses.replace(context, checkpoint_dir=tmp_path)
    half = train_classifier(tiny(), x, y, x[:8], y[:8], settings, dataclasses.replace(checkpointed, stop_after=1))
    assert not half.completed
    rest = train_classifier(tiny(), x, y, x[:8], y[:8], settings, checkpointed)
    assert rest.resumed_from_epoch == 1
    for k, v in full.final_state.items():
        assert torch.equal(v, rest.final_state[k]), k  # the perturbation buffer was checkpointed too


def test_bad_replays():
    x, y = batch()
    with pytest.raises(ValueError, match="replays"):
        TrainSettings(epochs=1, batch_size=8, lr=0.1, momentum=0.0, weight_decay=0.0, replays=0)


def test_noise_and_random_starts_are_seeded_by_the_run():
    x, y = batch(32, seed=4)
    settings = TrainSettings(epochs=1, batch_size=8, lr=0.05, momentum=0.9, weight_decay=0.0)
    context = TrainContext(seed=0, device="cpu", progress=False, objective="noise", objective_params={"sigma": 0.3})
    a = train_classifier(tiny(), x, y, x[:8], y[:8], settings, context).final_state
    b = train_classifier(tiny(), x, y, x[:8], y[:8], settings, context).final_state
    c = train_classifier(tiny(), x, y, x[:8], y[:8], settings, dataclasses.replace(context, seed=1)).final_state
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def supcon_by_hand(z, y, t):
    """L_out written out: a loop over anchors with positives and over their positives."""
    total, anchors = 0.0, 0
    for i in range(len(z)):
        others = [a for a in range(len(z)) if a != i]
        positives = [p for p in others if y[p] == y[i]]
        if not positives:
            continue
        denominator = sum(math.exp(float(z[i] @ z[a]) / t) for a in others)
        total += -sum(math.log(math.exp(float(z[i] @ z[p]) / t) / denominator) for p in positives) / len(positives)
        anchors += 1
    return total / anchors


def test_supcon_loss_by_hand():
    z = F.normalize(torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-0.6, 0.8], [0.6, -0.8]]), dim=1)
    y = torch.tensor([0, 0, 1, 1, 1])
    for t in (0.1, 0.5, 2.0):
        assert robust.supcon_loss(z, y, t).item() == pytest.approx(supcon_by_hand(z, y, t), rel=1e-5)
    # anchor 2 of [0, 0, 1] has no positive: left out of the mean, still in the others' denominators
    assert robust.supcon_loss(z[:3], y[:3], 0.5).item() == pytest.approx(supcon_by_hand(z[:3], y[:3], 0.5), rel=1e-5)
    # well separated classes have a lower loss than mixed ones
    assert robust.supcon_loss(z[[0, 1, 2, 3]], torch.tensor([0, 0, 1, 1]), 0.5) < robust.supcon_loss(
        z[[0, 1, 2, 3]], torch.tensor([0, 1, 0, 1]), 0.5
    )


def test_supcon_body_never_sees_the_classification_loss():
    model, (x, y) = tiny(), batch()
    model.train()
    loss, logits = robust.supcon(model, x, y, temperature=0.5, generator=gen())
    head_only = F.cross_entropy(logits, y)
    grads = torch.autograd.grad(head_only, [p for p in model.body.parameters()], allow_unused=True)
    assert all(g is None or g.abs().max() == 0 for g in grads)


def test_lipschitz_body_is_1_lipschitz():
    torch.manual_seed(0)
    model = robust.LipschitzMLP(10, in_channels=1, image_size=8, width=32, hidden=16)
    with torch.no_grad():  # train it a little away from initialisation
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.rand(8, 1, 8, 8)
    # power iteration on J^T J at each point: the local Lipschitz constant
    v = torch.randn_like(x)
    for _ in range(50):
        v = v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        _, jv = torch.func.jvp(model.features, (x,), (v,))
        _, vjp = torch.func.vjp(model.features, x)
        (v,) = vjp(jv)
    _, jv = torch.func.jvp(model.features, (x,), (v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1),))
    assert jv.norm(dim=1).max() <= 1 + 1e-3
    assert jv.norm(dim=1).max() > 0.5  # the bound is not vacuous
    # and globally on random pairs
    a, b = torch.rand(64, 1, 8, 8), torch.rand(64, 1, 8, 8)
    with torch.no_grad():
        ratio = (model.features(a) - model.features(b)).norm(dim=1) / (a - b).flatten(1).norm(dim=1)
    assert ratio.max() <= 1 + 1e-5


def test_registry_entries_resolve():
    for name in ("noise", "pgd_at", "trades", "fast_at", "free_at", "supcon", "rrm"):
        assert callable(registry.load_object(registry.OBJECTIVES[name]))
    model = registry.load_object(registry.MODELS["lipschitz_mlp"])(3, 1, 8)
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 3) and model.features(torch.rand(2, 1, 8, 8)).shape == (2, 128)


@pytest.fixture(scope="module")
def digits_model():
    """A SmallCNN trained for a few epochs on scikit-learn's 8x8 digits (about 95 % test accuracy)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target)
    torch.manual_seed(0)
    model = SmallCNN(10, in_channels=1, image_size=8, width=8, hidden=32)
    train_classifier(model, x[:1400], y[:1400], x[1400:1500], y[1400:1500],
                     TrainSettings(epochs=6, batch_size=64, lr=0.1, momentum=0.9, weight_decay=0.0),
                     TrainContext(seed=0, device="cpu", progress=False))  # fmt: skip
    return model.eval(), x[1500:1700], y[1500:1700]


def test_apgd_finds_at_least_the_errors_our_pgd_finds(digits_model):
    from advtransfer import attacks

    model, x, y = digits_model
    eps = 0.1
    with torch.no_grad():
        clean = model(x).argmax(1) == y
    x_pgd = attacks.pgd(lambda z: F.cross_entropy(model(z), y, reduction="none"), x, eps=eps, steps=10,
                        step_size=eps / 4, generator=gen())  # fmt: skip
    state = torch.random.get_rng_state()
    x_apgd = attacks.apgd(model, x, y, eps=eps, n_iter=50, seed=0)
    assert torch.equal(torch.random.get_rng_state(), state)  # its global seeding undone
    assert (x_apgd - x).abs().max() <= eps + 1e-6 and x_apgd.min() >= 0 and x_apgd.max() <= 1
    with torch.no_grad():
        wrong_pgd = model(x_pgd).argmax(1) != y
        wrong_apgd = model(x_apgd).argmax(1) != y
    assert clean.float().mean() > 0.85
    assert 0 < wrong_pgd.sum() < len(y)  # a test that can fail: PGD finds some errors, not all
    assert wrong_apgd.sum() >= wrong_pgd.sum()
    assert (wrong_apgd | ~wrong_pgd).float().mean() >= 0.98  # nearly every PGD error found again
    assert torch.equal(x_apgd[~clean], x[~clean])  # already wrong: left as they are
