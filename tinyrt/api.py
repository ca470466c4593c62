"""``tinyrt.run(model, img)`` and ``tinyrt.load(model)``: one call from a picture to a labelled answer.

    import tinyrt
    result = tinyrt.run("catdog.onnx", "cat.jpg")          # [{'label': 0, 'score': 0.94, 'name': 'cat'}]
    print(result)                                          # cat.jpg (320x240): cat 0.9417 (label 0)
    model = tinyrt.load("coco.onnx")                       # load once, run many times
    for r in model.run("photos/", score=0.5, save="out/"):
        print(r)

The model is a path, the file's bytes, or an InferenceSession (tinyrt's or onnxruntime's). The preprocessing,
the task and the class names come from the file's metadata (see tinyrt/vision/preprocess.py); the keyword
options below override them. The steps, each in its own module of tinyrt/vision/:

    read_image (image.py) -> Recipe.prepare (preprocess.py) -> session.run -> classification/detection
    (results.py) -> draw (draw.py, for save= and show=)
"""
import os

from .errors import InputError
from .session import InferenceSession

# options that change how pictures are prepared (the Recipe); the rest change how answers are given
RECIPE_OPTIONS = ("size", "resize", "crop", "mean", "std", "classes", "color_mode", "resize_policy", "task",
                  "softmax", "pipeline")
RUN_OPTIONS = ("topk", "score", "lang", "save", "show", "color", "background", "keep_image", "font")
DEFAULT_TOPK = 1
DEFAULT_SCORE = 0.3

_cache = {}


def _check_options(options):
    unknown = sorted(set(options) - set(RECIPE_OPTIONS) - set(RUN_OPTIONS))
    if unknown:
        raise InputError("unknown option%s %s; the options are: %s" % (
            "s" if len(unknown) > 1 else "", ", ".join(u + "=" for u in unknown),
            ", ".join(o + "=" for o in RECIPE_OPTIONS + RUN_OPTIONS)))


def _session(model):
    """(session, a short name for messages)."""
    if isinstance(model, Model):
        return model.session, model.name
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.exists(path):
            raise InputError("no such model file: %s" % path)
        if os.path.isdir(path):
            raise InputError("%s is a folder; the model is an .onnx file" % path)
        st = os.stat(path)
        key = (os.path.abspath(path), st.st_mtime, st.st_size)
        sess = _cache.get(key)
        if sess is None:
            sess = InferenceSession(path)
            _cache.clear()                     # keep the last model only: tinyrt.run in a loop loads once
            _cache[key] = sess
        return sess, os.path.basename(path)
    if isinstance(model, (bytes, bytearray, memoryview)):
        return InferenceSession(bytes(model)), "the model"
    if hasattr(model, "run") and hasattr(model, "get_inputs") and hasattr(model, "get_modelmeta"):
        return model, "the model"              # tinyrt's or onnxruntime's InferenceSession
    raise InputError("model must be a path to an .onnx file, its bytes, or an InferenceSession; got %s"
                     % type(model).__name__)


class Model:
    """A loaded model that turns pictures into answers: ``model.run(img)`` (or ``model(img)``).

    Attributes: ``session`` (the InferenceSession), ``recipe`` (the preprocessing, task and classes),
    ``task``, ``classes``, ``metadata``.
    """

    def __init__(self, model, **options):
        _check_options(options)
        self.session, self.name = _session(model)
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.options = {k: v for k, v in options.items() if v is not None}
        self.recipe = self._recipe(self.options)
        self.threshold, self.threshold_source = detection_threshold(self.metadata)

    def _recipe(self, options):
        from .vision.preprocess import build_recipe
        recipe_opts = {k: options[k] for k in RECIPE_OPTIONS if options.get(k) is not None}
        return build_recipe(self.metadata, self.session.get_inputs(), self.session.get_outputs(), recipe_opts,
                            what=self.name)

    @property
    def task(self):
        return self.recipe.task

    @property
    def classes(self):
        return list(self.recipe.classes)

    def __repr__(self):
        return "<tinyrt model %s: %s, %d classes; %s>" % (self.name, self.task, len(self.recipe.classes),
                                                          self.recipe.describe())

    def prepare(self, img, color="RGB", background=None, recipe=None):
        """(network input float32 [1, C, H, W], Geometry, RGB picture) for one picture."""
        recipe = recipe or self.recipe
        pic, rgb = recipe.read(img, color=color, background=background)
        x, geo = recipe.prepare(pic)
        return x, geo, rgb

    def run(self, img, **options):
        """Answers for ``img``: a path, a folder, a list of paths, a PIL image or a numpy HxWx3 uint8 array.

        One picture gives an ImageResult (a list of predictions); a folder or a list gives Results (one
        ImageResult per picture). Options: topk=, score=, lang=, save=, show=, color= (for arrays: 'RGB' or
        'BGR'), background= (composite transparent pictures on this colour), and any of the preprocessing
        options given to tinyrt.load (size=, mean=, std=, classes=, crop=, resize=, resize_policy=, ...).
        """
        from .vision.image import expand_sources
        from .vision.results import Results
        _check_options(options)
        sources, several = expand_sources(img)
        results = Results(self.iter_run(sources, several=several, **options))
        return results if several else results[0]

    __call__ = run

    def iter_run(self, sources, several=True, progress=None, **options):
        """One ImageResult per source, as they are computed (``progress(i, n, source)`` before each)."""
        from .vision.image import source_name
        from .vision.results import ImageResult, check_lang, classification, detection
        opts = dict(self.options)
        opts.update({k: v for k, v in options.items() if v is not None})
        recipe = self.recipe
        if any(k in options and options[k] is not None for k in RECIPE_OPTIONS):
            recipe = self._recipe(opts)
        lang = check_lang(opts.get("lang", "en"))
        topk = opts.get("topk", DEFAULT_TOPK)
        score, score_source = self.threshold, self.threshold_source
        if opts.get("score") is not None:
            score, score_source = float(opts["score"]), "score="
        color = opts.get("color", "RGB")
        save, show = opts.get("save"), opts.get("show", False)
        if opts.get("font"):                       # the font file to draw labels with (Chinese names)
            from .vision.draw import use_font
            use_font(opts["font"])
        targets = _save_targets(save, sources, several) if save else None  # checked before any work
        names = [o.name for o in self.session.get_outputs()]
        for i, src in enumerate(sources):
            if progress is not None:
                progress(i, len(sources), src)
            x, geo, rgb = self.prepare(src, color=color, background=opts.get("background"), recipe=recipe)
            outs = dict(zip(names, self.session.run(None, {recipe.input_name: x})))
            if recipe.task == "classification":
                first = outs.get("probs", outs[names[0]])
                preds = classification(first[0] if first.ndim > 1 else first, recipe, topk, lang)
            else:
                dets = outs.get("dets", outs[names[0]])
                labels = outs.get("labels", outs[names[1]] if len(names) > 1 else None)
                if labels is None or dets.ndim != 3 or dets.shape[-1] != 5:
                    raise InputError("%s: a detector's outputs are dets [N, K, 5] and labels [N, K]; got %s"
                                     % (self.name, ", ".join("%s %s" % (k, list(v.shape)) for k, v in outs.items())))
                preds = detection(dets[0], labels[0], geo, recipe, score, lang)
            is_path = isinstance(src, (str, os.PathLike))
            keep = opts.get("keep_image", not is_path)
            result = ImageResult(preds, recipe.task, path=source_name(src, i) if is_path else None,
                                 width=rgb.shape[1], height=rgb.shape[0], image=rgb if keep else None,
                                 input=x, outputs=outs, classes=recipe.classes, lang=lang)
            if recipe.task == "detection":
                result.threshold, result.threshold_source = score, score_source
            if save or show:
                result.image = rgb
                if save:
                    try:
                        result.saved = result.save(targets[i])
                    except (OSError, ValueError) as e:
                        raise InputError("save=: cannot write %s (%s)" % (targets[i], e)) from None
                if show:
                    result.show()
                if not keep:
                    result.image = None
            yield result


def detection_threshold(meta):
    """(the score a detected object needs, where that number comes from) for a model's metadata.

    One threshold everywhere: the exporter stores it in the file (``tinyrt.report_threshold``), and
    tinyrt.run, ``tinyrt run``, the sample script and the demo all read it; MMEdu's own files get XEduHub's
    ``thr=0.3``. An object is kept when its score is >= the threshold (XEduHub's rule)."""
    value = meta.get("tinyrt.report_threshold")
    if value is not None:
        try:
            return float(value), "the model file"
        except ValueError:
            pass
    if "MODEL_INFO" in meta or "CLASSES" in meta:
        return DEFAULT_SCORE, "XEduHub's default for MMEdu files"
    return DEFAULT_SCORE, "tinyrt's default"


SAVE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def _save_targets(save, sources, several):
    """The file each picture's drawing goes to, checked before anything runs: a known picture extension,
    never one of the pictures being read (``save=`` the pictures' own folder would overwrite them), and
    never two drawings to one file (two ``cat.jpg`` from two folders: the second is ``cat_2.jpg``)."""
    from .vision.draw import output_path
    if not isinstance(save, (str, os.PathLike)):
        raise InputError("save= is a folder or a picture file name, not %s" % type(save).__name__)
    inputs = {os.path.realpath(os.fspath(src)) for src in sources if isinstance(src, (str, os.PathLike))}
    targets, taken = [], set()
    for i, src in enumerate(sources):
        is_path = isinstance(src, (str, os.PathLike))
        target = output_path(save, os.fspath(src) if is_path else None, multiple=several, index=i)
        stem, ext = os.path.splitext(target)
        if ext.lower() not in SAVE_EXTENSIONS:
            raise InputError("save=%r: tinyrt saves pictures as %s, not %r"
                             % (os.fspath(save), ", ".join(SAVE_EXTENSIONS), ext or "no extension"))
        n = 1
        while os.path.realpath(target) in taken:
            n += 1
            target = "%s_%d%s" % (stem, n, ext)
        if os.path.realpath(target) in inputs:
            raise InputError("save=%r would overwrite the picture %s itself; save the drawings into another folder"
                             % (os.fspath(save), target))
        if os.path.isdir(target):
            raise InputError("save=%r: %s is a folder" % (os.fspath(save), target))
        taken.add(os.path.realpath(target))
        targets.append(target)
    return targets


def load(model, **options):
    """Load ``model`` (path, bytes or InferenceSession) once; returns a Model whose ``.run(img)`` gives answers.

    Options fix the preprocessing for every run: size=, resize=, crop=, mean=, std=, classes=, color_mode=
    ('RGB' or 'GRAY'), resize_policy= ('squash', 'shorter', 'letterbox'), task=; and defaults for the runs:
    topk=, score=, lang=, ...
    """
    return Model(model, **options)


def run(model, img, **options):
    """The answer for ``img`` from ``model``, in one call; see ``load`` and ``Model.run`` for the options.

    A path is loaded once and remembered, so calling ``tinyrt.run(path, ...)`` in a loop stays fast.
    """
    _check_options(options)
    recipe_opts = {k: v for k, v in options.items() if k in RECIPE_OPTIONS}
    run_opts = {k: v for k, v in options.items() if k not in RECIPE_OPTIONS}
    return Model(model, **recipe_opts).run(img, **run_opts)
