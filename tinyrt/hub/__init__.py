"""XEduHub's API on tinyrt: ``from tinyrt.hub import Workflow as wf`` in place of ``from XEdu.hub import ...``.

Only ``task='mmedu'`` (ONNX files exported by MMEdu or by tinyrt's exporter); see workflow.py and
docs/coming-from-mmedu.md. Importing it imports numpy only.
"""
from .workflow import Workflow

__all__ = ["Workflow"]
