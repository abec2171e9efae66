"""``s3prl-mi-probe benchmark``: a protocol over several upstreams, resumable, into a leaderboard."""

import argparse
from pathlib import Path

from s3prl_mi_probe.cli.options import output_folder, upstream_argument


def register_benchmark_command(commands):
    """Add ``benchmark`` to the subcommands of the ``s3prl-mi-probe`` parser."""
    benchmark = commands.add_parser(
        "benchmark",
        help="every upstream x task of a protocol (word, phone, frame_phone), resumable, and a leaderboard",
    )
    benchmark.add_argument(
        "--protocol",
        required=True,
        metavar="NAME|PATH",
        help="a shipped protocol (librispeech-v1, synthetic-v1) or a YAML file",
    )
    benchmark.add_argument(
        "--upstream",
        action="append",
        default=[],
        type=upstream_argument,
        metavar="SPEC",
        help="s3prl hub name, or NAME=CKPT_PATH for *_local upstreams (repeatable)",
    )
    benchmark.add_argument(
        "--out", type=output_folder, required=True, help="the benchmark folder (rerun to continue it)"
    )
    benchmark.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    benchmark.add_argument(
        "--manifest",
        action="append",
        default=[],
        type=_corpus_path,
        metavar="CORPUS=PATH",
        help="where a protocol corpus's manifest is (default: the protocol's path, relative to here)",
    )
    benchmark.add_argument(
        "--add",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="merge the finished cells of another benchmark folder of the same protocol (repeatable)",
    )
    benchmark.set_defaults(
        handler=_benchmark,
        resume_hint="finished upstream x task cells are kept in the --out folder: rerun the same command to continue",
    )


def _benchmark(args):
    from s3prl_mi_probe.benchmark.protocol import load_protocol
    from s3prl_mi_probe.benchmark.run import run_benchmark
    from s3prl_mi_probe.common.problems import ProblemsFound
    from s3prl_mi_probe.toolkit.distribution import require_s3prl

    if not args.upstream and not args.add:
        return "s3prl-mi-probe benchmark: give --upstream SPEC (repeatable) and/or --add DIR"
    if args.upstream:
        require_s3prl()  # --add alone merges finished cells: no upstream runs
    try:
        protocol = load_protocol(args.protocol)
        manifests = dict(args.manifest)
        outputs = run_benchmark(protocol, args.upstream, args.out, args.device, manifests, args.add)
    except (ProblemsFound, ValueError, FileNotFoundError) as error:
        return f"s3prl-mi-probe benchmark: {error}"
    print(outputs["markdown"].read_text())
    print(f"wrote {outputs['markdown']}, {outputs['csv'].name}, {outputs['html'].name}, plots/")
    return 0


def _corpus_path(text):
    """``--manifest CORPUS=PATH``: the pair, or a usage error."""
    name, separator, path = text.partition("=")
    if not separator or not name.strip() or not path.strip():
        raise argparse.ArgumentTypeError(f"expected CORPUS=PATH, got {text!r}")
    return name.strip(), Path(path).expanduser()
