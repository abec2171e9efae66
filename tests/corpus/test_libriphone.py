"""prepare libriphone: s3prl's phone_linear files in their real layout, the split rule, every problem at once."""

import random
from pathlib import Path

import numpy as np
import pytest
import soundfile

from s3prl_mi_probe.cli import main
from s3prl_mi_probe.common.problems import ProblemsFound
from s3prl_mi_probe.corpus.manifest import read_manifest
from s3prl_mi_probe.corpus.recipes.libriphone import label_runs, phone_linear_split, prepare_libriphone
from s3prl_mi_probe.corpus.task import TaskOptions, build_task

RATE = 16000
SPEAKERS = {"103": "1240", "1034": "121119", "1040": "133433"}


def tone_audio(labels, rng):
    """One tone per label (frequency by class), 10 ms per label, plus Kaldi's 240-sample tail."""
    t = np.arange(160) / RATE
    frames = [0.3 * np.sin(2 * np.pi * (150 + 90 * label) * t + rng.uniform(0, 6)) for label in labels]
    tail = np.zeros(240)
    return (np.concatenate([*frames, tail]) + rng.normal(0, 0.005, 160 * len(labels) + 240)).astype(np.float32)


def random_labels(rng, num_classes=6):
    """Runs of 3-12 equal labels, 40-90 frames in all."""
    labels = []
    while len(labels) < 40:
        labels += [int(rng.integers(num_classes))] * int(rng.integers(3, 13))
    return labels[: int(rng.integers(40, 91))]


def write_libriphone(root, utterances=30, test=6, blank_line=True, seed=0):
    """LibriSpeech/train-clean-100/<spk>/<chap>/<id>.flac and phone_linear's three files under root/phone."""
    rng = np.random.default_rng(seed)
    libri, phone = root / "LibriSpeech", root / "phone"
    phone.mkdir(parents=True)
    ids, lines = [], []
    for index in range(utterances):
        speaker = list(SPEAKERS)[index % len(SPEAKERS)]
        utterance_id = f"{speaker}-{SPEAKERS[speaker]}-{index:04d}"
        labels = random_labels(rng)
        folder = libri / "train-clean-100" / speaker / SPEAKERS[speaker]
        folder.mkdir(parents=True, exist_ok=True)
        soundfile.write(folder / f"{utterance_id}.flac", tone_audio(labels, rng), RATE)
        ids.append(utterance_id)
        lines.append(" ".join([utterance_id, *map(str, labels)]))
    (phone / "converted_aligned_phones.txt").write_text("\n".join(lines) + "\n")
    train_ids = ids[: utterances - test]
    if blank_line:  # a blank line takes part in phone_linear's shuffle
        train_ids = train_ids[:5] + [""] + train_ids[5:]
    (phone / "train_split.txt").write_text("\n".join(train_ids) + "\n")
    (phone / "test_split.txt").write_text("\n".join(ids[utterances - test :]) + "\n")
    return phone, libri


@pytest.fixture(scope="module")
def libriphone(tmp_path_factory):
    root = tmp_path_factory.mktemp("libriphone")
    phone, libri = write_libriphone(root)
    manifest = prepare_libriphone(phone, root / "out", libri)
    return phone, libri, manifest


def test_split_reproduces_phone_linear_rule(libriphone):
    phone, _, manifest = libriphone
    # The rule as phone_linear states it: readlines, random.seed(1337), shuffle, first 90 % train.
    with open(phone / "train_split.txt") as stream:
        usage_list = stream.readlines()
    random.seed(1337)
    random.shuffle(usage_list)
    percent = int(len(usage_list) * 0.9)
    expected = {
        "train": {line.strip("\n") for line in usage_list[:percent]} - {""},
        "dev": {line.strip("\n") for line in usage_list[percent:]} - {""},
        "test": set((phone / "test_split.txt").read_text().split()),
    }
    got = {split: {u.id for u in read_manifest(manifest) if u.split == split} for split in expected}
    assert got == expected and len(got["dev"]) >= 2
    with open(phone / "train_split.txt") as stream:
        assert phone_linear_split(stream.readlines()) == (usage_list[:percent], usage_list[percent:])


def test_frame_task_reads_back_every_label(libriphone):
    phone, _, manifest = libriphone
    labels = {
        line.split(" ")[0]: line.split(" ")[1:]
        for line in (phone / "converted_aligned_phones.txt").read_text().splitlines()
    }
    task = build_task(manifest, TaskOptions(task="frame_phone", min_count=1, silence_labels=()))
    assert sorted(task.classes, key=int) == [str(label) for label in range(6)]
    for utterances in task.splits.values():
        for utterance in utterances:
            assert [task.classes[label] for label in utterance.labels] == labels[utterance.utterance.id]
            assert np.allclose(utterance.starts, np.arange(len(utterance.labels)) / 100)
    speakers = {u.speaker for u in read_manifest(manifest)}
    assert speakers == set(SPEAKERS)


def test_label_runs_on_the_grid():
    assert label_runs(np.array([3, 3, 0, 0, 0, 7]), duration=0.058) == [
        (0.0, 0.02, "3"),
        (0.02, 0.05, "0"),
        (0.05, 0.058, "7"),
    ]


def test_frame_labels_are_learnable_through_the_sweep(tmp_path, libriphone):
    _, _, manifest = libriphone
    out = tmp_path / "sweep"
    command = ["sweep", "--upstream", "fbank", "--manifest", str(manifest), "--task", "frame_phone"]
    assert main([*command, "--out", str(out), "--min-count", "1", "--frames-per-utterance", "30"]) == 0
    from s3prl_mi_probe.report.rows import read_sweep_csv

    [test_row] = [row for row in read_sweep_csv(out / "sweep.csv") if row["split"] == "test"]
    assert test_row["num_segments"] == 6 * 30
    assert test_row["mi_bits"] > 0.5 * test_row["h_y_bits"] > 0.5


def test_every_problem_is_listed_and_nothing_is_written(tmp_path):
    phone, libri = write_libriphone(tmp_path, blank_line=False)
    phones_file = phone / "converted_aligned_phones.txt"
    lines = phones_file.read_text().splitlines()
    ids = [line.split(" ")[0] for line in lines]
    lines[1] = lines[1] + " x"  # not an integer
    lines[2] = lines[2].replace(" ", " 41 ", 1)  # class 41 does not exist
    lines[3] = " ".join(lines[3].split(" ")[:20])  # far fewer labels than the audio holds
    del lines[4]  # a split id without labels
    lines.append(lines[0])  # a repeated line
    phones_file.write_text("\n".join(lines) + "\n")
    (libri / "train-clean-100" / "1040" / "133433" / f"{ids[5]}.flac").unlink()
    train_split = phone / "train_split.txt"
    train_split.write_text(train_split.read_text() + f"{ids[6]}\n bad id\n")  # listed twice; blanks inside

    with pytest.raises(ProblemsFound) as error:
        prepare_libriphone(phone, tmp_path / "out", libri)
    message = str(error.value)
    for expected in [
        f"converted_aligned_phones.txt:2 ({ids[1]}): label 'x' is not an integer",
        f"converted_aligned_phones.txt:3 ({ids[2]}): label 41 outside 0..40",
        f"'{ids[3]}': 19 frame labels",
        f"utterance '{ids[4]}' has no labels in converted_aligned_phones.txt",
        f"converted_aligned_phones.txt:{len(lines)}: utterance '{ids[0]}' repeated",
        f"{ids[5]}.flac: audio file not found",
        f"utterance '{ids[6]}' is listed more than once",
        "' bad id' is not an utterance id",
    ]:
        assert expected in message, expected
    assert not (tmp_path / "out").exists()


def test_missing_inputs_are_named(tmp_path):
    (tmp_path / "phone").mkdir()
    with pytest.raises(ProblemsFound) as error:
        prepare_libriphone(tmp_path / "phone", tmp_path / "out", tmp_path / "nowhere")
    message = str(error.value)
    for name in ("converted_aligned_phones.txt", "train_split.txt", "test_split.txt", "nowhere/train-clean-100"):
        assert f"{name}: f" in message, name


def test_prepare_command(tmp_path, capsys):
    phone, libri = write_libriphone(tmp_path, utterances=12, test=3)
    out = tmp_path / "out"
    argv = ["prepare", "libriphone", "--phone-path", str(phone), "--libri-root", str(libri), "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "phone_linear's rule" in printed and f"wrote {out / 'manifest.tsv'}" in printed
    assert len(list(Path(out, "alignments").rglob("*.TextGrid"))) == 12
    message = main([*argv[:3], str(tmp_path / "missing"), *argv[4:]])
    assert message.startswith("s3prl-mi-probe prepare libriphone: ") and "file not found" in message
