"""Error code constants, texts, signal mapping, diagnostics formatting and the per-job error list."""

import signal

import pytest

from pilot.common.errorcodes import MAX_DIAGNOSTICS_LENGTH, ErrorCodes, JobErrors

# every (name, number) pair of compat reference 6.1
COMPAT_CODES = [
    ("GENERALERROR", 1008),
    ("NOLOCALSPACE", 1098),
    ("STAGEINFAILED", 1099),
    ("REPLICANOTFOUND", 1100),
    ("NOSUCHFILE", 1103),
    ("USERDIRTOOLARGE", 1104),
    ("STDOUTTOOBIG", 1106),
    ("SETUPFAILURE", 1110),
    ("NFSSQLITE", 1115),
    ("QUEUEDATA", 1116),
    ("QUEUEDATANOTOK", 1117),
    ("OUTPUTFILETOOLARGE", 1124),
    ("NOSTORAGE", 1133),
    ("STAGEOUTFAILED", 1137),
    ("PUTMD5MISMATCH", 1141),
    ("CHMODTRF", 1143),
    ("PANDAKILL", 1144),
    ("GETMD5MISMATCH", 1145),
    ("TRFDOWNLOADFAILURE", 1149),
    ("LOOPINGJOB", 1150),
    ("STAGEINTIMEOUT", 1151),
    ("STAGEOUTTIMEOUT", 1152),
    ("NOPROXY", 1163),
    ("MISSINGOUTPUTFILE", 1165),
    ("SIZETOOLARGE", 1168),
    ("GETADMISMATCH", 1171),
    ("PUTADMISMATCH", 1172),
    ("NOVOMSPROXY", 1177),
    ("GETGLOBUSSYSERR", 1180),
    ("PUTGLOBUSSYSERR", 1181),
    ("NOSOFTWAREDIR", 1186),
    ("NOPAYLOADMETADATA", 1187),
    ("LFNTOOLONG", 1190),
    ("ZEROFILESIZE", 1191),
    ("MKDIR", 1199),
    ("KILLSIGNAL", 1200),
    ("SIGTERM", 1201),
    ("SIGQUIT", 1202),
    ("SIGSEGV", 1203),
    ("SIGXCPU", 1204),
    ("USERKILL", 1205),
    ("SIGBUS", 1206),
    ("SIGUSR1", 1207),
    ("SIGINT", 1208),
    ("MISSINGINSTALLATION", 1211),
    ("PAYLOADOUTOFMEMORY", 1212),
    ("REACHEDMAXTIME", 1213),
    ("UNKNOWNPAYLOADFAILURE", 1220),
    ("FILEEXISTS", 1221),
    ("BADALLOC", 1223),
    ("ESRECOVERABLE", 1224),
    ("ESFATAL", 1228),
    ("EXECUTEDCLONEJOB", 1234),
    ("PAYLOADEXCEEDMAXMEM", 1235),
    ("FAILEDBYSERVER", 1236),
    ("ESNOEVENTS", 1238),
    ("MESSAGEHANDLINGFAILURE", 1240),
    ("CHKSUMNOTSUP", 1242),
    ("NORELEASEFOUND", 1244),
    ("NOUSERTARBALL", 1246),
    ("BADXML", 1247),
    ("NOTIMPLEMENTED", 1300),
    ("UNKNOWNEXCEPTION", 1301),
    ("CONVERSIONFAILURE", 1302),
    ("FILEHANDLINGFAILURE", 1303),
    ("PAYLOADEXECUTIONFAILURE", 1305),
    ("SINGULARITYGENERALFAILURE", 1306),
    ("SINGULARITYNOLOOPDEVICES", 1307),
    ("SINGULARITYBINDPOINTFAILURE", 1308),
    ("SINGULARITYIMAGEMOUNTFAILURE", 1309),
    ("PAYLOADEXECUTIONEXCEPTION", 1310),
    ("NOTDEFINED", 1311),
    ("NOTSAMELENGTH", 1312),
    ("NOSTORAGEPROTOCOL", 1313),
    ("UNKNOWNCHECKSUMTYPE", 1314),
    ("UNKNOWNTRFFAILURE", 1315),
    ("RUCIOSERVICEUNAVAILABLE", 1316),
    ("EXCEEDEDMAXWAITTIME", 1317),
    ("COMMUNICATIONFAILURE", 1318),
    ("INTERNALPILOTPROBLEM", 1319),
    ("LOGFILECREATIONFAILURE", 1320),
    ("RUCIOLOCATIONFAILED", 1321),
    ("RUCIOLISTREPLICASFAILED", 1322),
    ("UNKNOWNCOPYTOOL", 1323),
    ("SERVICENOTAVAILABLE", 1324),
    ("SINGULARITYNOTINSTALLED", 1325),
    ("NOREPLICAS", 1326),
    ("UNREACHABLENETWORK", 1327),
    ("PAYLOADSIGSEGV", 1328),
    ("NONDETERMINISTICDDM", 1329),
    ("JSONRETRIEVALTIMEOUT", 1330),
    ("MISSINGINPUTFILE", 1331),
    ("BLACKHOLE", 1332),
    ("NOREMOTESPACE", 1333),
    ("SETUPFATAL", 1334),
    ("MISSINGUSERCODE", 1335),
    ("JOBALREADYRUNNING", 1336),
    ("BADMEMORYMONITORJSON", 1337),
    ("STAGEINAUTHENTICATIONFAILURE", 1338),
    ("DBRELEASEFAILURE", 1339),
    ("SINGULARITYNEWUSERNAMESPACE", 1340),
    ("BADQUEUECONFIGURATION", 1341),
    ("MIDDLEWAREIMPORTFAILURE", 1342),
    ("NOOUTPUTINJOBREPORT", 1343),
    ("RESOURCEUNAVAILABLE", 1344),
    ("SINGULARITYFAILEDUSERNAMESPACE", 1345),
    ("TRANSFORMNOTFOUND", 1346),
    ("UNSUPPORTEDSL5OS", 1347),
    ("SINGULARITYRESOURCEUNAVAILABLE", 1348),
    ("UNRECOGNIZEDTRFARGUMENTS", 1349),
    ("EMPTYOUTPUTFILE", 1350),
    ("UNRECOGNIZEDTRFSTDERR", 1351),
    ("STATFILEPROBLEM", 1352),
    ("NOSUCHPROCESS", 1353),
    ("GENERALCPUCALCPROBLEM", 1354),
    ("COREDUMP", 1355),
    ("PREPROCESSFAILURE", 1356),
    ("POSTPROCESSFAILURE", 1357),
    ("MISSINGRELEASEUNPACKED", 1358),
    ("PANDAQUEUENOTACTIVE", 1359),
    ("IMAGENOTFOUND", 1360),
    ("REMOTEFILECOULDNOTBEOPENED", 1361),
    ("XRDCPERROR", 1362),
    ("KILLPAYLOAD", 1363),
    ("MISSINGCREDENTIALS", 1364),
    ("NOCTYPES", 1365),
    ("CHECKSUMCALCFAILURE", 1366),
    ("COMMANDTIMEDOUT", 1367),
    ("REMOTEFILEOPENTIMEDOUT", 1368),
    ("FRONTIER", 1369),
    ("VOMSPROXYABOUTTOEXPIRE", 1370),
    ("BADOUTPUTFILENAME", 1371),
    ("APPTAINERNOTINSTALLED", 1372),
    ("CERTIFICATEHASEXPIRED", 1373),
    ("REMOTEFILEDICTDOESNOTEXIST", 1374),
    ("LEASETIME", 1375),
    ("LOGCREATIONTIMEOUT", 1376),
    ("CVMFSISNOTALIVE", 1377),
    ("LSETUPTIMEDOUT", 1378),
    ("PREEMPTION", 1379),
    ("ARCPROXYFAILURE", 1380),
    ("ARCPROXYLIBFAILURE", 1381),
    ("PROXYTOOSHORT", 1382),
    ("STAGEOUTAUTHENTICATIONFAILURE", 1383),
    ("QUEUENOTSETUPFORCONTAINERS", 1384),
    ("NOJOBSINPANDA", 1385),
    ("PANDAQUEUENOTONLINE", 1386),
]


def test_compat_table_is_complete_data():
    assert len(COMPAT_CODES) == 147
    assert len({name for name, _ in COMPAT_CODES}) == len(COMPAT_CODES)
    assert len({code for _, code in COMPAT_CODES}) == len(COMPAT_CODES)


@pytest.mark.parametrize("name,code", COMPAT_CODES)
def test_every_compat_code_has_constant_and_text(name, code):
    assert getattr(ErrorCodes, name) == code
    assert isinstance(getattr(ErrorCodes, name), int)
    text = ErrorCodes._error_messages[code]
    assert isinstance(text, str) and text.strip()
    assert ErrorCodes.get_error_message(code) == text


def test_no_extra_codes_beyond_compat_table():
    assert ErrorCodes.all_codes() == dict(COMPAT_CODES)
    assert set(ErrorCodes._error_messages) == {code for _, code in COMPAT_CODES}


def test_harvester_constants():
    assert (ErrorCodes.GENERALERROR, ErrorCodes.SETUPFAILURE, ErrorCodes.STAGEINFAILED,
            ErrorCodes.STAGEOUTFAILED, ErrorCodes.PANDAKILL, ErrorCodes.FAILEDBYSERVER) == (
        1008, 1110, 1099, 1137, 1144, 1236)


def test_instance_and_subclass_access():
    class HarvesterErrors(ErrorCodes):
        pass

    errors = ErrorCodes()
    assert errors.get_error_message(1099) == ErrorCodes.get_error_message(1099)
    assert HarvesterErrors.STAGEOUTFAILED == 1137
    assert HarvesterErrors().get_error_message(1137) == ErrorCodes._error_messages[1137]


def test_unknown_code_message():
    assert "4242" in ErrorCodes.get_error_message(4242)


@pytest.mark.parametrize("sig,code", [
    ("SIGTERM", 1201), ("TERM", 1201), ("sigterm", 1201), (signal.SIGTERM, 1201), (int(signal.SIGTERM), 1201),
    ("SIGQUIT", 1202), ("SEGV", 1203), ("SIGXCPU", 1204), ("SIGBUS", 1206), ("USR1", 1207),
    (str(int(signal.SIGUSR1)), 1207),
    ("SIGINT", 1200), ("INT", 1200), ("SIGHUP", 1200), ("nonsense", 1200), (None, 1200), (9999, 1200),
])
def test_kill_signal_codes(sig, code):
    assert ErrorCodes.get_kill_signal_error_code(sig) == code


@pytest.mark.parametrize("code,expected", [
    (0, True), (1135, True), (1136, True), (1137, True), (1141, True), (1152, True), (1181, True),
    (1099, False), (1305, False), (1151, False),
])
def test_is_recoverable(code, expected):
    assert ErrorCodes.is_recoverable(code) is expected


@pytest.mark.parametrize("exit_code,stderr,expected", [
    (251, "FATAL: Not mounting requested bind point /x", 1308),
    (255, "ERROR: No more available loop devices", 1307),
    (255, "Failed to mount image /a.sif", 1309),
    (255, "open(): Operation not permitted", 1306),
    (64, "Singularity is not installed on this host", 1325),
    (1, "Singularity is not installed", 1325),
    (64, "mkdir: cannot create directory '/x': Permission denied", 1199),
    (-1, "", 1315),
    (65, "something else", 1305),
    (255, "unrelated", 1305),
    (251, "Failed to mount image", 1305),
    (0, "", 0),
    (0, "warning only", 0),
])
def test_resolve_transform_error(exit_code, stderr, expected):
    assert ErrorCodes.resolve_transform_error(exit_code, stderr) == expected


def test_format_diagnostics_short_and_empty():
    std = ErrorCodes.get_error_message(1099)
    assert ErrorCodes.format_diagnostics(1099, "") == std
    assert ErrorCodes.format_diagnostics(1099, "no replica") == f"{std}: no replica"
    assert ErrorCodes.format_diagnostics(1099, f"{std}: already there") == f"{std}: already there"
    assert ErrorCodes.format_diagnostics(1099, "a \n\t b") == f"{std}: a b"
    assert ErrorCodes.format_diagnostics(4242, "raw") == "raw"


@pytest.mark.parametrize("diag_prefix", ["", "std"])
def test_format_diagnostics_trims_to_limit_keeping_tail(diag_prefix):
    std = ErrorCodes.get_error_message(1137)
    body = "x" * 500 + "THE-REASON"
    diag = (std + ": " + body) if diag_prefix else body
    text = ErrorCodes.format_diagnostics(1137, diag)
    assert len(text) == MAX_DIAGNOSTICS_LENGTH
    assert text.startswith(std)
    assert text.endswith("THE-REASON")


def test_legacy_list_helpers_do_not_share_state():
    codes, diags = ErrorCodes.add_error_code(1099)
    assert (codes, diags) == ([1099], [ErrorCodes.get_error_message(1099)])
    codes2, _ = ErrorCodes.add_error_code(1137)
    assert codes2 == [1137]
    codes, diags = ErrorCodes.add_error_code(1305, codes, diags, priority=True, msg="boom")
    assert codes == [1305, 1099] and diags[0] == "boom"
    ErrorCodes.add_error_code(1305, codes, diags)
    assert codes == [1305, 1099]
    ErrorCodes.remove_error_code(1305, codes, diags)
    assert codes == [1099] and len(diags) == 1
    assert "1099" in ErrorCodes.report_errors(codes, diags)
    assert ErrorCodes.report_errors([], []) == "no pilot errors were reported"


def test_extract_stderr_messages():
    assert ErrorCodes.extract_stderr_error("x\nERROR : disk full\n") == "disk full"
    assert ErrorCodes.extract_stderr_warning("Warning: slow\n") == "slow"
    assert ErrorCodes.extract_stderr_error("nothing") == ""
    assert ErrorCodes.extract_stderr_error("bash: foo: command not found") == "bash: foo: command not found"


def test_job_errors_first_is_reported():
    errors = JobErrors()
    assert not errors and errors.first() == (0, "") and errors.pilot_error_code == 0
    assert errors.pilot_error_diag == ""
    errors.add(1099, "replica missing")
    errors.add(1137)
    assert errors and len(errors) == 2
    assert errors.first() == (1099, "replica missing")
    assert errors.pilot_error_code == 1099
    assert errors.pilot_error_diag == f"{ErrorCodes.get_error_message(1099)}: replica missing"
    assert errors.codes == [1099, 1137]
    assert errors.codes() == [1099, 1137]
    assert errors.diags[1] == ErrorCodes.get_error_message(1137)


def test_job_errors_priority_duplicates_and_clear():
    errors = JobErrors()
    errors.add(1099, "a")
    errors.add(1099, "b")
    assert errors.entries() == [(1099, "a")]
    errors.add(1201, "signal", priority=True)
    assert errors.pilot_error_code == 1201
    assert 1099 in errors and 1305 not in errors
    errors.remove(1201)
    assert errors.codes == [1099]
    assert "1099" in errors.report()
    errors.clear()
    assert not errors and errors.codes == []


def test_job_errors_are_independent_per_instance():
    first, second = JobErrors(), JobErrors()
    first.add(1099)
    assert not second
