"""advtransfer.zoo: zoo entries and the one loader of every family's zoo, and the adversarial transferability matrix
of a user-supplied model zoo (no labels)."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from advtransfer.affinity import transfer_matrix
from advtransfer.registry import OUTPUT_KINDS
from advtransfer.zoo import (
    EXAMPLE_ZOO,
    FAMILY_KEYS,
    ZOO_DEFINITION,
    ZooEntry,
    example_classifier,
    example_regressor,
    example_segmenter,
    load_zoo_model,
    output_loss,
    own_target,
    zoo_entries,
    zoo_entry,
    zoo_gains,
)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def images(n: int = 6, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def zoo() -> tuple[dict, dict]:
    """One network per output kind (dense_binary and dense_regression reuse the segmenter's architecture)."""
    models = {
        "classifier": example_classifier(),
        "regressor": example_regressor(),
        "segmenter": example_segmenter(),
        "edges": example_segmenter(num_classes=1, seed=3),
        "denoiser": example_segmenter(num_classes=3, seed=4),
    }
    outputs = {"classifier": "classes", "regressor": "regression", "segmenter": "dense_classes",
               "edges": "dense_binary", "denoiser": "dense_regression"}  # fmt: skip
    return models, outputs


# ------------------------------------------------------------------------------------------- entries


def test_entries_validate():
    entries = zoo_entries([*EXAMPLE_ZOO, {**EXAMPLE_ZOO[0], "name": "c2", "weights": "w.safetensors"}], "tasks")
    assert [e.name for e in entries] == ["classifier", "regressor", "segmenter", "c2"]
    assert entries[0] == ZooEntry("classifier", "advtransfer.zoo:example_classifier", kind="semantic", output="classes")
    assert entries[3].weights == "w.safetensors"
    with pytest.raises(dataclasses.FrozenInstanceError):  # frozen
        entries[0].name = "x"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"output": "segmentation"}, ["entry 1", "'output'", "segmentation", *OUTPUT_KINDS]),
        ({"model": "no_colon"}, ["entry 1", "'model'", "package.module:function"]),
        ({"colour": "red"}, ["entry 1", "'colour'"]),
        ({"kind": ""}, ["entry 1", "'kind'"]),
        ({"weights": 3}, ["entry 1", "'weights'"]),
        ({"name": "classifier"}, ["entry 1", "'name'", "entry 0"]),
    ],
)
def test_entry_errors_name_index_and_key(change, words):
    with pytest.raises(ValueError) as err:
        zoo_entries([EXAMPLE_ZOO[0], {**EXAMPLE_ZOO[1], **change}], "tasks")
    for word in words:
        assert word in str(err.value)


def test_entry_missing_key_and_bad_lists():
    entry = {k: v for k, v in EXAMPLE_ZOO[2].items() if k != "output"}
    with pytest.raises(ValueError, match=r"entry 0 \(.segmenter.\): missing key 'output'"):
        zoo_entries([entry], "tasks")
    for bad in ([], {"name": "a"}, "zoo", ["not a dict"]):
        with pytest.raises(ValueError, match="zoo"):
            zoo_entries(bad, "tasks")
    with pytest.raises(ValueError, match="unknown zoo family 'shapes'"):
        zoo_entries(EXAMPLE_ZOO, "shapes")


# ------------------------------------------------------------------------------------------- loading


def test_load_without_weights_is_the_seeded_factory():
    state = torch.random.get_rng_state()
    model = load_zoo_model(zoo_entries(EXAMPLE_ZOO, "tasks")[0])
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is untouched
    assert not model.training
    x = images(2)
    with torch.no_grad():
        assert torch.equal(model(x), example_classifier()(x))
        assert model(x).shape == (2, 5)
        assert example_regressor()(x).shape == (2, 2)
        assert example_segmenter()(x).shape == (2, 3, 32, 32)


def save_weights(model: torch.nn.Module, path) -> None:
    """``model``'s state dict in the format its suffix names: safetensors, or a tensors-only torch file."""
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if str(path).endswith(".safetensors"):
        save_file(state, str(path))
    else:
        torch.save(state, path)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_load_weights_round_trip(tmp_path, suffix):
    trained = example_segmenter()
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    path = tmp_path / f"segmenter{suffix}"
    save_weights(trained, path)
    entry = zoo_entries([{**EXAMPLE_ZOO[2], "weights": str(path)}], "tasks")[0]
    model = load_zoo_model(entry)
    assert not model.training
    x = images(3)
    with torch.no_grad():
        assert torch.equal(model(x), trained.eval()(x))
        assert not torch.equal(model(x), example_segmenter()(x))


# ------------------------------------------------------------------------------- one zoo, one loader

SELECTION_ENTRY = {"name": "mlp", "model": "tests.configs.zoo_models:tiny_mlp", "num_classes": 5, "seed": 1}


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_the_zoo_is_one_sentence_in_both_families():
    import yaml

    from advtransfer import selection, zoo
    from advtransfer.config import ROOT
    from advtransfer.families.model_selection import jobs as selection_jobs
    from advtransfer.families.tasks import jobs as task_jobs

    for module in (zoo, task_jobs, selection_jobs, selection):
        assert ZOO_DEFINITION in _normalised(module.__doc__), module.__name__
    shared = yaml.safe_load((ROOT / "schemas/config.schema.yaml").read_text())["$defs"]["zoo_entry"]
    assert shared["description"].startswith(ZOO_DEFINITION)
    for family in FAMILY_KEYS:
        part = yaml.safe_load((ROOT / f"schemas/families/{family}.schema.yaml").read_text())
        zoo_schema = part["block"]["properties"]["zoo"]
        assert zoo_schema["description"].startswith(ZOO_DEFINITION), family
        items = zoo_schema["items"]  # the shared part, extended by the family's keys (FAMILY_KEYS)
        assert items["$ref"] == "#/$defs/zoo_entry" and items["unevaluatedProperties"] is False
        required, optional = FAMILY_KEYS[family]
        assert set(items["required"]) == set(required) and set(items["properties"]) == {*required, *optional}


def test_one_loader_builds_a_tasks_and_a_model_selection_entry():
    from advtransfer.config import ROOT
    from advtransfer.models import build_model

    task = zoo_entries(EXAMPLE_ZOO, "tasks")[0]
    candidate = zoo_entries([SELECTION_ENTRY], "model_selection")[0]
    assert (candidate.num_classes, candidate.seed, candidate.features, candidate.kind) == (5, 1, None, None)
    state = torch.random.get_rng_state()
    network = load_zoo_model(task)  # a function called with no arguments: the whole network
    classifier = load_zoo_model(candidate, in_channels=1, image_size=8)  # through the model registry
    assert torch.equal(torch.random.get_rng_state(), state) and not network.training and not classifier.training
    with torch.no_grad():
        assert torch.equal(network(images(2)), example_classifier()(images(2)))
        x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
        features = classifier.features(x)  # the feature protocol of build_model
        assert features.shape == (3, 24) == (3, classifier.feature_dim)
        assert torch.equal(classifier(x), classifier.head(features)) and classifier(x).shape == (3, 5)
    torch.manual_seed(1)  # what rule selection_zoo did before the one loader: the same initial weights
    before = build_model(SELECTION_ENTRY["model"], 5, 1, 8)
    assert all(torch.equal(v, before.state_dict()[k]) for k, v in classifier.state_dict().items())
    # a tasks entry may name a registry classifier too (num_classes, output: classes), built the same way
    cnn = {"name": "cnn", "model": "small_cnn", "num_classes": 4, "kind": "semantic", "output": "classes"}
    tasks_cnn = load_zoo_model(zoo_entries([cnn], "tasks")[0], in_channels=3, image_size=16)
    as_candidate = zoo_entry({k: cnn[k] for k in ("name", "model", "num_classes")}, "model_selection")
    selection_cnn = load_zoo_model(as_candidate, in_channels=3, image_size=16)
    with torch.no_grad():
        assert torch.equal(tasks_cnn(images(2, 16)), selection_cnn(images(2, 16)))
    # both families' scripts load through it (and nothing else builds a zoo model)
    for script in ("scripts/_tasks.py", "scripts/selection_zoo.py"):
        text = (ROOT / script).read_text()
        assert "load_zoo_model(" in text and "build_model" not in text, script


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_a_model_selection_entry_reads_its_weights_safely(tmp_path, suffix):
    from tests.configs.zoo_models import tiny_mlp

    trained = tiny_mlp(num_classes=5, in_channels=1, image_size=8)
    path = tmp_path / f"mlp{suffix}"
    save_weights(trained, path)
    entry = zoo_entries([{**SELECTION_ENTRY, "weights": str(path)}], "model_selection")[0]
    model = load_zoo_model(entry, in_channels=1, image_size=8)
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), trained(x))


class Pickled:
    """An object a weights file should never hold: torch.load(weights_only=True) refuses to build it."""


def test_a_pickled_object_is_never_unpickled(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "object": Pickled()}, path)
    entry = zoo_entries([{**SELECTION_ENTRY, "weights": str(path)}], "model_selection")[0]
    with pytest.raises(ValueError, match=r"zoo entry 'mlp'.*evil.pt.*weights_only=True"):
        load_zoo_model(entry, in_channels=1, image_size=8)


def _entry(family: str, **change):
    base = dict(EXAMPLE_ZOO[0]) if family == "tasks" else dict(SELECTION_ENTRY)
    return {**base, **change}


@pytest.mark.parametrize("family", list(FAMILY_KEYS))
def test_bad_entries_fail_naming_the_entry(tmp_path, family):
    def load(**change):
        return load_zoo_model(zoo_entries([_entry(family, **change)], family)[0], in_channels=1, image_size=8)

    name = _entry(family)["name"]
    with pytest.raises(ValueError, match=rf"zoo entry 0 \('{name}'\): unknown key 'colour'; a {family} zoo entry's"):
        load(colour="red")
    other = "kind" if family == "model_selection" else "features"
    with pytest.raises(ValueError, match=rf"unknown key '{other}' \('{other}' is a key of the \w+ zoo's entries\)"):
        load(**{other: "x"})
    with pytest.raises(FileNotFoundError, match=rf"zoo entry '{name}'.*missing.pt: weights file not found"):
        load(weights=str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match=r"zoo entry 'odd' \(model 'builtins:dict'\).*dict, not an nn.Module"):
        load(name="odd", model="builtins:dict")
    with pytest.raises(ValueError, match=r"zoo entry 'gone'.*no attribute 'no_such_function'"):
        load(name="gone", model="advtransfer.zoo:no_such_function")
    wrong = tmp_path / "wrong.safetensors"
    save_file({"unrelated.weight": torch.zeros(2, 2)}, str(wrong))
    with pytest.raises(ValueError, match=rf"zoo entry '{name}'.*wrong.safetensors: the weights do not match"):
        load(weights=str(wrong))


def test_entries_whose_model_does_not_fit_num_classes_say_what_to_change():
    # a function that needs num_classes= etc. in an entry without num_classes (called with no arguments)
    entry = zoo_entries([{**EXAMPLE_ZOO[0], "model": SELECTION_ENTRY["model"]}], "tasks")[0]
    with pytest.raises(ValueError, match=r"zoo entry 'classifier'.*cannot be called with no arguments.*'num_classes'"):
        load_zoo_model(entry)
    with pytest.raises(ValueError, match=r"entry 0 \('classifier'\): key 'model' is 'torchvision:resnet18'.*num_cl"):
        zoo_entries([{**EXAMPLE_ZOO[0], "model": "torchvision:resnet18"}], "tasks")
    with pytest.raises(ValueError, match=r"'num_classes' builds a classifier.*not 'regression'.*output: classes"):
        zoo_entries([{**EXAMPLE_ZOO[1], "model": "small_cnn", "num_classes": 3}], "tasks")
    with pytest.raises(ValueError, match=r"entry 0 \('mlp'\): key 'model': unknown model 'resnet'"):
        zoo_entries([{**SELECTION_ENTRY, "model": "resnet"}], "model_selection")
    with pytest.raises(ValueError, match=r"entry 0 \('mlp'\): missing key 'num_classes'"):
        zoo_entries([{k: v for k, v in SELECTION_ENTRY.items() if k != "num_classes"}], "model_selection")
    classifier = zoo_entries([SELECTION_ENTRY], "model_selection")[0]
    with pytest.raises(ValueError, match=r"zoo entry 'mlp'.*give image_size"):
        load_zoo_model(classifier)


@pytest.mark.parametrize(("family", "block"), [("tasks", "taskonomy"), ("model_selection", "digits_selection")])
def test_the_schema_refuses_an_unknown_key_naming_it(family, block):
    from advtransfer import config as configuration

    config = configuration.load([configuration.ROOT / "config.yaml"])
    entries = config["tasks"]["taskonomy"]["zoo"] if family == "tasks" else [dict(SELECTION_ENTRY)]
    config[family][block]["zoo"] = [*entries[:-1], {**entries[-1], "colour": "red"}]
    where = f"{family}.{block}.zoo.{len(entries) - 1}"
    with pytest.raises(ValueError, match=rf"config key {re.escape(where)}: .*'colour' was unexpected"):
        configuration.validate(config)
    config[family][block]["zoo"] = entries  # the entries themselves pass, with the shared keys' defaults filled
    filled = configuration.validate(config)[family][block]["zoo"]
    assert all("weights" in e for e in filled)
    assert zoo_entries(filled, family)  # the schema's entries are the loader's


# -------------------------------------------------------------------------------------------- losses


def _outputs(kind: str, b: int = 4, k: int = 3, size: int = 5):
    g = torch.Generator().manual_seed(1)
    if kind in ("classes", "regression"):
        out = torch.randn(b, k, generator=g)
    else:
        out = torch.randn(b, 1 if kind == "dense_binary" else k, size, size, generator=g)
    if kind == "classes":
        target = torch.randint(k, (b,), generator=g)
    elif kind == "dense_classes":
        target = torch.randint(k, (b, size, size), generator=g)
    elif kind == "dense_binary":
        target = (torch.rand(b, 1, size, size, generator=g) > 0.5).float()
    else:
        target = torch.randn(out.shape, generator=g)
    return out, target


def _reference_loss(kind: str, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """One image's loss, written out."""
    if kind in ("classes", "dense_classes"):
        return -(out.log_softmax(dim=1).gather(1, target.long().unsqueeze(1))).mean()
    if kind == "dense_binary":
        p = out.sigmoid()
        return -(target * p.log() + (1 - target) * (1 - p).log()).mean()
    return (out - target).pow(2).mean()


@pytest.mark.parametrize("kind", OUTPUT_KINDS)
def test_output_loss_per_image(kind):
    out, target = _outputs(kind)
    losses = output_loss(kind, out, target)
    assert losses.shape == (4,) and losses.dtype == torch.float32
    assert torch.allclose(losses.mean(), output_loss(kind, out, target, reduction="mean"), atol=1e-6)
    reference = torch.stack([_reference_loss(kind, out[n : n + 1], target[n : n + 1]) for n in range(4)])
    assert torch.allclose(losses, reference, atol=1e-5)


@pytest.mark.parametrize("kind", OUTPUT_KINDS)
def test_own_target(kind):
    out, _ = _outputs(kind)
    target = own_target(kind, out)
    if kind in ("classes", "dense_classes"):
        assert torch.equal(target, out.argmax(dim=1))
    elif kind == "dense_binary":
        assert torch.equal(target, (out > 0).float())
    else:
        assert torch.equal(target, out) and output_loss(kind, out, target).abs().max() == 0
    assert not target.requires_grad


def test_output_kind_and_shape_errors():
    with pytest.raises(ValueError, match="segmentation.*dense_classes"):
        output_loss("segmentation", torch.zeros(2, 3), torch.zeros(2))
    with pytest.raises(ValueError, match="classes output must have 2 dimensions"):
        own_target("classes", torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="dense_binary output must have 4 dimensions"):
        own_target("dense_binary", torch.zeros(2, 4, 4))


# --------------------------------------------------------------------------------------------- gains


def test_gains_shape_diagonal_and_matrix():
    models, outputs = zoo()
    x = images(8)
    gains = zoo_gains(models, outputs, x, eps=8 / 255, steps=3, generator=torch.Generator().manual_seed(0))
    assert gains.shape == (5, 5, 8) and gains.dtype == torch.float32 and torch.isfinite(gains).all()
    own = torch.diagonal(gains, dim1=0, dim2=1)  # (n, S): each model under its own attack
    assert (own.mean(dim=0) > 0).all()
    atm = transfer_matrix(gains.numpy())
    assert atm.shape == (5, 5) and (atm > 0).all()
    assert np.allclose(atm.sum(axis=0), 1.0)


def test_gains_deterministic_and_zero_without_attack():
    models, outputs = zoo()
    x = images(4)
    runs = [zoo_gains(models, outputs, x, 0.03, 2, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(*runs)
    other = zoo_gains(models, outputs, x, 0.03, 2, torch.Generator().manual_seed(8))
    assert not torch.equal(runs[0], other)
    assert zoo_gains(models, outputs, x, 0.0, 2, None).abs().max() == 0


def test_gains_leave_models_as_they_were():
    models, outputs = zoo()
    models["classifier"].train()
    before = {k: v.clone() for k, v in models["classifier"].state_dict().items()}
    zoo_gains(models, outputs, images(2), 0.03, 1, torch.Generator().manual_seed(0))
    assert models["classifier"].training and not models["regressor"].training
    assert all(torch.equal(v, models["classifier"].state_dict()[k]) for k, v in before.items())


@pytest.mark.parametrize(("n", "batch_size"), [(5, 256), (5, 2)])
def test_gains_one_forward_per_pair_and_batch(n, batch_size):
    models, outputs = zoo()
    steps, calls = 2, {name: 0 for name in models}
    for name, model in models.items():
        model.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    zoo_gains(models, outputs, images(n), 0.03, steps, torch.Generator().manual_seed(0), batch_size=batch_size)
    batches = math.ceil(n / batch_size)
    # clean (1) + own attack (clean prediction + steps) + one per source
    assert calls == {name: batches * (1 + 1 + steps + len(models)) for name in models}


def _slow_gains(models, outputs, x, eps, steps, seed):
    """Per-image reference: PGD written out image by image (the random start drawn as pgd draws it, for the
    whole batch per source), then every target's loss image by image."""
    g = torch.Generator().manual_seed(seed)
    step_size = 2.5 * eps / steps
    names = list(models)
    gains = torch.zeros(len(names), len(names), len(x))
    for a, i in enumerate(names):
        noise = torch.rand(x.shape, generator=g)
        for n in range(len(x)):
            xn = x[n : n + 1]
            with torch.no_grad():
                target = own_target(outputs[i], models[i](xn))
            x_adv = (xn + (2 * noise[n : n + 1] - 1) * eps).clamp(0, 1)
            for _ in range(steps):
                x_adv.requires_grad_(True)
                (grad,) = torch.autograd.grad(_reference_loss(outputs[i], models[i](x_adv), target), x_adv)
                with torch.no_grad():
                    x_adv = (xn + (x_adv + step_size * grad.sign() - xn).clamp(-eps, eps)).clamp(0, 1)
            with torch.no_grad():
                for b, j in enumerate(names):
                    clean_out = models[j](xn)
                    t = own_target(outputs[j], clean_out)
                    attacked = _reference_loss(outputs[j], models[j](x_adv), t)
                    gains[a, b, n] = attacked - _reference_loss(outputs[j], clean_out, t)
    return gains


def test_gains_equal_per_image_reference():
    models, outputs = zoo()
    x = images(3, size=16, seed=5)
    fast = zoo_gains(models, outputs, x, 0.05, 2, torch.Generator().manual_seed(11))
    slow = _slow_gains(models, outputs, x, 0.05, 2, seed=11)
    assert torch.allclose(fast, slow, atol=1e-5, rtol=1e-4)


def test_gains_errors():
    models, outputs = zoo()
    with pytest.raises(ValueError, match="name different networks"):
        zoo_gains(models, {"classifier": "classes"}, images(2), 0.03, 1, None)
    with pytest.raises(ValueError, match="'edges'.*'masks'"):
        zoo_gains(models, {**outputs, "edges": "masks"}, images(2), 0.03, 1, None)
    with pytest.raises(ValueError, match=r"float images \(n, C, H, W\)"):
        zoo_gains(models, outputs, torch.zeros(3, 32, 32), 0.03, 1, None)
