"""Issue 7 (hardening), item 5: the exporter refuses broken checkpoints, class files and output folders;
each failure is an ExporterError and leaves no files behind. Missing / renamed keys:
tests/exporter/test_checkpoints.py::test_bad_checkpoints_name_the_key."""
import os

import pytest

from oracle import needs_torch

needs_torch()
exporter = pytest.importorskip("exporter")


def _lenet_checkpoint(path, classes=2, **damage):
    import torch
    from exporter.models import get_backbone
    sd = get_backbone("LeNet").build(classes).state_dict()
    for key, value in damage.items():
        sd[key.replace("__", ".")] = value
    torch.save({"meta": {"CLASSES": ["c%d" % i for i in range(classes)]}, "state_dict": sd}, str(path))


def _files(folder):
    return sorted(p for p in os.listdir(str(folder)))


def test_exporter_not_a_checkpoint(tmp_path):
    from exporter.errors import CheckpointError
    for i, blob in enumerate([b"", b"not a checkpoint at all", b"PK\x03\x04" + os.urandom(200), os.urandom(4096)]):
        (tmp_path / "bad.pth").write_bytes(blob)
        before = _files(tmp_path)
        with pytest.raises(CheckpointError):
            exporter.convert("LeNet", checkpoint=tmp_path / "bad.pth", out_file=tmp_path / "m.onnx", log=None)
        assert _files(tmp_path) == before


def test_exporter_pickled_code_is_refused(tmp_path):
    import torch
    from exporter.errors import CheckpointError

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch %s" % (tmp_path / "pwned"),))

    torch.save({"state_dict": {}, "x": Payload()}, str(tmp_path / "evil.pth"))
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        exporter.convert("LeNet", checkpoint=tmp_path / "evil.pth", out_file=tmp_path / "m.onnx", log=None)
    assert _files(tmp_path) == ["evil.pth"]  # no pwned, no half-written model


def test_exporter_wrong_shapes(tmp_path):
    import torch
    from exporter.errors import CheckpointError
    _lenet_checkpoint(tmp_path / "ck.pth", **{"head__fc__weight": torch.zeros(2, 3)})
    sd = torch.load(str(tmp_path / "ck.pth"), weights_only=True)["state_dict"]
    key = [k for k in sd if k.endswith("weight")][0]
    sd[key] = torch.zeros(7, 7)
    torch.save({"state_dict": sd}, str(tmp_path / "ck.pth"))
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        exporter.convert("LeNet", checkpoint=tmp_path / "ck.pth", out_file=tmp_path / "out" / "m.onnx", log=None)
    assert not (tmp_path / "out").exists() or _files(tmp_path / "out") == []


def test_exporter_class_file_count(tmp_path):
    from exporter.errors import ClassesError
    _lenet_checkpoint(tmp_path / "ck.pth", classes=2)
    (tmp_path / "classes.txt").write_text("cat\ndog\nbird\n", encoding="utf-8")
    with pytest.raises(ClassesError, match="3"):
        exporter.convert("LeNet", checkpoint=tmp_path / "ck.pth", out_file=tmp_path / "m.onnx",
                         class_path=tmp_path / "classes.txt", log=None)
    with pytest.raises(ClassesError, match="3 classes but num_classes is 4"):
        exporter.convert("LeNet", out_file=tmp_path / "m.onnx", num_classes=4, class_path=tmp_path / "classes.txt",
                         log=None)
    assert _files(tmp_path) == ["ck.pth", "classes.txt"]


def test_exporter_output_folder_that_cannot_be_written(tmp_path):
    from exporter.errors import ExporterError
    (tmp_path / "a_file").write_text("x")
    targets = [tmp_path / "a_file" / "m.onnx"]          # its "folder" is a file
    if os.path.isdir("/proc/self"):
        targets.append("/proc/self/m.onnx")             # not writable, even by root
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        os.chmod(str(ro), 0o500)
        targets.append(ro / "m.onnx")
    (tmp_path / "m.onnx").mkdir()                       # the model's name is taken by a folder
    targets.append(tmp_path / "m.onnx")
    for target in targets:
        with pytest.raises(ExporterError, match="cannot write"):
            exporter.convert("LeNet", out_file=target, num_classes=2, log=None)
    assert _files(tmp_path) == ["a_file", "m.onnx"] + (["ro"] if os.geteuid() != 0 else [])
    assert _files(tmp_path / "m.onnx") == []
