"""Pictures in, answers out: the part of tinyrt behind ``tinyrt.run``.

============  ==============================================================================
image.py      decode a file / PIL image / numpy array to RGB uint8 (Pillow imported lazily)
resize.py     bilinear resize, Pillow's or the same in numpy (for boards without Pillow)
cv_linear.py  OpenCV's INTER_LINEAR resize in numpy (float32 and uint8, bit-exact), for BaseDT's recipe
basedt.py     MMEdu's BaseDT / XEduHub picture preparation (what MMEdu files get), OpenCV not needed
preprocess.py the model's metadata -> a Recipe: pipeline, colour, resize, crop, mean/std, classes, task
results.py    Prediction / ImageResult / Results, top-k and detection boxes back in picture pixels
draw.py       boxes, names and scores drawn with Pillow
============  ==============================================================================

Importing this package imports numpy only.
"""
from .image import read_image, pillow
from .preprocess import Recipe, build_recipe

from .results import ImageResult, Prediction, Results

__all__ = ["read_image", "pillow", "Recipe", "build_recipe", "ImageResult", "Prediction", "Results"]
