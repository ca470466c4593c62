"""The metadata written into every exported ONNX file (``metadata_props``); docs/metadata.md lists each key.

onnxruntime shows them as ``sess.get_modelmeta().custom_metadata_map`` and tinyrt the same way. Values are
strings; structured values are JSON (UTF-8, not ASCII-escaped, so Chinese class names stay readable).
"""
import json

FORMAT_VERSION = "1"
EXPORTER_VERSION = "0.1.0"     # the package's __version__, written into every file


def _json(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def build_metadata(spec, classes, input_size, input_name, output_names, opset, exporter_version,
                   dynamic_batch=False, detection=None, width_mult=1.0, source=None):
    """The metadata dict {key: str} for one export. ``detection``: the thresholds dict, detection only."""
    pre = spec.preprocess(input_size)
    props = {
        "tinyrt.format_version": FORMAT_VERSION,
        "tinyrt.task": spec.task,
        "tinyrt.backbone": spec.name,
        "tinyrt.width_mult": repr(float(width_mult)),
        "tinyrt.classes": _json(list(classes)),
        "tinyrt.num_classes": str(len(classes)),
        "tinyrt.input_name": input_name,
        "tinyrt.output_names": _json(list(output_names)),
        "tinyrt.input_shape": _json(["N" if dynamic_batch else 1, spec.channels, input_size, input_size]),
        "tinyrt.input_size": _json([input_size, input_size]),
        "tinyrt.preprocess": _json(pre),
        "tinyrt.exporter_version": exporter_version,
        "tinyrt.opset": str(opset),
    }
    if source:
        props["tinyrt.source"] = source
    if spec.task == "classification":
        props["tinyrt.postprocess"] = _json({"output": output_names[0], "softmax": True})
    else:
        d = detection
        props["tinyrt.postprocess"] = _json({
            "outputs": list(output_names), "box_format": "xyxy", "box_units": "input_pixels",
            "score_threshold": d["score_thr"], "iou_threshold": d["iou_thr"],
            "max_per_image": d["max_per_img"], "nms_pre": d["nms_pre"], "report_threshold": d["report_thr"],
            "padding": "rows past the last detection: dets all 0, label -1"})
        props["tinyrt.score_threshold"] = repr(float(d["score_thr"]))
        props["tinyrt.iou_threshold"] = repr(float(d["iou_thr"]))
        props["tinyrt.max_per_image"] = str(int(d["max_per_img"]))
        props["tinyrt.report_threshold"] = repr(float(d["report_thr"]))
    # XEdu / MMEdu compatibility. ASCII-escaped JSON, as MMEdu writes it: BaseDT's ModelData reads MODEL_INFO
    # through codecs' unicode_escape before json.loads, which garbles raw UTF-8 (Chinese class names)
    props["MODEL_INFO"] = json.dumps({"codebase": spec.codebase, "modelname": spec.name, "classes": list(classes)},
                                     separators=(",", ":"))
    if not any("|" in c for c in classes):
        props["CLASSES"] = "|".join(classes)
    return props


def write_metadata(path, props, doc_string=None):
    """Set ``props`` as the metadata_props of the ONNX file at ``path`` (rewrites the file in place)."""
    import onnx
    model = onnx.load(path, load_external_data=False)
    existing = {p.key: p.value for p in model.metadata_props}
    existing.update(props)
    del model.metadata_props[:]
    for key in sorted(existing):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, existing[key]
    if doc_string:
        model.doc_string = doc_string
    onnx.save(model, path)
    return model


def read_metadata(path_or_session):
    """The metadata dict of an ONNX file (via onnx) or of an InferenceSession (tinyrt or onnxruntime)."""
    if hasattr(path_or_session, "get_modelmeta"):
        return dict(path_or_session.get_modelmeta().custom_metadata_map)
    import onnx
    model = onnx.load(path_or_session, load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}
