"""A reduced demo: the report is written with every section, and its HTML renders in Chromium."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import s3prl_mi_probe
from s3prl_mi_probe.demo.job import run_demo
from s3prl_mi_probe.features.upstream_spec import UpstreamSpec
from s3prl_mi_probe.report.findings import chosen_layers
from s3prl_mi_probe.report.rows import read_sweep_csv

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory, tiny_hubert):
    out = tmp_path_factory.mktemp("demo")
    upstreams = [UpstreamSpec("fbank"), UpstreamSpec("hubert_local", tiny_hubert)]
    run_demo(out, upstreams=upstreams, num_utterances=24, min_count=2)
    return out


def test_reduced_demo_writes_the_report(demo_out):
    report = (demo_out / "report.md").read_text()
    for section in ("Findings", "Task: phone", "Task: word", "Best layer", "What was measured", "How to read this"):
        assert section in report, section
    assert "hubert_local:tiny_hubert" in report
    # The class filters in effect, per task: the demo's own min_count, the task defaults otherwise.
    header = (
        "| task | min_count | max_classes | fold_stress | classes | train segments | dev segments | test segments |"
    )
    assert header in report and "| phone | 2 | all | on |" in report and "| word | 2 | 500 | off |" in report
    for task in ("phone", "word"):
        for metric in ("mi_bits", "accuracy", "margin"):
            assert (demo_out / "plots" / f"{task}_{metric}.png").is_file()
        assert (demo_out / task / "sweep.csv").is_file()
    page = (demo_out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 6 and "plots/" not in page.split("<body>")[1]
    assert "<pre>" not in page and page.count("<table>") == 6  # folders, sizes, 2 x (layers, best layers)


def test_the_findings_are_computed_from_the_numbers_with_their_intervals(demo_out):
    report = (demo_out / "report.md").read_text()
    findings = report.split("## Findings", 1)[1].split("\n## ", 1)[0]
    for task in ("phone", "word"):
        rows = read_sweep_csv(demo_out / task / "sweep.csv")
        chosen = chosen_layers(rows, task, "linear")
        top, top_row = max(chosen.items(), key=lambda item: item[1]["mi_bits"])
        [sentence] = [line for line in findings.splitlines() if line.startswith(f"- **{task}, linear probe.**")]
        assert f"Most information: {top} (layer {top_row['layer']}: {top_row['mi_bits']:.2f} [" in sentence
        tied, _, below = sentence.partition("Clearly below it")
        for upstream, row in chosen.items():
            if upstream != top:
                disjoint = row["mi_bits_ci_high"] < top_row["mi_bits_ci_low"]
                assert f"{upstream} (layer {row['layer']}:" in (below if disjoint else tied.split("Not shown")[1])


def test_the_report_uses_one_rule_for_the_chosen_layer(demo_out):
    """The findings and the best-layer tables name the same layer (chosen on dev) and test bound per upstream."""
    report = (demo_out / "report.md").read_text()
    findings = report.split("## Findings", 1)[1].split("\n## ", 1)[0]
    for task in ("phone", "word"):
        chosen = chosen_layers(read_sweep_csv(demo_out / task / "sweep.csv"), task, "linear")
        section = report.split(f"## Task: {task}", 1)[1].split("\n## ", 1)[0]
        table = section.split("### Best layer per upstream", 1)[1].split("###", 1)[0]
        for upstream, row in chosen.items():
            assert f"{upstream} (layer {row['layer']}: {row['mi_bits']:.2f} [" in findings
            assert f"| {upstream} | linear | {row['layer']} | {row['mi_bits']:.3f} [" in table


def test_the_files_the_report_names_exist(demo_out):
    package_root = Path(s3prl_mi_probe.__file__).parent.parent
    report = (demo_out / "report.md").read_text()
    named = re.findall(r"`([^`\s]+\.(?:md|json|tsv))`", report)
    assert "s3prl_mi_probe/demo/models/README.md" in named and "phone/sweep.json" in named
    for name in named:
        assert any((root / name).is_file() for root in (demo_out, package_root)), name


def chromium():
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the browser check: .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return path


def test_html_report_renders_in_headless_chromium_without_console_errors(demo_out, tmp_path):
    browser = chromium()
    page = (demo_out / "report.html").as_uri()
    common = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--dump-dom", page], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "how many bits of phone and word identity" in dom.stdout and dom.stdout.count("<img") == 6
    assert dom.stdout.count("<table>") == 6 and "<pre>" not in dom.stdout  # tables as tables, not text
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    screenshot = demo_out / "report.png"
    shot = subprocess.run(
        [*common, f"--screenshot={screenshot}", "--window-size=1200,2000", page],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.returncode == 0 and screenshot.stat().st_size > 50_000, shot.stderr[-2000:]
