"""``s3prl-mi-probe sweep``: every layer of every upstream from one extraction pass."""

from s3prl_mi_probe.cli.options import (
    add_probe_options,
    add_task_filter_options,
    comma_list,
    existing_file,
    non_negative_int,
    output_folder,
    positive_int,
    probe_settings,
    task_options,
    upstream_argument,
)
from s3prl_mi_probe.corpus.control import CONTROL_KEYS
from s3prl_mi_probe.corpus.task_kinds import TASK_KINDS


def register_sweep_command(commands):
    """Add ``sweep`` to the subcommands of the ``s3prl-mi-probe`` parser."""
    sweep = commands.add_parser(
        "sweep", help="every layer of every upstream from one extraction pass: bits, accuracy, margins"
    )
    sweep.add_argument(
        "--upstream",
        action="append",
        required=True,
        type=upstream_argument,
        metavar="SPEC",
        help="s3prl hub name, or NAME=CKPT_PATH for *_local upstreams (repeatable)",
    )
    sweep.add_argument(
        "--manifest", type=existing_file, required=True, help="TSV: id, audio, alignment, split [, speaker]"
    )
    sweep.add_argument(
        "--task",
        choices=list(TASK_KINDS),
        required=True,
        help="phone: tier 'phones'; word: 'words'; frame_phone: one sample per labelled 10 ms frame of 'phones'",
    )
    sweep.add_argument("--out", type=output_folder, required=True, help="folder for sweep.csv, sweep.json, plots/, tb/")
    sweep.add_argument(
        "--slicing",
        choices=["feature", "audio"],
        default="feature",
        help="feature: pool frames of the whole utterance; audio: run each segment alone",
    )
    add_task_filter_options(sweep)
    sweep.add_argument("--cache-dir", type=output_folder, help="feature cache (default: OUT/cache)")
    sweep.add_argument("--dtype", choices=["float32", "float16"], default="float32", help="cached feature type")
    sweep.add_argument("--batch-size", type=positive_int, default=8, help="utterances per upstream forward")
    add_probe_options(
        sweep,
        _sweep_probe_kinds,
        kinds_help="linear (default), mlp1, mlp2, finetune",
        control_help="control task keyed on segment, word_type (phone task) or speaker: adds selectivity",
        control_choices=CONTROL_KEYS,
    )
    sweep.add_argument(
        "--finetune-layers",
        action="append",
        type=_layer_list,
        metavar="L",
        help="layers to fine-tune from (comma-separated; default: every layer)",
    )
    sweep.set_defaults(
        handler=_sweep, needs_s3prl=True, resume_hint="rerun the same command to resume: extracted batches are cached"
    )


def _sweep_probe_kinds():
    from s3prl_mi_probe.probe.kinds import known_probe_kinds

    return known_probe_kinds()


def _layer_list(text):
    """``--finetune-layers``: comma-separated layer numbers."""
    return tuple(non_negative_int(item) for item in comma_list(text))


def _sweep(args):
    from s3prl_mi_probe.common.problems import ProblemsFound
    from s3prl_mi_probe.features.upstream_spec import UpstreamUnavailable
    from s3prl_mi_probe.sweep import SweepSettings, run_sweep

    try:
        settings = SweepSettings(
            **probe_settings(args),
            slicing=args.slicing,
            dtype=args.dtype,
            batch_size=args.batch_size,
            finetune_layers=tuple(layer for layers in args.finetune_layers for layer in layers)
            if args.finetune_layers
            else None,
            cache_dir=args.cache_dir,
        )
        rows = run_sweep(args.upstream, args.manifest, task_options(args), args.out, settings)
    except (ProblemsFound, ValueError, UpstreamUnavailable) as error:
        return f"s3prl-mi-probe sweep: {error}"
    if rows is not None:
        print(f"wrote {args.out}/sweep.csv, sweep.json, plots/, tb/")
    return 0
