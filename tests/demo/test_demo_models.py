"""The shipped demo APCs load through s3prl's own upstream loader; the pretraining recipe runs."""

import os
from pathlib import Path

import pytest
import torch

import s3prl_mi_probe
from s3prl_mi_probe.toolkit import activate

DEMO_MODELS = Path(s3prl_mi_probe.__file__).resolve().parent / "demo" / "models"
SHIPPED = ("apc_synth.ckpt", "apc_random.ckpt")
MAX_BYTES = 5 * 2**20


@pytest.fixture(scope="module")
def hub():
    activate()
    import s3prl.hub

    return s3prl.hub


def hidden_states(hub, path, seconds=(1.0, 0.5)):
    torch.manual_seed(0)
    wavs = [0.1 * torch.randn(int(16000 * s)) for s in seconds]
    model = hub.apc_local(ckpt=str(path)).eval()
    with torch.no_grad():
        return model(wavs)["hidden_states"]


def assert_every_layer(states, path, seconds=(1.0, 0.5)):
    hidden_size = torch.load(path, map_location="cpu", weights_only=True)["config"]["model"]["paras"]["hidden_size"]
    assert len(states) == 3
    for state in states:
        assert state.shape[0] == len(seconds)
        assert state.shape[-1] == hidden_size
        # 25 ms windows every 10 ms: ~100 frames per second (98 for one second)
        assert abs(state.shape[1] - 100 * max(seconds)) <= 3
        assert torch.isfinite(state).all()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_checkpoint_loads_with_apc_local(hub, name):
    path = DEMO_MODELS / name
    assert path.is_file(), f"{path} missing: run python -m s3prl_mi_probe.demo.pretrain"
    assert path.stat().st_size < MAX_BYTES
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)  # plain types: no shim needed
    assert "Optimizer" not in checkpoint and "Args" not in checkpoint
    assert_every_layer(hidden_states(hub, path), path)


def test_learned_and_random_differ(hub):
    learned, random = (torch.load(DEMO_MODELS / name, map_location="cpu", weights_only=True) for name in SHIPPED)
    assert learned["config"] == random["config"]
    assert learned["model"].keys() == random["model"].keys()
    assert any(not torch.equal(learned["model"][key], random["model"][key]) for key in learned["model"])
    assert learned["mi_probe_recipe"]["steps"] >= 100
    assert learned["mi_probe_recipe"]["heldout_l1_trained"] < learned["mi_probe_recipe"]["heldout_l1_random"]
    a, b = hidden_states(hub, DEMO_MODELS / SHIPPED[0]), hidden_states(hub, DEMO_MODELS / SHIPPED[1])
    assert not torch.allclose(a[-1], b[-1])


def _files_under(folder):
    return {os.path.join(root, name) for root, _, names in os.walk(folder) for name in names}


def test_pretrain_apc_runs_s3prl_run_pretrain(hub, tmp_path):
    from s3prl_mi_probe.corpus.synthetic.synth import synthesize_corpus
    from s3prl_mi_probe.demo.pretrain import pretrain_apc, write_random_apc
    from s3prl_mi_probe.toolkit.run_pretrain import pretraining_folder

    manifest = synthesize_corpus(tmp_path / "corpus", utterances=8, seed=2)
    before = _files_under(pretraining_folder())
    path = pretrain_apc(manifest, tmp_path / "pretrain", steps=5, hidden_size=16)
    assert _files_under(pretraining_folder()) == before  # nothing left inside the installed s3prl

    assert path == (tmp_path / "pretrain" / "apc_synth.ckpt").resolve()
    assert "[pretrain_demo] shims active" in (tmp_path / "pretrain" / "pretrain.log").read_text()
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    assert checkpoint["Step"] == 4  # s3prl's runner stores the step count before the last update
    assert checkpoint["mi_probe_recipe"]["steps"] == 5
    assert_every_layer(hidden_states(hub, path), path)

    control = write_random_apc(tmp_path / "random.ckpt", like=path)
    assert_every_layer(hidden_states(hub, control), control)
