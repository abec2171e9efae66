"""``s3prl-mi-probe demo``: the offline default job."""

from s3prl_mi_probe.cli.options import output_folder, upstream_argument


def register_demo_command(commands):
    """Add ``demo`` to the subcommands of the ``s3prl-mi-probe`` parser."""
    demo = commands.add_parser(
        "demo",
        help="the offline default job: a synthetic espeak-ng speech corpus; fbank, mfcc, a random HuBERT and a "
        "small APC (pretrained and random); both tasks; report.md and report.html",
    )
    demo.add_argument("--out", type=output_folder, default="demo_out", help="folder for the corpus, sweeps and report")
    demo.add_argument(
        "--upstream",
        action="append",
        type=upstream_argument,
        metavar="SPEC",
        help="sweep these instead: s3prl hub name or NAME=CKPT_PATH (repeatable)",
    )
    demo.add_argument("--seed", type=int, default=0, help="corpus, dev carving and probes")
    demo.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    demo.set_defaults(
        handler=_demo, needs_s3prl=True, resume_hint="rerun the same command to resume: extracted batches are cached"
    )


def _demo(args):
    from s3prl_mi_probe.common.problems import ProblemsFound
    from s3prl_mi_probe.corpus.synthetic.espeak import EspeakUnavailable
    from s3prl_mi_probe.demo.job import run_demo
    from s3prl_mi_probe.features.upstream_spec import UpstreamUnavailable

    try:
        report = run_demo(args.out, upstreams=args.upstream, seed=args.seed, device=args.device)
    except (ProblemsFound, ValueError, UpstreamUnavailable, EspeakUnavailable) as error:
        return f"s3prl-mi-probe demo: {error}"
    print(report.read_text())
    print(f"report: {report}")
    return 0
