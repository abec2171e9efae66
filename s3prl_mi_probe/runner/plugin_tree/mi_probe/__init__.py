"""``s3prl.downstream.mi_probe``: resolved through s3prl.downstream.__path__ (see runner/patches.py)."""
