"""``s3prl-mi-probe demo``: the offline default job."""

from pathlib import Path


def register_demo_command(commands):
    """Add ``demo`` to the subcommands of the ``s3prl-mi-probe`` parser."""
    demo = commands.add_parser(
        "demo", help="the offline default job: tone corpus; fbank, mfcc and a random HuBERT; both tasks"
    )
    demo.add_argument("--out", type=Path, default=Path("demo_out"))
    demo.add_argument("--upstream", action="append", metavar="SPEC", help="sweep these instead (repeatable)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--device", default="cpu")
    demo.set_defaults(handler=_demo)


def _demo(args):
    from s3prl_mi_probe.demo.job import run_demo
    from s3prl_mi_probe.features.upstream_spec import UpstreamSpec

    upstreams = [UpstreamSpec.parse(spec) for spec in args.upstream or []]
    report = run_demo(args.out, upstreams=upstreams or None, seed=args.seed, device=args.device)
    print(report.read_text())
    print(f"report: {report}")
    return 0
