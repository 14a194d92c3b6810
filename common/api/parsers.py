"""Request body parsing: JSON only."""

import json

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, answering 400 for what Python's decoder takes but nothing can use.

    That is nesting too deep for the decoder, and a lone UTF-16 surrogate (`"\\ud800"`): valid
    JSON escapes, but no UTF-8 text, so no column, event or error message could carry them.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply") from exc
        try:
            json.dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError as exc:
            raise ParseError("JSON parse error - a string holds a lone surrogate") from exc
        return data
