"""tinyrt's ops: one module per op or op family. Importing this package registers them all."""
import importlib
import pkgutil

from .registry import op, resolve, versions, registered  # noqa: F401

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "registry" and not _module.name.startswith("_"):
        importlib.import_module(__name__ + "." + _module.name)
