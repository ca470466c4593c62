"""What pyproject.toml cannot say statically: kernels/ and exporter/ install under names that cannot collide
with other projects' top-level packages (tinyrt_kernels, tinyrt_exporter), while a checkout, and the
"copy tinyrt/ and kernels/ next to your script" route, keep the folder names. tinyrt finds its kernels
either way (tinyrt/kernels_select.py)."""
from setuptools import find_packages, setup

INSTALLED_AS = {"kernels": "tinyrt_kernels", "exporter": "tinyrt_exporter"}

packages = find_packages(include=["tinyrt", "tinyrt.*"])
package_dir = {}
for folder, name in INSTALLED_AS.items():
    for package in find_packages(include=[folder, folder + ".*"]):
        installed = name + package[len(folder):]
        packages.append(installed)
        package_dir[installed] = package.replace(".", "/")

setup(packages=packages, package_dir=package_dir)
