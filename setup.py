"""Installation of the PanDA pilot (``pip install .`` gives the ``pilot`` command)."""

from setuptools import find_packages, setup

with open("README.md", encoding="utf-8") as handle:
    LONG_DESCRIPTION = handle.read()

setup(
    name="panda-pilot-ng",
    version="0.1.0",
    description="A Python 3 rewrite of the PanDA Pilot 2 worker-node pilot",
    long_description=LONG_DESCRIPTION,
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["pilot", "pilot.*"]),
    py_modules=[],
    package_data={"pilot.util": ["default.cfg"], "pilot.devserver": ["samples/*"]},
    include_package_data=True,
    install_requires=[],
    extras_require={
        "rucio": ["rucio-clients==41.5.1"],
        "monitor": ["psutil>=5.9"],
        "eventservice": ["pyzmq>=17"],
        "test": ["pytest>=7", "flake8>=6", "sphinx>=7", "psutil>=5.9"],
    },
    entry_points={"console_scripts": ["pilot=pilot.main:main"]},
    scripts=["pilot.py"],
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
        "Operating System :: POSIX :: Linux",
    ],
)
