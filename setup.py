"""Installation of the PanDA pilot: ``pip install .`` gives the ``pilot`` command and ``python -m pilot``.

``pilot.py`` is not installed as a script: in ``bin/`` it would be ``sys.path[0]`` and shadow the
``pilot`` package. The four-part version comes from the ``PILOTVERSION`` file, which is also copied
into the package so that an installed pilot knows it.
"""

import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))

with open(os.path.join(HERE, "README.md"), encoding="utf-8") as handle:
    LONG_DESCRIPTION = handle.read()
with open(os.path.join(HERE, "PILOTVERSION"), encoding="utf-8") as handle:
    PILOT_VERSION = handle.read().strip()


class BuildWithVersion(build_py):
    """build_py that also puts PILOTVERSION into the built ``pilot`` package."""

    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "pilot", "PILOTVERSION")
        self.mkpath(os.path.dirname(target))
        shutil.copyfile(os.path.join(HERE, "PILOTVERSION"), target)


setup(
    name="panda-pilot-ng",
    version=PILOT_VERSION,
    description="A Python 3 rewrite of the PanDA Pilot 2 worker-node pilot",
    long_description=LONG_DESCRIPTION,
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["pilot", "pilot.*"]),
    package_data={"pilot.util": ["default.cfg"], "pilot.devserver": ["samples/*"]},
    install_requires=[],
    extras_require={
        "rucio": ["rucio-clients==41.5.1"],
        "monitor": ["psutil>=5.9"],
        "eventservice": ["pyzmq>=17"],
        "test": ["pytest>=7", "flake8>=6", "sphinx>=7", "psutil>=5.9"],
    },
    entry_points={"console_scripts": ["pilot=pilot.main:main"]},
    cmdclass={"build_py": BuildWithVersion},
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
        "Operating System :: POSIX :: Linux",
    ],
)
