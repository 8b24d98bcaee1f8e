"""Typed params: every key of params.yaml is validated; unknown keys are refused.

params.yaml layout
------------------
    datasets: [digits, lines, shapes]     # download@ and preprocess@ run for each
    models: [ae, vae]                     # the models defined (each needs a section or a known type)
    seeds: [0, 1, 2]                      # every run trains once per training seed
    runs:                                 # which model trains on which dataset (train-<run>@<seed>, evaluate-<run>@<seed>)
      digits-ae: {dataset: digits, model: ae}
      shapes-vae: {dataset: shapes, model: vae, train: {epochs: 5}}   # this run's budget only
      loop-vae: {dataset: loop, model: vae, seeds: [0, 1, 2, 3, 4]}   # this run's seeds only
    data:      seed, split fractions, mirror, per-dataset sizes (DataConfig)
    train:     the one training loop's settings (TrainConfig)
    evaluate:  the evaluator's settings (EvalConfig)
    model:     one section per named model; `type` picks the implementation (defaults to
               the section's name), the other keys are that type's config class fields, and
               an optional `train:` mapping overrides the global train settings for it.
               A run's own `train:` overrides both, for that dataset only (e.g. to give
               every model of one comparison the same budget).

Named variants let one implementation run twice with different settings, e.g.
`betavae: {type: vae, beta: 4.0}`. Errors name the file and the dotted key.

This module is a leaf: it imports nothing of aebench but `errors`. `read_params` checks every
section but the model-specific keys of `model.<name>`; `aebench.plan.load_params` adds those,
checked against the model registry, which lives above this module.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, ValidationInfo

from aebench.errors import UserError


class Strict(BaseModel):
    """Base for every config: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# The keys of `data.options.<dataset>` that are keyword arguments of a dataset's generator
# (aebench.data.registry.generate refuses those a generator does not take).
GENERATOR_OPTIONS = ("ambient_dim", "noise", "variant")
# The keys of `data.options.<dataset>` that are keyword arguments of the real image loaders
# (aebench.data.registry.load_real refuses those a loader does not take).
IMAGE_OPTIONS = ("invert", "size", "channels")


class DatasetOptions(Strict):
    n: int = Field(10000, gt=0, description="items: generated for embedded datasets; for real ones a seeded subsample, only when set")
    mirror: Optional[str] = Field(None, description="folder or http(s) URL holding this dataset's files")
    group_factor: Optional[str] = Field(None, description="factor column used as `group` (default: the label)")
    ambient_dim: Optional[int] = Field(
        None, gt=0, description="embed a generated manifold (loop, sphere, torus) in R^ambient_dim by a random "
                                "orthonormal map (seeded by data.seed); None: its native R^2 or R^3")
    noise: Optional[float] = Field(
        None, ge=0, allow_inf_nan=False, description="std of the isotropic Gaussian noise in the ambient space "
                                                     "(generated manifolds); None: the generator's default")
    variant: Optional[Literal["default", "paper"]] = Field(
        None, description="loop, sphere, torus: default (random points plus noise) or paper (the DVAE authors' "
                          "noise-free grids: the loop (cos t, sin 2t, sin 3t) in R^3, the unit sphere, the torus of "
                          "radii 2 and 1; aebench.data.datasets.manifolds). None: default. Paper: paper")
    invert: bool = Field(
        True, description="omniglot only: True inverts the scans to MNIST's white strokes on black (no polarity cue "
                          "between the two); False keeps their dark strokes on white, the GWAE paper's (vaetc loads "
                          "torchvision's Omniglot as is)")
    size: Optional[int] = Field(
        None, ge=8, le=256, description="mnist, omniglot: side length the images are resized to; None: 28 "
                                        "(MNIST's); the GWAE paper's: 64. Give both the same size")
    channels: Literal[1, 3] = Field(
        1, description="mnist, omniglot: 3 replicates the grey images into RGB, the GWAE paper's (vaetc feeds "
                       "64x64x3); 1 keeps them grey. Give both the same channels")

    def generator_options(self) -> dict[str, Any]:
        """The options set here that are the generator's keyword arguments (GENERATOR_OPTIONS)."""
        return {key: value for key in GENERATOR_OPTIONS if (value := getattr(self, key)) is not None}

    def image_options(self) -> dict[str, Any]:
        """The image options params.yaml sets here (invert, size, channels): keyword arguments of
        `aebench.data.registry.load_real`, which refuses them for datasets that do not take them."""
        return {key: getattr(self, key) for key in IMAGE_OPTIONS if key in self.model_fields_set}


class DataConfig(Strict):
    seed: int = 0
    val_fraction: float = Field(0.1, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    mirror: Optional[str] = Field(None, description="folder or URL with one sub-folder per real dataset (mnist/, ...)")
    balance_tolerance: float = Field(0.5, gt=0, le=1)
    options: dict[str, DatasetOptions] = Field(default_factory=dict)

    def options_for(self, dataset: str) -> DatasetOptions:
        return self.options.get(dataset, DatasetOptions())

    def mirror_for(self, dataset: str) -> Optional[str]:
        """The dataset's own mirror, else `<data.mirror>/<dataset>`, else None (the official sources)."""
        own = self.options_for(dataset).mirror
        if own or not self.mirror:
            return own
        return self.mirror.rstrip("/") + "/" + dataset


class TrainConfig(Strict):
    seed: int = Field(0, ge=0, description="the training seed (weights, batch order, model noise): set per run from "
                                           "the top-level `seeds` list, never in a params file's train sections")
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(64, gt=0)
    lr: float = Field(1e-3, gt=0)
    max_steps_per_epoch: Optional[int] = Field(None, gt=0, description="cap on batches per epoch (budget)")
    patience: int = Field(5, ge=1, description="early stop after this many epochs without a better val loss")
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    num_threads: Optional[int] = Field(None, gt=0, description="torch CPU threads (default: torch's choice)")
    log_every: int = Field(50, gt=0, description="log step metrics to MLflow every N steps")
    channels_last: bool = Field(True, description="conv weights in NHWC layout, oneDNN's own: same model, "
                                                  "1.1-1.5x the conv nets' CPU throughput")
    checkpoint_seconds: float = Field(
        10.0, ge=0, description="write the resume checkpoint after the first epoch ending this many seconds after "
                                "the last one (0: every epoch); a crash loses at most this much plus an epoch")
    joint_probe: bool = Field(
        False, description="train a linear softmax head on the detached codes alongside the model, with its own "
                           "Adam (aebench.training.JointProbe); evaluation reports its test accuracy as "
                           "linear_acc_joint. Paper (ACAI, Tables 2-3): true")
    joint_probe_lr: float = Field(1e-4, gt=0, description="Adam rate of the joint probe. Paper: 1e-4")
    fresh_data: bool = Field(
        False, description="train on a new batch drawn from the dataset's generator at every step instead of the "
                           "stored train split, which still sets the epoch's length (datasets with one: lines). "
                           "Paper (ACAI's lines): true, a fresh line for every sample")
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "fp32", description="arithmetic of forward passes and losses (aebench.precision): fp32; bf16 (autocast, with "
                            "fp32 master weights, optimiser state and loss reductions; stops where the device has "
                            "no native bf16); auto: bf16 on CUDA with bf16 or a CPU with AVX512-BF16/AMX, else fp32. "
                            "The papers trained in fp32")


class EvalConfig(Strict):
    knn_k: int = Field(5, gt=0)
    max_train_codes: int = Field(20000, gt=0, description="train codes used as kNN/probe reference")
    figure_examples: int = Field(8, gt=0)
    max_recon: int = Field(2000, gt=0, description="test rows reconstructed for recon_mse/psnr (seeded subset)")
    cluster_paper_restarts: int = Field(
        10, ge=0, description="K-means restarts of cluster_acc_paper (fitted on the train codes, the ACAI paper's "
                              "protocol); 0 skips it. Paper: 1000 (5-10 min for 60,000 x 32 codes on one core; "
                              "10 take about 4 s)")
    seed: int = 0
    ood_companion: dict[str, str] = Field(
        default_factory=dict, description="dataset -> its out-of-distribution companion (e.g. mnist: omniglot)")
    precision: Literal["train", "fp32", "bf16", "auto"] = Field(
        "fp32", description="arithmetic of the encoder and decoder passes and of sampling (as `train.precision`); "
                            "train: the run's `train.precision`. Metrics are computed in fp32/float64 from the "
                            "codes, but bf16 codes and outputs (8-bit mantissa) make near neighbours coincide, "
                            "which distance-ratio metrics cannot survive (bilipschitz: 20 in fp32, 3e9 in bf16), "
                            "so fp32 is the default even for a model trained in bf16")
    gw_reference: Literal["test", "train"] = Field(
        "test", description="the real set gw_distance compares a model's samples with (as many samples as its points "
                            "kept). Paper (DVAE): train, the whole training set")
    gw_points: Optional[int] = Field(
        300, gt=0, description="cap on the points of each gw_distance set (seeded subsample; aebench.metrics.topology."
                               "GW_POINTS); null: no cap. Paper (DVAE): null; one CPU thread takes ~7 s at 1000 "
                               "points, ~25 s at 1400, growing with the cube")

    def precision_for(self, train: TrainConfig) -> tuple[str, str]:
        """(the precision evaluation runs in, the params key it comes from, for error messages)."""
        if self.precision == "train":
            return train.precision, "train.precision"
        return self.precision, "evaluate.precision"


class DiffmapConfig(Strict):
    """The `diffmap:` section: the diffusion-map precompute (`aebench.stages.diffmap`)."""

    n_components: int = Field(10, gt=0, description="diffusion coordinates kept (the DVAE authors' MNIST latent size)")
    n_neighbors: int = Field(16, gt=0, description="k of the k-NN graph; >= N - 1 means the dense kernel")
    epsilon: Union[float, Literal["auto"]] = Field(
        "auto", description="kernel bandwidth; 'auto' = median squared distance to the 10th neighbour")
    alpha: float = Field(1.0, ge=0, le=1, description="density normalisation (1: Laplace-Beltrami)")
    t: float = Field(1.0, ge=0, description="diffusion time: coordinates are lambda^t psi")
    pca_components: int | None = Field(50, gt=0, description="PCA before the neighbour search (only when the data has more dimensions)")
    seed: int = 0

    def fit_kwargs(self) -> dict:
        return dict(n_components=self.n_components, n_neighbors=self.n_neighbors, epsilon=self.epsilon,
                    alpha=self.alpha, t=self.t, pca_components=self.pca_components, seed=self.seed)


class ModelSection(Strict):
    """The raw form of a `model.<name>` section before its type's config class checks it."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: Optional[str] = None
    train: dict[str, Any] = Field(default_factory=dict)


class Run(Strict):
    """One (dataset, model) pair of the plan: a `train-<dataset>-<model>@<seed>` and an
    `evaluate-<dataset>-<model>@<seed>` stage per training seed."""

    dataset: str
    model: str
    train: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(
        default_factory=dict, description="model keys for this run only, over `model.<name>` (e.g. the latent "
        "size a paper uses on this dataset)")
    seeds: Optional[list[int]] = Field(
        None, min_length=1, description="this run's training seeds, in place of the top-level `seeds` (more for a "
        "cheap run whose claim needs them, one for a model shown only for context)")

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: Optional[list[int]]) -> Optional[list[int]]:
        return None if seeds is None else _check_seeds(seeds)


def _check_seeds(seeds: list[int]) -> list[int]:
    if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be distinct non-negative integers, got {seeds}")
    return seeds


class Params(Strict):
    datasets: list[str] = Field(min_length=1)
    models: list[str] = Field(min_length=1)
    seeds: list[int] = Field([0], min_length=1, description="the training seeds: every run trains (and is evaluated) "
                                                            "once per seed, each its own DVC stage, MLflow run and "
                                                            "registered version")
    runs: dict[str, Run] = Field(min_length=1)
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvalConfig = EvalConfig()
    diffmap: DiffmapConfig = DiffmapConfig()
    model: dict[str, ModelSection] = Field(default_factory=dict)

    @field_validator("datasets", "models")
    @classmethod
    def _unique(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError(f"names must be unique, got {names}")
        for name in names:
            _check_name(name)
        return names

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, seeds: list[int]) -> list[int]:
        return _check_seeds(seeds)

    @field_validator("train")
    @classmethod
    def _no_train_seed(cls, train: TrainConfig) -> TrainConfig:
        if "seed" in train.model_fields_set:
            raise ValueError(SEED_MOVED)
        return train

    def seeds_of(self, run: str) -> list[int]:
        """The training seeds of run `run`: its own `seeds`, else the top-level list."""
        return self.runs[run].seeds or self.seeds

    @field_validator("model")
    @classmethod
    def _section_names(cls, sections: dict) -> dict:
        for name in sections:
            _check_name(name)
        return sections

    @field_validator("runs")
    @classmethod
    def _runs_match(cls, runs: dict, info: ValidationInfo) -> dict:
        datasets, models = info.data.get("datasets", []), info.data.get("models", [])
        for key, run in runs.items():
            if key != f"{run.dataset}-{run.model}":
                raise ValueError(f"key `{key}` must be `{run.dataset}-{run.model}` (dataset-model)")
            if run.dataset not in datasets:
                raise ValueError(f"{key}: dataset `{run.dataset}` is not listed in `datasets`")
            if run.model not in models:
                raise ValueError(f"{key}: model `{run.model}` is not listed in `models`")
        return runs


SEED_MOVED = "the training seed is not set in a train section: list it in the top-level `seeds` (or `runs.<run>.seeds`)"

NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")


def _check_name(name: str) -> None:
    """Names become folder names and DVC stage names (`train-<dataset>-<model>@<seed>`): lower-case
    letters, digits and underscores only, so no name can escape the repo's folders."""
    if not NAME.match(name):
        raise ValueError(f"name {name!r} must be lower-case letters, digits and underscores (e.g. `beta_vae`)")


def _format_error(path: Path, err: ValidationError, prefix: str = "") -> str:
    first = err.errors()[0]
    key = prefix + ".".join(str(p) for p in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{path}: unknown key `{key}`: remove it or check its spelling"
    message = first["msg"].removeprefix("Value error, ")
    return f"{path}: `{key}`: {message} (got {first.get('input')!r})"


def read_params(path: str | Path = "params.yaml") -> Params:
    """params.yaml parsed and checked, except the type-specific keys of `model.<name>` sections
    (`aebench.plan.load_params` checks those against the model registry)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} not found: run from the repository root or set AEBENCH_ROOT")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from exc
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise UserError(_format_error(path, exc)) from None


def model_type_of(params: Params, name: str) -> str:
    """The implementation `model.<name>.type` names (default: the section's name)."""
    section = params.model.get(name, ModelSection())
    return section.type or name


def unlisted_fields(cls: type[BaseModel], given: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The fields of config class `cls` that the section `given` leaves out, as dotted keys (a
    nested config's fields included, e.g. `pixelcnn.levels`), with the defaults that apply."""
    missing: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if name not in given:
            missing[prefix + name] = default.model_dump() if isinstance(default, BaseModel) else default
        elif isinstance(default, BaseModel) and isinstance(given[name], dict):
            missing.update(unlisted_fields(type(default), given[name], f"{prefix}{name}."))
    return missing


def incomplete_sections(params: Params, config_class: Callable[[str], type[BaseModel]]) -> list[str]:
    """One warning per section (`train`, ..., `model.<name>`) that does not list every field of
    its config class. The defaults apply, so the file stays valid, but `dvc exp run -S key=value`
    can only set a key the file has (else `-S +key=value`). `config_class` is the model
    registry's lookup; a section of an unknown type is skipped (loading the params refuses it)."""
    sections = {name: (type(getattr(params, name)), dict.fromkeys(getattr(params, name).model_fields_set))
                for name in ("data", "train", "evaluate", "diffmap")}
    sections["train"][1]["seed"] = None  # set per run from `seeds`, never in the file
    for name in params.models:
        section = params.model.get(name, ModelSection())
        try:
            sections[f"model.{name}"] = (config_class(model_type_of(params, name)), dict(section.model_extra or {}))
        except KeyError:
            continue
    by_section: dict[str, list[tuple[str, Any]]] = {}
    for key, (cls, given) in sections.items():
        for dotted, default in unlisted_fields(cls, given).items():
            parent, _, field = f"{key}.{dotted}".rpartition(".")
            by_section.setdefault(parent, []).append((field, default))
    warnings = []
    for section, fields in by_section.items():
        # null as an empty value: the form `dvc exp run -S` writes back
        pairs = ", ".join(f"`{field}:{' ' + _flow(value) if value is not None else ''}`" for field, value in fields)
        count = "1 field" if len(fields) == 1 else f"{len(fields)} fields"
        warnings.append(f"{section} leaves out {count}: add {pairs} to {section} so `dvc exp run -S` can set "
                        f"{'it' if len(fields) == 1 else 'them'}")
    return warnings


def _flow(value: Any) -> str:
    """A value as one line of YAML (`10.0`, `auto`, `[1, 2]`, `{layers: 5}`)."""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1 << 20).removesuffix("...\n").strip()


def _layered(cls: type[BaseModel], path: Path | str, base: dict, *layers: tuple[dict, str]) -> BaseModel:
    """`cls` validated from `base` updated by each layer's keys in turn; a layer that fails
    names its keys with the layer's prefix (`model.vae.`, `runs.<run>.train.`). The first layer
    is always validated, an empty later one adds nothing."""
    merged, value = dict(base), None
    for keys, prefix in layers:
        if value is not None and not keys:
            continue
        merged.update(keys)
        try:
            value = cls.model_validate(merged)
        except ValidationError as exc:
            raise UserError(_format_error(path, exc, prefix=prefix)) from None
    return value


def resolve_section(params: Params, name: str, config_class: Callable[[str], type[BaseModel]],
                    known_types: Callable[[], list[str]], path: Path | str = "params.yaml", run: str | None = None,
                    seed: int = 0):
    """The validated config of model `name` and its effective TrainConfig: the global `train`
    section, then `model.<name>.train`, then (given a run key) `runs.<run>.train`; the model's
    keys are `model.<name>`'s, then (given a run key) `runs.<run>.config`'s.
    `config_class(type)` is the model registry's lookup (KeyError for an unknown type).

    `seed` is the training seed of this run's stage (one of `Params.seeds_of(run)`).

    Returns (model_type, config, train_config); errors name `model.<name>.<key>`.
    """
    section = params.model.get(name, ModelSection())
    model_type = model_type_of(params, name)
    try:
        cls = config_class(model_type)
    except KeyError:
        raise UserError(
            f"{path}: model `{name}` has unknown type `{model_type}`; known types: {', '.join(known_types())}"
            f" (add a `model.{name}.type` key or fix `models`)"
        ) from None
    spec = params.runs[run] if run is not None else Run(dataset="", model=name)
    for layer, where in ((section.train, f"model.{name}.train"), (spec.train, f"runs.{run}.train")):
        if "seed" in layer:
            raise UserError(f"{path}: `{where}.seed`: {SEED_MOVED}")
    config = _layered(cls, path, {}, (dict(section.model_extra or {}), f"model.{name}."),
                      (spec.config, f"runs.{run}.config."))
    train = _layered(TrainConfig, path, params.train.model_dump(), (section.train, f"model.{name}.train."),
                     (spec.train, f"runs.{run}.train."))
    return model_type, config, train.model_copy(update={"seed": seed})
