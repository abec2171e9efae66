"""Benchmark protocols: the shipped ones load; a user's file gets one error listing every problem."""

import pytest

from s3prl_mi_probe.benchmark.protocol import load_protocol, parse_protocol, shipped_protocols
from s3prl_mi_probe.cli import main
from s3prl_mi_probe.common.problems import ProblemsFound


def test_shipped_protocols_load_with_their_three_tasks():
    assert shipped_protocols() == ["librispeech-v1", "synthetic-v1"]
    for name in shipped_protocols():
        protocol = load_protocol(name)
        assert protocol.name == name and list(protocol.tasks) == ["word", "phone", "frame_phone"]
        assert protocol.primary_probe == "linear" and len(protocol.sha256) == 64
        frame_corpus, frame_options = protocol.tasks["frame_phone"]
        assert frame_options.silence_labels == () and frame_options.frames_per_utterance
    libri = load_protocol("librispeech-v1")
    assert libri.tasks["frame_phone"][0] == "libriphone" and "prepare libriphone" in libri.corpora["libriphone"].prepare
    assert load_protocol("synthetic-v1").corpora["synthetic"].synthesize["utterances"] > 0


def test_every_problem_of_a_protocol_file_is_listed(tmp_path):
    bad = """
protocol: mine-v1
format: 2
corpora:
  lab: {manifest: data/lab.tsv}
  synth: {synthesize: {utterances: 2}}
tasks:
  word: {corpus: elsewhere, min_count: 0}
  phone: {corpus: lab, shoe_size: 42}
  syllable: {corpus: lab}
probes: [finetune, svm]
extraction: {dtype: int8, stride: 2}
colour: blue
"""
    with pytest.raises(ProblemsFound) as error:
        parse_protocol(bad, "mine.yaml")
    message = str(error.value)
    expected = [
        "missing key 'description'",
        "unknown key 'colour'",
        "format 2 is not supported",
        "corpora.lab: a manifest corpus needs 'prepare'",
        "corpora.synth.synthesize: expected {utterances: N >= 3",
        "tasks.word: 'corpus' must name one of the corpora",
        "tasks.word: min_count must be at least 1",
        "tasks.phone: unknown key(s) shoe_size",
        "tasks.syllable: unknown task",
        "probes: unknown kind(s) svm",
        "must be a cached-feature probe, not finetune",
        "extraction: unknown key(s) stride",
        "extraction.dtype must be float32 or float16",
    ]
    for text in expected:
        assert text in message, text
    assert message.startswith(f"{len(expected)} problem(s) found in protocol mine.yaml:")

    path = tmp_path / "mine.yaml"
    path.write_text(bad)
    reply = main(["benchmark", "--protocol", str(path), "--upstream", "fbank", "--out", str(tmp_path / "out")])
    assert reply.startswith("s3prl-mi-probe benchmark: 13 problem(s)") and not (tmp_path / "out").exists()
    assert "no shipped protocol" in main(["benchmark", "--protocol", "nope-v9", "--upstream", "fbank", "--out", "x"])
    assert "not valid YAML" in str(pytest.raises(ProblemsFound, parse_protocol, "a: [").value)
