"""``s3prl-mi-probe probe``: the probe half of ``sweep`` on any features folder (README, "Features folders")."""

from s3prl_mi_probe.cli.options import add_probe_options, existing_folder, output_folder, probe_settings


def register_probe_command(commands):
    """Add ``probe`` to the subcommands of the ``s3prl-mi-probe`` parser."""
    probe = commands.add_parser(
        "probe",
        help="probe every layer of a features folder (layer_KKK.npy + rows.tsv, or a sweep's cache): "
        "bits, accuracy, margins",
    )
    probe.add_argument(
        "features", type=existing_folder, metavar="FEATURES_DIR", help="features folder (layer_KKK.npy + rows.tsv)"
    )
    probe.add_argument("--out", type=output_folder, required=True, help="folder for sweep.csv, sweep.json, plots/, tb/")
    add_probe_options(
        probe,
        _bank_probe_kinds,
        kinds_help="linear (default), mlp1, mlp2",
        control_help="control task keyed on segment or on a rows.tsv column (e.g. speaker, word_type): "
        "adds selectivity",
    )
    probe.add_argument("--seed", type=int, default=0, help="dev carving, subsamples, row order, MLP weights")
    probe.add_argument("--upstream-label", help="the rows' upstream (default: meta.json's, else the folder name)")
    probe.add_argument("--task-label", help="the rows' task (default: meta.json's, else 'custom')")
    probe.set_defaults(handler=_probe)


def _bank_probe_kinds():
    from s3prl_mi_probe.probe.kinds import PROBE_KINDS

    return tuple(PROBE_KINDS)


def _probe(args):
    from s3prl_mi_probe.probing.driver import run_probe
    from s3prl_mi_probe.probing.settings import ProbeSettings

    try:
        settings = ProbeSettings(**probe_settings(args))
        rows = run_probe(args.features, args.out, settings, args.upstream_label, args.task_label)
    except ValueError as error:
        return f"s3prl-mi-probe probe: {error}"
    if rows is not None:
        print(f"wrote {args.out}/sweep.csv, sweep.json, plots/, tb/")
    return 0
