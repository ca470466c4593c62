"""Coverage-guided fuzzing of tinyrt with atheris (optional: ``pip install atheris``).

    python tests/fuzz/atheris_fuzz.py                       # seeds from tests/fuzz/seeds.py, runs until stopped
    python tests/fuzz/atheris_fuzz.py -max_total_time=600 -timeout=5 -rss_limit_mb=3072 corpus/

Every input is loaded and, when it loads, run on zeros; the only exceptions allowed are tinyrt's own
(atheris reports anything else with its input). ``-timeout=5`` flags hangs, ``-rss_limit_mb`` memory
blow-ups. A first corpus is written from the seed models when the corpus folder is empty.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def main():
    try:
        import atheris
    except ImportError:
        sys.exit("atheris is not installed: pip install atheris (or use: python -m tests.fuzz --minutes 30)")
    with atheris.instrument_imports():
        import tinyrt  # noqa: F401
        from tests.fuzz.harness import run_case
    from tests.fuzz.seeds import seed_bytes

    folders = [a for a in sys.argv[1:] if not a.startswith("-")]
    if folders and os.path.isdir(folders[0]) and not os.listdir(folders[0]):
        for name, data in seed_bytes().items():
            with open(os.path.join(folders[0], name + ".onnx"), "wb") as f:
                f.write(data)

    def one(data):
        try:
            run_case(bytes(data))
        except tinyrt.TinyrtError:
            pass

    atheris.Setup(sys.argv, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
