"""torchvision's own Python code (its detection models, their transform and post-processing) beside our CPU
torch build, for tests/test_faster_rcnn.py.

Why not ``pip install torchvision``: the only torchvision wheel for torch 2.13 on the package indexes here is
the CUDA build; its compiled ops (``_C.so``) link libtorch_cuda, which the CPU torch does not have, and
``import torchvision`` then stops at ``operator torchvision::nms does not exist``. Installed into the
environment it would break any library that imports it. So this module takes the wheel with pip (the
ordinary client, ``pip download --no-deps``), unpacks its Python files alone into a cache folder, and
before importing it defines the two compiled ops a Faster R-CNN uses as torch code:

* ``torchvision::roi_align``: torchvision's own pure-torch ``_roi_align`` (the one it runs where its
  compiled ops are missing);
* ``torchvision::nms``: greedy NMS written out below (boxes by descending score, each dropping the later
  ones whose IoU with it is over the threshold: what the compiled op does).

torchvision's ONNX export of both (``ops/_register_onnx_ops.py``: RoiAlign, NonMaxSuppression) is used as it
is; those Python implementations only run while torch traces the model.
"""
import glob
import os
import subprocess
import sys
import types
import zipfile

TORCH_TO_TORCHVISION = {"2.13": "0.28.0"}


def folder():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tinyrt", "torchvision-python")


def _unpack(version):
    """The Python files of torchvision ``version``, unpacked once; (path, None) or (None, why not)."""
    target = os.path.join(folder(), version)
    if os.path.isfile(os.path.join(target, "torchvision", "__init__.py")):
        return target, None
    download = os.path.join(folder(), "wheels")
    os.makedirs(download, exist_ok=True)
    wheels = glob.glob(os.path.join(download, "torchvision-%s-*.whl" % version))
    if not wheels:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                               "-d", download, "torchvision==%s" % version], capture_output=True, text=True)
        wheels = glob.glob(os.path.join(download, "torchvision-%s-*.whl" % version))
        if proc.returncode != 0 or not wheels:
            return None, "pip could not fetch torchvision %s: %s" % (version, (proc.stderr or "")[-300:])
    part = target + ".part"
    with zipfile.ZipFile(wheels[0]) as z:
        for name in z.namelist():
            if name.startswith("torchvision/") and name.endswith(".py"):
                z.extract(name, part)
    os.replace(part, target)
    return target, None


def _nms(dets, scores, iou_threshold):
    import torch
    order = torch.argsort(scores, descending=True)
    x1, y1, x2, y2 = dets[order].unbind(1)
    area = (x2 - x1) * (y2 - y1)
    dropped = torch.zeros(order.numel(), dtype=torch.bool)
    keep = []
    for i in range(order.numel()):
        if dropped[i]:
            continue
        keep.append(int(order[i]))
        w = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0)
        h = (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)).clamp(min=0)
        inter = w * h
        dropped |= inter / (area[i] + area - inter) > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


def _roi_align(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned):
    from torchvision.ops.roi_align import _roi_align as torch_code
    return torch_code(input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)


def _no_check():  # a named function: torch.jit scripts what torchvision's scripted helpers call
    pass


def _has_ops():
    return True


def load():
    """torchvision, imported with its two ops defined in torch; (module, None) or (None, why not)."""
    if "torchvision" in sys.modules:
        return sys.modules["torchvision"], None
    import torch
    version = TORCH_TO_TORCHVISION.get(".".join(torch.__version__.split(".")[:2]))
    if version is None:
        return None, "no torchvision version known for torch %s" % torch.__version__
    path, why = _unpack(version)
    if path is None:
        return None, why
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
               "SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor")
    lib.impl("nms", _nms, "CPU")
    lib.impl("roi_align", _roi_align, "CPU")
    load.library = lib  # kept alive: the definitions last as long as the Library object
    # its fake-tensor registrations name compiled ops that do not exist here
    sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
    sys.path.insert(0, path)
    import torchvision
    import torchvision.ops  # noqa: F401
    roi_align_module, boxes_module = sys.modules["torchvision.ops.roi_align"], sys.modules["torchvision.ops.boxes"]
    roi_align_module._assert_has_ops = boxes_module._assert_has_ops = _no_check
    roi_align_module._has_ops = _has_ops  # call torchvision::roi_align, which exports as RoiAlign
    return torchvision, None
