"""The pilot keeps its token in memory: the variables holding a token's value leave its environment."""

from __future__ import annotations

from pilot.util.proxy import forget_token_values, strip_credentials


def test_token_values_are_removed_and_paths_kept():
    env = {"BEARER_TOKEN": "secret", "ACCESS_TOKEN": "other", "BEARER_TOKEN_FILE": "/t/token", "PATH": "/bin"}
    assert forget_token_values(env) == ["BEARER_TOKEN", "ACCESS_TOKEN"]
    assert env == {"BEARER_TOKEN_FILE": "/t/token", "PATH": "/bin"}  # a path is masked, not a secret itself
    assert forget_token_values(env) == []
    assert strip_credentials(env) == {"PATH": "/bin"}
