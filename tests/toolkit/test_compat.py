"""The compatibility layer: s3prl imports and its checkpoints load on today's torch/torchaudio."""

import argparse
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch

from s3prl_mi_probe.toolkit import activate, compat

activate()
import torchaudio  # noqa: E402  (after the shims, as s3prl sees it)


def run_python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)


def test_interpreter_start_does_not_import_torch():
    result = run_python("import sys; print('torch' in sys.modules, 's3prl_mi_probe.runner.hook' in sys.modules)")
    assert result.stdout.split() == ["False", "True"], result.stderr


def test_hub_imports_and_shims_apply_on_first_s3prl_import():
    result = run_python(
        "import s3prl.hub, torchaudio, importlib\n"
        "torchaudio.set_audio_backend('sox_io')\n"
        "print(len([n for n in dir(s3prl.hub) if not n.startswith('_')]) > 200)\n"
        "print(importlib.import_module('s3prl.downstream.mi_probe.expert').DownstreamExpert.__module__)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "s3prl_mi_probe.runner.expert"]


def test_disabled_by_environment():
    code = (
        "import sys, torchaudio\n"
        "print(any('S3prlImportHook' in type(f).__name__ for f in sys.meta_path), hasattr(torchaudio, 'info'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "S3PRL_MI_PROBE_DISABLE": "1"},
        timeout=600,
    )
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_torchaudio_import_alone_gets_the_torchaudio_shims():
    result = run_python(
        "import sys, torchaudio\n"
        "print('s3prl' in sys.modules, hasattr(torchaudio, 'set_audio_backend'), hasattr(torchaudio, 'info'))\n"
    )
    assert result.stdout.split() == ["False", "True", "True"], result.stderr[-3000:]


def test_joblib_workers_that_never_import_s3prl_get_the_shims():
    """get_audio_info ships its inner function by value to loky workers, which import torchaudio only."""
    result = run_python(
        "import tempfile\n"
        "from s3prl.util.audio_info import get_audio_info\n"
        "from s3prl.util.pseudo_data import pseudo_audio\n"
        "with pseudo_audio([1.0, 1.5]) as (paths, _), tempfile.TemporaryDirectory() as cache:\n"
        "    infos = get_audio_info(paths, ['a', 'b'], cache_dir=cache, num_workers=2)\n"
        "print(*[info['num_frames'] for info in infos])\n"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["16000", "24000"]


def test_the_users_own_stand_ins_are_kept():
    """A module without a spec in sys.modules and an attribute already set survive s3prl's import."""
    result = run_python(
        "import sys, types, torchaudio\n"
        "stand_in = types.ModuleType('torchaudio.sox_effects')\n"
        "sys.modules['torchaudio.sox_effects'] = stand_in\n"
        "def set_audio_backend(backend=None):\n"
        "    pass\n"
        "torchaudio.set_audio_backend = set_audio_backend\n"
        "import s3prl.hub, s3prl.upstream.mos_prediction.expert\n"
        "from torchaudio.sox_effects import apply_effects_tensor\n"
        "print(sys.modules['torchaudio.sox_effects'] is stand_in, torchaudio.sox_effects is stand_in,\n"
        "      torchaudio.set_audio_backend is set_audio_backend)\n"
        "try:\n"
        "    apply_effects_tensor(None, 16000, [])\n"
        "except RuntimeError as error:\n"
        "    print(error)\n"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    kept, message = result.stdout.strip().split("\n")
    assert kept.split() == ["True", "True", "True"]
    assert message.startswith("torchaudio.sox_effects was removed in torchaudio 2.9")


def test_s3prl_noise_is_silenced_and_the_same_warnings_elsewhere_are_not():
    result = run_python(
        "import warnings\n"
        "import s3prl.hub, s3prl.downstream.runner\n"
        "from s3prl.upstream.wav2vec2.wav2vec2_model import make_conv_pos\n"
        "make_conv_pos(16, 4, 2)  # s3prl applies torch's deprecated weight_norm\n"
        "print('s3prl done', flush=True)\n"
        "import torch\n"
        "torch.nn.utils.weight_norm(torch.nn.Linear(2, 2))\n"
        "try:\n"
        "    torch.jit.script_method(lambda self, x: x)  # warns, then cannot script a lambda\n"
        "except Exception:\n"
        "    pass\n"
        "warnings.warn('`torch.cuda.amp.autocast(args...)` is deprecated (mine)', FutureWarning)\n"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "s3prl done"
    # Only the warnings raised after s3prl's, for code that is not s3prl's.
    warnings = [line for line in result.stderr.splitlines() if "Warning" in line]
    assert len(warnings) == 3, result.stderr
    assert "torch.nn.utils.weight_norm` is deprecated" in warnings[0]
    assert "torch.jit.script_method` is deprecated" in warnings[1] and "(mine)" in warnings[2]
    assert "ESPnet" not in result.stderr


def test_other_s3prl_modules_still_import():
    modules = [
        "s3prl.downstream.phone_linear.expert",
        "s3prl.downstream.emotion.expert",
        "s3prl.downstream.fluent_commands.expert",
        "s3prl.downstream.timit_phone_linear.expert",
        "s3prl.downstream.example.expert",
        "s3prl.upstream.mos_prediction.expert",
    ]
    result = run_python(
        "import importlib, traceback\n"
        f"for module in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(module)\n"
        "        print(module, 'imported')\n"
        "    except Exception:\n"
        "        print(module, 'failed:', traceback.format_exc())\n"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [f"{module} imported" for module in modules], result.stdout


def test_sox_effects_fail_when_called_not_at_import():
    from torchaudio.sox_effects import apply_effects_tensor

    with pytest.raises(RuntimeError, match="sox_effects was removed"):
        apply_effects_tensor(torch.zeros(1, 10), 16000, [["gain", "1"]])


def test_audio_io_roundtrip_through_soundfile(tmp_path):
    path = tmp_path / "tone.wav"
    samples = (0.5 * np.sin(np.arange(8000) / 10)).astype(np.float32)
    torchaudio.save(str(path), torch.from_numpy(samples)[None], 8000, bits_per_sample=16)
    meta = torchaudio.info(str(path))
    assert (meta.sample_rate, meta.num_frames, meta.num_channels, meta.bits_per_sample) == (8000, 8000, 1, 16)
    waveform, sample_rate = torchaudio.load(str(path), frame_offset=100, num_frames=50)
    assert sample_rate == 8000 and waveform.shape == (1, 50)
    np.testing.assert_allclose(waveform[0].numpy(), samples[100:150], atol=1e-4)
    raw, _ = torchaudio.load(str(path), normalize=False)
    assert raw.dtype == torch.int16
    assert soundfile.info(str(path)).subtype == "PCM_16"


def test_s3prl_checkpoints_load_with_weights_only_default(tmp_path):
    path = tmp_path / "states-10.ckpt"
    args = argparse.Namespace(upstream="fbank", seed=1337, local_rank=None)
    torch.save({"Args": args, "Config": {"runner": {"total_steps": 10}}, "Step": 10}, path)
    loaded = torch.load(path, map_location="cpu")
    assert loaded["Args"] == args


def test_apply_is_idempotent():
    compat.apply()
    compat.apply()
    assert torchaudio.load is compat.load or not hasattr(torchaudio, "load_with_torchcodec")


def test_apc_local_loads_a_raw_pretraining_checkpoint(tmp_path):
    """The keys s3prl's pretraining runner and APC expert save (Args is an argparse.Namespace)."""
    import s3prl.hub as hub
    from s3prl.upstream.apc.apc import APC

    audio = {"feat_type": "fbank", "feat_dim": 40, "frame_length": 25, "frame_shift": 10, "cmvn": True}
    config = {
        "data": {"audio": audio},
        "model": {"paras": {"num_layers": 3, "hidden_size": 32, "dropout": 0.1, "residual": True}},
    }
    model = APC(40, **config["model"]["paras"])
    path = tmp_path / "states-30.ckpt"
    torch.save(
        {
            "Optimizer": torch.optim.Adam(model.parameters()).state_dict(),
            "Step": 30,
            "Args": argparse.Namespace(config="config_runner.yaml", seed=1337, device="cpu"),
            "Config": {"runner": {"total_steps": 30}},
            "config": config,
            "model": model.state_dict(),
            "Upstream_Config": config,
        },
        path,
    )
    hidden_states = hub.apc_local(ckpt=str(path))([torch.randn(16000)])["hidden_states"]
    assert [tuple(h.shape) for h in hidden_states] == [(1, 98, 32)] * 3
