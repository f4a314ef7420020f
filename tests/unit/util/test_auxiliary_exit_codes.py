"""Pilot error code <-> shell exit status (Pilot 2 table, compat 6.3)."""

import pytest

from pilot.common.exception import TimeoutException as CommonTimeout
from pilot.util.auxiliary import (
    TimeoutException, convert_to_pilot_error_code, get_error_code_translation_dictionary, shell_exit_code,
)
from pilot.util.timer import TimeoutException as TimerTimeout

PILOT2_TABLE = [
    (-1, 64), (1008, 65), (1199, 66), (1103, 67), (1177, 68), (1163, 68), (1098, 69), (1301, 70), (1116, 71),
    (1117, 72), (1186, 73), (1330, 74), (1332, 75), (1342, 76), (1331, 77), (1359, 78), (1200, 137),
    (1201, 143), (1202, 131), (1203, 139), (1204, 158), (1207, 144), (1206, 138),
]
#: taken from Pilot 3's table, where Pilot 2 had nothing: no answer from the server (issue 17)
PILOT3_ADDITIONS = [(1318, 79)]


def test_dictionary_matches_pilot2_table():
    table = get_error_code_translation_dictionary()
    assert {code: entry[0] for code, entry in table.items()} == dict(PILOT2_TABLE + PILOT3_ADDITIONS)
    assert all(isinstance(entry[1], str) and entry[1] for entry in table.values())
    table[1008][0] = 0  # a copy: callers cannot change the table
    assert get_error_code_translation_dictionary()[1008][0] == 65


@pytest.mark.parametrize("code,status", PILOT2_TABLE + PILOT3_ADDITIONS)
def test_forward(code, status):
    assert shell_exit_code(code) == status


@pytest.mark.parametrize("code,status", PILOT2_TABLE)
def test_reverse_returns_first_match(code, status):
    expected = 1177 if status == 68 else code
    assert convert_to_pilot_error_code(status) == expected


def test_unlisted_codes():
    assert shell_exit_code(0) == 0
    assert shell_exit_code(1099) == 1
    assert shell_exit_code(1208) == 1  # P3 SIGINT mapping not used (Pilot 2 table)
    assert convert_to_pilot_error_code(0) == -1
    assert convert_to_pilot_error_code(1) == -1
    assert convert_to_pilot_error_code(152) == -1


def test_timeout_exception_is_the_same_class_everywhere():
    assert TimeoutException is CommonTimeout is TimerTimeout
