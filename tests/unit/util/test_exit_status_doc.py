"""The exit status table of doc/source/usage.rst says what the code does (one table, checked here)."""

from __future__ import annotations

import re
from pathlib import Path

from pilot.common.errorcodes import ErrorCodes
from pilot.util.auxiliary import get_error_code_translation_dictionary, shell_exit_code
from pilot.util.summary import EXIT_INTERRUPTED, EXIT_USAGE, exit_status_meaning

USAGE = Path(__file__).resolve().parents[3] / "doc" / "source" / "usage.rst"


def doc_table() -> dict:
    """{status: [(code, NAME), ...]} from the list-table after the 'Exit status' heading."""
    text = USAGE.read_text()
    section = text[text.index("Exit status\n-----------"):]
    section = section[:section.index("Releases and the version")]
    rows = re.findall(r"   \* - (\d+)\n     - ([^\n]*)\n", section)
    table = {}
    for status, codes in rows:
        table[int(status)] = [(int(c.replace("−", "-")), name) for c, name in
                              re.findall(r"(−?-?\d+)\s*([A-Z][A-Z0-9]*)?", codes)]
    return table


def test_every_translated_code_is_in_the_doc_table_with_its_status():
    table = doc_table()
    names = {code: name for name, code in ErrorCodes.all_codes().items()}
    for code, (status, _) in get_error_code_translation_dictionary().items():
        assert status in table, f"exit status {status} (code {code}) missing from usage.rst"
        assert (code, names.get(code, "")) in table[status], (status, code, table[status])
        assert shell_exit_code(code) == status or code == -1


def test_the_additions_are_in_the_table():
    table = doc_table()
    for status in (0, 1, EXIT_USAGE, 3, 4, EXIT_INTERRUPTED):
        assert status in table, status
    translated = {status for status, _ in get_error_code_translation_dictionary().values()}
    assert set(table) <= {0, 1, EXIT_USAGE, 3, 4, EXIT_INTERRUPTED} | translated, "a status the code never gives"


def test_every_status_has_a_meaning_for_the_summary():
    for status in doc_table():
        if status in (3, 4):  # the wrapper's own
            continue
        assert exit_status_meaning(status) != "unknown", status
