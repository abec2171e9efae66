"""Build glue: ship ``s3prl_mi_probe.pth`` into site-packages for regular and editable installs.

The .pth line imports ``s3prl_mi_probe.runner.hook`` (no torch), whose import hook applies the
compatibility layer and registers ``-d mi_probe`` when s3prl is first imported. A regular wheel
carries the file through ``build_py``; setuptools' editable wheel does not carry build outputs, so
its strategy is wrapped to write the same file.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

PTH_NAME = "s3prl_mi_probe.pth"
PTH_LINE = "import s3prl_mi_probe.runner.hook\n"


class BuildPyWithImportHook(build_py):
    """build_py that also writes the .pth file at the root of the build (so of site-packages)."""

    def run(self):
        super().run()
        Path(self.build_lib, PTH_NAME).write_text(PTH_LINE)

    def get_outputs(self, include_bytecode=True):
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib, PTH_NAME))]


class _StrategyWithImportHook:
    """An editable-install strategy that also writes the .pth file into the editable wheel."""

    def __init__(self, strategy):
        self._strategy = strategy

    def __call__(self, wheel, files, mapping):
        self._strategy(wheel, files, mapping)
        wheel.writestr(PTH_NAME, PTH_LINE)

    def __enter__(self):
        self._strategy.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self._strategy.__exit__(*exc_info)


class EditableWheelWithImportHook(editable_wheel):
    def _select_strategy(self, name, tag, build_lib):
        return _StrategyWithImportHook(super()._select_strategy(name, tag, build_lib))


setup(cmdclass={"build_py": BuildPyWithImportHook, "editable_wheel": EditableWheelWithImportHook})
