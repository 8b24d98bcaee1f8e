"""Data-parallel training: 2 CPU processes under torchrun (gloo) reach the same weights as
one process with the same global batch."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

SCRIPT = textwrap.dedent("""
    import sys, torch
    from aebench import distributed
    from aebench.config import TrainConfig
    from aebench.models import build_model
    from aebench.models.base import DataInfo
    from aebench.training import train

    out = sys.argv[1]
    torch.set_num_threads(1)
    distributed.init(torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    def data(n):
        return {"x": torch.rand(n, 1, 8, 8, generator=g), "label": torch.zeros(n, dtype=torch.long),
                "group": torch.zeros(n, dtype=torch.long), "index": torch.arange(n), "pos": torch.arange(n)}
    train_data, val_data = data(128), data(32)
    torch.manual_seed(7)
    model = build_model("ae", {"latent_dim": 3, "width": 4}, DataInfo((1, 8, 8), "image", 10, 128))
    cfg = TrainConfig(epochs=2, batch_size=32, lr=1e-2, patience=10)
    result = train(model, train_data, val_data, cfg, resume_path=__import__("pathlib").Path(out + f".resume{distributed.rank()}"),
                   fingerprint="x")
    if distributed.is_main():
        torch.save({k: v for k, v in model.state_dict().items()}, out)
    distributed.shutdown()
""")


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    single, double = tmp_path / "single.pt", tmp_path / "double.pt"
    subprocess.run([sys.executable, str(script), str(single)], check=True, timeout=300, capture_output=True)
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", str(script), str(double)],
                          timeout=300, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = torch.load(single, weights_only=True), torch.load(double, weights_only=True)
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5, rtol=1e-4), key
    # and training did move the weights (the comparison is not trivially true)
    torch.manual_seed(7)
    from aebench.models import build_model
    from aebench.models.base import DataInfo

    initial = build_model("ae", {"latent_dim": 3, "width": 4}, DataInfo((1, 8, 8), "image", 10, 128)).state_dict()
    assert any(not torch.allclose(initial[k], a[k]) for k in a)
