"""The registries of data sets, models and training objectives: plain data, no torch.

Each data set, built-in model and training objective is ONE entry here. Code is named by its import path
(``"package.module:attribute"``) and imported only when a job needs it, so Snakemake (and every cluster
job's Snakemake) can check a config against these tables at start-up without importing torch.
``advtransfer.names`` holds the lookups and config checks; ``advtransfer.data``, ``advtransfer.models``
and ``advtransfer.train`` resolve the entries.

Adding a data set, a model or an objective is one entry below (docs/extending.md).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

# ------------------------------------------------------------------------------------------ data sets


@dataclass(frozen=True)
class DatasetEntry:
    """One data set: its names, image shape, splits, files (with checksums) and the function that reads them.

    ``reader`` is ``"module:function"``; advtransfer.data.load_split checks the split's files (present,
    official MD5s in ``files``) and calls ``reader(data_root, split, *, verify, seed, test_fraction,
    **reader_args)``, which
    returns uint8 images (N, C, H, W) and int64 labels (N,) in the order of ``classes`` (checking any class
    names the files carry). ``folder`` is where the files live under ``data.root`` (torchvision's layout, so
    a folder prepared by torchvision works here and vice versa).
    """

    name: str
    classes: tuple[str, ...]  # in label order
    channels: int
    size: tuple[int, int]  # native (height, width)
    reader: str
    description: str
    splits: tuple[str, ...] = ("train", "test")
    aliases: tuple[str, ...] = ()  # other spellings accepted in config ('CIFAR-10', 'FashionMNIST', ...)
    folder: str = ""
    files: dict[str, str | None] = field(default_factory=dict)  # required file -> official MD5
    split_files: dict[str, tuple[str, ...]] = field(default_factory=dict)
    optional: tuple[str, ...] = ()  # copied from a mirror when present, never required
    archive: tuple[str, str, str] | None = None  # (file name, MD5, URL) of the official archive
    archive_prefix: str = ""  # folder of the files inside the archive
    gz: dict[str, str] = field(default_factory=dict)  # raw file -> MD5 of the official .gz
    gz_urls: tuple[str, ...] = ()  # download bases of the .gz files
    reader_args: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments of the reader
    images: str = ""  # entries with the same non-empty ``images`` hold the same images, labelled differently


# The shapes world's labellings of the same images (advtransfer/shapes.py LABELS computes them): the shape,
# an identity (shape x hue bin x scale bin, with position, rotation, background, texture, noise, light
# and the second object as nuisance), and binary attributes. Each is a data set: "shapes" (by shape) and
# "shapes_<labelling>"; all share one set of images, so pools drawn from them stay disjoint.
SHAPE_NAMES = ("square", "circle", "triangle", "cross", "ell")
SHAPES_HUE_BINS = ("red", "green", "blue")  # hue bins centred on 0, 1/3 and 2/3
SHAPES_ATTRIBUTES = (
    "is_large", "is_square", "is_circle", "is_triangle", "is_red", "is_blue",  # define the identity
    "is_left", "is_top", "rotated_over_45", "textured", "bright_background", "noisy", "has_second",
    "lit_from_left",
)  # fmt: skip
SHAPES_LABELLINGS: dict[str, tuple[str, ...]] = {
    "shape": SHAPE_NAMES,
    "identity": tuple(f"{s}-{h}-{z}" for s in SHAPE_NAMES for h in SHAPES_HUE_BINS for z in ("small", "large")),
    **{attribute: ("no", "yes") for attribute in SHAPES_ATTRIBUTES},
}

# CelebA (aligned and cropped faces, torchvision's layout ``celeba/{img_align_celeba/, list_*.txt}``): one
# data set labelled by identity and one per binary attribute, all sharing the images. The split is not the
# official partition (identity-disjoint) but held-out images of the same identities (advtransfer.data.celeba).
# CELEBA_ATTRIBUTES: list_attr_celeba.txt's 40 attribute names in its order, lower-cased.
CELEBA_ATTRIBUTES = (
    "5_o_clock_shadow", "arched_eyebrows", "attractive", "bags_under_eyes", "bald", "bangs", "big_lips", "big_nose",
    "black_hair", "blond_hair", "blurry", "brown_hair", "bushy_eyebrows", "chubby", "double_chin", "eyeglasses",
    "goatee", "gray_hair", "heavy_makeup", "high_cheekbones", "male", "mouth_slightly_open", "mustache",
    "narrow_eyes", "no_beard", "oval_face", "pale_skin", "pointy_nose", "receding_hairline", "rosy_cheeks",
    "sideburns", "smiling", "straight_hair", "wavy_hair", "wearing_earrings", "wearing_hat", "wearing_lipstick",
    "wearing_necklace", "wearing_necktie", "young",
)  # fmt: skip
CELEBA_IDENTITIES = 10177
CELEBA_LABELLINGS: dict[str, tuple[str, ...]] = {
    "identity": tuple(str(i) for i in range(1, CELEBA_IDENTITIES + 1)),  # label = identity number - 1
    **{attribute: ("no", "yes") for attribute in CELEBA_ATTRIBUTES},
}
# The annotation files with the MD5s of torchvision's CelebA.file_list (tests/test_celeba.py checks them).
_CELEBA_FILES = {
    "list_attr_celeba.txt": "75e246fa4810816ffd6ee81facbd244c",
    "identity_CelebA.txt": "32bd1bd63d3c78cd57e08160ec5ed1e2",
    "list_bbox_celeba.txt": "00566efa6fedff7a56946cd1c10f1c16",
    "list_landmarks_align_celeba.txt": "cc24ecafdb5b50baae59b03474781f8c",
    "list_eval_partition.txt": "d32c9cbf5e040fd4025c592c306e6668",
}

# The shapes world's tasks (Section 4.4; advtransfer/tasks.py computes their targets, networks and losses):
# one entry per task, so the workflow checks task names at start-up without torch.
KINDS = ("semantic", "2d", "geometric")
OUTPUT_KINDS = ("classes", "regression", "dense_regression", "dense_binary", "dense_classes")
DENSE_OUTPUTS = frozenset({"dense_regression", "dense_binary", "dense_classes"})
DENOISING_STD = 0.1  # std of the Gaussian noise of the denoising task's inputs


@dataclass(frozen=True)
class TaskSpec:
    """A task of the shapes world: ``kind`` (semantic, 2d, geometric), ``output`` (how its targets and the
    network's outputs look, one of OUTPUT_KINDS) and ``outputs`` (classes, regressed numbers or channels).

    Targets (:func:`task_targets`, for N images of H x W pixels): ``classes`` int64 (N,);
    ``regression`` float32 (N, outputs); ``dense_regression`` float32 (N, outputs, H, W);
    ``dense_binary`` float32 {0, 1} (N, 1, H, W); ``dense_classes`` int64 (N, H, W). The network's output
    is (N, outputs) for ``classes`` and ``regression`` (logits / values) and (N, outputs, H, W) for dense
    tasks (values, logits of the foreground, logits of the classes)."""

    name: str
    kind: str
    output: str
    outputs: int
    description: str

    def __post_init__(self):
        if self.kind not in KINDS or self.output not in OUTPUT_KINDS or self.outputs < 1:
            raise ValueError(
                f"TaskSpec {self.name!r}: bad kind {self.kind!r}, output {self.output!r} or outputs {self.outputs}"
            )

    @property
    def dense(self) -> bool:
        """Whether the output is a map of the image's size (needs the upsampling decoder)."""
        return self.output in DENSE_OUTPUTS


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("shape", "semantic", "classes", len(SHAPE_NAMES), "the main object's shape (shapes.SHAPES order)"),
        TaskSpec(
            "identity", "semantic", "classes", len(SHAPES_LABELLINGS["identity"]),
            "shape x hue bin x scale bin: 30 classes (shapes.labels(..., 'identity'))",
        ),
        TaskSpec("colour", "semantic", "classes", 3, "the main object's hue bin (red, green, blue; shapes.hue_bin)"),
        TaskSpec("autoencoding", "2d", "dense_regression", 3, "reconstruct the input image (RGB in [0, 1])"),
        TaskSpec(
            "denoising", "2d", "dense_regression", 3,
            f"reconstruct the clean image from the image plus Gaussian noise of std {DENOISING_STD}, clipped to "
            "[0, 1] (the noise of each image index drawn from its own seeded generator); the noisy image is the "
            "input, also for attacks",
        ),
        TaskSpec(
            "edges", "2d", "dense_binary", 1,
            "the edge map: pixels whose object label differs from a 4-neighbour's",
        ),
        TaskSpec(
            "position", "geometric", "regression", 2,
            "the main object's centre (x, y) as fractions of the half-width",
        ),
        TaskSpec("scale", "geometric", "regression", 1, "the main object's half-size as a fraction of the half-width"),
        TaskSpec(
            "rotation", "geometric", "regression", 2,
            "(cos 4 theta, sin 4 theta) of the main object's rotation theta in [0, 90) degrees: continuous across "
            "0 = 90 degrees, where a square (or cross) looks the same. Ill-defined for circles (their image does "
            "not depend on theta), which is part of the world: the best prediction for a circle is the mean, 0",
        ),
        TaskSpec("mask", "geometric", "dense_binary", 1, "the foreground mask: pixels of any object"),
        TaskSpec(
            "depth", "geometric", "dense_classes", 3,
            "the occlusion order map: 0 background, 1 the object behind, 2 the object in front (or alone)",
        ),
    )
}  # fmt: skip


_CIFAR10_BATCHES = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
_CIFAR100_FILES = {
    "train": "16019d7e3df5f24257cddd939b257f8d",
    "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
    "meta": "7973b15100ade9c7d40fb424638fde48",
}
# CIFAR-100's 100 fine classes in label order (the 'fine_label_names' of its meta file: alphabetical).
_CIFAR100_CLASSES = tuple(
    """apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can
    castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin
    elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster
    man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck
    pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk
    skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger
    tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm""".split()
)
_STL10_FILES = {
    "train_X.bin": "918c2871b30a85fa023e0c44e0bee87f",
    "train_y.bin": "5a34089d4802c674881badbb80307741",
    "test_X.bin": "7f263ba9f9e0b06b93213547f721ac82",
    "test_y.bin": "36f9794fa4beb8a2c72628de14fa638e",
}
# Fashion-MNIST: MD5 of the UNCOMPRESSED official idx files (the content of the archives whose MD5s
# torchvision lists in FashionMNIST.resources; Debian ships the same content re-compressed, so its .gz
# files have other MD5s: the content is what is checked), and of the official .gz files.
_FASHION_MNIST_RAW = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
_FASHION_MNIST_GZ = {
    "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
}

_ENTRIES = (
    DatasetEntry(
        name="cifar10",
        classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        channels=3,
        size=(32, 32),
        reader="advtransfer.data.reading:read_cifar10",
        description="CIFAR-10 (python version): 50,000 train / 10,000 test 32x32 colour images, 10 classes",
        aliases=("CIFAR-10", "CIFAR10"),
        folder="cifar-10-batches-py",
        files=_CIFAR10_BATCHES,
        split_files={
            "train": ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "batches.meta"),
            "test": ("test_batch", "batches.meta"),
        },
        archive=(
            "cifar-10-python.tar.gz",
            "c58f30108f718f92721af3b95e74349a",
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        ),
        archive_prefix="cifar-10-batches-py",
    ),
    DatasetEntry(
        name="cifar100",
        classes=_CIFAR100_CLASSES,
        channels=3,
        size=(32, 32),
        reader="advtransfer.data.reading:read_cifar100",
        description="CIFAR-100 (python version): 50,000 train / 10,000 test 32x32 colour images, 100 fine classes",
        aliases=("CIFAR-100", "CIFAR100"),
        folder="cifar-100-python",
        files=_CIFAR100_FILES,
        split_files={"train": ("train", "meta"), "test": ("test", "meta")},
        archive=(
            "cifar-100-python.tar.gz",
            "eb9058c3a382ffc7106e4002c42a8d85",
            "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        ),
        archive_prefix="cifar-100-python",
    ),
    DatasetEntry(
        name="stl10",
        classes=("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"),
        channels=3,
        size=(96, 96),
        reader="advtransfer.data.reading:read_stl10",
        description="STL-10 (binary): the 5,000 labelled train / 8,000 test 96x96 colour images, 10 classes",
        aliases=("STL-10", "STL10"),
        folder="stl10_binary",
        files=_STL10_FILES,
        split_files={"train": ("train_X.bin", "train_y.bin"), "test": ("test_X.bin", "test_y.bin")},
        optional=("class_names.txt",),
        archive=(
            "stl10_binary.tar.gz",
            "91f7769df0f17e558f3565bffb0c7dfb",
            "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
        ),
        archive_prefix="stl10_binary",
    ),
    DatasetEntry(
        name="fashion_mnist",
        classes=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),  # fmt: skip
        channels=1,
        size=(28, 28),
        reader="advtransfer.data.reading:read_fashion_mnist",
        description="Fashion-MNIST: 60,000 train / 10,000 test 28x28 grey images, 10 classes",
        aliases=("Fashion-MNIST", "FashionMNIST"),
        folder="FashionMNIST/raw",
        files=_FASHION_MNIST_RAW,
        split_files={
            "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        },
        gz=_FASHION_MNIST_GZ,
        gz_urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    ),
    DatasetEntry(
        name="digits",
        classes=tuple(str(d) for d in range(10)),
        channels=1,
        size=(8, 8),
        reader="advtransfer.data.reading:read_digits",
        description="scikit-learn's bundled 8x8 digits (1,797 images, no download); a seeded stratified split",
    ),
    *(
        DatasetEntry(
            name="shapes" if labelling == "shape" else f"shapes_{labelling}",
            classes=classes,
            channels=3,
            size=(32, 32),
            reader="advtransfer.shapes:read_shapes",
            reader_args={"labelling": labelling},
            images="shapes",
            description=f"the shapes world (advtransfer/shapes.py): rendered 32x32 RGB images with known factors, "
            f"labelled by {labelling}; 10,000 train and 2,000 test images, no download",
        )
        for labelling, classes in SHAPES_LABELLINGS.items()
    ),
    *(
        DatasetEntry(
            name=f"celeba_{labelling}",
            classes=classes,
            channels=3,
            size=(64, 64),
            reader="advtransfer.data.celeba:read_celeba",
            reader_args={"labelling": labelling},
            images="celeba",
            folder="celeba",
            files=dict(_CELEBA_FILES),
            split_files={"train": tuple(_CELEBA_FILES), "test": tuple(_CELEBA_FILES)},
            description=f"CelebA (aligned faces, 202,599 images of 10,177 identities) labelled by {labelling}: "
            f"178x178 centre crop resized to 64x64; test = held-out images of the train identities (seeded), "
            f"not the official identity-disjoint partition; img_align_celeba/ is never downloaded",
        )
        for labelling, classes in CELEBA_LABELLINGS.items()
    ),
)
DATASETS: dict[str, DatasetEntry] = {entry.name: entry for entry in _ENTRIES}

# A data set given as a folder: ``imagefolder:/path/to/images`` (torchvision's ImageFolder layout, see
# advtransfer.data.folder). Its class names are the folder names, read at start-up without torch.
IMAGEFOLDER = "imagefolder:"

# ---------------------------------------------------------------------------------------------- models

# Built-in classifiers: name -> "module:factory", factory(num_classes, in_channels, image_size) -> nn.Module
# with ``features(x) -> (B, m)``, ``head`` (nn.Linear(m, num_classes)) and forward = head(features).
# Besides these, a config may name ``torchvision:<arch>``, ``timm:<name>`` or ``package.module:function``
# (advtransfer.models.build_model).
MODELS: dict[str, str] = {
    "small_cnn": "advtransfer.models:SmallCNN",
    "small_cnn_narrow": "advtransfer.models:SmallCNNNarrow",  # a quarter of the width (a capacity factor)
    "resnet18_cifar": "advtransfer.models:ResNet18Cifar",
    "lipschitz_mlp": "advtransfer.robust:LipschitzMLP",  # a 1-Lipschitz body (the robustness family)
}
MODEL_PREFIXES = ("torchvision:", "timm:")

# ---------------------------------------------------------------------------------- training objectives

# name -> "module:function", function(model, x, y) -> (loss, logits): the loss a training step minimises
# and the logits of the batch it saw (for the running training accuracy). advtransfer.train.
OBJECTIVES: dict[str, str] = {
    "ce": "advtransfer.train:cross_entropy",
    # the robustness family's source training schemes (advtransfer.robust)
    "noise": "advtransfer.robust:gaussian_noise",
    "pgd_at": "advtransfer.robust:pgd_at",
    "trades": "advtransfer.robust:trades",
    "fast_at": "advtransfer.robust:fast_at",
    "free_at": "advtransfer.robust:free_at",
    "supcon": "advtransfer.robust:supcon",
    "rrm": "advtransfer.robust:rrm",
}


def load_object(path: str) -> Any:
    """The attribute ``path`` = ``"package.module:attribute"`` names (imported on demand)."""
    module, sep, attribute = str(path).partition(":")
    if not sep or not module or not attribute:
        raise ValueError(f"{path!r} is not an import path of the form 'package.module:attribute'")
    try:
        target = importlib.import_module(module)
    except ImportError as err:
        raise ValueError(f"{path!r}: cannot import module {module!r} ({err})") from err
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ValueError(f"{path!r}: module {module!r} has no attribute {attribute!r}") from None
    return target
