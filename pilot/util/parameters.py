"""Command-line options of pilot.py (every Pilot 2 option, the Pilot 3 additions, and --config).

Attribute names (``dest``) match Pilot 2's, because workflows and plug-ins read them from ``args``.
Pilot 3-only options are accepted so that newer wrappers can launch this pilot; most of them are
recorded but have no effect (their help text says so).
"""

from __future__ import annotations

import argparse
import re
from typing import Any, List, NoReturn, Optional, Sequence
from urllib.parse import urlsplit

from pilot.util.constants import PILOT_VERSION

WORKFLOWS = ("generic", "generic_hpc", "production", "production_hpc", "analysis", "analysis_hpc",
             "eventservice_hpc", "stagein", "stager", "payload_stageout")
SUBMIT_MODES = ("PULL", "PUSH")
DEFAULT_PORT = 25443
_RESOURCE_TYPE = re.compile(r"^(SCORE|MCORE)(_\w+)?$")
_TRUE = ("yes", "true", "t", "y", "1")
_FALSE = ("no", "false", "f", "n", "0")


def str2bool(value: Any) -> bool:
    """Convert yes/true/t/y/1 or no/false/f/n/0 (any case) to a bool; anything else is an error."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"boolean value expected (yes/true/t/y/1 or no/false/f/n/0), got '{value}'")


def resource_type(value: str) -> str:
    """Accept "", SCORE, MCORE and SCORE_<x> / MCORE_<x> (e.g. SCORE_HIMEM)."""
    if value == "" or _RESOURCE_TYPE.match(value):
        return value
    raise argparse.ArgumentTypeError(f"invalid resource type '{value}' (use SCORE, MCORE, SCORE_* or MCORE_*)")


def submit_mode(value: str) -> str:
    """Accept PULL or PUSH in any case; return it upper-cased."""
    mode = value.strip().upper()
    if mode not in SUBMIT_MODES:
        raise argparse.ArgumentTypeError(f"invalid Harvester submit mode '{value}' (use PULL or PUSH)")
    return mode


def non_negative_int(value: str) -> int:
    """An integer >= 0."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"integer expected, got '{value}'") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"value must not be negative, got {number}")
    return number


def port_number(value: str) -> int:
    """A TCP port, 1-65535."""
    number = non_negative_int(value)
    if not 0 < number < 65536:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, got {number}")
    return number


def lower_case(value: str) -> str:
    return value.strip().lower()


def _add_general(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("-q", "--queue", dest="queue", required=True, help="PanDA queue name (mandatory)")
    add("--pilot-user", "--pilotuser", dest="pilot_user", default="generic", type=lower_case,
        help="experiment plug-in package under pilot/user (default: generic)")
    add("-w", "--workflow", dest="workflow", default="generic", choices=WORKFLOWS,
        help="workflow module under pilot/workflow (default: generic; stager is the Pilot 3 name of stagein)")
    add("-a", "--workdir", dest="workdir", default="",
        help="create the main work dir PanDA_Pilot2_<pid>_<time> here (default: in the launch directory; "
             "in Harvester and -z modes without -a the launch directory itself is the main work dir)")
    add("-d", "--debug", dest="debug", action="store_true", default=False,
        help="debug logging: server calls, transfer commands, payload start/stop, monitor decisions")
    add("--version", action="version", version=f"PanDA pilot {PILOT_VERSION}",
        help="print the pilot version (release.version.revision.build, the PILOTVERSION file) and exit")
    add("--no-pilot-log", dest="nopilotlog", action="store_true", default=False, help="do not write the pilot log file")
    add("-l", "--lifetime", dest="lifetime", default=324000, type=non_negative_int,
        help="pilot lifetime in seconds, used when the queue maxtime is 0 (default: 324000)")
    add("-L", "--leasetime", dest="leasetime", default=3600, type=non_negative_int,
        help="Pilot 3 lease time in seconds (accepted, no effect)")
    add("-j", "--joblabel", dest="job_label", default="ptest",
        help="prodSourceLabel of requested jobs; 'self' also sends the proxy DN as prodUserID (default: ptest)")
    add("-i", "--versiontag", dest="version_tag", default="PR",
        help="version tag PR, RC, RCM or ALRB; RC/RCM/ALRB change the job label (default: PR)")
    add("-r", "--resource", dest="resource", default=None, help="obsolete resource name (accepted, ignored)")
    add("-s", "--site", dest="site", default=None, help="obsolete site name (accepted, ignored)")
    add("-g", "--baseurls", dest="baseurls", default="",
        help="comma-separated base URLs a transformation may be downloaded from (Pilot 3)")
    add("--config", dest="config", default="", metavar="FILE",
        help="extra configuration file, read after /etc/panda/pilot.cfg and ./pilot.cfg")
    add("--redirect-stdout", dest="redirectstdout", default="",
        help="Pilot 3 stdout redirection target (accepted, no effect)")
    add("--pod", dest="pod", action="store_true", default=False,
        help="Pilot 3 flag: running in a Kubernetes pod (accepted, no effect)")
    add("--cleanup", dest="cleanup", type=str2bool, default=True,
        help="remove the main work dir PanDA_Pilot2_<pid>_<time> at the end, boolean (default: true; "
             "kept while a job in it waits for recovery)")


def _add_server(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--url", dest="url", default="", help="PanDA server URL (default: [Pilot] pandaserver of the config)")
    add("-p", "--port", dest="port", default=DEFAULT_PORT, type=port_number,
        help="PanDA server port, appended unless the URL has one (default: 25443)")
    add("-z", "--noserverupdate", dest="update_server", action="store_false", default=True,
        help="do not send updates to the server (write them to files instead)")
    add("-k", "--noworkerpilotstatusupdate", dest="workerpilotstatusupdate", action="store_false", default=True,
        help="Pilot 3 flag: no updateWorkerPilotStatus calls (accepted, no effect)")
    add("-t", "--noproxyverification", dest="verify_proxy", action="store_false", default=True,
        help="skip the proxy/token checks (before getJob and while the payload runs)")
    add("-u", "--verifypayloadproxy", dest="verify_payload_proxy", action="store_false", default=True,
        help="do not fetch the user's proxy (getProxy) for analysis payloads")
    add("-y", "--notokenrenewal", dest="token_renewal", action="store_false", default=True,
        help="Pilot 3 flag: no OIDC token renewal (accepted, no effect)")
    add("-v", "--getjobrequests", dest="getjob_requests", default=2, type=non_negative_int,
        help="job requests per pilot; more than one job needs the queue's timefloor (default: 2)")
    add("-x", "--getjobfailures", dest="getjob_failures", default=5, type=non_negative_int,
        help="stop after this many empty or failed job requests (default: 5)")
    add("--cacert", dest="cacert", default=None, metavar="FILE",
        help="CA certificate file (PEM) that the server's certificate is checked against (default: $PILOT_CACERT, "
             "else --capath); the client certificate is the proxy ($X509_USER_PROXY or /tmp/x509up_u<uid>)")
    add("--capath", dest="capath", default=None, metavar="DIR",
        help="CA certificates directory used when there is no --cacert "
             "(default: $X509_CERT_DIR or /etc/grid-security/certificates)")
    add("--use-https", dest="use_https", type=str2bool, default=True,
        help="use HTTPS for the server, boolean (default: true)")
    add("--queuedata-url", dest="queuedata_url", default="", help="queue data URL, overrides the config")
    add("--storagedata-url", dest="storagedata_url", default="", help="storage data URL, overrides the config")
    add("--rucio-host", dest="rucio_host", default="", help="Pilot 3 Rucio server URL (accepted, no effect)")
    add("--subscribe-to-msgsvc", dest="subscribe_to_msgsvc", action="store_true", default=False,
        help="Pilot 3 flag: receive job info from a message service (accepted, no effect)")


def _add_getjob(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--country-group", "--countrygroup", dest="country_group", default="", help="countryGroup sent with getJob")
    add("--working-group", "--workinggroup", dest="working_group", default="", help="workingGroup sent with getJob")
    add("--allow-other-country", "--allowothercountry", dest="allow_other_country", type=str2bool, default=False,
        help="allowOtherCountry sent with getJob, boolean (default: false)")
    add("--allow-same-user", "--allowsameuser", dest="allow_same_user", type=str2bool, default=True,
        help="follow-up jobs only from the same task, boolean (default: true)")
    add("--job-type", dest="jobtype", default="", help="jobType sent with getJob (e.g. managed, user)")
    add("--background", dest="background", action="store_true", default=False,
        help="OneBox: ask getJob for background jobs (background=True) and run them with nice/ionice")
    add("--resource-type", dest="resource_type", default="", type=resource_type,
        help="resourceType sent with getJob: SCORE, MCORE, SCORE_* or MCORE_*")


def _add_harvester(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--harvester-workdir", dest="harvester_workdir", default="", help="Harvester access point directory")
    add("--harvester-datadir", dest="harvester_datadir", default="", help="directory holding Harvester job files")
    add("--harvester-eventstatusdump", dest="harvester_eventstatusdump", default="",
        help="Harvester event status dump file (its presence signals Harvester mode)")
    add("--harvester-workerattributes", dest="harvester_workerattributes", default="",
        help="Harvester worker attributes file (its presence signals Harvester mode)")
    add("--harvester-submit-mode", dest="harvester_submitmode", default="PULL", type=submit_mode,
        help="Harvester submit mode PULL or PUSH (default: PULL)")
    add("--input-dir", dest="input_dir", default="", help="local directory holding the input files")
    add("--input-destination-dir", dest="input_destination_dir", default="",
        help="where the stager/stagein workflow hands the inputs over (Pilot 3; else the Harvester work dir, else -a)")
    add("--output-dir", dest="output_dir", default="", help="local directory receiving the output files")
    add("--use-rucio-traces", dest="use_rucio_traces", type=str2bool, default=True,
        help="send Rucio trace reports, boolean (default: true)")
    add("--stageout-attempts", dest="stageout_attempts", type=non_negative_int, default=1,
        help="Pilot 3 stage-out attempts per file (default: 1, one attempt as in Pilot 2)")
    add("--use-realtime-logging", dest="use_realtime_logging", nargs="?", const=True, type=str2bool, default=False,
        help="stream the pilot log to --realtime-logging-server (else [Pilot] rtlogging); a flag (Pilot 3) "
        "or a boolean value (Pilot 2: --use-realtime-logging True)")
    add("--realtime-logging-server", dest="realtime_logging_server", default="",
        help="real-time logging target: host:port (JSON lines over TCP) or an http(s) URL")
    add("--realtime-logname", dest="realtime_logname", default=None,
        help="real-time log name (the logname field of every record)")
    add("-b", "--nocvmfs", dest="cvmfs", action="store_false", default=True,
        help="Pilot 3 flag: skip CVMFS checks (accepted, no effect)")


def _add_hpc(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--hpc-resource", dest="hpc_resource", default="", help="HPC resource plug-in name")
    add("--hpc-mode", dest="hpc_mode", default="manytoone", help="HPC mode, e.g. manytoone (default)")
    add("--es-executor-type", dest="executor_type", default="generic",
        help="event service executor plug-in (default: generic)")


class _Parser(argparse.ArgumentParser):
    """An option mistake is one line naming the option (no usage dump), exit status 2."""

    def error(self, message: str) -> "NoReturn":
        self.exit(2, f"{self.prog}: error: {message} ({self.prog} --help lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of pilot.py."""
    parser = _Parser(prog="pilot.py", description="PanDA pilot: fetch, run and report grid jobs.")
    _add_general(parser)
    _add_server(parser)
    _add_getjob(parser)
    _add_harvester(parser)
    _add_hpc(parser)
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (sys.argv[1:] when argv is None); usage errors exit with status 2."""
    return build_parser().parse_args(argv)


def resolve_job_label(version_tag: str, job_label: str, queue_status: str = "") -> str:
    """Return the prodSourceLabel to request, applying the -i version tag rules of Pilot 2.

    RC + rc_test2 -> rc_test2; RCM + ptest -> rcm_test2; ALRB -> rc_alrb; otherwise a queue in
    status 'test' gets 'test' unless the label is ptest; else the label is used unchanged.
    """
    tag = (version_tag or "").upper()
    if tag == "RC" and job_label in ("rc_test2", "ptest"):
        return job_label
    if tag == "RCM" and job_label == "ptest":
        return "rcm_test2"
    if tag == "ALRB":
        return "rc_alrb"
    if queue_status == "test" and job_label != "ptest":
        return "test"
    return job_label


def get_server_url(args: Any, cfg: Any = None) -> str:
    """Return the PanDA server base URL, e.g. https://host:25443.

    Uses --url (scheme defaults to https; the -p port is appended unless the URL has one), else
    ``[Pilot] pandaserver`` of the configuration.
    """
    url = (getattr(args, "url", "") or "").strip().rstrip("/")
    if not url:
        if cfg is None:
            from pilot.util.config import config as cfg
        url = str(cfg.Pilot.pandaserver).strip().rstrip("/")
        return url if "://" in url else f"https://{url}"
    if "://" not in url:
        url = f"https://{url}"
    parts = urlsplit(url)
    try:
        has_port = parts.port is not None
    except ValueError:  # malformed port: leave the URL as given
        has_port = True
    if not has_port:
        port = getattr(args, "port", DEFAULT_PORT)
        if port:
            netloc = f"{parts.netloc}:{port}"
            url = parts._replace(netloc=netloc).geturl()
    return url


def option_strings() -> List[str]:
    """Every option string the parser accepts (for documentation and tests)."""
    return [flag for action in build_parser()._actions for flag in action.option_strings]
