"""The probe stage on a features folder: every probe kind, seeds, a control task, MDL and the hard margin.

Shared by ``sweep`` (on its own cache, which is a features folder) and ``probe`` (on any features
folder, see :mod:`s3prl_mi_probe.features.folder`): :mod:`~s3prl_mi_probe.probing.driver` runs it,
:mod:`~s3prl_mi_probe.probing.settings` says what runs, :mod:`~s3prl_mi_probe.probing.folder` reads a
folder's splits and control labels, :mod:`~s3prl_mi_probe.probing.rows` trains and evaluates the
probes of some layers.
"""
