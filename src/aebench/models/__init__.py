"""Model registry: every module in this package registers its model types on import.

Adding a model means adding one file here that decorates its class with `@register("name")`;
nothing else in aebench names it. A model with several files (model, sampler, evaluation) is
a subpackage whose `__init__` imports its model (`acn/`, `dvae/`, `mlvae/`). `build_model` and
`load_checkpoint` are how the trainer, evaluator and MLflow serving wrapper get models;
`metric_directions` and `key_metrics` gather what the models declare about their own metrics (`own_metrics`).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Callable

import torch

from aebench.errors import UserError
from aebench.models.base import AutoEncoderBase, DataInfo, ModelConfig

_TYPES: dict[str, type[AutoEncoderBase]] = {}
_LOADED = False


def register(name: str) -> Callable[[type[AutoEncoderBase]], type[AutoEncoderBase]]:
    def decorate(cls: type[AutoEncoderBase]) -> type[AutoEncoderBase]:
        if name in _TYPES:
            raise RuntimeError(f"model type {name!r} registered twice")
        cls.type_name = name
        _TYPES[name] = cls
        return cls

    return decorate


def _discover() -> None:
    global _LOADED
    if not _LOADED:
        for info in pkgutil.iter_modules(__path__):
            if info.name != "base":
                importlib.import_module(f"{__name__}.{info.name}")
        _LOADED = True


def known_types() -> list[str]:
    _discover()
    return sorted(_TYPES)


def model_class(model_type: str) -> type[AutoEncoderBase]:
    _discover()
    return _TYPES[model_type]


def config_class(model_type: str) -> type[ModelConfig]:
    return model_class(model_type).config_class


def metric_directions() -> dict[str, str]:
    """The metric directions every registered model declares (`own_metrics`), models in name
    order; a metric two models declare must have the same direction in both."""
    joined: dict[str, str] = {}
    for name in known_types():
        for metric, how in _TYPES[name].own_metrics.directions.items():
            if joined.setdefault(metric, how) != how:
                raise RuntimeError(f"model type {name!r} declares {metric!r} {how!r}, another {joined[metric]!r}")
    return joined


def key_metrics() -> tuple[str, ...]:
    """The key metrics every registered model declares (`own_metrics`), in name order, each once."""
    return tuple(dict.fromkeys(k for name in known_types() for k in _TYPES[name].own_metrics.key))


def build_model(model_type: str, config: ModelConfig | dict, info: DataInfo) -> AutoEncoderBase:
    cls = model_class(model_type)
    if isinstance(config, dict):
        config = cls.config_class.model_validate(config)
    return cls(config, info)


CHECKPOINT_FORMAT = 1


def checkpoint_payload(model: AutoEncoderBase, name: str, **extra) -> dict:
    """Plain data only (tensors, numbers, strings), so it loads with weights_only=True."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model_type": model.type_name,
        "model_name": name,
        "config": model.config.model_dump(),
        "data_info": model.info.to_dict(),
        "state_dict": model.state_dict(),
        **extra,
    }


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[AutoEncoderBase, dict]:
    """Rebuild a model from a checkpoint; refuses pickled code, other formats and shape mismatches."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} is missing: run the train stage for this model first")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise UserError(f"{path} is not a loadable aebench checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); delete it and retrain") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not an aebench checkpoint (format {CHECKPOINT_FORMAT}); delete it and retrain")
    model_type = payload["model_type"]
    if model_type not in known_types():
        raise UserError(f"{path} holds unknown model type {model_type!r}; known: {', '.join(known_types())}")
    model = build_model(model_type, payload["config"], DataInfo.from_dict(payload["data_info"]))
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise UserError(f"{path} does not fit model type {model_type!r} with its saved config ({str(exc).splitlines()[0][:200]}); delete it and retrain") from exc
    return model.to(map_location), payload
