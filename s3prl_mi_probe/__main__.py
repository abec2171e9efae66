"""``python -m s3prl_mi_probe``."""

import sys

from s3prl_mi_probe.cli import main

sys.exit(main())
