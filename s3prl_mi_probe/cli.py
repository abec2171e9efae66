"""The ``s3prl-mi-probe`` command."""

import argparse
import sys
from pathlib import Path

from s3prl_mi_probe.corpus.commands import register_corpus_commands
from s3prl_mi_probe.corpus.synth_command import register_synth_command

CONFIG_DIR = Path(__file__).resolve().parent / "downstream_configs"


def config_path(task):
    """Installed path of the runner config of a task (``phone`` or ``word``)."""
    return CONFIG_DIR / f"mi_probe_{task}.yaml"


def _print_config(args):
    print(config_path(args.task))


def _demo(args):
    from s3prl_mi_probe.demo import run_demo
    from s3prl_mi_probe.features.upstream_spec import UpstreamSpec

    upstreams = [UpstreamSpec.parse(spec) for spec in args.upstream or []]
    report = run_demo(args.out, upstreams=upstreams or None, seed=args.seed, device=args.device)
    print(report.read_text())
    print(f"report: {report}")
    return 0


def _sweep(args):
    from s3prl_mi_probe.corpus.errors import CorpusError
    from s3prl_mi_probe.corpus.segments import TaskOptions
    from s3prl_mi_probe.features.upstream_spec import UpstreamSpec
    from s3prl_mi_probe.sweep import SweepSettings, run_sweep

    options = TaskOptions(
        task=args.task, min_count=args.min_count, max_classes=args.max_classes, fold_stress=args.fold_stress,
        min_duration=args.min_duration, max_duration=args.max_duration, seed=args.seed,
    )  # fmt: skip
    try:
        settings = SweepSettings(
            device=args.device, slicing=args.slicing, dtype=args.dtype, batch_size=args.batch_size,
            probes=_comma_list(args.probe or ["linear"]), hidden_dim=args.mlp_width, control=args.control,
            seeds=args.seeds, mdl=args.mdl, hard_margin=args.hard_margin,
            finetune_layers=tuple(map(int, _comma_list(args.finetune_layers))) if args.finetune_layers else None,
            seed=args.seed, cache_dir=args.cache_dir,
        )  # fmt: skip
        rows = run_sweep([UpstreamSpec.parse(spec) for spec in args.upstream], args.manifest, options, args.out, settings)
    except (CorpusError, ValueError) as error:
        return f"s3prl-mi-probe sweep: {error}"
    if rows is not None:
        print(f"wrote {args.out}/sweep.csv, sweep.json, plots/, tb/")
    return 0


def _comma_list(values):
    """Items of repeated and/or comma-separated option values, in order."""
    return tuple(item.strip() for value in values for item in value.split(",") if item.strip())


def _compare(args):
    from s3prl_mi_probe.report.compare import compare_sweeps

    outputs = compare_sweeps(args.sweeps, args.out)
    print(f"wrote {outputs['markdown']}, {outputs['csv']} and plots under {args.out / 'plots'}")
    return 0


def _add_sweep_parser(commands):
    from s3prl_mi_probe.corpus.segments import TaskOptions

    defaults = TaskOptions()
    sweep = commands.add_parser(
        "sweep", help="every layer of every upstream from one extraction pass: bits, accuracy, margins"
    )
    sweep.add_argument("--upstream", action="append", required=True, metavar="SPEC",
                       help="s3prl hub name, or NAME=CKPT_PATH for *_local upstreams (repeatable)")
    sweep.add_argument("--manifest", type=Path, required=True, help="TSV: id, audio, alignment, split [, speaker]")
    sweep.add_argument("--task", choices=["phone", "word"], required=True)
    sweep.add_argument("--out", type=Path, required=True)
    sweep.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    sweep.add_argument("--slicing", choices=["feature", "audio"], default="feature",
                       help="feature: pool frames of the whole utterance (default); audio: run each segment alone")
    sweep.add_argument("--min-count", type=int, default=defaults.min_count)
    sweep.add_argument("--max-classes", type=int, default=defaults.max_classes)
    sweep.add_argument("--min-duration", type=float, default=defaults.min_duration, help="seconds")
    sweep.add_argument("--max-duration", type=float, default=defaults.max_duration, help="seconds")
    sweep.add_argument("--fold-stress", action="store_true", help="ARPAbet stress folding: AH0 -> AH")
    sweep.add_argument("--seed", type=int, default=0)
    sweep.add_argument("--cache-dir", type=Path, help="feature cache (default: OUT/cache)")
    sweep.add_argument("--dtype", choices=["float32", "float16"], default="float32", help="cached feature type")
    sweep.add_argument("--batch-size", type=int, default=8, help="utterances per upstream forward")
    sweep.add_argument("--probe", action="append", metavar="KIND",
                       help="linear (default), mlp1, mlp2, finetune; repeat or comma-separate for several curves")
    sweep.add_argument("--mlp-width", type=int, default=256, help="hidden units of mlp1/mlp2 probes")
    sweep.add_argument("--finetune-layers", action="append", metavar="L",
                       help="layers to fine-tune from (comma-separated; default: every layer)")
    sweep.add_argument("--control", metavar="KEY",
                       help="control task keyed on segment, word_type (phone task) or speaker: adds selectivity")
    sweep.add_argument("--seeds", type=int, default=1, help="train every probe with this many seeds (mean, std)")
    sweep.add_argument("--mdl", action="store_true", help="MDL online codelength and compression per layer")
    sweep.add_argument("--hard-margin", action="store_true",
                       help="max-margin (Crammer-Singer) of layers whose train features are separable")
    sweep.set_defaults(handler=_sweep)  # fmt: skip


def build_parser():
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="s3prl-mi-probe",
        description="Layer-wise mutual-information bounds and margins for s3prl upstreams.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    config = commands.add_parser("config", help="print the installed path of a runner config (for -c)")
    config.add_argument("task", choices=["phone", "word"])
    config.set_defaults(handler=_print_config)
    _add_sweep_parser(commands)
    register_corpus_commands(commands)
    register_synth_command(commands)
    compare = commands.add_parser("compare", help="side-by-side report of several sweep folders")
    compare.add_argument("sweeps", nargs="+", type=Path, metavar="DIR")
    compare.add_argument("--out", type=Path, required=True)
    compare.set_defaults(handler=_compare)
    demo = commands.add_parser(
        "demo", help="the offline default job: tone corpus; fbank, mfcc and a random HuBERT; both tasks"
    )
    demo.add_argument("--out", type=Path, default=Path("demo_out"))
    demo.add_argument("--upstream", action="append", metavar="SPEC", help="sweep these instead (repeatable)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--device", default="cpu")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv=None):
    """Entry point of ``s3prl-mi-probe`` and ``python -m s3prl_mi_probe``."""
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
