# shellcheck shell=bash
# Client environment for the loopback storage services.  Source it:
#     . ci/storage/client-env.sh VENV
# Exports RUCIO_CONFIG (client-only cfg), X509_CERT_DIR, X509_USER_PROXY,
# GFAL_PYTHONBIN, REQUESTS_CA_BUNDLE, SSL_CERT_FILE, CURL_CA_BUNDLE, the STORAGE_*
# variables (ports, URLs),
# and puts VENV/bin first on PATH.  VENV is optional (default: $VIRTUAL_ENV).

_storage_client_venv=${1:-${VIRTUAL_ENV:-}}
# shellcheck source=ci/storage/env.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env.sh"

# Rucio: the CLIENT config (never the server's: a [database] section would put
# the client library into server mode)
export RUCIO_CONFIG="$STORAGE_RUCIO_CLIENT_CFG"
# test CA as a hashed directory (gfal2/davix, xrootd) and as a bundle
# (python requests/ssl; includes the system CAs so PyPI etc. still verify)
export X509_CERT_DIR="$STORAGE_PKI/certificates"
export X509_USER_PROXY="$STORAGE_PKI/x509up"
export REQUESTS_CA_BUNDLE="$STORAGE_PKI/ca-bundle.pem"
export SSL_CERT_FILE="$STORAGE_PKI/ca-bundle.pem"
export CURL_CA_BUNDLE="$STORAGE_PKI/ca-bundle.pem"
# /usr/bin/gfal-* are sh wrappers that otherwise fall back to /usr/bin/python,
# which Debian 12 does not have
export GFAL_PYTHONBIN=/usr/bin/python3

export STORAGE_XROOTD_URL="root://$STORAGE_HOST:$STORAGE_XROOTD_PORT"
export STORAGE_XRDHTTP_URL="https://$STORAGE_HOST:$STORAGE_XROOTD_PORT"
export STORAGE_NGINX_HTTP_URL="http://$STORAGE_HOST:$STORAGE_NGINX_HTTP_PORT"
export STORAGE_NGINX_HTTPS_URL="https://$STORAGE_HOST:$STORAGE_NGINX_HTTPS_PORT"
export STORAGE_RUCIO_URL="http://$STORAGE_HOST:$STORAGE_RUCIO_PORT"

if [[ -n "$_storage_client_venv" ]]; then
    case "$_storage_client_venv" in /*) ;; *) _storage_client_venv="$PWD/$_storage_client_venv" ;; esac
    if [[ -d "$_storage_client_venv/bin" ]]; then
        export VIRTUAL_ENV="$_storage_client_venv"
        case ":$PATH:" in
            "$_storage_client_venv/bin:"*) ;;
            *) export PATH="$_storage_client_venv/bin:$PATH" ;;
        esac
    else
        echo "client-env.sh: WARNING: $_storage_client_venv/bin does not exist" >&2
    fi
fi
unset _storage_client_venv
