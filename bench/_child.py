"""A bench's Django side: `python -m bench._child MODULE:FUNCTION JSON-KWARGS`.

Sets Django up (settings from the environment bench._procs gives it), imports MODULE, calls
FUNCTION(**kwargs) and prints its result as one JSON line.
"""

import importlib
import json
import sys

import django


def main(target: str, kwargs: str) -> None:
    django.setup(set_prefix=False)
    module, function = target.split(":")
    result = getattr(importlib.import_module(module), function)(**json.loads(kwargs))
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
