"""A reduced demo: the report is written with every section."""

from s3prl_mi_probe.demo import run_demo
from s3prl_mi_probe.features.upstream_spec import UpstreamSpec


def test_reduced_demo_writes_the_report(tmp_path, tiny_hubert):
    upstreams = [UpstreamSpec("fbank"), UpstreamSpec("hubert_local", tiny_hubert)]
    report = run_demo(tmp_path, upstreams=upstreams, num_utterances=20).read_text()
    for section in ("Task: phone", "Task: word", "Best layer", "What was measured", "How to read this"):
        assert section in report, section
    assert "hubert_local:tiny_hubert" in report
    for task in ("phone", "word"):
        for metric in ("mi_bits", "accuracy", "margin"):
            assert (tmp_path / "plots" / f"{task}_{metric}.png").is_file()
        assert (tmp_path / task / "sweep.csv").is_file()
