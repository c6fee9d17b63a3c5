"""The tasks family's images, inputs, targets and models for its scripts (params root, images, seed, zoo): one
place for what train_task, task_atm, task_tau and task_affinity all read."""

from _job import sm

from advtransfer.tasks import experiment_images, images_float, subset, task_inputs, task_targets


def parts():
    """{part: (ShapesBatch, indices)} of the block's train, validation and test images."""
    p = sm.params
    return experiment_images(p.root, p.images["n_train"], p.images["n_val"], p.images["n_test"], p.images["seed"])


def clean_images(part, limit=None):
    """The first ``limit`` images of ``part`` as float inputs in [0, 1], without any task's noise."""
    return images_float(part[0])[:limit]


def inputs_and_targets(part, tasks, limit=None):
    """{task: (inputs, targets)} of ``part`` (first ``limit`` images); tasks sharing the clean images share one
    tensor (the denoising task's inputs are its own, noisy)."""
    batch, idx = part
    if limit is not None:
        batch, idx = subset(batch, slice(0, limit)), idx[:limit]
    clean = images_float(batch)
    out = {}
    for task in tasks:
        x = task_inputs(batch, task, sm.params.images["seed"], idx) if task == "denoising" else clean
        out[task] = (x, task_targets(batch, task))
    return out


def zoo_images():
    """A zoo block's test images: ``images.n_test`` of its data set's test split (a seeded choice), resized to
    ``images.image_size``, float in [0, 1]."""
    from advtransfer.data import evaluation_subset, load_images, load_split

    p = sm.params
    name, size = p.images["dataset"], p.images["image_size"]
    n = len(load_split(name, p.root, "test")[1])
    chosen = evaluation_subset(n, p.images["n_test"], seed=p.images["seed"])
    return load_images(name, p.root, "test", chosen, channels=3, size=size)


def models(zoo=None):
    """{task: network} in the matrices' order: the trained shapes-world networks (the job's model inputs), or
    the networks of ``zoo`` (a zoo block's entries, built by the zoo loader; a registry classifier for the zoo's
    RGB images of ``images.image_size``)."""
    if zoo:
        from advtransfer.zoo import load_zoo_model, zoo_entries

        size = sm.params.images["image_size"]
        return {e.name: load_zoo_model(e, in_channels=3, image_size=size) for e in zoo_entries(zoo, "tasks")}
    from advtransfer.tasks import load_task_network

    return {task: load_task_network(path) for task, path in zip(sm.params.tasks, sm.input.models)}
