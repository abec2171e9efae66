"""Tests of the corpus recipes, stats, validate and their subcommands, on small trees in each corpus's layout."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from praatio import textgrid

from s3prl_mi_probe.cli.corpus import register_corpus_commands
from s3prl_mi_probe.common.problems import ProblemsFound
from s3prl_mi_probe.corpus.manifest import read_manifest
from s3prl_mi_probe.corpus.recipes.commonphone import prepare_commonphone
from s3prl_mi_probe.corpus.recipes.librispeech import prepare_librispeech
from s3prl_mi_probe.corpus.recipes.registry import RECIPES, CliOption, Recipe, all_recipes, register_recipe
from s3prl_mi_probe.corpus.recipes.textgrids import prepare_textgrids
from s3prl_mi_probe.corpus.recipes.timit import (
    CORE_TEST_SPEAKERS,
    DEV_SPEAKERS,
    FOLD_61_TO_39,
    prepare_timit,
    read_sphere,
)
from s3prl_mi_probe.corpus.stats import manifest_stats
from s3prl_mi_probe.corpus.task import TaskOptions, build_task
from s3prl_mi_probe.corpus.textgrid import write_textgrid
from s3prl_mi_probe.corpus.validate import validate_manifest

RATE = 16000
STEP = 0.1  # seconds per phone in the fixtures
PHONES = ("AA", "B", "K", "IY")
WORDS = ("the", "cat")


def fixture_tiers(word_tier: str = "words", phone_tier: str = "phones", pause: str = "sil"):
    """Two words of two phones between pauses: ``(tiers, duration)``."""
    phones = [(0.0, STEP, pause)] + [((i + 1) * STEP, (i + 2) * STEP, p) for i, p in enumerate(PHONES)]
    phones.append((5 * STEP, 6 * STEP, pause))
    words = [(STEP, 3 * STEP, WORDS[0]), (3 * STEP, 5 * STEP, WORDS[1])]
    return {word_tier: words, phone_tier: phones}, 6 * STEP


def write_audio(path: Path, seconds: float = 6 * STEP, **options) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(len(path.name)).normal(0, 0.01, round(seconds * RATE))
    soundfile.write(path, noise, RATE, **options)


def write_grid(path: Path, **tier_names) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tiers, duration = fixture_tiers(**tier_names)
    write_textgrid(path, tiers, duration)


def tier_labels(path: Path) -> dict[str, list[str]]:
    grid = textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    return {name: [entry.label for entry in grid.getTier(name).entries] for name in grid.tierNames}


def manifest_rows(manifest: Path) -> dict[str, tuple[str, str | None]]:
    return {u.id: (u.split, u.speaker) for u in read_manifest(manifest)}


def assert_both_tasks_build(manifest: Path) -> None:
    for task in ("phone", "word"):
        build_task(manifest, TaskOptions(task=task, min_count=1))


def problems_of(error: pytest.ExceptionInfo) -> str:
    return "\n".join(map(str, error.value.problems))


# --- LibriSpeech ------------------------------------------------------------------------------

LIBRI_UTTERANCES = {
    "train-clean-100": ["19-198-0000", "19-198-0001", "26-495-0000", "26-495-0001"],
    "dev-clean": ["84-121123-0000", "84-121123-0001"],
    "test-clean": ["1089-134686-0000", "1089-134686-0001"],
}


def write_librispeech(root: Path, alignments: Path, unaligned: str = "19-198-0001") -> None:
    for split, ids in LIBRI_UTTERANCES.items():
        for utterance_id in ids:
            speaker, chapter, _ = utterance_id.split("-")
            write_audio(root / split / speaker / chapter / f"{utterance_id}.flac", format="FLAC")
            if utterance_id != unaligned:
                write_grid(alignments / split / speaker / chapter / f"{utterance_id}.TextGrid")


def test_librispeech_maps_splits_and_speakers_and_lists_unaligned(tmp_path, capsys):
    write_librispeech(tmp_path / "LibriSpeech", tmp_path / "mfa")
    manifest = prepare_librispeech(tmp_path / "LibriSpeech", tmp_path / "out", tmp_path / "mfa", list(LIBRI_UTTERANCES))

    assert manifest == tmp_path / "out" / "manifest.tsv"
    rows = manifest_rows(manifest)
    assert rows == {
        "19-198-0000": ("train", "19"),
        "26-495-0000": ("train", "26"),
        "26-495-0001": ("train", "26"),
        "84-121123-0000": ("dev", "84"),
        "84-121123-0001": ("dev", "84"),
        "1089-134686-0000": ("test", "1089"),
        "1089-134686-0001": ("test", "1089"),
    }
    first = read_manifest(manifest)[0]
    assert first.audio == tmp_path / "LibriSpeech" / "train-clean-100" / "19" / "198" / "19-198-0000.flac"
    assert first.alignment == tmp_path / "mfa" / "train-clean-100" / "19" / "198" / "19-198-0000.TextGrid"
    printed = capsys.readouterr().out
    assert "1 utterance(s) without a TextGrid, skipped: 19-198-0001" in printed
    assert "hours" in printed and "phone" in printed and "word" in printed
    assert_both_tasks_build(manifest)


def test_librispeech_reports_missing_splits_and_unreadable_audio_together(tmp_path):
    write_librispeech(tmp_path / "LibriSpeech", tmp_path / "mfa")
    broken = tmp_path / "LibriSpeech" / "dev-clean" / "84" / "121123" / "84-121123-0000.flac"
    broken.write_bytes(b"not a flac file")
    junk_grid = tmp_path / "mfa" / "test-clean" / "1089" / "134686" / "1089-134686-0000.TextGrid"
    junk_grid.write_text("not a TextGrid")
    with pytest.raises(ProblemsFound) as error:
        splits = [*LIBRI_UTTERANCES, "dev-other", "clean"]
        prepare_librispeech(tmp_path / "LibriSpeech", tmp_path / "out", tmp_path / "mfa", splits)
    problems = problems_of(error)
    assert len(error.value.problems) == 5
    assert f"{junk_grid}: malformed TextGrid" in problems
    assert f"{tmp_path / 'LibriSpeech' / 'dev-other'}: folder not found" in problems
    assert f"{tmp_path / 'mfa' / 'dev-other'}: folder not found" in problems
    assert f"{broken}: unreadable audio" in problems
    assert "clean: not a LibriSpeech split name" in problems
    assert not (tmp_path / "out" / "manifest.tsv").exists()


# --- CommonPhone ------------------------------------------------------------------------------

COMMONPHONE_TABLES = {
    "en": ("text,audio file,id\n", "hello,{stem}.mp3,{speaker}\n"),
    "de": ("client_id;sentence;path\n", "{speaker};hallo;{stem}.wav\n"),
}


def write_commonphone(root: Path) -> None:
    for language, (header, row) in COMMONPHONE_TABLES.items():
        for split in ("train", "dev", "test"):
            stems = [f"common_voice_{language}_{split}_{n}" for n in range(2)]
            lines = [row.format(stem=stem, speaker=f"client{split}{n}") for n, stem in enumerate(stems)]
            (root / language).mkdir(parents=True, exist_ok=True)
            (root / language / f"{split}.csv").write_text(header + "".join(lines))
            for stem in stems:
                write_audio(root / language / "wav" / f"{stem}.wav")
                grid = root / language / "grids" / f"{stem}.TextGrid"
                write_grid(grid, word_tier="ORT-MAU", phone_tier="MAU", pause="<p:>")


def test_commonphone_reads_csvs_in_any_column_order_and_converts_maus_tiers(tmp_path, capsys):
    write_commonphone(tmp_path / "cp")
    manifest = prepare_commonphone(tmp_path / "cp", tmp_path / "out", ["en", "de"])

    rows = manifest_rows(manifest)
    assert len(rows) == 12
    assert rows["en_common_voice_en_train_0"] == ("train", "clienttrain0")
    assert rows["de_common_voice_de_test_1"] == ("test", "clienttest1")
    utterance = next(u for u in read_manifest(manifest) if u.id == "de_common_voice_de_dev_0")
    assert utterance.audio == tmp_path / "cp" / "de" / "wav" / "common_voice_de_dev_0.wav"
    assert utterance.alignment == tmp_path / "out" / "grids" / "de_common_voice_de_dev_0.TextGrid"
    labels = tier_labels(utterance.alignment)
    assert set(labels) == {"words", "phones"}
    assert labels["words"] == ["de_the", "de_cat"]
    assert labels["phones"] == ["<p:>", *PHONES, "<p:>"]
    assert "problem" not in capsys.readouterr().out
    assert_both_tasks_build(manifest)


def test_commonphone_lists_every_missing_or_broken_input(tmp_path):
    root = tmp_path / "cp"
    write_commonphone(root)
    (root / "en" / "wav" / "common_voice_en_train_0.wav").unlink()
    (root / "en" / "grids" / "common_voice_en_dev_1.TextGrid").unlink()
    write_grid(root / "de" / "grids" / "common_voice_de_test_0.TextGrid")  # tiers words/phones, not MAUS
    (root / "de" / "dev.csv").write_text("sentence,client_id\nhallo,x\n")
    with pytest.raises(ProblemsFound) as error:
        prepare_commonphone(root, tmp_path / "out", ["en", "de", "fr"])
    problems = problems_of(error)
    assert f"{root / 'en' / 'wav' / 'common_voice_en_train_0.wav'}: audio file not found" in problems
    assert f"{root / 'en' / 'grids' / 'common_voice_en_dev_1.TextGrid'}: TextGrid not found" in problems
    assert f"{root / 'de' / 'grids' / 'common_voice_de_test_0.TextGrid'}: no 'MAU', 'ORT-MAU' tiers" in problems
    assert f"{root / 'de' / 'dev.csv'}: no audio file column" in problems
    assert f"{root / 'fr' / 'train.csv'}: split table not found" in problems
    assert len(error.value.problems) == 7  # fr: train, dev and test tables


# --- TIMIT ------------------------------------------------------------------------------------

TIMIT_PHONES = [  # (start, end) in samples
    (0, 1600, "h#"),
    (1600, 2400, "bcl"),
    (2400, 3200, "b"),
    (3200, 4800, "ix"),
    (4800, 5600, "q"),
    (5600, 7200, "ao"),
    (7200, 8000, "pau"),
    (8000, 8800, "tcl"),
    (8800, 9600, "t"),
    (9600, 11200, "h#"),
]
TIMIT_WORDS = [(1600, 5000, "bit"), (4800, 7200, "all"), (8000, 9600, "to")]  # "bit" and "all" overlap
TIMIT_SAMPLES = 11200
TIMIT_61_PHONES = set(
    """
    b d g p t k dx q  bcl dcl gcl pcl tcl kcl  jh ch  s sh z zh f th v dh  m n ng em en eng nx
    l r w y hh hv el  iy ih eh ey ae aa aw ay ah ao oy ow uh uw ux er ax ix axr ax-h  pau epi h#
""".split()
)


def sphere_bytes(samples: np.ndarray, byte_format: str = "01", coding: str | None = None) -> bytes:
    """A NIST SPHERE file written byte by byte: a 1024-byte text header, then the samples."""
    fields = [
        "database_id -s5 TIMIT",
        f"sample_count -i {len(samples)}",
        "sample_rate -i 16000",
        "channel_count -i 1",
        "sample_n_bytes -i 2",
        f"sample_byte_format -s2 {byte_format}",
        "sample_sig_bits -i 16",
    ] + ([f"sample_coding -s{len(coding)} {coding}"] if coding else [])
    header = ("NIST_1A\n   1024\n" + "\n".join(fields) + "\nend_head\n").encode("ascii")
    order = "<" if byte_format == "01" else ">"
    return header.ljust(1024, b" ") + samples.astype(f"{order}i2").tobytes()


def write_timit_utterance(folder: Path, name: str, byte_format: str = "01") -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    samples = np.random.default_rng(len(name)).integers(-3000, 3000, TIMIT_SAMPLES).astype(np.int16)
    (folder / f"{name}.WAV").write_bytes(sphere_bytes(samples, byte_format))
    (folder / f"{name}.PHN").write_text("".join(f"{s} {e} {label}\n" for s, e, label in TIMIT_PHONES))
    (folder / f"{name}.WRD").write_text("".join(f"{s} {e} {label}\n" for s, e, label in TIMIT_WORDS))
    return samples


def write_timit(root: Path) -> dict[str, np.ndarray]:
    speakers = {
        "TRAIN/DR1/FCJF0": "01",
        "TRAIN/DR2/MKLW0": "10",
        "TEST/DR1/MDAB0": "01",
        "TEST/DR1/FAKS0": "01",
        "TEST/DR2/MZZZ9": "01",
    }
    written = {}
    for folder, byte_format in speakers.items():
        for name in ("SA1", "SI1027", "SX127"):
            samples = write_timit_utterance(root / folder, name, byte_format)
            written[f"{Path(folder).name.lower()}_{name.lower()}"] = samples
    return written


def test_standard_timit_speaker_lists():
    assert len(CORE_TEST_SPEAKERS) == 24 and len(DEV_SPEAKERS) == 50
    assert not CORE_TEST_SPEAKERS & DEV_SPEAKERS
    folded = {FOLD_61_TO_39.get(phone, phone) for phone in TIMIT_61_PHONES} - {None}
    assert len(TIMIT_61_PHONES) == 61 and len(folded) == 39


def test_timit_converts_sphere_and_labels_and_assigns_standard_splits(tmp_path):
    written = write_timit(tmp_path / "timit")
    manifest = prepare_timit(tmp_path / "timit", tmp_path / "out")

    rows = manifest_rows(manifest)
    assert rows == {
        "fcjf0_si1027": ("train", "fcjf0"),
        "fcjf0_sx127": ("train", "fcjf0"),
        "mklw0_si1027": ("train", "mklw0"),
        "mklw0_sx127": ("train", "mklw0"),
        "mdab0_si1027": ("test", "mdab0"),
        "mdab0_sx127": ("test", "mdab0"),
        "faks0_si1027": ("dev", "faks0"),
        "faks0_sx127": ("dev", "faks0"),
    }  # SA sentences skipped, MZZZ9 is neither core test nor dev
    big_endian = next(u for u in read_manifest(manifest) if u.id == "mklw0_si1027")
    assert big_endian.audio == tmp_path / "out" / "wav" / "mklw0_si1027.wav"
    audio, rate = soundfile.read(big_endian.audio, dtype="int16")
    assert rate == RATE and np.array_equal(audio, written["mklw0_si1027"])

    labels = tier_labels(big_endian.alignment)
    assert labels["phones"] == [label for _, _, label in TIMIT_PHONES]
    assert labels["words"] == ["bit", "all", "to"]
    grid = textgrid.openTextgrid(str(big_endian.alignment), includeEmptyIntervals=False)
    bit, all_ = grid.getTier("words").entries[:2]
    assert bit.end == all_.start == pytest.approx(4900 / RATE)  # the overlap meets in its middle
    assert_both_tasks_build(manifest)


def test_timit_folds_61_to_39_phones(tmp_path):
    write_timit(tmp_path / "timit")
    manifest = prepare_timit(tmp_path / "timit", tmp_path / "out", fold_61_to_39=True)
    alignment = read_manifest(manifest)[0].alignment
    grid = textgrid.openTextgrid(str(alignment), includeEmptyIntervals=False)
    phones = [(round(e.start * RATE), round(e.end * RATE), e.label) for e in grid.getTier("phones").entries]
    assert phones == [
        (0, 2400, "sil"),
        (2400, 3200, "b"),
        (3200, 4800, "ih"),  # h# + bcl merged; q removed
        (5600, 7200, "aa"),
        (7200, 8800, "sil"),
        (8800, 9600, "t"),
        (9600, 11200, "sil"),
    ]
    assert_both_tasks_build(manifest)


def test_timit_reports_shorten_and_missing_label_files_together(tmp_path):
    root = tmp_path / "timit"
    write_timit(root)
    shortened = root / "TRAIN" / "DR1" / "FCJF0" / "SI1027.WAV"
    shortened.write_bytes(sphere_bytes(np.zeros(10, np.int16), coding="pcm,embedded-shorten-v2.00"))
    (root / "TEST" / "DR1" / "MDAB0" / "SX127.WRD").unlink()
    with pytest.raises(ProblemsFound) as error:
        prepare_timit(root, tmp_path / "out")
    assert len(error.value.problems) == 2
    problems = problems_of(error)
    assert f"{shortened}: shorten-compressed SPHERE" in problems
    assert f"{root / 'TEST' / 'DR1' / 'MDAB0' / 'SX127.WAV'}: no SX127.WRD beside it" in problems


def test_read_sphere_rejects_other_files(tmp_path):
    riff = tmp_path / "riff.wav"
    write_audio(riff)
    with pytest.raises(ProblemsFound, match="not a NIST SPHERE file"):
        read_sphere(riff)


# --- any TextGrid folder ----------------------------------------------------------------------


def write_folder_pair(root: Path, speakers: int = 6, per_speaker: int = 2, **tier_names) -> None:
    for s in range(speakers):
        for u in range(per_speaker):
            write_audio(root / "audio" / f"spk{s}" / f"utt{u}.wav")
            write_grid(root / "grids" / f"spk{s}" / f"utt{u}.TextGrid", **tier_names)


def test_textgrids_splits_whole_speakers_and_converts_tier_names(tmp_path):
    write_folder_pair(tmp_path, word_tier="ort", phone_tier="phon")
    write_audio(tmp_path / "audio" / "spk0" / "unaligned.wav")
    manifest = prepare_textgrids(
        tmp_path / "audio", tmp_path / "out", tmp_path / "grids", word_tier="ort", phone_tier="phon"
    )

    utterances = read_manifest(manifest)
    assert len(utterances) == 12
    split_of_speaker = {}
    for utterance in utterances:
        assert split_of_speaker.setdefault(utterance.speaker, utterance.split) == utterance.split
    assert sorted(split_of_speaker.values()) == ["dev", "test", "train", "train", "train", "train"]
    first = next(u for u in utterances if u.id == "spk0_utt0")
    assert first.alignment == tmp_path / "out" / "grids" / "spk0" / "utt0.TextGrid"
    assert tier_labels(first.alignment)["words"] == list(WORDS)
    assert_both_tasks_build(manifest)


def test_textgrids_random_split_keeps_our_tiers_in_place(tmp_path):
    write_folder_pair(tmp_path, speakers=2, per_speaker=10)
    manifest = prepare_textgrids(tmp_path / "audio", tmp_path / "out", tmp_path / "grids", split_by="random", seed=3)
    utterances = read_manifest(manifest)
    assert sorted(u.split for u in utterances).count("train") == 16
    assert all(u.speaker is None for u in utterances)
    assert all(u.alignment.parent.parent == tmp_path / "grids" for u in utterances)
    assert "speaker" not in manifest.read_text().splitlines()[0]


def test_textgrids_reports_grids_without_audio_and_files_outside_speaker_folders(tmp_path):
    write_folder_pair(tmp_path)
    write_grid(tmp_path / "grids" / "spk9" / "lost.TextGrid")
    write_audio(tmp_path / "audio" / "loose.wav")
    write_grid(tmp_path / "grids" / "loose.TextGrid")
    write_grid(tmp_path / "grids" / "spk1" / "utt0.TextGrid", word_tier="ort")
    with pytest.raises(ProblemsFound) as error:
        prepare_textgrids(tmp_path / "audio", tmp_path / "out", tmp_path / "grids")
    problems = problems_of(error)
    assert f"{tmp_path / 'grids' / 'spk9' / 'lost.TextGrid'}: TextGrid without audio" in problems
    assert f"{tmp_path / 'audio' / 'loose.wav'}: lies directly in" in problems
    wrong_tier = tmp_path / "grids" / "spk1" / "utt0.TextGrid"
    assert f"{wrong_tier}: no 'words' tier (tiers present: 'ort', 'phones')" in problems
    assert len(error.value.problems) == 3


# --- stats and validate -----------------------------------------------------------------------


@pytest.fixture
def tone_copy(tone_manifest, tmp_path):
    """A private copy of the session's tone corpus, free to break."""
    shutil.copytree(tone_manifest.parent, tmp_path / "tones")
    return tmp_path / "tones" / "manifest.tsv"


def test_stats_tables_and_files(tone_manifest, tmp_path):
    text = manifest_stats(tone_manifest, TaskOptions(task="phone", min_count=5, max_classes=4), tmp_path / "stats")
    assert "too_short" in text and "rare_class" in text and "kept_%" in text
    assert "silence" in text and "dropped" in text and "kept" in text
    assert (tmp_path / "stats" / "stats.png").read_bytes().startswith(b"\x89PNG")
    assert text in (tmp_path / "stats" / "stats.md").read_text()

    unusable = manifest_stats(tone_manifest, TaskOptions(task="word", min_count=10_000))
    assert "not usable with these options" in unusable


def test_validate_lists_every_broken_file_once(tone_copy):
    root = tone_copy.parent
    assert "OK" in validate_manifest(tone_copy)
    (root / "utt001.wav").unlink()
    (root / "utt002.wav").write_bytes(b"garbage")
    (root / "utt003.TextGrid").write_text("not a TextGrid")
    tiers, duration = fixture_tiers()
    write_textgrid(root / "utt004.TextGrid", {"phones": tiers["phones"]}, duration)  # no words tier
    with pytest.raises(ProblemsFound) as error:
        validate_manifest(tone_copy)
    problems = [str(problem) for problem in error.value.problems]
    assert len(problems) == len(set(problems)) == 4
    assert sum(f"{root / 'utt001.wav'}: audio file not found" in p for p in problems) == 1
    assert any(f"{root / 'utt002.wav'}: unreadable" in p for p in problems)
    assert any(f"{root / 'utt003.TextGrid'}: malformed TextGrid" in p for p in problems)
    assert any("word task: " in p and "utt004.TextGrid: no 'words' tier" in p for p in problems)


# --- subcommands ------------------------------------------------------------------------------


def run_command(*argv: str):
    parser = argparse.ArgumentParser(prog="s3prl-mi-probe")
    register_corpus_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    return args.handler(args)


def test_subcommands(tmp_path, tone_copy, capsys):
    write_librispeech(tmp_path / "ls", tmp_path / "mfa")
    assert (
        run_command(
            "prepare",
            "librispeech",
            "--root",
            tmp_path / "ls",
            "--alignments",
            tmp_path / "mfa",
            "--out",
            tmp_path / "ls_out",
        )
        == 0
    )
    write_commonphone(tmp_path / "cp")
    assert (
        run_command(
            "prepare", "commonphone", "--root", tmp_path / "cp", "--languages", "en", "--out", tmp_path / "cp_out"
        )
        == 0
    )
    assert len(read_manifest(tmp_path / "cp_out" / "manifest.tsv")) == 6
    write_timit(tmp_path / "timit")
    assert run_command("prepare", "timit", "--root", tmp_path / "timit", "--out", tmp_path / "t_out", "--fold-39") == 0
    write_folder_pair(tmp_path / "pair")
    assert (
        run_command(
            "prepare",
            "textgrids",
            "--audio",
            tmp_path / "pair" / "audio",
            "--alignments",
            tmp_path / "pair" / "grids",
            "--out",
            tmp_path / "pair_out",
            "--split-by",
            "random",
        )
        == 0
    )
    assert f"wrote {tmp_path / 'pair_out' / 'manifest.tsv'}" in capsys.readouterr().out

    assert run_command("stats", tone_copy, "--task", "word", "--out", tmp_path / "stats", "--min-count", "2") == 0
    assert (tmp_path / "stats" / "stats.md").is_file()
    with pytest.raises(SystemExit) as usage:  # a value wrong on its face: the parser's usage error
        run_command("stats", tone_copy, "--min-count", "0")
    assert usage.value.code == 2 and "argument --min-count: must be at least 1, got 0" in capsys.readouterr().err
    assert run_command("validate", tone_copy) == 0
    assert "OK" in capsys.readouterr().out

    (tone_copy.parent / "utt000.wav").unlink()
    message = run_command("validate", tone_copy)
    assert message.startswith("s3prl-mi-probe validate: 1 problem(s)") and "utt000.wav: audio file not found" in message
    message = run_command("prepare", "timit", "--root", tmp_path / "nowhere", "--out", tmp_path / "x")
    assert "no TRAIN folder" in message and "no TEST folder" in message


def prepare_listing(corpus_dir: Path, output_dir: Path, suffix: str, limit: int = 2) -> Path:
    """A recipe outside the package: lists up to ``limit`` files of ``corpus_dir`` ending in ``suffix``."""
    names = sorted(path.name for path in corpus_dir.iterdir() if path.name.endswith(suffix))[:limit]
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "listing.txt").write_text("\n".join(names))
    return output_dir / "listing.txt"


def test_a_registered_recipe_becomes_a_prepare_command(tmp_path, monkeypatch, capsys):
    assert set(all_recipes()) == {"commonphone", "libriphone", "librispeech", "textgrids", "timit"}
    options = {"corpus_dir": CliOption("the folder", flag="--folder"), "suffix": CliOption("file name ending")}
    options["limit"] = CliOption("at most this many names")
    monkeypatch.setitem(RECIPES, "listing", register_recipe(Recipe("listing", "list files", prepare_listing, options)))
    for name in ("a.wav", "b.wav", "c.wav", "d.txt"):
        (tmp_path / name).write_text("")
    argv = ["prepare", "listing", "--folder", tmp_path, "--out", tmp_path / "out", "--suffix", ".wav"]
    assert run_command(*argv, "--limit", "3") == 0
    assert (tmp_path / "out" / "listing.txt").read_text() == "a.wav\nb.wav\nc.wav"
    assert f"wrote {tmp_path / 'out' / 'listing.txt'}" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # --suffix has no default: a required option
        run_command(*argv[:-2])
    with pytest.raises(TypeError, match="no command-line option for argument.s. suffix, limit"):
        Recipe("listing", "list files", prepare_listing, {"corpus_dir": options["corpus_dir"]}).arguments()
    with pytest.raises(TypeError, match="expected \\[corpus_dir, output_dir, ...\\]"):
        register_recipe(Recipe("bad", "arguments in another order", lambda output_dir, corpus_dir: None))
