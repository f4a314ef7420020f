"""Which of the pilot's credential paths the payload guard masks, and which stay visible to the payload."""

from __future__ import annotations

import os
import pytest

from pilot.util.proxy import PAYLOAD_PROXY_NAME, masked_credential_paths, payload_visible_credentials


@pytest.fixture
def site(tmp_path):
    """A pilot proxy, certificate, key, a token dir with its token, and a job work dir, all in tmp_path."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    files = {}
    for name in ("proxy", "cert", "key"):
        files[name] = secrets / f"pilot.{name}"
        files[name].write_text(f"PILOT-{name.upper()}")
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    (tokens / "panda_token").write_text("PILOT-TOKEN")
    work = tmp_path / "launch" / "PanDA_Pilot-1"
    work.mkdir(parents=True)
    env = {"X509_USER_PROXY": str(files["proxy"]), "X509_USER_CERT": str(files["cert"]),
           "X509_USER_KEY": str(files["key"]), "PANDA_AUTH_DIR": str(tokens), "PANDA_AUTH_TOKEN": "panda_token"}
    return env, files, tokens, work


def test_every_pilot_credential_is_masked_when_the_payload_keeps_none(site):
    env, files, tokens, work = site
    masks = masked_credential_paths({}, str(work), [env])
    assert str(tokens) in masks  # the directory as a whole, not the token file inside it again
    assert str(tokens / "panda_token") not in masks
    assert {str(files[name]) for name in files} <= set(masks)


def test_the_pilot_proxy_the_payload_keeps_is_not_masked(site):
    env, files, _tokens, work = site
    masks = masked_credential_paths({"X509_USER_PROXY": str(files["proxy"])}, str(work), [env])
    assert str(files["proxy"]) not in masks
    assert str(files["cert"]) in masks and str(files["key"]) in masks  # only the proxy is kept


def test_the_jobs_own_proxy_is_never_masked(site):
    env, files, _tokens, work = site
    user_proxy = work / PAYLOAD_PROXY_NAME
    user_proxy.write_text("USER")
    pilot_env = dict(env, X509_USER_PROXY=str(user_proxy))  # even when the pilot's environment names it
    masks = masked_credential_paths({"X509_USER_PROXY": str(user_proxy)}, str(work), [pilot_env])
    assert str(user_proxy) not in masks
    assert str(user_proxy) in payload_visible_credentials({}, str(work))


def test_a_directory_holding_the_work_dir_is_not_covered_but_its_token_is(site, tmp_path):
    env, _files, _tokens, work = site
    launch = work.parent
    (launch / "token").write_text("PILOT-TOKEN")
    pilot_env = dict(env, PANDA_AUTH_DIR=str(launch), PANDA_AUTH_TOKEN="token")
    masks = masked_credential_paths({}, str(work), [pilot_env])
    assert str(launch) not in masks  # covering it would hide the payload's own work dir
    assert str(launch / "token") in masks


def test_a_directory_holding_a_kept_proxy_is_not_covered(site):
    env, _files, tokens, work = site
    kept = tokens / "x509up"
    kept.write_text("PILOT-PROXY")
    masks = masked_credential_paths({"X509_USER_PROXY": str(kept)}, str(work), [dict(env, X509_USER_PROXY=str(kept))])
    assert str(tokens) not in masks and str(kept) not in masks
    assert str(tokens / "panda_token") in masks


def test_missing_paths_and_symlinks(site, tmp_path):
    env, files, _tokens, work = site
    link = tmp_path / "proxy-link"
    link.symlink_to(files["proxy"])
    pilot_env = {"X509_USER_PROXY": str(link), "X509_USER_CERT": str(tmp_path / "gone.pem")}
    masks = masked_credential_paths({}, str(work), [pilot_env])
    assert str(files["proxy"]) in masks  # the real file is what gets covered
    assert str(link) not in masks and all(os.path.exists(path) for path in masks)
    # a payload that keeps the proxy through the link keeps the file itself
    assert str(files["proxy"]) not in masked_credential_paths({"X509_USER_PROXY": str(link)}, str(work), [pilot_env])


def test_every_environment_given_is_searched(site, tmp_path):
    env, files, tokens, work = site
    other = tmp_path / "other.proxy"
    other.write_text("OTHER")
    masks = masked_credential_paths({}, str(work), [{"X509_USER_PROXY": str(other)}, env])
    assert str(other) in masks and str(files["proxy"]) in masks and str(tokens) in masks
    assert len(masks) == len(set(masks))
