"""Pretrain the small APC shipped in ``s3prl_mi_probe/demo/models/`` with s3prl's own pretraining code.

s3prl 0.4.18 ships ``run_pretrain.py`` and ``pretrain/apc`` but no ``config_runner.yaml`` /
``config_model.yaml``, so :func:`pretrain_apc` writes both, plus the data list that s3prl's APC
dataset reads (``<file_path>/train.csv`` with ``file_path,length`` columns, audio paths relative to
``libri_root``), and runs ``run_pretrain.py -u apc`` unmodified in a subprocess whose working
directory is the installed s3prl package folder (the script imports ``pretrain.runner`` and lists
``pretrain/``). Everything it writes goes under ``out`` (``-p``), never into the s3prl package.
By default the data list points at fbank features precomputed once per utterance by s3prl's own
APC preprocessor (``libri_root: null``, a layout s3prl's APC dataset also reads); recomputing them
from the audio at every step (``precompute_features=False``) works too but is slower.

The subprocess is ``python -m s3prl_mi_probe.toolkit.run_pretrain``, which activates the
compatibility layer and the two stand-ins that only this code path of s3prl needs before it runs
the script (see :mod:`s3prl_mi_probe.toolkit.run_pretrain`).

The saved checkpoints keep only what ``apc_local`` reads (``config``, ``model``) plus the upstream
config, the step and the recipe, no optimizer state and no pickled ``argparse.Namespace``: they
load weights-only on any torch. :func:`write_random_apc` writes the same architecture randomly
initialised (the control) in the same format.

``python -m s3prl_mi_probe.demo.pretrain`` rebuilds both shipped checkpoints.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile
import yaml

from s3prl_mi_probe.corpus.manifest import read_manifest
from s3prl_mi_probe.demo.models import FOLDER as DEMO_MODELS_FOLDER
from s3prl_mi_probe.toolkit import activate
from s3prl_mi_probe.toolkit.models import apc_model, apc_preprocessor
from s3prl_mi_probe.toolkit.run_pretrain import pretraining_folder

DEFAULT_STEPS = 2000
DEFAULT_CORPUS_UTTERANCES = 400
DEFAULT_CORPUS_SEED = 1
NUM_LAYERS = 3  # s3prl's APC upstream hooks rnn_layers[1], rnn_layers[2] and the model output
N_FUTURE = 5  # s3prl's default APC time shift (frames of 10 ms)
SEQUENCE_LENGTH = 200  # frames: s3prl's APC dataset crops longer utterances at random
BATCH_SIZE = 16
LEARNING_RATE = 1e-3
LOG_STEP = 50
EXPNAME = "apc_synth"


def model_config(hidden_size: int = 64) -> dict:
    """s3prl's APC upstream config: 3 GRU layers over 80-dim log-mel fbank (25 ms / 10 ms, CMVN)."""
    return {
        "model": {"paras": {"num_layers": NUM_LAYERS, "hidden_size": hidden_size, "dropout": 0.1, "residual": True}},
        "data": {
            "audio": {
                "feat_type": "fbank",
                "feat_dim": 80,
                "frame_length": 25,
                "frame_shift": 10,
                "decode_wav": False,
                "cmvn": True,
            }
        },
        "task": {"sequence_length": SEQUENCE_LENGTH, "n_future": N_FUTURE},
    }


def runner_config(steps: int, data_dir: Path, audio_root: Path | None) -> dict:
    """s3prl's pretraining runner config: Adam with linear warm-up and decay, CPU-sized batches.

    ``audio_root`` is s3prl's ``libri_root``: audio paths in the data list are relative to it and
    features are computed on the fly; ``None`` makes s3prl's APC dataset read precomputed ``.npy``
    features relative to ``data_dir`` instead.
    """
    if steps < 2:
        raise ValueError("steps must be >= 2 (s3prl's runner asserts total_steps > log_step and save_step)")
    return {
        "runner": {
            "n_epochs": -1,  # train for total_steps
            "total_steps": steps,
            "gradient_clipping": 5.0,
            "gradient_accumulate_steps": 1,
            "log_step": max(1, min(LOG_STEP, steps // 2)),
            "save_step": steps - 1,  # the runner also saves at the last step
            "max_keep": 1,
            "fp16": False,
        },
        "optimizer": {"name": "Adam", "lr": LEARNING_RATE},
        "scheduler": {"name": "linear_schedule_with_warmup", "num_warmup_steps": max(1, steps // 20)},
        "pretrain_expert": {
            "datarc": {
                "num_workers": 0,
                "train_batch_size": BATCH_SIZE,
                "max_timestep": 0,
                "libri_root": None if audio_root is None else str(audio_root),
                "file_path": str(data_dir),
                "sets": ["train"],
            }
        },
    }


def write_data_list(manifest: Path, data_dir: Path, split: str = "train", audio_config: dict | None = None):
    """Write ``data_dir/<split>.csv`` (``file_path,length``) for s3prl's APC dataset.

    Without ``audio_config``: audio paths relative to the manifest folder (s3prl's ``libri_root``)
    and lengths in samples; s3prl computes the features on the fly. With it: each utterance's
    features, computed by s3prl's own APC preprocessor (``create_transform(audio_config)``, as
    ``apc_local`` does at inference), saved as ``data_dir/feats/<id>.npy``, paths relative to
    ``data_dir`` and lengths in frames (``libri_root`` must then be null). Returns the csv path and
    the number of utterances.
    """
    manifest = Path(manifest).resolve()
    data_dir = Path(data_dir)
    utterances = [u for u in read_manifest(manifest) if u.split == split]
    if len(utterances) < 2:
        raise ValueError(f"{manifest}: {len(utterances)} {split} utterance(s); s3prl's APC dataset needs at least 2")
    data_dir.mkdir(parents=True, exist_ok=True)
    if audio_config is None:
        rows = [f"{_relative(u.audio, manifest.parent)},{soundfile.info(str(u.audio)).frames}" for u in utterances]
    else:
        rows = _write_features(utterances, data_dir / "feats", audio_config)
    csv = data_dir / f"{split}.csv"
    csv.write_text("file_path,length\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return csv, len(rows)


def _relative(path, root: Path) -> str:
    path = Path(path).resolve()
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()  # os.path.join(root, absolute) is the absolute path


def _write_features(utterances, folder: Path, audio_config: dict) -> list[str]:
    import numpy as np
    import torch

    preprocessor = apc_preprocessor(audio_config)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # kaldi fbank of one short utterance: extra threads only contend
    try:
        with torch.no_grad():
            for utterance in utterances:
                wav, _ = soundfile.read(str(utterance.audio), dtype="float32", always_2d=True)
                feat = preprocessor(torch.from_numpy(wav.T.copy())).numpy().astype(np.float32)
                np.save(folder / f"{utterance.id}.npy", feat)
                rows.append(f"{folder.name}/{utterance.id}.npy,{feat.shape[0]}")
    finally:
        torch.set_num_threads(threads)
    return rows


def pretrain_apc(
    manifest: Path,
    out: Path,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    hidden_size: int = 64,
    precompute_features: bool = True,
    threads: int = 1,
    timeout: float | None = None,
) -> Path:
    """Pretrain a 3-layer APC on the manifest's train utterances with s3prl's ``run_pretrain.py``.

    Writes ``out/config_runner.yaml``, ``out/config_model.yaml``, the data list ``out/data/train.csv``
    (with ``precompute_features``, s3prl's fbank features once per utterance in ``out/data/feats``;
    otherwise s3prl recomputes them from the audio at every step), s3prl's experiment folder
    ``out/exp`` (checkpoint, tensorboard log) and ``out/pretrain.log``; returns
    ``out/apc_synth.ckpt``, the final checkpoint stripped to what ``apc_local`` needs plus a
    ``mi_probe_recipe`` dict (steps, seed, data, logged training losses, wall time). ``threads``
    is torch's thread count in the subprocess: 1 is fastest for this small GRU.
    """
    manifest = Path(manifest).resolve()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    config = model_config(hidden_size)
    data_dir = out / "data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    audio_config = config["data"]["audio"] if precompute_features else None
    _, num_train = write_data_list(manifest, data_dir, audio_config=audio_config)
    runner_yaml, model_yaml = out / "config_runner.yaml", out / "config_model.yaml"
    audio_root = None if precompute_features else manifest.parent
    runner_yaml.write_text(yaml.safe_dump(runner_config(steps, data_dir, audio_root)), encoding="utf-8")
    model_yaml.write_text(yaml.safe_dump(config), encoding="utf-8")
    expdir = out / "exp"
    if expdir.exists():
        shutil.rmtree(expdir)  # a stale checkpoint there would be taken for this run's

    command = [
        sys.executable,
        "-m",
        "s3prl_mi_probe.toolkit.run_pretrain",
        "-u",
        "apc",
        "-n",
        EXPNAME,
        "-p",
        str(expdir),
        "-c",
        str(runner_yaml),
        "-g",
        str(model_yaml),
        "--device",
        "cpu",
        "--seed",
        str(seed),
    ]
    folder = pretraining_folder()
    env = dict(os.environ)
    ours = str(Path(__file__).resolve().parents[2])  # the folder holding s3prl_mi_probe/, for ``-m``
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), ours, env.get("PYTHONPATH")) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave nothing inside the installed s3prl package
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    env["MPLBACKEND"] = "Agg"
    log = out / "pretrain.log"
    start = time.monotonic()
    with open(log, "w", encoding="utf-8") as stream:
        result = subprocess.run(
            command, cwd=folder, env=env, stdout=stream, stderr=subprocess.STDOUT, timeout=timeout, check=False
        )
    seconds = time.monotonic() - start
    text = log.read_text(encoding="utf-8", errors="replace")
    if result.returncode != 0:
        raise RuntimeError(f"s3prl run_pretrain.py failed (exit {result.returncode}); log {log}:\n{text[-3000:]}")
    if "[pretrain_demo] shims active" not in text:
        raise RuntimeError(f"the pretraining subprocess did not report its shims; see {log}")

    final = _final_checkpoint(expdir)
    checkpoint = _load(final)
    recipe = {
        "recipe": "s3prl run_pretrain.py -u apc (s3prl_mi_probe.demo.pretrain.pretrain_apc)",
        "steps": steps,
        "seed": seed,
        "hidden_size": hidden_size,
        "num_layers": NUM_LAYERS,
        "n_future": N_FUTURE,
        "sequence_length": SEQUENCE_LENGTH,
        "batch_size": BATCH_SIZE,
        "learning_rate": LEARNING_RATE,
        "precomputed_features": precompute_features,
        "train_utterances": num_train,
        "train_loss": read_training_losses(expdir),
        "wall_seconds": round(seconds, 1),
    }
    target = out / "apc_synth.ckpt"
    save_apc_checkpoint(target, checkpoint["config"], checkpoint["model"], step=checkpoint.get("Step"), recipe=recipe)
    return target


def _final_checkpoint(expdir: Path) -> Path:
    """The checkpoint s3prl's runner saved last (``states-<step>.ckpt`` or ``states-epoch-<n>.ckpt``)."""
    found = sorted(expdir.glob("states-*.ckpt"), key=lambda path: path.stat().st_mtime_ns)
    if not found:
        raise RuntimeError(f"s3prl's runner saved no checkpoint in {expdir}")
    return found[-1]


def _load(path):
    import torch

    activate()  # s3prl's raw checkpoints pickle an argparse.Namespace ("Args")
    return torch.load(path, map_location="cpu")


def read_training_losses(expdir: Path) -> list[list[float]]:
    """``[step, loss]`` pairs that s3prl's runner logged to tensorboard (one batch each)."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import (
            EventAccumulator,
        )
    except ImportError:
        return []
    accumulator = EventAccumulator(str(expdir), size_guidance={"scalars": 0})
    accumulator.Reload()
    tag = "apc/train-loss"
    if tag not in accumulator.Tags().get("scalars", []):
        return []
    return [[event.step, round(float(event.value), 5)] for event in accumulator.Scalars(tag)]


def save_apc_checkpoint(path: Path, config: dict, model_state: dict, step=None, recipe=None) -> Path:
    """Save in s3prl's APC checkpoint layout, stripped: plain types only, no optimizer state."""
    import torch

    checkpoint = {
        "config": copy.deepcopy(config),
        "model": {name: tensor.detach().clone().contiguous() for name, tensor in model_state.items()},
        "Upstream_Config": copy.deepcopy(config),
        "Step": step,
        "mi_probe_recipe": recipe or {},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(checkpoint, temporary)
    os.replace(temporary, path)
    return path


def build_apc(config: dict, seed: int | None = None):
    """The APC of a checkpoint config (random weights; ``seed`` fixes them)."""
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    return apc_model(config["data"]["audio"]["feat_dim"], config["model"]["paras"])


def write_random_apc(path: Path, like: Path, seed: int = 0) -> Path:
    """Write ``like``'s APC architecture randomly initialised (the control), in the same format."""
    config = _load(like)["config"]
    model = build_apc(config, seed=seed)
    recipe = {"recipe": "random initialisation (no training): the control", "seed": seed, "like": Path(like).name}
    return save_apc_checkpoint(path, config, model.state_dict(), step=0, recipe=recipe)


def apc_loss(checkpoint: Path, manifest: Path, splits=("dev", "test")) -> float:
    """Mean L1 APC loss (s3prl's objective: predict the fbank ``n_future`` frames ahead) on held-out audio."""
    import torch

    state = _load(checkpoint)
    config = state["config"]
    n_future = config["task"]["n_future"]
    preprocessor = apc_preprocessor(config["data"]["audio"])
    model = build_apc(config)
    model.load_state_dict(state["model"])
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for utterance in read_manifest(manifest):
            if utterance.split not in splits:
                continue
            wav, _ = soundfile.read(str(utterance.audio), dtype="float32")
            feat = preprocessor(torch.from_numpy(wav).unsqueeze(0)).unsqueeze(0)
            length = feat.size(1) - n_future
            predicted, _ = model(feat[:, :-n_future], [length], testing=True)
            total += torch.nn.functional.l1_loss(predicted, feat[:, n_future:], reduction="sum").item()
            count += feat[:, n_future:].numel()
    return total / max(count, 1)


def build_demo_models(
    out: Path = DEMO_MODELS_FOLDER,
    work: Path | None = None,
    utterances: int = DEFAULT_CORPUS_UTTERANCES,
    corpus_seed: int = DEFAULT_CORPUS_SEED,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    hidden_size: int = 64,
) -> dict:
    """Synthesize the pretraining corpus, pretrain, write ``apc_synth.ckpt`` and ``apc_random.ckpt`` to ``out``.

    Returns the learned model's recipe (also stored in both checkpoints as ``mi_probe_recipe``),
    with the held-out (dev and test voices) APC L1 loss of both models and the file sizes.
    """
    from s3prl_mi_probe.corpus.synthetic.synth import synthesize_corpus

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scratch = None
    if work is None:
        scratch = tempfile.TemporaryDirectory(prefix="apc_pretrain_")
        work = Path(scratch.name)
    try:
        work = Path(work)
        manifest = synthesize_corpus(work / "corpus", utterances=utterances, seed=corpus_seed)
        trained = pretrain_apc(manifest, work / "pretrain", steps=steps, seed=seed, hidden_size=hidden_size)
        random_path = write_random_apc(work / "pretrain" / "apc_random.ckpt", like=trained, seed=seed)
        summary = {
            "corpus": {"utterances": utterances, "seed": corpus_seed, "voices": "synth.DEFAULT_VOICES"},
            "heldout_l1_trained": round(apc_loss(trained, manifest), 5),
            "heldout_l1_random": round(apc_loss(random_path, manifest), 5),
        }
        for name, path in (("apc_synth.ckpt", trained), ("apc_random.ckpt", random_path)):
            state = _load(path)
            state["mi_probe_recipe"].update(summary)
            save_apc_checkpoint(out / name, state["config"], state["model"], state["Step"], state["mi_probe_recipe"])
        recipe = _load(out / "apc_synth.ckpt")["mi_probe_recipe"]
        recipe["files"] = {name: (out / name).stat().st_size for name in ("apc_synth.ckpt", "apc_random.ckpt")}
        return recipe
    finally:
        if scratch is not None:
            scratch.cleanup()


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m s3prl_mi_probe.demo.pretrain",
        description="Pretrain the demo APC with s3prl's run_pretrain.py on a synthetic corpus and write "
        "apc_synth.ckpt and its random twin apc_random.ckpt.",
    )
    parser.add_argument(
        "--out", type=Path, default=DEMO_MODELS_FOLDER, help="where the two checkpoints go (default: %(default)s)"
    )
    parser.add_argument(
        "--work", type=Path, help="keep the corpus, configs and s3prl's experiment here (default: a temporary folder)"
    )
    parser.add_argument("--utterances", type=int, default=DEFAULT_CORPUS_UTTERANCES)
    parser.add_argument("--corpus-seed", type=int, default=DEFAULT_CORPUS_SEED)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden-size", type=int, default=64)
    args = parser.parse_args(argv)
    summary = build_demo_models(
        out=args.out,
        work=args.work,
        utterances=args.utterances,
        corpus_seed=args.corpus_seed,
        steps=args.steps,
        seed=args.seed,
        hidden_size=args.hidden_size,
    )
    losses = summary.pop("train_loss")
    print(json.dumps(summary, indent=2))
    print("training loss (step, loss):", " ".join(f"{step}:{loss:.3f}" for step, loss in losses))


if __name__ == "__main__":
    main()
