"""A config of s3prl's ``run_downstream.py`` as s3prl reads it: the ``-c`` YAML, then the ``-o`` overrides."""

import argparse
import contextlib
import io

from s3prl_mi_probe.toolkit.activation import activate


def read_runner_config(path, overrides=None):
    """The config s3prl's runner will use for ``-c path -o overrides``; None when s3prl cannot read or apply them."""
    activate()
    import yaml
    from s3prl.utility.helper import override

    try:
        with open(path) as file:
            config = yaml.load(file, Loader=yaml.FullLoader)  # as s3prl reads it
        if overrides is not None and overrides.lower() != "none":
            with contextlib.redirect_stderr(io.StringIO()):  # s3prl prints each override when it applies them
                override(overrides, argparse.Namespace(), config)
    except (OSError, yaml.YAMLError, ValueError, AssertionError):
        return None
    return config
