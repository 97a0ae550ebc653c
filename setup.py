"""Maps the design card's root folders (graph/, nodes/, ...) into the agenttts namespace.

pyproject.toml holds the metadata; only the package list, which setuptools' `find` cannot compute
for remapped folders, is built here.
"""

from setuptools import find_packages, setup

ROOT_PACKAGES = ["environment", "graph", "nodes", "prompts", "tasks"]

packages = find_packages(include=["agenttts", "agenttts.*"])
package_dir = {"agenttts": "agenttts"}
for folder in ROOT_PACKAGES:
    package_dir[f"agenttts.{folder}"] = folder
    packages.append(f"agenttts.{folder}")
    packages += [f"agenttts.{folder}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=package_dir)
