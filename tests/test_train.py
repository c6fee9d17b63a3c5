"""Training loop: learning, determinism, exact resume, validation-based selection, bad checkpoints, objectives."""

import json
import math
from dataclasses import FrozenInstanceError, replace

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

from advtransfer import registry
from advtransfer.io import load_tensors, save_tensors
from advtransfer.models import build_model
from advtransfer.train import (
    TrainContext,
    TrainLoop,
    TrainSettings,
    _digest,
    checkpoint_path,
    cosine_lr,
    cross_entropy,
    evaluate,
    keep_best,
    make_optimizer,
    run_loop,
    train_classifier,
)

SETTINGS = TrainSettings(epochs=4, batch_size=16, lr=0.05, momentum=0.9, weight_decay=5e-4)
CONTEXT = TrainContext(seed=7, device="cpu", progress=False)
AUGMENT2 = replace(SETTINGS, epochs=2, augment=True)


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
    res = train_classifier(model, x[:64], y[:64], x[64:], y[64:], SETTINGS, replace(CONTEXT, progress=True))
    losses = [h["train_loss"] for h in res.history]
    assert losses[-1] < losses[0] and all(math.isfinite(v) for v in losses)
    assert res.best_val_accuracy >= 0.9 and res.history[-1]["train_accuracy"] >= 0.9
    assert res.epochs_run == 4 and res.resumed_from_epoch is None and res.completed
    acc, ce = evaluate(model, x[64:], y[64:], 32, "cpu")  # the model holds best_state on return
    assert acc == res.best_val_accuracy and ce < math.log(2) and not model.training
    assert "train epoch 4/4" in capsys.readouterr().err  # the progress bar goes to stderr


def test_same_seed_same_weights_and_different_seed_differs():
    x, y = _task()
    runs = [train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], AUGMENT2, CONTEXT) for _ in range(2)]
    assert _equal_states(runs[0].final_state, runs[1].final_state)
    assert runs[0].history == runs[1].history
    other = train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], AUGMENT2, replace(CONTEXT, seed=8))
    assert not torch.equal(other.final_state["head.weight"], runs[0].final_state["head.weight"])


def test_resume_matches_an_uninterrupted_run_exactly(tmp_path):
    x, y = _task()
    data = (x[:64], y[:64], x[64:], y[64:])
    settings, checkpointed = replace(SETTINGS, augment=True), replace(CONTEXT, checkpoint_dir=tmp_path)
    straight = train_classifier(_model(), *data, settings, CONTEXT)

    first = train_classifier(_model(), *data, settings, replace(checkpointed, stop_after=2))
    assert first.epochs_run == 2 and not first.completed and checkpoint_path(tmp_path).is_file()
    resumed_model = _model()  # a fresh process would rebuild the model from the same seed
    resumed = train_classifier(resumed_model, *data, settings, checkpointed)
    assert resumed.resumed_from_epoch == 2 and resumed.epochs_run == 2 and resumed.completed
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert resumed.history == straight.history
    assert _equal_states(resumed.final_state, straight.final_state)
    assert _equal_states(resumed.best_state, straight.best_state)
    assert _equal_states(resumed_model.state_dict(), straight.best_state)
    assert resumed.best_epoch == straight.best_epoch

    again = train_classifier(_model(), *data, settings, checkpointed)
    assert again.epochs_run == 0 and again.resumed_from_epoch == 4
    assert _equal_states(again.final_state, straight.final_state)


def test_checkpoint_of_another_run_is_not_resumed(tmp_path):
    x, y = _task()
    data = (x[:64], y[:64], x[64:], y[64:])
    settings, checkpointed = replace(SETTINGS, epochs=2), replace(CONTEXT, checkpoint_dir=tmp_path)
    train_classifier(_model(), *data, settings, checkpointed)
    with pytest.warns(UserWarning, match="changed: lr"):
        res = train_classifier(_model(), *data, replace(settings, lr=0.02), checkpointed)
    assert res.resumed_from_epoch is None and res.epochs_run == 2


def test_best_checkpoint_is_selected_on_validation():
    x, y = _task()
    # The validation labels are the opposite of the training labels: the better the model fits the
    # training task, the worse its validation accuracy, so the last epoch is not the best one.
    res = train_classifier(_model(), x[:64], y[:64], x[64:], 1 - y[64:], SETTINGS, CONTEXT)
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
    res = train_classifier(model, x[:64], y[:64], x[64:], 1 - y[64:], SETTINGS, CONTEXT)
    assert res.best_epoch < 4 and not model.training
    assert _equal_states(model.state_dict(), res.best_state)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "metadata"])
def test_corrupt_checkpoint_raises_naming_the_file(tmp_path, damage):
    x, y = _task()
    data = (x[:64], y[:64], x[64:], y[64:])
    settings, checkpointed = replace(SETTINGS, epochs=2), replace(CONTEXT, checkpoint_dir=tmp_path)
    train_classifier(_model(), *data, settings, replace(checkpointed, stop_after=1))
    path = checkpoint_path(tmp_path)
    blob = path.read_bytes()
    if damage == "metadata":  # readable tensors, but a header that is not a training checkpoint's
        save_tensors(path, load_tensors(path), metadata={"epoch": "three"})
    else:
        path.write_bytes(b"\x00not a checkpoint" if damage == "garbage" else blob[: len(blob) // 2])
    with pytest.raises(ValueError, match=str(path)):
        train_classifier(_model(), *data, settings, checkpointed)


def test_bad_inputs_raise():
    x, y = _task()
    with pytest.raises(ValueError, match="validation split is empty"):
        train_classifier(_model(), x, y, x[:0], y[:0], SETTINGS, CONTEXT)
    with pytest.raises(ValueError, match="labels"):
        train_classifier(_model(), x, y.float(), x, y, SETTINGS, CONTEXT)


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
    one = replace(SETTINGS, epochs=1)
    res = train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], one, CONTEXT)
    assert res.objective == "ce" and res.objective_params == {}
    explicit = train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], one, replace(CONTEXT, objective="ce"))
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
        train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], SETTINGS, replace(CONTEXT, objective="nope"))


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
        context = replace(CONTEXT, objective=objective, objective_params=params)
        train_classifier(model, x[:64], y[:64], x[64:], y[64:], replace(SETTINGS, epochs=1), context)
    assert _equal_states(model.state_dict(), before)


def test_custom_objective_is_used(scaled):
    x, y = _task()
    data = (x[:64], y[:64], x[64:], y[64:])
    settings = replace(SETTINGS, epochs=2, weight_decay=0.0)
    # A loss scaled by 0 has zero gradients: without weight decay no parameter moves (batch-norm running
    # statistics do: the forward passes still run in train mode), while plain cross-entropy moves them all.
    model = _model()
    initial = {k: v.clone() for k, v in model.named_parameters()}
    zero = train_classifier(model, *data, settings, replace(CONTEXT, objective=scaled, objective_params={"scale": 0.0}))
    assert zero.objective == "scaled" and zero.objective_params == {"scale": 0.0}
    assert all(h["train_loss"] == 0.0 for h in zero.history)
    assert all(torch.equal(zero.final_state[k], v) for k, v in initial.items())
    ce = train_classifier(_model(), *data, settings, CONTEXT)
    assert all(not torch.equal(ce.final_state[k], v) for k, v in initial.items())
    # Twice the loss at half the learning rate takes exactly the steps of cross-entropy (scaling by a power
    # of two is exact in floating point), and reports exactly twice its training loss.
    double = train_classifier(
        _model(), *data, replace(settings, lr=settings.lr / 2),
        replace(CONTEXT, objective=scaled, objective_params={"scale": 2.0}),
    )  # fmt: skip
    assert _equal_states(double.final_state, ce.final_state)
    assert [h["train_loss"] for h in double.history] == [2 * h["train_loss"] for h in ce.history]
    assert [h["val_accuracy"] for h in double.history] == [h["val_accuracy"] for h in ce.history]


def test_objective_and_params_are_in_the_resume_fingerprint(tmp_path, scaled):
    x, y = _task()
    data = (x[:64], y[:64], x[64:], y[64:])

    def run(**kw):
        return train_classifier(
            _model(), *data, replace(SETTINGS, epochs=2), replace(CONTEXT, checkpoint_dir=tmp_path, **kw)
        )

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
    adadelta = replace(SETTINGS, lr=1.0, optimizer="adadelta")
    res = train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], adadelta, CONTEXT)
    losses = [h["train_loss"] for h in res.history]
    assert losses[-1] < losses[0] and all(math.isfinite(v) for v in losses)
    assert res.best_val_accuracy >= 0.9 and res.optimizer == "adadelta"
    other = train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], replace(adadelta, momentum=0.0), CONTEXT)
    assert _equal_states(res.final_state, other.final_state)
    sgd = train_classifier(_model(), x[:64], y[:64], x[64:], y[64:], replace(SETTINGS, lr=1.0), CONTEXT)
    assert not torch.equal(sgd.final_state["head.weight"], res.final_state["head.weight"])


def test_unknown_optimizer_raises_naming_the_choices():
    x, y = _task()
    with pytest.raises(ValueError, match=r"unknown optimizer 'adam'.*'sgd', 'adadelta'"):
        replace(SETTINGS, optimizer="adam")


def test_default_optimizer_is_sgd_with_unchanged_weights():
    x, y = _task()
    data = (x[:64], y[:64], x[64:], y[64:])
    default = train_classifier(_model(), *data, AUGMENT2, CONTEXT)
    explicit = train_classifier(_model(), *data, replace(AUGMENT2, optimizer="sgd"), CONTEXT)
    assert default.optimizer == explicit.optimizer == "sgd"
    assert _equal_states(default.final_state, explicit.final_state) and default.history == explicit.history


def test_adadelta_resumes_exactly_and_the_optimizer_is_in_the_fingerprint(tmp_path):
    x, y = _task()
    data = (x[:64], y[:64], x[64:], y[64:])
    sgd, adadelta = replace(SETTINGS, epochs=3, lr=1.0), replace(SETTINGS, epochs=3, lr=1.0, optimizer="adadelta")
    checkpointed = replace(CONTEXT, checkpoint_dir=tmp_path)

    def stored_fingerprint():
        with safe_open(str(checkpoint_path(tmp_path)), framework="pt") as f:
            return json.loads(f.metadata()["json"])["fingerprint"]

    train_classifier(_model(), *data, sgd, checkpointed)
    assert "optimizer" not in stored_fingerprint()  # SGD checkpoints keep the fingerprint they always had
    with pytest.warns(UserWarning, match=r"changed: optimizer\)"):
        first = train_classifier(_model(), *data, adadelta, replace(checkpointed, stop_after=1))
    assert first.resumed_from_epoch is None and stored_fingerprint()["optimizer"] == "adadelta"
    assert any(k.endswith(".square_avg") for k in load_tensors(checkpoint_path(tmp_path)))
    resumed = train_classifier(_model(), *data, adadelta, checkpointed)
    straight = train_classifier(_model(), *data, adadelta, CONTEXT)
    assert resumed.resumed_from_epoch == 1 and resumed.history == straight.history
    assert _equal_states(resumed.final_state, straight.final_state)
    with pytest.warns(UserWarning, match=r"changed: optimizer\)"):
        back = train_classifier(_model(), *data, sgd, checkpointed)
    assert back.resumed_from_epoch is None


# -------------------------------------------------------------------------------------------- settings


def test_settings_from_config_fill_the_defaults_and_name_bad_keys():
    block = {"epochs": 3, "batch_size": 16, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4}
    assert TrainSettings.from_config(block) == TrainSettings(**block, augment=False, optimizer="sgd", replays=1)
    full = {**block, "augment": True, "optimizer": "adadelta", "replays": 2}
    assert TrainSettings.from_config(full) == TrainSettings(**full)
    with pytest.raises(ValueError, match=r"unknown keys \['seed'\]"):
        TrainSettings.from_config({**block, "seed": 0})
    with pytest.raises(ValueError, match=r"missing keys \['momentum'\]"):
        TrainSettings.from_config({k: v for k, v in block.items() if k != "momentum"})
    with pytest.raises(ValueError, match="replays must be an integer"):
        TrainSettings.from_config({**block, "replays": 0})
    with pytest.raises(ValueError, match=r"epochs \(0\)"):
        replace(SETTINGS, epochs=0)
    with pytest.raises(FrozenInstanceError):
        SETTINGS.lr = 1.0


def test_checkpoint_fingerprint_keeps_the_keys_and_values_of_existing_checkpoints(tmp_path):
    """The fingerprint decides whether a checkpoint is resumed: its keys and values must not drift."""
    x, y = _task()
    model = _model()
    initial = _digest(model.state_dict().items())
    data = [("train_x", x[:64]), ("train_y", y[:64]), ("val_x", x[64:]), ("val_y", y[64:])]
    context = replace(CONTEXT, checkpoint_dir=tmp_path)
    train_classifier(model, x[:64], y[:64], x[64:], y[64:], replace(SETTINGS, epochs=1), context)
    with safe_open(str(checkpoint_path(tmp_path)), framework="pt") as f:
        stored = json.loads(f.metadata()["json"])["fingerprint"]
    assert stored == {
        "format": "advtransfer-train-checkpoint/1", "epochs": 1, "batch_size": 16, "lr": 0.05, "momentum": 0.9,
        "weight_decay": 5e-4, "seed": 7, "augment": False, "objective": "ce", "objective_params": {},
        "initial_weights": initial, "data": _digest(data),
    }  # fmt: skip


# ------------------------------------------------------------------------------------- the shared loop


def test_run_loop_trains_with_the_callers_loss_validation_and_selection():
    """run_loop (the loop of train_classifier and of the task networks) with a caller's own per-batch loss,
    validation entries and selection rule; keep_best loads the selected epoch's weights."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g)
    t = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    settings = TrainSettings(epochs=3, batch_size=8, lr=0.1, momentum=0.9, weight_decay=0.0)

    @torch.no_grad()
    def validate():
        return {"val_loss": F.mse_loss(model(x), t).item()}

    seen = []
    loop = TrainLoop(
        model=model, optimizer=make_optimizer(model, settings), generator=torch.Generator().manual_seed(1),
        settings=settings, n=len(x), device=torch.device("cpu"), batch=lambda idx: (x[idx], t[idx]),
        loss=lambda xb, tb: (F.mse_loss(model(xb), tb), None), validate=validate,
        better=lambda record, best: best is None or record["epoch"] == 2,
        on_epoch_end=lambda state: seen.append(state.best_epoch),
    )  # fmt: skip
    state = run_loop(loop)
    assert [list(h) for h in state.history] == [["epoch", "lr", "train_loss", "val_loss"]] * 3
    assert state.best_epoch == 2 and seen == [1, 2, 2]
    assert state.history[-1]["lr"] == cosine_lr(0.1, 14, 15)  # 5 steps per epoch, the last of 15
    assert state.history[-1]["val_loss"] < state.history[0]["val_loss"]
    final, best = keep_best(model, state)
    assert best is state.best_state and torch.equal(model.weight, best["weight"]) and not model.training
    assert not torch.equal(final["weight"], best["weight"])
