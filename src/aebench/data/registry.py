"""Every dataset by name: the generated ones (EMBEDDED), the fetched ones (REAL), and the
checks of the per-dataset options params.yaml may set (`data.options.<dataset>`).

Generators have the signature `(n, seed, **options) -> RawDataset`; all but "digits" are
deterministic in (n, seed), "digits" is scikit-learn's fixed bundled set and ignores both.
Which of the params.yaml options (`aebench.config.GENERATOR_OPTIONS`) a generator takes is
read from its signature. Real loaders have the signature `(cache_dir, mirror, n=None, seed=0,
**image_options) -> RawDataset` (see `aebench.data.fetch`); `IMAGE_OPTIONS` says which image
options each takes.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Callable

from aebench.config import GENERATOR_OPTIONS
from aebench.data.datasets.celeba import load_celeba
from aebench.data.datasets.cifar10 import load_cifar10
from aebench.data.datasets.digits import make_digits, make_rotation
from aebench.data.datasets.dsprites import load_dsprites
from aebench.data.datasets.letters import make_letters
from aebench.data.datasets.lines import fresh_lines, make_lines
from aebench.data.datasets.manifolds import make_loop, make_sphere, make_torus, native_dim
from aebench.data.datasets.mnist import load_fashion_mnist, load_mnist
from aebench.data.datasets.omniglot import load_omniglot
from aebench.data.datasets.shapes import make_shapes
from aebench.data.raw import RawDataset
from aebench.errors import UserError

EMBEDDED: dict[str, Callable[..., RawDataset]] = {
    # "digits" is a fixed real dataset (1797 images): its n and seed are ignored.
    "digits": make_digits,
    "lines": make_lines,
    "shapes": make_shapes,
    "rotation": make_rotation,
    "loop": make_loop,
    "sphere": make_sphere,
    "torus": make_torus,
    "letters": make_letters,
}
"""Name -> function (n, seed, **options) -> RawDataset for every dataset that needs no download."""

REAL: dict[str, Callable[..., RawDataset]] = {
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
    "omniglot": load_omniglot,
    "cifar10": load_cifar10,
    "celeba": load_celeba,
    "dsprites": load_dsprites,
}
"""Name -> loader (cache_dir, mirror, n=None, seed=0, **image_options) -> RawDataset."""

FRESH: dict[str, Callable] = {
    "lines": fresh_lines,
}
"""Name -> function (n, generator, shape, device) -> a training batch of n new samples, for the
datasets whose benchmark trains on fresh draws (`train.fresh_data`): the stored split still
gives the epoch's length, validation and evaluation."""

# The image options (DatasetOptions.image_options) each real loader takes; load_real refuses the others.
IMAGE_OPTIONS = {"mnist": ("size", "channels"), "omniglot": ("invert", "size", "channels")}


def known_datasets() -> list[str]:
    return sorted({*EMBEDDED, *REAL})


def supported_options(name: str) -> list[str]:
    """The `GENERATOR_OPTIONS` dataset `name`'s generator takes (none for downloaded datasets)."""
    make = EMBEDDED.get(name)
    if make is None:
        return []
    parameters = inspect.signature(make).parameters
    return [key for key in GENERATOR_OPTIONS if key in parameters]


def check_options(name: str, options: dict, where: str = "params.yaml") -> None:
    """A UserError naming `data.options.<name>.<key>` for an option dataset `name` does not
    take, or an `ambient_dim` below the manifold's native dimension."""
    supported = supported_options(name)
    for key in options:
        if key not in supported:
            takes = f"its options are {', '.join(supported)}" if supported else "it takes none of " + \
                ", ".join(GENERATOR_OPTIONS)
            kind = "generated" if name in EMBEDDED else "downloaded"
            raise UserError(f"{where}: `data.options.{name}.{key}`: dataset `{name}` ({kind}) has no option `{key}` "
                            f"({takes}): remove it")
    ambient, native = options.get("ambient_dim"), native_dim(name, options.get("variant", "default"))
    if ambient is not None and native is not None and ambient < native:
        raise UserError(f"{where}: `data.options.{name}.ambient_dim` = {ambient} is below the {name}'s native "
                        f"dimension {native}: set it to {native} or more, or remove it")


def generate(name: str, n: int, seed: int, options: dict | None = None, where: str = "params.yaml") -> RawDataset:
    """EMBEDDED[name](n, seed, **options), after `check_options`."""
    options = dict(options or {})
    check_options(name, options, where)
    return EMBEDDED[name](n, seed, **options)


def check_image_options(dataset: str, image_options: dict) -> None:
    """Refuse, with one line, an image option (`DatasetOptions.image_options()`) that the
    dataset's loader does not take, rather than ignore it (embedded datasets take none)."""
    for key in image_options:
        if key not in IMAGE_OPTIONS.get(dataset, ()):
            takers = ", ".join(name for name, keys in IMAGE_OPTIONS.items() if key in keys)
            raise UserError(f"`data.options.{dataset}.{key}` in params.yaml applies to {takers} only: "
                            f"remove it from `data.options.{dataset}`")


def load_real(dataset: str, cache_dir: Path, mirror: str | None, n: int | None = None, seed: int = 0,
              **image_options) -> RawDataset:
    """`REAL[dataset]` with the image options params.yaml sets for it (checked first)."""
    check_image_options(dataset, image_options)
    return REAL[dataset](cache_dir, mirror, n=n, seed=seed, **image_options)
