"""Load copytool and experiment plug-ins by name and check that they provide what the pilot calls.

The functions each plug-in kind must define are written once below as ``typing.Protocol``
classes; a module is accepted when it has every public method of its protocol as a callable whose
signature fits the method's (:func:`signature_problem`: the pilot's calls would not fail with a
``TypeError``). A mismatch is reported at load with the plug-in module, the function, the reason and
both signatures.

Error codes raised (always a ``PilotException`` subclass whose message names what is missing):

* copytool module missing, lacking a required function or with one of the wrong signature:
  1323 UNKNOWNCOPYTOOL (``UnknownCopytool``)
* experiment module missing, lacking a required function or with one of the wrong signature:
  1300 NOTIMPLEMENTED (``PluginError``)
* a plug-in exists but one of *its* imports fails (e.g. a middleware client is not installed):
  1342 MIDDLEWAREIMPORTFAILURE (``MiddlewareImportFailure``)
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Protocol, Tuple, Type

from pilot.common.exception import MiddlewareImportFailure, PilotException, PluginError, UnknownCopytool

if TYPE_CHECKING:
    from pilot.info.jobdata import JobData

logger = logging.getLogger(__name__)

COPYTOOL_PACKAGE = "pilot.copytool"
USER_PACKAGE = "pilot.user"

# copytool names used in queue data -> module under pilot/copytool
COPYTOOL_ALIASES = {
    "rucio": "rucio",
    "gfal": "gfal",
    "gfalcopy": "gfal",
    "xrdcp": "xrdcp",
    "mv": "mv",
    "lsm": "lsm",
    "objectstore": "objectstore",
    "s3": "s3",
    "gs": "gs",
}

# optional copytool attributes and the value assumed when a module does not define them
COPYTOOL_DEFAULTS: Dict[str, Any] = {
    "require_replicas": False,          # resolve input replicas through Rucio first
    "require_input_protocols": False,   # resolve input URLs from storage protocols / --input-dir
    "require_protocols": True,          # resolve the output protocol and SURL first
    "allowed_schemas": None,            # None: any scheme
    "check_availablespace": True,       # run the input space check
    "send_traces": True,                # report each transfer to Rucio's trace endpoint
}


# --- plug-in contracts ------------------------------------------------------------------------

class CopytoolPlugin(Protocol):
    """pilot.copytool.<name> (compat 8). Optional: see COPYTOOL_DEFAULTS, resolve_replica, resolve_surl."""

    def copy_in(self, files: list, **kwargs: Any) -> list: ...
    def copy_out(self, files: list, **kwargs: Any) -> list: ...
    def is_valid_for_copy_in(self, files: list) -> bool: ...
    def is_valid_for_copy_out(self, files: list) -> bool: ...


class CopytoolOptionalFunctions(Protocol):
    """Functions a copytool may define (checked like the required ones when it does)."""

    def copy_in_bulk(self, files: list, **kwargs: Any) -> list: ...  # pilot.api.bulk
    def parallel_transfers(self, kwargs: Mapping[str, Any], is_stagein: bool) -> bool: ...  # common


class UserCommonPlugin(Protocol):
    """pilot.user.<experiment>.common. Optional: parse_jobreport_data(report) (HPC workflows)."""

    def sanity_check(self) -> int: ...
    def validate(self, job: JobData) -> bool: ...
    def verify_job(self, job: JobData) -> bool: ...
    def get_payload_command(self, job: JobData) -> str: ...
    def remove_redundant_files(self, workdir: str, outputfiles: Optional[list] = None, islooping: bool = False,
                               debugmode: bool = False) -> None: ...

    def get_utility_commands(self, order: Optional[int] = None, job: Optional[JobData] = None) -> Any: ...
    def get_utility_command_setup(self, name: str, job: JobData) -> str: ...
    def get_utility_command_kill_signal(self, name: str) -> int: ...
    def get_utility_command_output_filename(self, name: str, selector: Any = None) -> str: ...
    def post_utility_command_action(self, name: str, job: JobData) -> None: ...
    def post_prestagein_utility_command(self, **kwargs: Any) -> None: ...
    def update_stagein(self, job: JobData) -> None: ...
    def get_metadata(self, workdir: str) -> Any: ...
    def update_server(self, job: JobData) -> None: ...
    def allow_timefloor(self, submitmode: str) -> bool: ...
    def process_debug_command(self, debug_command: str, pandaid: str) -> str: ...
    def preprocess_debug_command(self, job: JobData) -> None: ...
    def update_output_for_hpo(self, job: JobData) -> None: ...


class UserContainerPlugin(Protocol):
    """pilot.user.<experiment>.container."""

    def do_use_container(self, **kwargs: Any) -> bool: ...
    def wrapper(self, executable: str, **kwargs: Any) -> str: ...

    def create_middleware_container_command(self, workdir: str, cmd: str, container_options: str = "",
                                            label: str = "stage-in", **kwargs: Any) -> str: ...

    def get_middleware_container_script(self, middleware_container: str = "", cmd: str = "", asetup: bool = False,
                                        **kwargs: Any) -> str: ...


class UserDiagnosePlugin(Protocol):
    """pilot.user.<experiment>.diagnose."""

    def interpret(self, job: JobData) -> int: ...
    def get_log_extracts(self, job: JobData, state: str) -> str: ...


class UserJobDataPlugin(Protocol):
    """pilot.user.<experiment>.jobdata."""

    def jobparams_prefiltering(self, value: str) -> Tuple[dict, str]: ...
    def jobparams_postfiltering(self, value: str, exclusions: Optional[dict] = None) -> str: ...


class UserJobMetricsPlugin(Protocol):
    """pilot.user.<experiment>.jobmetrics."""

    def get_job_metrics(self, job: JobData) -> str: ...


class UserLoopingJobDefinitionsPlugin(Protocol):
    """pilot.user.<experiment>.loopingjob_definitions."""

    def remove_unwanted_files(self, workdir: str, files: list) -> list: ...


class UserMemoryPlugin(Protocol):
    """pilot.user.<experiment>.memory."""

    def allow_memory_usage_verifications(self) -> bool: ...
    def memory_usage(self, job: JobData) -> Tuple[int, str]: ...


class UserMonitoringPlugin(Protocol):
    """pilot.user.<experiment>.monitoring."""

    def fast_monitor_tasks(self, job: JobData) -> int: ...


class UserProxyPlugin(Protocol):
    """pilot.user.<experiment>.proxy."""

    def verify_proxy(self, limit: Optional[int] = None, x509: Any = None, proxy_id: str = "pilot",
                     test: bool = False) -> Tuple[int, str]: ...


class UserCpuPlugin(Protocol):
    """pilot.user.<experiment>.cpu."""

    def set_core_counts(self, job: JobData) -> None: ...


class UserMetadataPlugin(Protocol):
    """pilot.user.<experiment>.metadata."""

    def create_input_file_metadata(self, file_dictionary: dict, workdir: str) -> str: ...


class UserUtilitiesPlugin(Protocol):
    """pilot.user.<experiment>.utilities."""

    def precleanup(self) -> None: ...
    def get_memory_monitor_info(self, workdir: str, name: str = "") -> dict: ...


USER_PLUGIN_PROTOCOLS: Dict[str, Type] = {
    "common": UserCommonPlugin,
    "container": UserContainerPlugin,
    "diagnose": UserDiagnosePlugin,
    "jobdata": UserJobDataPlugin,
    "jobmetrics": UserJobMetricsPlugin,
    "loopingjob_definitions": UserLoopingJobDefinitionsPlugin,
    "memory": UserMemoryPlugin,
    "monitoring": UserMonitoringPlugin,
    "proxy": UserProxyPlugin,
    "cpu": UserCpuPlugin,
    "metadata": UserMetadataPlugin,
    "utilities": UserUtilitiesPlugin,
}


def required_functions(protocol: Type) -> List[str]:
    """Return the names of the functions a protocol class declares (in declaration order)."""
    return [name for name, value in vars(protocol).items() if not name.startswith("_") and callable(value)]


def missing_functions(module: ModuleType, protocol: Type) -> List[str]:
    """Return the required functions of protocol that module lacks (or has as non-callables)."""
    return [name for name in required_functions(protocol) if not callable(getattr(module, name, None))]


# --- signature checks (pluggy-style) ------------------------------------------------------------

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_BY_NAME = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class _Annotation(str):
    """A string annotation (``from __future__ import annotations``) shown without quotes."""

    def __repr__(self) -> str:
        return str(self)


def contract_signature(protocol: Type, name: str) -> inspect.Signature:
    """The signature the pilot calls ``name`` with: the protocol method's, without ``self``."""
    signature = inspect.signature(getattr(protocol, name))
    return signature.replace(parameters=list(signature.parameters.values())[1:])


def describe_signature(name: str, signature: inspect.Signature) -> str:
    """``name(a: int, *, b: str = '') -> bool`` (string annotations unquoted)."""
    def plain(value: Any) -> Any:
        return _Annotation(value) if isinstance(value, str) else value

    params = [p.replace(annotation=plain(p.annotation)) for p in signature.parameters.values()]
    return f"{name}{signature.replace(parameters=params, return_annotation=plain(signature.return_annotation))}"


def signature_problem(contract: inspect.Signature, plugin: inspect.Signature) -> Optional[str]:
    """Why a plug-in function with signature ``plugin`` cannot be called as the contract says (None: it can).

    The rules (those of pluggy's hook checks, for functions called directly):

    - a parameter the contract requires is passed by position: the plug-in takes it at the same
      position under the same name, or has ``*args``;
    - a parameter with a default in the contract (and a keyword-only one) may be passed by name: the
      plug-in takes that name, or has ``**kwargs`` (the catch-all);
    - the contract's ``*args``/``**kwargs`` mean the pilot passes further arguments: the plug-in needs
      them too;
    - the plug-in requires nothing the pilot does not always pass (its extra parameters have defaults).
    """
    theirs = list(plugin.parameters.values())
    positional = [p for p in theirs if p.kind in _POSITIONAL]
    by_name = {p.name for p in theirs if p.kind in _BY_NAME}
    var_args = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in theirs)
    var_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in theirs)
    always: set = set()  # names the pilot always passes
    passed_positions = 0
    for index, param in enumerate(contract.parameters.values()):
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            if not var_args:
                return "takes no *args, and the pilot passes further positional arguments"
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            if not var_kwargs:
                return "takes no **kwargs, and the pilot passes further keyword arguments"
        elif param.kind in _POSITIONAL and param.default is param.empty:
            if index < len(positional):
                if positional[index].name != param.name and not var_kwargs:
                    return (f"has '{positional[index].name}' where the contract has '{param.name}' "
                            f"(argument {index + 1})")
            elif not var_args:
                return f"does not take '{param.name}' (argument {index + 1}), which the pilot always passes"
            always.add(param.name)
            passed_positions = index + 1
        elif param.name not in by_name and not var_kwargs:
            return f"does not take '{param.name}' (nor **kwargs), which the pilot may pass"
    for index, param in enumerate(positional):
        if param.default is param.empty and index >= passed_positions:
            return f"requires '{param.name}', which the pilot does not always pass"
    for param in theirs:
        if param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is param.empty and \
                param.name not in always:
            return f"requires the keyword '{param.name}', which the pilot does not always pass"
    return None


def signature_mismatches(module: ModuleType, protocol: Type) -> List[str]:
    """One line per function of ``protocol`` that ``module`` defines with a signature that does not fit.

    Each line names the plug-in module, the function, the reason and both signatures. Functions whose
    signature cannot be read (some built-ins) are taken as they are.
    """
    lines = []
    for name in required_functions(protocol):
        function = getattr(module, name, None)
        if not callable(function):
            continue
        try:
            theirs = inspect.signature(function)
        except (TypeError, ValueError):
            continue
        contract = contract_signature(protocol, name)
        problem = signature_problem(contract, theirs)
        if problem:
            lines.append(f"{module.__name__}.{name} {problem}: the plug-in has {describe_signature(name, theirs)}, "
                         f"the contract ({protocol.__name__}) is {describe_signature(name, contract)}")
    return lines


# --- the factory --------------------------------------------------------------------------------

class PluginFactory:
    """Imports plug-in modules on demand, checks them, and caches them in this instance."""

    def __init__(self, copytool_aliases: Optional[Dict[str, str]] = None) -> None:
        """:param copytool_aliases: extra or replacing entries for COPYTOOL_ALIASES; a value with a dot
            is a full module path (e.g. a test copytool outside pilot.copytool).
        """
        self._cache: Dict[Tuple[str, ...], ModuleType] = {}
        self._lock = threading.Lock()
        self.copytool_aliases = {**COPYTOOL_ALIASES, **(copytool_aliases or {})}

    def load_copytool(self, name: str) -> ModuleType:
        """Return the copytool module for a queue-data tool name (e.g. 'gfalcopy' -> pilot.copytool.gfal).

        Missing optional attributes are filled in with COPYTOOL_DEFAULTS.
        """
        module_name = self._copytool_module_name(name)
        key = ("copytool", module_name)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        full_name = module_name if "." in module_name else f"{COPYTOOL_PACKAGE}.{module_name}"
        module = _import(full_name, UnknownCopytool, f"copytool '{name}'")
        missing = missing_functions(module, CopytoolPlugin)
        if missing:
            raise UnknownCopytool(f"copytool '{name}' ({full_name}) lacks required function(s): {', '.join(missing)}")
        mismatches = signature_mismatches(module, CopytoolPlugin) + \
            signature_mismatches(module, CopytoolOptionalFunctions)
        if mismatches:
            raise UnknownCopytool(f"copytool '{name}' does not fit the copytool contract: {'; '.join(mismatches)}")
        for attribute, default in COPYTOOL_DEFAULTS.items():
            if not hasattr(module, attribute):
                setattr(module, attribute, default)
        with self._lock:
            self._cache[key] = module
        return module

    def load_user_module(self, experiment: str, module: str) -> ModuleType:
        """Return pilot.user.<experiment>.<module>, checked against its protocol when one is defined."""
        experiment_name = (experiment or "generic").strip().lower()
        for part in (experiment_name, module):
            if not part.isidentifier():
                raise PluginError(f"invalid plug-in name '{part}'")
        key = ("user", experiment_name, module)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        full_name = f"{USER_PACKAGE}.{experiment_name}.{module}"
        loaded = _import(full_name, PluginError, f"experiment plug-in module '{experiment_name}.{module}'")
        protocol = USER_PLUGIN_PROTOCOLS.get(module)
        if protocol is not None:
            missing = missing_functions(loaded, protocol)
            if missing:
                raise PluginError(f"experiment plug-in module {full_name} lacks required function(s): "
                                  f"{', '.join(missing)}")
            mismatches = signature_mismatches(loaded, protocol)
            if mismatches:
                raise PluginError(f"experiment plug-in module {full_name} does not fit its contract: "
                                  f"{'; '.join(mismatches)}")
        with self._lock:
            self._cache[key] = loaded
        return loaded

    def _copytool_module_name(self, name: str) -> str:
        tool = (name or "").strip().lower()
        module_name = self.copytool_aliases.get(tool)
        if module_name is None or not all(part.isidentifier() for part in module_name.split(".")):
            raise UnknownCopytool(f"unknown copytool '{name}' (known: {', '.join(sorted(self.copytool_aliases))})")
        return module_name

    def clear(self) -> None:
        """Forget the cached modules (the next load checks them again)."""
        with self._lock:
            self._cache.clear()


def _import(full_name: str, error: Type[PilotException], what: str) -> ModuleType:
    """Import a module; a missing module raises `error`, a failing import inside it 1342."""
    try:
        return importlib.import_module(full_name)
    except ModuleNotFoundError as exc:
        # the plug-in itself (or its package) is absent, as opposed to one of its dependencies
        if exc.name and (full_name == exc.name or full_name.startswith(exc.name + ".")):
            raise error(f"{what} not found: no module {full_name}") from exc
        raise MiddlewareImportFailure(f"{what} ({full_name}) cannot be imported: {exc}") from exc
    except ImportError as exc:
        raise MiddlewareImportFailure(f"{what} ({full_name}) cannot be imported: {exc}") from exc


def load_copytool(name: str) -> ModuleType:
    """Convenience wrapper: load a copytool with a fresh factory (Python's import cache still applies)."""
    return PluginFactory().load_copytool(name)


def load_user_module(experiment: str, module: str) -> ModuleType:
    """Convenience wrapper: load an experiment module with a fresh factory."""
    return PluginFactory().load_user_module(experiment, module)
