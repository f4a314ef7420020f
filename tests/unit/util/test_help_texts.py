"""Help texts say what the options do: an option whose help says it has no effect is read nowhere."""

from __future__ import annotations

import re
from pathlib import Path

from pilot.util.parameters import build_parser

PILOT = Path(__file__).resolve().parents[3] / "pilot"


def _sources() -> str:
    return "\n".join(p.read_text() for p in PILOT.rglob("*.py") if p.name != "parameters.py")


def test_options_documented_as_without_effect_are_not_read():
    code = _sources()
    for action in build_parser()._actions:
        text = (action.help or "").lower()
        if "no effect" not in text and "ignored" not in text:
            continue
        used = re.search(rf"(args\.{action.dest}\b|getattr\([\w.]*args, [\"']{action.dest}[\"'])", code)
        assert not used, f"{action.option_strings} is read ({used.group(0)}) but its help says it has no effect"


def test_every_option_has_a_help_text():
    for action in build_parser()._actions:
        assert action.help and len(action.help) > 8, action.option_strings
