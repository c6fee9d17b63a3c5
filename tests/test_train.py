"""Training loop: learning, determinism, exact resume, validation-based selection, bad checkpoints, objectives."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

from advtransfer import registry
from advtransfer.io import load_tensors, save_tensors
from advtransfer.models import build_model
from advtransfer.train import checkpoint_path, cross_entropy, evaluate, train_classifier

HP = dict(batch_size=16, lr=0.05, momentum=0.9, weight_decay=5e-4, seed=7, device="cpu", progress=False)


def _task(n=96, seed=0):
    """Two classes of noisy 8x8 images: bright top half vs bright bottom half."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.rand(n, 1, 8, 8, generator=g) * 0.4
    x[y == 0, :, :4] += 0.5
    x[y == 1, :, 4:] += 0.5
    return x.clamp(0, 1), y


def _model(seed=0, classes=2):
    torch.manual_seed(seed)
    return build_model("small_cnn", classes, 1, 8)


def _equal_states(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_learns_a_separable_task(capsys):
    x, y = _task()
    model = _model()
    res = train_classifier(model, x[:64], y[:64], x[64:], y[64:], epochs=4, **{**HP, "progress": True})
    losses = [h["train_loss"] for h in res.history]
    assert losses[-1] < losses[0] and all(math.isfinite(v) for v in losses)
    assert res.best_val_accuracy >= 0.9 and res.history[-1]["train_accuracy"] >= 0.9
    assert res.epochs_run == 4 and res.resumed_from_epoch is None and res.completed
    acc, ce = evaluate(model, x[64:], y[64:], 32, "cpu")  # the model holds best_state on return
    assert acc == res.best_val_accuracy and ce < math.log(2) and not model.training
    assert "train epoch 4/4" in capsys.readouterr().err  # the progress bar goes to stderr


def test_same_seed_same_weights_and_different_seed_differs():
    x, y = _task()
    runs = [train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], epochs=2, augment=True, **HP) for _ in range(2)]
    assert _equal_states(runs[0].final_state, runs[1].final_state)
    assert runs[0].history == runs[1].history
    other = train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], epochs=2, augment=True, **{**HP, "seed": 8})
    assert not torch.equal(other.final_state["head.weight"], runs[0].final_state["head.weight"])


def test_resume_matches_an_uninterrupted_run_exactly(tmp_path):
    x, y = _task()
    data = (x[:64], y[:64], x[64:], y[64:])
    straight = train_classifier(_model(), *data, epochs=4, augment=True, **HP)

    first = train_classifier(_model(), *data, epochs=4, augment=True, checkpoint_dir=tmp_path, stop_after=2, **HP)
    assert first.epochs_run == 2 and not first.completed and checkpoint_path(tmp_path).is_file()
    resumed_model = _model()  # a fresh process would rebuild the model from the same seed
    resumed = train_classifier(resumed_model, *data, epochs=4, augment=True, checkpoint_dir=tmp_path, **HP)
    assert resumed.resumed_from_epoch == 2 and resumed.epochs_run == 2 and resumed.completed
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert resumed.history == straight.history
    assert _equal_states(resumed.final_state, straight.final_state)
    assert _equal_states(resumed.best_state, straight.best_state)
    assert _equal_states(resumed_model.state_dict(), straight.best_state)
    assert resumed.best_epoch == straight.best_epoch

    again = train_classifier(_model(), *data, epochs=4, augment=True, checkpoint_dir=tmp_path, **HP)
    assert again.epochs_run == 0 and again.resumed_from_epoch == 4
    assert _equal_states(again.final_state, straight.final_state)


def test_checkpoint_of_another_run_is_not_resumed(tmp_path):
    x, y = _task()
    data = (x[:64], y[:64], x[64:], y[64:])
    train_classifier(_model(), *data, epochs=2, checkpoint_dir=tmp_path, **HP)
    with pytest.warns(UserWarning, match="changed: lr"):
        res = train_classifier(_model(), *data, epochs=2, checkpoint_dir=tmp_path, **{**HP, "lr": 0.02})
    assert res.resumed_from_epoch is None and res.epochs_run == 2


def test_best_checkpoint_is_selected_on_validation():
    x, y = _task()
    # The validation labels are the opposite of the training labels: the better the model fits the
    # training task, the worse its validation accuracy, so the last epoch is not the best one.
    res = train_classifier(_model(), x[:64], y[:64], x[64:], 1 - y[64:], epochs=4, **HP)
    val = [h["val_accuracy"] for h in res.history]
    assert res.best_epoch == 1 + max(range(len(val)), key=lambda i: (val[i], -res.history[i]["val_loss"], -i))
    assert res.best_val_accuracy == max(val) and res.best_epoch < 4
    assert not _equal_states(res.best_state, res.final_state)
    check = _model()
    check.load_state_dict(res.best_state)
    assert evaluate(check, x[64:], 1 - y[64:], 32, "cpu")[0] == res.best_val_accuracy


def test_model_holds_the_best_weights_on_return():
    x, y = _task()
    model = _model()
    res = train_classifier(model, x[:64], y[:64], x[64:], 1 - y[64:], epochs=4, **HP)
    assert res.best_epoch < 4 and not model.training
    assert _equal_states(model.state_dict(), res.best_state)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "metadata"])
def test_corrupt_checkpoint_raises_naming_the_file(tmp_path, damage):
    x, y = _task()
    data = (x[:64], y[:64], x[64:], y[64:])
    train_classifier(_model(), *data, epochs=2, checkpoint_dir=tmp_path, stop_after=1, **HP)
    path = checkpoint_path(tmp_path)
    blob = path.read_bytes()
    if damage == "metadata":  # readable tensors, but a header that is not a training checkpoint's
        save_tensors(path, load_tensors(path), metadata={"epoch": "three"})
    else:
        path.write_bytes(b"\x00not a checkpoint" if damage == "garbage" else blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=str(path)):
        train_classifier(_model(), *data, epochs=2, checkpoint_dir=tmp_path, **HP)


def test_bad_inputs_raise():
    x, y = _task()
    with pytest.raises(ValueError, match="validation split is empty"):
        train_classifier(_model(), x, y, x[:0], y[:0], epochs=1, **HP)
    with pytest.raises(ValueError, match="labels"):
        train_classifier(_model(), x, y.float(), x, y, epochs=1, **HP)


# ------------------------------------------------------------------------------------------ objectives


def _scaled_ce(model, x, y, scale=1.0):
    """A test objective: cross-entropy times ``scale`` (registered as "scaled" by the tests below)."""
    loss, logits = cross_entropy(model, x, y)
    return scale * loss, logits


@pytest.fixture
def scaled(monkeypatch):
    """Register ``_scaled_ce`` as the objective "scaled" (this module, under the name pytest imported it)."""
    monkeypatch.setitem(registry.OBJECTIVES, "scaled", f"{__name__}:_scaled_ce")
    return "scaled"


def test_ce_is_the_registered_default_objective():
    assert registry.load_object(registry.OBJECTIVES["ce"]) is cross_entropy
    x, y = _task()
    res = train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], epochs=1, **HP)
    assert res.objective == "ce" and res.objective_params == {}
    explicit = train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], epochs=1, objective="ce", **HP)
    assert _equal_states(res.final_state, explicit.final_state) and res.history == explicit.history


def test_cross_entropy_objective_is_the_mean_cross_entropy_of_the_logits():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [1.0, 1.0, 1.0]])
    y = torch.tensor([0, 2, 1])
    loss, out = cross_entropy(nn.Identity(), logits, y)
    assert out is logits and loss.ndim == 0 and loss.dtype == torch.float32
    assert torch.equal(loss, F.cross_entropy(logits, y))
    by_hand = [math.log(sum(math.exp(v) for v in row)) - row[c] for row, c in zip(logits.tolist(), y.tolist())]
    assert loss.item() == pytest.approx(sum(by_hand) / 3, rel=1e-6)
    half = cross_entropy(nn.Identity(), logits.bfloat16(), y)[0]  # low-precision logits: loss in float32
    assert half.dtype == torch.float32 and torch.equal(half, F.cross_entropy(logits.bfloat16().float(), y))


def test_unknown_objective_raises_naming_the_choices(scaled):
    x, y = _task()
    with pytest.raises(ValueError, match=r"unknown training objective 'nope'.*'ce'.*'scaled'"):
        train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], epochs=1, objective="nope", **HP)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"sigma": 0.1}, "does not accept"),
        ({"scale": torch.tensor(1.0)}, "plain JSON"),
        ({"scale": math.nan}, "plain JSON"),
    ],
)
def test_bad_objective_params_raise_before_training(scaled, params, match):
    x, y = _task()
    objective = "ce" if "sigma" in params else scaled
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=match):
        train_classifier(
            model, x[:64], y[:64], x[64:], y[64:], epochs=1, objective=objective, objective_params=params, **HP
        )
    assert _equal_states(model.state_dict(), before)


def test_custom_objective_is_used(scaled):
    x, y = _task()
    data = (x[:64], y[:64], x[64:], y[64:])
    hp = {**HP, "weight_decay": 0.0}
    # A loss scaled by 0 has zero gradients: without weight decay no parameter moves (batch-norm running
    # statistics do: the forward passes still run in train mode), while plain cross-entropy moves them all.
    model = _model()
    initial = {k: v.clone() for k, v in model.named_parameters()}
    zero = train_classifier(model, *data, epochs=2, objective=scaled, objective_params={"scale": 0.0}, **hp)
    assert zero.objective == "scaled" and zero.objective_params == {"scale": 0.0}
    assert all(h["train_loss"] == 0.0 for h in zero.history)
    assert all(torch.equal(zero.final_state[k], v) for k, v in initial.items())
    ce = train_classifier(_model(), *data, epochs=2, **hp)
    assert all(not torch.equal(ce.final_state[k], v) for k, v in initial.items())
    # Twice the loss at half the learning rate takes exactly the steps of cross-entropy (scaling by a power
    # of two is exact in floating point), and reports exactly twice its training loss.
    double = train_classifier(
        _model(), *data, epochs=2, objective=scaled, objective_params={"scale": 2.0}, **{**hp, "lr": hp["lr"] / 2}
    )
    assert _equal_states(double.final_state, ce.final_state)
    assert [h["train_loss"] for h in double.history] == [2 * h["train_loss"] for h in ce.history]
    assert [h["val_accuracy"] for h in double.history] == [h["val_accuracy"] for h in ce.history]


def test_objective_and_params_are_in_the_resume_fingerprint(tmp_path, scaled):
    x, y = _task()
    data = (x[:64], y[:64], x[64:], y[64:])

    def run(**kw):
        return train_classifier(_model(), *data, epochs=2, checkpoint_dir=tmp_path, **kw, **HP)

    def stored_fingerprint():
        with safe_open(str(checkpoint_path(tmp_path)), framework="pt") as f:
            return json.loads(f.metadata()["json"])["fingerprint"]

    run()
    assert stored_fingerprint()["objective"] == "ce" and stored_fingerprint()["objective_params"] == {}
    with pytest.warns(UserWarning, match=r"changed: objective\)"):
        res = run(objective=scaled)
    assert res.resumed_from_epoch is None and res.epochs_run == 2
    with pytest.warns(UserWarning, match=r"changed: objective_params\)"):
        res = run(objective=scaled, objective_params={"scale": 0.5})
    assert res.resumed_from_epoch is None and res.epochs_run == 2
    assert stored_fingerprint()["objective"] == "scaled" and stored_fingerprint()["objective_params"] == {"scale": 0.5}
    again = run(objective=scaled, objective_params={"scale": 0.5})  # same objective and parameters: resumed
    assert again.resumed_from_epoch == 2 and again.epochs_run == 0
    assert again.objective == "scaled" and again.objective_params == {"scale": 0.5}
    assert _equal_states(again.final_state, res.final_state)


# ------------------------------------------------------------------------------------------ optimizers
def test_adadelta_trains_a_separable_task():
    """optimizer="adadelta" (the paper's CelebA attribute models: Adadelta, lr 1.0) learns; momentum is ignored."""
    x, y = _task()
    hp = {**HP, "lr": 1.0}
    res = train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], epochs=4, optimizer="adadelta", **hp)
    losses = [h["train_loss"] for h in res.history]
    assert losses[-1] < losses[0] and all(math.isfinite(v) for v in losses)
    assert res.best_val_accuracy >= 0.9 and res.optimizer == "adadelta"
    hp0 = {**hp, "momentum": 0.0}
    other = train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], epochs=4, optimizer="adadelta", **hp0)
    assert _equal_states(res.final_state, other.final_state)
    sgd = train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], epochs=4, **hp)
    assert not torch.equal(sgd.final_state["head.weight"], res.final_state["head.weight"])


def test_unknown_optimizer_raises_naming_the_choices():
    x, y = _task()
    with pytest.raises(ValueError, match=r"unknown optimizer 'adam'.*'sgd', 'adadelta'"):
        train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], epochs=1, optimizer="adam", **HP)


def test_default_optimizer_is_sgd_with_unchanged_weights():
    x, y = _task()
    data = (x[:64], y[:64], x[64:], y[64:])
    default = train_classifier(_model(), *data, epochs=2, augment=True, **HP)
    explicit = train_classifier(_model(), *data, epochs=2, augment=True, optimizer="sgd", **HP)
    assert default.optimizer == explicit.optimizer == "sgd"
    assert _equal_states(default.final_state, explicit.final_state) and default.history == explicit.history


def test_adadelta_resumes_exactly_and_the_optimizer_is_in_the_fingerprint(tmp_path):
    x, y = _task()
    data = (x[:64], y[:64], x[64:], y[64:])
    hp = {**HP, "lr": 1.0}

    def stored_fingerprint():
        with safe_open(str(checkpoint_path(tmp_path)), framework="pt") as f:
            return json.loads(f.metadata()["json"])["fingerprint"]

    train_classifier(_model(), *data, epochs=3, checkpoint_dir=tmp_path, **hp)
    assert "optimizer" not in stored_fingerprint()  # SGD checkpoints keep the fingerprint they always had
    with pytest.warns(UserWarning, match=r"changed: optimizer\)"):
        first = train_classifier(
            _model(), *data, epochs=3, checkpoint_dir=tmp_path, stop_after=1, optimizer="adadelta", **hp
        )
    assert first.resumed_from_epoch is None and stored_fingerprint()["optimizer"] == "adadelta"
    assert any(k.endswith(".square_avg") for k in load_tensors(checkpoint_path(tmp_path)))
    resumed = train_classifier(_model(), *data, epochs=3, checkpoint_dir=tmp_path, optimizer="adadelta", **hp)
    straight = train_classifier(_model(), *data, epochs=3, optimizer="adadelta", **hp)
    assert resumed.resumed_from_epoch == 1 and resumed.history == straight.history
    assert _equal_states(resumed.final_state, straight.final_state)
    with pytest.warns(UserWarning, match=r"changed: optimizer\)"):
        back = train_classifier(_model(), *data, epochs=3, checkpoint_dir=tmp_path, **hp)
    assert back.resumed_from_epoch is None
