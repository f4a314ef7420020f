"""Pilot error codes, their default texts, and the per-job error list.

The numbers and constant names are part of the wire protocol: the PanDA server, the monitor and
Harvester interpret them, so they must never change. The texts are our own short descriptions.
"""

from __future__ import annotations

import re
import signal as _signal
from dataclasses import dataclass, field
from typing import Iterator, List, Optional, Tuple, Union

MAX_DIAGNOSTICS_LENGTH = 256  # the server stores at most this many characters of pilotErrorDiag


class ErrorCodes:
    """Integer constants for every pilot error code plus helpers to describe and classify them.

    All helpers are class methods, so both ``ErrorCodes.get_error_message(c)`` and the Pilot 2 style
    ``errors = ErrorCodes(); errors.get_error_message(c)`` work. Harvester subclasses this class.
    """

    # codes inherited from Pilot 1
    GENERALERROR = 1008
    NOLOCALSPACE = 1098
    STAGEINFAILED = 1099
    REPLICANOTFOUND = 1100
    NOSUCHFILE = 1103
    USERDIRTOOLARGE = 1104
    STDOUTTOOBIG = 1106
    SETUPFAILURE = 1110
    NFSSQLITE = 1115
    QUEUEDATA = 1116
    QUEUEDATANOTOK = 1117
    OUTPUTFILETOOLARGE = 1124
    NOSTORAGE = 1133
    STAGEOUTFAILED = 1137
    PUTMD5MISMATCH = 1141
    CHMODTRF = 1143
    PANDAKILL = 1144
    GETMD5MISMATCH = 1145
    TRFDOWNLOADFAILURE = 1149
    LOOPINGJOB = 1150
    STAGEINTIMEOUT = 1151
    STAGEOUTTIMEOUT = 1152
    NOPROXY = 1163
    MISSINGOUTPUTFILE = 1165
    SIZETOOLARGE = 1168
    GETADMISMATCH = 1171
    PUTADMISMATCH = 1172
    NOVOMSPROXY = 1177
    GETGLOBUSSYSERR = 1180
    PUTGLOBUSSYSERR = 1181
    NOSOFTWAREDIR = 1186
    NOPAYLOADMETADATA = 1187
    LFNTOOLONG = 1190
    ZEROFILESIZE = 1191
    MKDIR = 1199
    KILLSIGNAL = 1200
    SIGTERM = 1201
    SIGQUIT = 1202
    SIGSEGV = 1203
    SIGXCPU = 1204
    USERKILL = 1205
    SIGBUS = 1206
    SIGUSR1 = 1207
    SIGINT = 1208
    MISSINGINSTALLATION = 1211
    PAYLOADOUTOFMEMORY = 1212
    REACHEDMAXTIME = 1213
    UNKNOWNPAYLOADFAILURE = 1220
    FILEEXISTS = 1221
    BADALLOC = 1223
    ESRECOVERABLE = 1224
    ESFATAL = 1228
    EXECUTEDCLONEJOB = 1234
    PAYLOADEXCEEDMAXMEM = 1235
    FAILEDBYSERVER = 1236
    ESNOEVENTS = 1238
    MESSAGEHANDLINGFAILURE = 1240
    CHKSUMNOTSUP = 1242
    NORELEASEFOUND = 1244
    NOUSERTARBALL = 1246
    BADXML = 1247

    # codes introduced by Pilot 2
    NOTIMPLEMENTED = 1300
    UNKNOWNEXCEPTION = 1301
    CONVERSIONFAILURE = 1302
    FILEHANDLINGFAILURE = 1303
    PAYLOADEXECUTIONFAILURE = 1305
    SINGULARITYGENERALFAILURE = 1306
    SINGULARITYNOLOOPDEVICES = 1307
    SINGULARITYBINDPOINTFAILURE = 1308
    SINGULARITYIMAGEMOUNTFAILURE = 1309
    PAYLOADEXECUTIONEXCEPTION = 1310
    NOTDEFINED = 1311
    NOTSAMELENGTH = 1312
    NOSTORAGEPROTOCOL = 1313
    UNKNOWNCHECKSUMTYPE = 1314
    UNKNOWNTRFFAILURE = 1315
    RUCIOSERVICEUNAVAILABLE = 1316
    EXCEEDEDMAXWAITTIME = 1317
    COMMUNICATIONFAILURE = 1318
    INTERNALPILOTPROBLEM = 1319
    LOGFILECREATIONFAILURE = 1320
    RUCIOLOCATIONFAILED = 1321
    RUCIOLISTREPLICASFAILED = 1322
    UNKNOWNCOPYTOOL = 1323
    SERVICENOTAVAILABLE = 1324
    SINGULARITYNOTINSTALLED = 1325
    NOREPLICAS = 1326
    UNREACHABLENETWORK = 1327
    PAYLOADSIGSEGV = 1328
    NONDETERMINISTICDDM = 1329
    JSONRETRIEVALTIMEOUT = 1330
    MISSINGINPUTFILE = 1331
    BLACKHOLE = 1332
    NOREMOTESPACE = 1333
    SETUPFATAL = 1334
    MISSINGUSERCODE = 1335
    JOBALREADYRUNNING = 1336
    BADMEMORYMONITORJSON = 1337
    STAGEINAUTHENTICATIONFAILURE = 1338
    DBRELEASEFAILURE = 1339
    SINGULARITYNEWUSERNAMESPACE = 1340
    BADQUEUECONFIGURATION = 1341
    MIDDLEWAREIMPORTFAILURE = 1342
    NOOUTPUTINJOBREPORT = 1343
    RESOURCEUNAVAILABLE = 1344
    SINGULARITYFAILEDUSERNAMESPACE = 1345
    TRANSFORMNOTFOUND = 1346
    UNSUPPORTEDSL5OS = 1347
    SINGULARITYRESOURCEUNAVAILABLE = 1348
    UNRECOGNIZEDTRFARGUMENTS = 1349
    EMPTYOUTPUTFILE = 1350
    UNRECOGNIZEDTRFSTDERR = 1351
    STATFILEPROBLEM = 1352
    NOSUCHPROCESS = 1353
    GENERALCPUCALCPROBLEM = 1354
    COREDUMP = 1355
    PREPROCESSFAILURE = 1356
    POSTPROCESSFAILURE = 1357
    MISSINGRELEASEUNPACKED = 1358
    PANDAQUEUENOTACTIVE = 1359
    IMAGENOTFOUND = 1360
    REMOTEFILECOULDNOTBEOPENED = 1361
    XRDCPERROR = 1362
    KILLPAYLOAD = 1363  # a kill request, not a failure: the job still ends as finished
    MISSINGCREDENTIALS = 1364
    NOCTYPES = 1365

    # codes introduced by Pilot 3 (kept so that P3-era plug-ins and tools find them)
    CHECKSUMCALCFAILURE = 1366
    COMMANDTIMEDOUT = 1367
    REMOTEFILEOPENTIMEDOUT = 1368
    FRONTIER = 1369
    VOMSPROXYABOUTTOEXPIRE = 1370
    BADOUTPUTFILENAME = 1371
    APPTAINERNOTINSTALLED = 1372
    CERTIFICATEHASEXPIRED = 1373
    REMOTEFILEDICTDOESNOTEXIST = 1374
    LEASETIME = 1375
    LOGCREATIONTIMEOUT = 1376
    CVMFSISNOTALIVE = 1377
    LSETUPTIMEDOUT = 1378
    PREEMPTION = 1379
    ARCPROXYFAILURE = 1380
    ARCPROXYLIBFAILURE = 1381
    PROXYTOOSHORT = 1382
    STAGEOUTAUTHENTICATIONFAILURE = 1383
    QUEUENOTSETUPFORCONTAINERS = 1384
    NOJOBSINPANDA = 1385
    PANDAQUEUENOTONLINE = 1386

    _error_messages = {
        GENERALERROR: "General pilot failure (see the batch system log)",
        NOLOCALSPACE: "Too little free space on the local disk",
        STAGEINFAILED: "Stage-in of an input file failed",
        REPLICANOTFOUND: "No replica of the file could be found",
        NOSUCHFILE: "File or directory does not exist",
        USERDIRTOOLARGE: "Job work directory grew beyond the allowed size",
        STDOUTTOOBIG: "Payload stdout or log file grew beyond the allowed size",
        SETUPFAILURE: "Payload setup failed",
        NFSSQLITE: "SQLite locking problem on NFS",
        QUEUEDATA: "Could not retrieve the queue data",
        QUEUEDATANOTOK: "Queue data is invalid",
        OUTPUTFILETOOLARGE: "An output file exceeds the allowed size",
        NOSTORAGE: "No storage is defined for this activity",
        STAGEOUTFAILED: "Stage-out of an output file failed",
        PUTMD5MISMATCH: "MD5 checksum mismatch for an output file",
        CHMODTRF: "Could not make the transform executable",
        PANDAKILL: "Job was killed on request of the PanDA server",
        GETMD5MISMATCH: "MD5 checksum mismatch for an input file",
        TRFDOWNLOADFAILURE: "Could not download the transform",
        LOOPINGJOB: "Payload stopped writing output and was killed as looping",
        STAGEINTIMEOUT: "Input file transfer timed out",
        STAGEOUTTIMEOUT: "Output file transfer timed out",
        NOPROXY: "No valid grid proxy",
        MISSINGOUTPUTFILE: "An expected output file is missing",
        SIZETOOLARGE: "Total input size is too large",
        GETADMISMATCH: "Adler32 checksum mismatch for an input file",
        PUTADMISMATCH: "Adler32 checksum mismatch for an output file",
        NOVOMSPROXY: "No valid VOMS proxy",
        GETGLOBUSSYSERR: "Globus system error during stage-in",
        PUTGLOBUSSYSERR: "Globus system error during stage-out",
        NOSOFTWAREDIR: "Software directory is missing",
        NOPAYLOADMETADATA: "Payload produced no metadata",
        LFNTOOLONG: "Logical file name is longer than 255 characters",
        ZEROFILESIZE: "File has zero size",
        MKDIR: "Could not create a directory",
        KILLSIGNAL: "Job ended by an unidentified kill signal",
        SIGTERM: "Job ended by SIGTERM",
        SIGQUIT: "Job ended by SIGQUIT",
        SIGSEGV: "Job ended by SIGSEGV",
        SIGXCPU: "Job ended by SIGXCPU (CPU time limit)",
        USERKILL: "Job was killed by the user",
        SIGBUS: "Job ended by SIGBUS",
        SIGUSR1: "Job ended by SIGUSR1",
        SIGINT: "Job ended by SIGINT",
        MISSINGINSTALLATION: "Required software installation is missing",
        PAYLOADOUTOFMEMORY: "Payload ran out of memory",
        REACHEDMAXTIME: "Pilot reached the batch system time limit",
        UNKNOWNPAYLOADFAILURE: "Payload failed for an unknown reason (see the logs)",
        FILEEXISTS: "File already exists at the destination",
        BADALLOC: "Payload failed with std::bad_alloc",
        ESRECOVERABLE: "Event service: recoverable failure",
        ESFATAL: "Event service: fatal failure",
        EXECUTEDCLONEJOB: "A clone of this job has already run",
        PAYLOADEXCEEDMAXMEM: "Payload used more memory than allowed",
        FAILEDBYSERVER: "Job was failed by the server",
        ESNOEVENTS: "Event service: no events to process",
        MESSAGEHANDLINGFAILURE: "Could not handle a message from the payload",
        CHKSUMNOTSUP: "Storage does not support checksum queries",
        NORELEASEFOUND: "No matching software release found",
        NOUSERTARBALL: "Could not download the user code tarball",
        BADXML: "Malformed XML",
        NOTIMPLEMENTED: "Requested function or plug-in is not implemented",
        UNKNOWNEXCEPTION: "Unexpected pilot exception",
        CONVERSIONFAILURE: "Data conversion failed",
        FILEHANDLINGFAILURE: "File handling failed",
        PAYLOADEXECUTIONFAILURE: "Payload execution failed",
        SINGULARITYGENERALFAILURE: "Container runtime failed (operation not permitted)",
        SINGULARITYNOLOOPDEVICES: "Container runtime found no free loop device",
        SINGULARITYBINDPOINTFAILURE: "Container runtime could not mount a bind point",
        SINGULARITYIMAGEMOUNTFAILURE: "Container runtime could not mount the image",
        PAYLOADEXECUTIONEXCEPTION: "Exception while running the payload",
        NOTDEFINED: "Value is not defined",
        NOTSAMELENGTH: "Lists differ in length",
        NOSTORAGEPROTOCOL: "Storage endpoint has no usable protocol",
        UNKNOWNCHECKSUMTYPE: "Checksum type is not known",
        UNKNOWNTRFFAILURE: "Transform failed for an unknown reason",
        RUCIOSERVICEUNAVAILABLE: "Rucio service is unavailable",
        EXCEEDEDMAXWAITTIME: "Waited longer than allowed",
        COMMUNICATIONFAILURE: "Communication with the server failed",
        INTERNALPILOTPROBLEM: "Internal pilot problem (see the pilot log)",
        LOGFILECREATIONFAILURE: "Could not create the log tarball",
        RUCIOLOCATIONFAILED: "Could not determine the client location for Rucio",
        RUCIOLISTREPLICASFAILED: "Rucio replica lookup failed",
        UNKNOWNCOPYTOOL: "Copy tool is not known",
        SERVICENOTAVAILABLE: "Service is temporarily unavailable",
        SINGULARITYNOTINSTALLED: "Container runtime is not installed",
        NOREPLICAS: "No suitable replica found",
        UNREACHABLENETWORK: "Network is unreachable",
        PAYLOADSIGSEGV: "Payload crashed with a segmentation fault",
        NONDETERMINISTICDDM: "Cannot build a SURL for a non-deterministic storage",
        JSONRETRIEVALTIMEOUT: "Timed out while retrieving JSON data",
        MISSINGINPUTFILE: "Input file is missing on the storage",
        BLACKHOLE: "File system black hole detected (see the pilot log)",
        NOREMOTESPACE: "No space left on the remote storage",
        SETUPFATAL: "Payload setup failed fatally",
        MISSINGUSERCODE: "User code is not available on the server",
        JOBALREADYRUNNING: "Job is already running elsewhere",
        BADMEMORYMONITORJSON: "Memory monitor output is malformed",
        STAGEINAUTHENTICATIONFAILURE: "Authentication failed during stage-in",
        DBRELEASEFAILURE: "DBRelease handling failed",
        SINGULARITYNEWUSERNAMESPACE: "Container runtime could not start the user namespace",
        BADQUEUECONFIGURATION: "Queue configuration is inconsistent",
        MIDDLEWAREIMPORTFAILURE: "Could not import required middleware",
        NOOUTPUTINJOBREPORT: "Job report lists no output",
        RESOURCEUNAVAILABLE: "Resource temporarily unavailable",
        SINGULARITYFAILEDUSERNAMESPACE: "Container runtime could not create the user namespace",
        TRANSFORMNOTFOUND: "Transform not found",
        UNSUPPORTEDSL5OS: "SL5 operating system is not supported",
        SINGULARITYRESOURCEUNAVAILABLE: "Container runtime: resource temporarily unavailable",
        UNRECOGNIZEDTRFARGUMENTS: "Transform did not recognise its arguments",
        EMPTYOUTPUTFILE: "An output file is empty",
        UNRECOGNIZEDTRFSTDERR: "Transform stderr shows an unrecognised fatal error",
        STATFILEPROBLEM: "Could not read process statistics for CPU accounting",
        NOSUCHPROCESS: "CPU accounting failed: process no longer exists",
        GENERALCPUCALCPROBLEM: "CPU consumption could not be calculated",
        COREDUMP: "Payload left a core dump",
        PREPROCESSFAILURE: "Pre-process step failed",
        POSTPROCESSFAILURE: "Post-process step failed",
        MISSINGRELEASEUNPACKED: "Release setup missing in the unpacked container",
        PANDAQUEUENOTACTIVE: "PanDA queue is not active",
        IMAGENOTFOUND: "Container image not found",
        REMOTEFILECOULDNOTBEOPENED: "Remote input file could not be opened",
        XRDCPERROR: "xrdcp could not open the file",
        KILLPAYLOAD: "Payload stop was requested",
        MISSINGCREDENTIALS: "Object store credentials are missing",
        NOCTYPES: "Python ctypes module is unavailable",
        CHECKSUMCALCFAILURE: "Checksum calculation failed",
        COMMANDTIMEDOUT: "Command timed out",
        REMOTEFILEOPENTIMEDOUT: "Opening a remote file timed out",
        FRONTIER: "Frontier database access failed",
        VOMSPROXYABOUTTOEXPIRE: "VOMS proxy is about to expire",
        BADOUTPUTFILENAME: "Output file name is not allowed",
        APPTAINERNOTINSTALLED: "Apptainer is not installed",
        CERTIFICATEHASEXPIRED: "Certificate has expired",
        REMOTEFILEDICTDOESNOTEXIST: "Remote file verification dictionary is missing",
        LEASETIME: "Pilot lease time expired",
        LOGCREATIONTIMEOUT: "Log tarball creation timed out",
        CVMFSISNOTALIVE: "CVMFS is not responding",
        LSETUPTIMEDOUT: "Software setup (lsetup) timed out",
        PREEMPTION: "Job was preempted",
        ARCPROXYFAILURE: "ARC proxy handling failed",
        ARCPROXYLIBFAILURE: "ARC proxy library is unavailable",
        PROXYTOOSHORT: "Proxy lifetime is too short",
        STAGEOUTAUTHENTICATIONFAILURE: "Authentication failed during stage-out",
        QUEUENOTSETUPFORCONTAINERS: "Queue is not set up for containers",
        NOJOBSINPANDA: "No jobs available in PanDA",
        PANDAQUEUENOTONLINE: "PanDA queue is not online",
    }

    # codes that a later stage-out attempt may recover from (sent negated for user analysis jobs)
    put_error_codes = [1135, 1136, 1137, 1141, 1152, 1181]
    recoverable_error_codes = [0] + put_error_codes

    # Pilot 2 signal table (compat 6.2); anything else, SIGINT included, maps to KILLSIGNAL
    _signal_codes = {
        "SIGTERM": SIGTERM,
        "SIGQUIT": SIGQUIT,
        "SIGSEGV": SIGSEGV,
        "SIGXCPU": SIGXCPU,
        "SIGBUS": SIGBUS,
        "SIGUSR1": SIGUSR1,
    }

    @classmethod
    def get_error_message(cls, code: int) -> str:
        """Return the default text for an error code (a generic text for unknown codes)."""
        try:
            return cls._error_messages[code]
        except (KeyError, TypeError):
            return f"Unknown error code: {code}"

    @classmethod
    def get_kill_signal_error_code(cls, sig: Union[str, int, _signal.Signals, None]) -> int:
        """Return the error code for a kill signal given by name ("SIGTERM"/"TERM") or number."""
        name = _signal_name(sig)
        return cls._signal_codes.get(name, cls.KILLSIGNAL)

    @classmethod
    def is_recoverable(cls, code: int = 0) -> bool:
        """Tell whether a code belongs to the recoverable (stage-out) list."""
        return code in cls.recoverable_error_codes

    @classmethod
    def all_codes(cls) -> dict:
        """Return {constant name: code} for every error code constant of the class."""
        return {name: value for name, value in vars(ErrorCodes).items()
                if name.isupper() and isinstance(value, int) and not isinstance(value, bool)
                and value in cls._error_messages}

    @classmethod
    def format_diagnostics(cls, code: int, diag: str = "") -> str:
        """Build the pilotErrorDiag text: standard message first, then the detail, cut to 256 chars.

        Whitespace runs are collapsed. When too long, the end of the detail is kept (it usually
        holds the actual reason) after the standard message.
        """
        standard = cls._error_messages.get(code, "")
        detail = re.sub(r"\s+", " ", str(diag or "")).strip()
        if not detail:
            return standard[:MAX_DIAGNOSTICS_LENGTH]
        if not standard or detail.startswith(standard):
            text = detail
            head = ""
        else:
            head = f"{standard}: "
            text = head + detail
        if len(text) <= MAX_DIAGNOSTICS_LENGTH:
            return text
        if not head and standard and detail.startswith(standard):
            head = standard + ": "
            detail = detail[len(standard):].lstrip(" :")
        marker = "..."
        room = MAX_DIAGNOSTICS_LENGTH - len(head) - len(marker)
        if room <= 0:
            return text[:MAX_DIAGNOSTICS_LENGTH]
        return head + marker + detail[-room:]

    @classmethod
    def resolve_transform_error(cls, exit_code: int, stderr_text: str = "") -> int:
        """Map a failed transform (exit code and stderr) to a pilot error code; 0 when it succeeded.

        A core file left by the payload (1355) is detected elsewhere.
        """
        text = (stderr_text or "").lower()
        if exit_code == 251 and "not mounting requested bind point" in text:
            return cls.SINGULARITYBINDPOINTFAILURE
        if exit_code == 255 and "no more available loop devices" in text:
            return cls.SINGULARITYNOLOOPDEVICES
        if exit_code == 255 and "failed to mount image" in text:
            return cls.SINGULARITYIMAGEMOUNTFAILURE
        if exit_code == 255 and "operation not permitted" in text:
            return cls.SINGULARITYGENERALFAILURE
        if "singularity is not installed" in text:
            return cls.SINGULARITYNOTINSTALLED
        if exit_code == 64 and "cannot create directory" in text:
            return cls.MKDIR
        if exit_code == -1:
            return cls.UNKNOWNTRFFAILURE
        if exit_code:
            return cls.PAYLOADEXECUTIONFAILURE
        return 0

    # --- Pilot 2 list-based helpers, kept for plug-ins written against the old API ---

    @classmethod
    def add_error_code(cls, code: int, pilot_error_codes: Optional[list] = None,
                       pilot_error_diags: Optional[list] = None, priority: bool = False,
                       msg: Optional[str] = None) -> Tuple[list, list]:
        """Add a code (and its text) to the given lists unless already present; return the lists."""
        codes = [] if pilot_error_codes is None else pilot_error_codes
        diags = [] if pilot_error_diags is None else pilot_error_diags
        if code not in codes:
            text = msg if msg else cls.get_error_message(code)
            position = 0 if priority else len(codes)
            codes.insert(position, code)
            diags.insert(position, text)
        return codes, diags

    @classmethod
    def remove_error_code(cls, code: int, pilot_error_codes: Optional[list] = None,
                          pilot_error_diags: Optional[list] = None) -> Tuple[list, list]:
        """Remove a code and its text from the given lists if present; return the lists."""
        codes = [] if pilot_error_codes is None else pilot_error_codes
        diags = [] if pilot_error_diags is None else pilot_error_diags
        if code in codes:
            index = codes.index(code)
            codes.pop(index)
            if index < len(diags):
                diags.pop(index)
        return codes, diags

    @classmethod
    def report_errors(cls, pilot_error_codes: List[int], pilot_error_diags: List[str]) -> str:
        """Return a readable table of all recorded errors (for the pilot log)."""
        return _report(list(zip(pilot_error_codes, pilot_error_diags)))

    @classmethod
    def extract_stderr_error(cls, stderr: str) -> str:
        """Return the first 'ERROR:'-style message in a payload stderr text (or a not-found shell line)."""
        if "command not found" in stderr:
            return stderr
        return cls.get_message_for_pattern([r"ERROR\s*:\s*(.*)", r"Error\s*:\s*(.*)", r"error\s*:\s*(.*)"], stderr)

    @classmethod
    def extract_stderr_warning(cls, stderr: str) -> str:
        """Return the first 'WARNING:'-style message in a payload stderr text."""
        return cls.get_message_for_pattern([r"WARNING\s*:\s*(.*)", r"Warning\s*:\s*(.*)", r"warning\s*:\s*(.*)"], stderr)

    @staticmethod
    def get_message_for_pattern(patterns: List[str], text: str) -> str:
        """Return the first capture of the first pattern that matches the text, else ""."""
        for pattern in patterns:
            found = re.findall(pattern, text)
            if found:
                return found[0]
        return ""


def _signal_name(sig: Union[str, int, _signal.Signals, None]) -> str:
    """Normalise a signal given as name, number or enum to its 'SIGXXX' name ("" if unknown)."""
    if sig is None:
        return ""
    if isinstance(sig, _signal.Signals):
        return sig.name
    if isinstance(sig, int):
        try:
            return _signal.Signals(sig).name
        except ValueError:
            return ""
    name = str(sig).strip().upper()
    if name.isdigit():
        return _signal_name(int(name))
    if not name.startswith("SIG"):
        name = "SIG" + name
    return name


def _report(entries: List[Tuple[int, str]]) -> str:
    if not entries:
        return "no pilot errors were reported"
    lines = ["Nr.\tError code\tError diagnostics"]
    lines += [f"{i}.\t{code}\t{diag}" for i, (code, diag) in enumerate(entries, start=1)]
    return "\n".join(lines)


class ErrorCodeList(list):
    """A list of error codes that can also be called (``errors.codes`` and ``errors.codes()`` both work)."""

    def __call__(self) -> List[int]:
        return list(self)


@dataclass
class JobErrors:
    """The errors recorded for one job. Several may accumulate; only the first is reported.

    Adding a code that is already present is ignored; ``priority=True`` puts the new code first.
    """

    _entries: List[Tuple[int, str]] = field(default_factory=list)

    def add(self, code: int, diag: str = "", priority: bool = False) -> None:
        """Record an error code with its diagnostics (default text when diag is empty)."""
        if code in self.codes:
            return
        entry = (int(code), diag or ErrorCodes.get_error_message(code))
        if priority:
            self._entries.insert(0, entry)
        else:
            self._entries.append(entry)

    def remove(self, code: int) -> None:
        """Forget a recorded code (no effect when absent)."""
        self._entries = [entry for entry in self._entries if entry[0] != code]

    def first(self) -> Tuple[int, str]:
        """Return the (code, raw diag) to report, or (0, "") when no error was recorded."""
        return self._entries[0] if self._entries else (0, "")

    @property
    def codes(self) -> ErrorCodeList:
        """All recorded codes, first (reported) one first."""
        return ErrorCodeList(code for code, _ in self._entries)

    @property
    def diags(self) -> List[str]:
        """All recorded diagnostics, aligned with ``codes``."""
        return [diag for _, diag in self._entries]

    @property
    def pilot_error_code(self) -> int:
        """The code sent as pilotErrorCode (0 when none)."""
        return self.first()[0]

    @property
    def pilot_error_diag(self) -> str:
        """The text sent as pilotErrorDiag: the first diag formatted and cut to 256 characters."""
        code, diag = self.first()
        return ErrorCodes.format_diagnostics(code, diag) if code else ""

    def entries(self) -> List[Tuple[int, str]]:
        """Return a copy of all (code, diag) pairs."""
        return list(self._entries)

    def report(self) -> str:
        """Return a readable table of all recorded errors."""
        return _report(self._entries)

    def clear(self) -> None:
        """Forget every recorded error."""
        self._entries.clear()

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Tuple[int, str]]:
        return iter(list(self._entries))

    def __contains__(self, code: object) -> bool:
        return any(entry[0] == code for entry in self._entries)
