"""The ``synth`` subcommand: an English espeak-ng corpus with exact word and phone alignments."""

from s3prl_mi_probe.cli.options import output_folder, positive_int
from s3prl_mi_probe.corpus.synthetic.synth import DEFAULT_VOICES, SPLIT_MODES


def register_synth_command(commands):
    """Add ``synth`` to ``commands`` (the subparsers of the ``s3prl-mi-probe`` parser)."""
    synth = commands.add_parser(
        "synth", help="English speech from espeak-ng: 16 kHz WAVs, exact word/phone TextGrids, manifest"
    )
    synth.add_argument(
        "--out", type=output_folder, required=True, help="folder for the WAVs, TextGrids and manifest.tsv"
    )
    synth.add_argument("--utterances", type=positive_int, required=True, help="how many to synthesize")
    synth.add_argument(
        "--voices",
        type=_voice_list,
        metavar="V1,V2,...",
        help=f"espeak-ng voices, one speaker each (default: {','.join(DEFAULT_VOICES)})",
    )
    synth.add_argument("--seed", type=int, default=0, help="sentences, voice settings and the split")
    synth.add_argument(
        "--split",
        choices=SPLIT_MODES,
        default="speaker",
        help="speaker: whole voices held out for dev and test (default); random: utterances",
    )
    synth.set_defaults(handler=_synth)


def _voice_list(value):
    return [voice.strip() for voice in value.split(",") if voice.strip()]


def _synth(args):
    from s3prl_mi_probe.corpus.synthetic.espeak import EspeakUnavailable
    from s3prl_mi_probe.corpus.synthetic.synth import synthesize_corpus

    try:
        manifest = synthesize_corpus(args.out, args.utterances, args.voices, seed=args.seed, split=args.split)
    except (ValueError, EspeakUnavailable) as error:
        return f"s3prl-mi-probe synth: {error}"
    print(f"wrote {manifest}")
    return 0
