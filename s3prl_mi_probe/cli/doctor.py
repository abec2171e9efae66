"""``s3prl-mi-probe doctor``: what this environment runs with (s3prl distribution, torch, shims, devices)."""

from importlib import metadata


def register_doctor_command(commands):
    """Add ``doctor`` to the subcommands of the ``s3prl-mi-probe`` parser."""
    doctor = commands.add_parser(
        "doctor", help="which s3prl (distribution, version), torch and torchaudio, which shims and why, devices"
    )
    doctor.set_defaults(handler=_doctor)


def _version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _devices():
    import torch

    devices = ["cpu"]
    devices += [f"cuda:{k} ({torch.cuda.get_device_name(k)})" for k in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def _doctor(args):
    from s3prl_mi_probe.toolkit.compat import shim_report
    from s3prl_mi_probe.toolkit.distribution import INSTALL_HINT, s3prl_distributions, s3prl_location

    distributions = s3prl_distributions()
    location = s3prl_location()
    provided = ", ".join(f"{name} {version}" for name, version in distributions.items())
    shown = provided or ("no installed distribution (a source tree on sys.path)" if location else "not installed")
    print(f"s3prl: {shown}" + (f" ({location})" if location else ""))
    print(f"torch: {_version('torch')}; torchaudio: {_version('torchaudio')}")
    print("shims:")
    for shim in shim_report():
        print(f"  [{'active' if shim['active'] else 'off'}] {shim['name']}: {shim['why']}")
    print(f"devices: {', '.join(_devices())}")
    if location is None:
        return f"s3prl-mi-probe doctor: s3prl is not installed; install it with {INSTALL_HINT}"
    if len(distributions) > 1:
        return (
            f"s3prl-mi-probe doctor: {provided} all provide the s3prl package, so the files of one were written "
            f"over the other's; uninstall all of them (pip uninstall {' '.join(distributions)}), then install one: "
            f"{INSTALL_HINT}"
        )
    return 0
