"""The README states how many default-domain ops tinyrt supports; keep that number true."""
import os
import re

import tinyrt

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def test_readme_op_count_is_true():
    text = open(README, encoding="utf-8").read()
    found = re.search(r"`tinyrt\.supported_ops\(\)` lists the (\d+) ops of the default domain", text)
    assert found, "README no longer states the op count next to tinyrt.supported_ops()"
    assert int(found.group(1)) == len(tinyrt.supported_ops())
