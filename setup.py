"""Which files the wheel holds; everything else about the package is in pyproject.toml.

The Hydra configs stay in the top-level ``conf/`` and ship as the package ``fmnist.conf``
(each config group a sub-package, so setuptools copies its YAML files). pyproject.toml cannot
say this: its ``packages.find`` only finds folders that carry their package's name.
"""

from setuptools import find_namespace_packages, find_packages, setup

CONF = ["fmnist.conf", *(f"fmnist.conf.{group}" for group in find_namespace_packages(where="conf"))]

setup(
    packages=[*find_packages(include=["fmnist", "fmnist.*"]), *CONF],
    package_dir={"fmnist.conf": "conf"},
    package_data={
        **{package: ["*.yaml"] for package in CONF},
        "fmnist.inference": ["static/*.html"],  # the served model's page
    },
)
