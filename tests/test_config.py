from pathlib import Path

import pytest
import yaml

from aebench.plan import load_params, resolve_model
from aebench.errors import UserError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, data) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def repo_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_repo_params_are_valid():
    params = load_params(REPO / "params.yaml")
    assert params.datasets and params.models
    for name in params.models:
        model_type, config, train = resolve_model(params, name)
        assert config.latent_dim > 0 and train.epochs > 0


@pytest.mark.parametrize("mutate, key", [
    (lambda p: p["train"].update(lr=-0.1), "train.lr"),
    (lambda p: p["train"].update(batch_size=0), "train.batch_size"),
    (lambda p: p["train"].update(epochs="ten"), "train.epochs"),
    (lambda p: p["train"].update(learning_rate=0.1), "train.learning_rate"),
    (lambda p: p.update(modles=["ae"]), "modles"),
    (lambda p: p["model"]["vae"].update(latent_dim=0), "model.vae.latent_dim"),
    (lambda p: p["model"]["vae"].update(betta=2.0), "model.vae.betta"),
    (lambda p: p["model"]["vae"].update(train={"epochs": -1}), "model.vae.train.epochs"),
    (lambda p: p["data"].update(val_fraction=1.5), "data.val_fraction"),
    (lambda p: p["runs"].update(x={"dataset": "digits", "model": "ae"}), "runs"),
    (lambda p: p["runs"]["digits-vae"].update(train={"epoch": 2}), "runs.digits-vae.train.epoch"),
    (lambda p: p["runs"]["digits-vae"].update(config={"latent_dim": 0}), "runs.digits-vae.config.latent_dim"),
    (lambda p: p["runs"]["digits-vae"].update(config={"betta": 2.0}), "runs.digits-vae.config.betta"),
])
def test_bad_values_name_the_key(tmp_path, mutate, key):
    data = repo_params()
    mutate(data)
    with pytest.raises(UserError) as err:
        load_params(write(tmp_path, data))
    message = str(err.value)
    assert f"`{key}`" in message and "params.yaml" in message and "\n" not in message


def test_unknown_model_type_lists_known_types(tmp_path):
    data = repo_params()
    data["models"] = data["models"] + ["vea"]
    with pytest.raises(UserError, match="unknown type `vea`.*vae"):
        load_params(write(tmp_path, data))


def test_named_variant_and_train_override(tmp_path):
    data = repo_params()
    data["models"] = data["models"] + ["beta8vae"]
    data["model"]["beta8vae"] = {"type": "vae", "beta": 8.0, "train": {"epochs": 3}}
    params = load_params(write(tmp_path, data))
    model_type, config, train = resolve_model(params, "beta8vae")
    assert model_type == "vae" and config.beta == 8.0 and train.epochs == 3
    assert resolve_model(params, "vae")[2].epochs == params.train.epochs


def test_a_runs_train_override_applies_to_that_run_only(tmp_path):
    data = repo_params()
    data["model"]["vae"]["train"] = {"epochs": 7, "lr": 0.002}
    data["runs"]["digits-vae"]["train"] = {"epochs": 2}
    params = load_params(write(tmp_path, data))
    train = resolve_model(params, "vae", run="digits-vae")[2]
    assert train.epochs == 2 and train.lr == 0.002  # the run's key wins, the model's others stay
    assert resolve_model(params, "vae", run="loop-vae")[2].epochs == 7
    assert resolve_model(params, "vae")[2].epochs == 7


def test_a_runs_model_config_applies_to_that_run_only(tmp_path):
    data = repo_params()
    data["model"]["vae"].update(latent_dim=5, beta=2.0)
    data["runs"]["digits-vae"]["config"] = {"latent_dim": 9}
    params = load_params(write(tmp_path, data))
    config = resolve_model(params, "vae", run="digits-vae")[1]
    assert config.latent_dim == 9 and config.beta == 2.0  # the run's key wins, the model's others stay
    assert resolve_model(params, "vae", run="loop-vae")[1].latent_dim == 5
    assert resolve_model(params, "vae")[1].latent_dim == 5


def test_invalid_yaml_and_missing_file(tmp_path):
    (tmp_path / "params.yaml").write_text("datasets: [digits\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")
    with pytest.raises(UserError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_mirror_resolution():
    from aebench.config import DataConfig

    cfg = DataConfig(mirror="../shared/data/", options={"omniglot": {"mirror": "http://127.0.0.1:1/x"}})
    assert cfg.mirror_for("mnist") == "../shared/data/mnist"
    assert cfg.mirror_for("omniglot") == "http://127.0.0.1:1/x"
    assert DataConfig().mirror_for("mnist") is None
