"""Container API: wrap a shell line so that it runs inside a container, and run it there.

Two kinds of runtime are supported:

* **apptainer / singularity** (``ApptainerRuntime``, ``SingularityRuntime``): ``<tool> exec`` with bind
  mounts, ``--pwd``, environment settings and the image from the job or the queue;
* **bubblewrap** (``BubblewrapRuntime``): ``bwrap`` with the host file system (or an unpacked image
  directory) mounted read-only, the job's work dir writable, a private ``/tmp`` and PID namespace, and
  the pilot's own credential files masked (an empty file or an empty tmpfs in their place).

The runtime of a payload follows the queue's ``container_type`` (``tool:user`` pairs separated by
``;``, e.g. ``singularity:pilot;bwrap:user``): the entry for ``pilot`` applies to every payload of
the queue, the entry for ``user`` to user analysis payloads only. ``container_options`` (a string
such as ``-B /cvmfs,/scratch:/data --contain``) adds bind mounts (``-B``/``--bind``) and raw runtime
options.

Usage::

    runtime = get_runtime(payload_container_tool(queuedata, job))
    spec = ContainerSpec(image=select_image(job), workdir=job.workdir, masks=credential_paths)
    line = runtime.wrap("./run.sh --events 10", spec)      # a shell line for the payload guard
    result = runtime.run("echo hello", spec, timeout=60)    # or run it now

Error codes: an unknown runtime name raises 1384 QUEUENOTSETUPFORCONTAINERS, a runtime that is not
installed 1325 SINGULARITYNOTINSTALLED (1372 APPTAINERNOTINSTALLED for apptainer), a missing image
1360 IMAGENOTFOUND. :func:`classify_container_error` turns a container failure seen in the payload's
stderr into its code (1306-1309, 1325, 1340, 1345, 1348, 1372).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from pilot.common.errorcodes import ErrorCodes
from pilot.common.exception import PilotException
from pilot.info.queuedata import parse_container_type
from pilot.util.processes import CommandResult, run_command

if TYPE_CHECKING:
    from pilot.info.queuedata import QueueData
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

#: container_type user keys that containerise a payload (in order of precedence)
PAYLOAD_USERS = ("pilot",)
#: container_type user key that containerises user analysis payloads only
ANALYSIS_USER = "user"


@dataclass
class Bind:
    """One bind mount: ``source`` on the host appears at ``target`` (same path when empty)."""

    source: str
    target: str = ""
    readonly: bool = False
    optional: bool = False  # skipped (not an error) when the source does not exist

    @property
    def destination(self) -> str:
        return self.target or self.source


@dataclass
class ContainerSpec:
    """What the container must look like for one command."""

    image: str = ""
    workdir: str = ""
    binds: List[Bind] = field(default_factory=list)
    env: Dict[str, str] = field(default_factory=dict)   # variables set inside the container
    masks: List[str] = field(default_factory=list)       # host paths the command must not see
    options: List[str] = field(default_factory=list)     # raw runtime options (queue container_options)
    cleanenv: bool = False                               # start from an empty environment


class ContainerRuntime:
    """Base class of a runtime: finds its executable and turns (command, spec) into an argv."""

    name = ""
    executables: Tuple[str, ...] = ()
    not_installed_code = ErrorCodes.SINGULARITYNOTINSTALLED

    def __init__(self, executable: Optional[str] = None) -> None:
        self._executable = executable

    def executable(self) -> Optional[str]:
        """Full path of the runtime's executable, or None when it is not installed."""
        if self._executable:
            return self._executable if os.path.isfile(self._executable) else shutil.which(self._executable)
        for name in self.executables:
            path = shutil.which(name)
            if path:
                return path
        return None

    def available(self) -> bool:
        """True when the runtime's executable is installed."""
        return self.executable() is not None

    def _require(self) -> str:
        path = self.executable()
        if not path:
            raise PilotException(f"container runtime {self.name} is not installed "
                                 f"(looked for {', '.join(self.executables)})", code=self.not_installed_code)
        return path

    def argv(self, command: str, spec: ContainerSpec) -> List[str]:
        """The command line that runs the shell line ``command`` inside the container."""
        raise NotImplementedError

    def wrap(self, command: str, spec: ContainerSpec) -> str:
        """The shell line that runs ``command`` inside the container (for the payload guard)."""
        return shlex.join(self.argv(command, spec))

    def run(self, command: str, spec: ContainerSpec, timeout: Optional[float] = None,
            env: Optional[dict] = None) -> CommandResult:
        """Run ``command`` in the container now and return its exit code and output."""
        argv = self.argv(command, spec)
        logger.info("running in %s: %s", self.name, command)
        return run_command(argv, timeout=timeout, cwd=spec.workdir or None, env=env)


class ApptainerRuntime(ContainerRuntime):
    """``apptainer exec`` (falls back to a ``singularity`` executable of the same family)."""

    name = "apptainer"
    executables = ("apptainer", "singularity")
    not_installed_code = ErrorCodes.APPTAINERNOTINSTALLED

    def argv(self, command: str, spec: ContainerSpec) -> List[str]:
        if not spec.image:
            raise PilotException(f"no container image given for {self.name}", code=ErrorCodes.IMAGENOTFOUND)
        if spec.image.startswith("/") and not os.path.exists(spec.image):
            raise PilotException(f"container image does not exist: {spec.image}", code=ErrorCodes.IMAGENOTFOUND)
        argv = [self._require(), "exec"]
        if spec.cleanenv:
            argv.append("--cleanenv")
        for bind in spec.binds:
            if bind.optional and not os.path.exists(bind.source):
                continue
            argv += ["-B", f"{bind.source}:{bind.destination}" + (":ro" if bind.readonly else "")]
        for path in spec.masks:
            if os.path.isfile(path):
                argv += ["-B", f"/dev/null:{path}:ro"]
        if spec.workdir:
            argv += ["-B", spec.workdir, "--pwd", spec.workdir]
        for key, value in spec.env.items():
            argv += ["--env", f"{key}={value}"]
        argv += list(spec.options)
        argv += [spec.image, "/bin/bash", "-c", command]
        return argv


class SingularityRuntime(ApptainerRuntime):
    """``singularity exec`` (older installations; same options as apptainer)."""

    name = "singularity"
    executables = ("singularity", "apptainer")
    not_installed_code = ErrorCodes.SINGULARITYNOTINSTALLED


class BubblewrapRuntime(ContainerRuntime):
    """``bwrap``: host root (or an unpacked image directory) read-only, work dir writable, credentials masked."""

    name = "bwrap"
    executables = ("bwrap",)

    def argv(self, command: str, spec: ContainerSpec) -> List[str]:
        argv = [self._require()]
        if spec.image:
            if not os.path.isdir(spec.image):
                raise PilotException(f"bubblewrap needs an unpacked image directory, not {spec.image!r}",
                                     code=ErrorCodes.IMAGENOTFOUND)
            argv += ["--ro-bind", spec.image, "/"]
        else:
            argv += ["--ro-bind", "/", "/"]
        argv += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
        for bind in spec.binds:
            flag = "--ro-bind" if bind.readonly else "--bind"
            argv += [flag + ("-try" if bind.optional else ""), bind.source, bind.destination]
        if spec.workdir:
            argv += ["--bind", spec.workdir, spec.workdir]
        argv += self._mask_options(spec.masks)
        if spec.cleanenv:
            argv.append("--clearenv")
        for key, value in spec.env.items():
            argv += ["--setenv", key, value]
        if spec.workdir:
            argv += ["--chdir", spec.workdir]
        argv += ["--unshare-pid", "--die-with-parent", "--new-session"]
        argv += list(spec.options)
        argv += ["--", "/bin/bash", "-c", command]
        return argv

    @staticmethod
    def _mask_options(masks: List[str]) -> List[str]:
        """Hide each path: a directory behind an empty tmpfs, a file behind an empty read-only file."""
        out: List[str] = []
        for path in masks:
            if os.path.isdir(path):
                out += ["--tmpfs", path]
            elif os.path.exists(path):
                out += ["--ro-bind", "/dev/null", path]
        return out


RUNTIMES: Dict[str, type] = {
    "apptainer": ApptainerRuntime,
    "singularity": SingularityRuntime,
    "bwrap": BubblewrapRuntime,
    "bubblewrap": BubblewrapRuntime,
}


def get_runtime(name: str) -> ContainerRuntime:
    """The runtime for a ``container_type`` tool name; 1384 for a name the pilot does not support."""
    key = (name or "").strip().lower()
    cls = RUNTIMES.get(key)
    if cls is None:
        raise PilotException(f"unsupported container runtime {name!r} (supported: {', '.join(sorted(RUNTIMES))})",
                             code=ErrorCodes.QUEUENOTSETUPFORCONTAINERS)
    return cls()


def payload_container_tool(queuedata: Optional[QueueData], job: Optional[JobData] = None) -> str:
    """The runtime name for a job's payload ('' when the queue does not containerise it)."""
    types = parse_container_type(getattr(queuedata, "container_type", None) or {})
    for user in PAYLOAD_USERS:
        if types.get(user):
            return types[user]
    if job is not None and getattr(job, "is_analysis", False) and types.get(ANALYSIS_USER):
        return types[ANALYSIS_USER]
    return ""


def parse_container_options(text: str) -> Tuple[List[Bind], List[str]]:
    """Split ``container_options`` into bind mounts (``-B a,b:c[:ro]``) and the remaining raw options."""
    binds: List[Bind] = []
    rest: List[str] = []
    try:
        words = shlex.split(text or "")
    except ValueError as exc:
        raise PilotException(f"cannot parse container options {text!r}: {exc}",
                             code=ErrorCodes.BADQUEUECONFIGURATION) from None
    i = 0
    while i < len(words):
        word = words[i]
        value = None
        if word in ("-B", "--bind") and i + 1 < len(words):
            value = words[i + 1]
            i += 1
        elif word.startswith("--bind="):
            value = word.split("=", 1)[1]
        if value is None:
            rest.append(word)
        else:
            binds += [_parse_bind(item) for item in value.split(",") if item.strip()]
        i += 1
    return binds, rest


def _parse_bind(item: str) -> Bind:
    parts = item.strip().split(":")
    readonly = len(parts) > 1 and parts[-1] in ("ro", "rw")
    mode = parts.pop() if readonly else "rw"
    source = parts[0]
    target = parts[1] if len(parts) > 1 else ""
    # a path containing an environment variable is taken as given by the runtime; ours needs it resolved
    return Bind(source=os.path.expandvars(source), target=os.path.expandvars(target), readonly=mode == "ro",
                optional=True)


def select_image(job: JobData, default: str = "") -> str:
    """The job's image: ``--containerImage``, ``containerOptions.containerImage``, ``container_name``."""
    for value in (getattr(job, "imagename", ""),
                  (getattr(job, "containeroptions", None) or {}).get("containerImage", ""),
                  getattr(job, "container_name", "")):
        if value and str(value).upper() != "NULL":
            return str(value)
    return default


# ------------------------------------------------------------------------------------ errors
_CONTAINER_MESSAGES: List[Tuple[str, int]] = [
    (r"failed invoking the newuser namespace runtime", ErrorCodes.SINGULARITYNEWUSERNAMESPACE),
    (r"bwrap: creating new namespace failed", ErrorCodes.SINGULARITYNEWUSERNAMESPACE),
    (r"failed to create user namespace", ErrorCodes.SINGULARITYFAILEDUSERNAMESPACE),
    (r"bwrap: (?:setting up uid map|no permissions to creat(?:e|ing) new namespace)",
     ErrorCodes.SINGULARITYFAILEDUSERNAMESPACE),
    (r"not mounting requested bind point", ErrorCodes.SINGULARITYBINDPOINTFAILURE),
    (r"bwrap: can't find source path", ErrorCodes.SINGULARITYBINDPOINTFAILURE),
    (r"no more available loop devices", ErrorCodes.SINGULARITYNOLOOPDEVICES),
    (r"failed to mount image", ErrorCodes.SINGULARITYIMAGEMOUNTFAILURE),
    (r"(?:singularity|bwrap)(?: is not installed|: command not found)", ErrorCodes.SINGULARITYNOTINSTALLED),
    (r"apptainer(?: is not installed|: command not found)", ErrorCodes.APPTAINERNOTINSTALLED),
    (r"resource temporarily unavailable", ErrorCodes.SINGULARITYRESOURCEUNAVAILABLE),
    (r"^(?:fatal|error)\s*:.*operation not permitted", ErrorCodes.SINGULARITYGENERALFAILURE),
    (r"^bwrap:.*operation not permitted", ErrorCodes.SINGULARITYGENERALFAILURE),
]


def classify_container_error(exit_code: int, stderr: str) -> Tuple[int, str]:
    """(code, matching line) for a container failure in a payload's stderr; (0, '') when none is found."""
    for line in (stderr or "").splitlines():
        low = line.strip().lower()
        if not low:
            continue
        for pattern, code in _CONTAINER_MESSAGES:
            if re.search(pattern, low):
                return code, line.strip()
    return 0, ""
