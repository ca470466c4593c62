"""``python -m exporter.data classification|detection PATH [--seed S] [--train N] ...``: write a dataset."""
import argparse
import sys
import time

from . import CLASSES, make_classification_dataset, make_detection_dataset, make_samples


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m exporter.data",
                                description="Write a synthetic shapes dataset (%s) in MMEdu's layout."
                                            % ", ".join(CLASSES))
    p.add_argument("task", choices=["classification", "detection", "samples"],
                   help="samples: a handful of pictures of each task plus samples.json (their ground truth)")
    p.add_argument("path", help="output folder")
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same dataset (default 0)")
    p.add_argument("--train", type=int, default=None, help="training pictures (default 2000)")
    p.add_argument("--val", type=int, default=None, help="validation pictures")
    p.add_argument("--test", type=int, default=None, help="test pictures")
    p.add_argument("--size", type=int, default=None,
                   help="picture side (default 112 for classification, 320 for detection)")
    args = p.parse_args(argv)
    kw = {k: getattr(args, k) for k in ("train", "val", "test") if getattr(args, k) is not None}
    t = time.time()
    if args.task == "samples":
        truth = make_samples(args.path, seed=args.seed)
        print("wrote %d pictures and samples.json in %s" % (len(truth), args.path))
        return 0
    if args.task == "classification":
        if args.size:
            kw["size"] = args.size
        make_classification_dataset(args.path, seed=args.seed, log=print, **kw)
    else:
        if args.size:
            kw["width"] = kw["height"] = args.size
        make_detection_dataset(args.path, seed=args.seed, log=print, **kw)
    print("wrote %s in %.1f s" % (args.path, time.time() - t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
