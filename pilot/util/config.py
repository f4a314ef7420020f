"""Layered pilot configuration with attribute access: ``config.Pilot.heartbeat``.

Files are read in this order, later ones overriding earlier ones key by key (missing files are
skipped, except one named explicitly with ``--config``):

1. the packaged ``pilot/util/default.cfg``
2. ``/etc/panda/pilot.cfg`` (site-wide)
3. ``pilot.cfg`` in the launch directory
4. files given with ``--config`` (``config.load_file(path)`` / ``config.reload(extra=[...])``)
5. the file named by ``$HARVESTER_PILOT_CONFIG``

Option names are case-insensitive. Values are converted when read: ``$NAME`` (or ``${NAME}``)
is taken from the environment (unset: ``ConfigurationError`` naming the variable and the key),
true/false -> bool, none -> None, whole numbers -> int, everything else stays a string.

``from pilot.util.config import config`` gives the process-wide instance; tests build their own
``Config(...)`` with their own files and environment.
"""

from __future__ import annotations

import configparser
import logging
import os
import re
import threading
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

from pilot.common.exception import ConfigurationError

logger = logging.getLogger(__name__)

DEFAULT_CONFIG_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default.cfg")
SITE_CONFIG_FILE = "/etc/panda/pilot.cfg"
LAUNCH_DIR_CONFIG_NAME = "pilot.cfg"
ENV_CONFIG_VARIABLE = "HARVESTER_PILOT_CONFIG"

_ENV_REFERENCE = re.compile(r"^\$(?:\{(\w+)\}|(\w+))$")
_INTEGER = re.compile(r"^-?\d+$")
_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_MISSING = object()  # "no default given"
_ABSENT = object()   # "key not present" (internal)


def convert_value(raw: str, env: Mapping[str, str], where: str = "") -> Any:
    """Convert one raw config value (see module doc); ``where`` names the key for error messages."""
    value = raw.strip()
    match = _ENV_REFERENCE.match(value)
    if match:
        name = match.group(1) or match.group(2)
        if name not in env:
            raise ConfigurationError(f"configuration key {where or '?'} refers to environment variable "
                                     f"${name}, which is not set")
        return env[name]
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    if _INTEGER.match(value):
        return int(value)
    return value


class ConfigSection:
    """Read-only view of one section: ``section.key``, ``section['key']``, ``'key' in section``."""

    def __init__(self, owner: "Config", name: str) -> None:
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_name", name)

    def get(self, key: str, default: Any = None) -> Any:
        """Return the converted value of key, or default when the key is absent."""
        value = self._owner.get(self._name, key, _MISSING)
        return default if value is _MISSING else value

    def keys(self) -> List[str]:
        return self._owner.keys(self._name)

    def items(self) -> List[tuple]:
        return [(key, self[key]) for key in self.keys()]

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        value = self._owner.get(self._name, key, _MISSING)
        if value is _MISSING:
            raise AttributeError(f"configuration section [{self._name}] has no key '{key}'")
        return value

    def __getitem__(self, key: str) -> Any:
        value = self._owner.get(self._name, key, _MISSING)
        if value is _MISSING:
            raise KeyError(f"[{self._name}] {key}")
        return value

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("configuration is read-only; use Config.set(section, key, value)")

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._owner.keys(self._name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __dir__(self) -> List[str]:
        return self.keys()

    def __repr__(self) -> str:
        return f"<config section [{self._name}] keys={self.keys()}>"


class Config:
    """Layered configuration (see the module doc). Thread-safe for reading while reloading."""

    def __init__(self, default_file: Optional[str] = DEFAULT_CONFIG_FILE,
                 locations: Optional[Sequence[str]] = None, extra: Sequence[str] = (),
                 env: Optional[Mapping[str, str]] = None, env_variable: Optional[str] = ENV_CONFIG_VARIABLE,
                 load: bool = True) -> None:
        """Create a configuration.

        :param default_file: base file (None: start empty).
        :param locations: optional files read after the default; None means
            [/etc/panda/pilot.cfg, ./pilot.cfg] with ./ resolved at each (re)load.
        :param extra: files that must exist, read after the locations (the --config files).
        :param env: environment used for $NAME values and env_variable (None: os.environ, live).
        :param env_variable: name of the variable pointing to the last file (None: not used).
        :param load: read the files now.
        """
        self._default_file = default_file
        self._locations = list(locations) if locations is not None else None
        self._extra: List[str] = [str(path) for path in extra]
        self._env = env
        self._env_variable = env_variable
        self._lock = threading.RLock()
        self._data: Dict[str, Dict[str, str]] = {}
        self._overrides: Dict[str, Dict[str, str]] = {}
        self._sources: List[str] = []
        self._origins: Dict[tuple, str] = {}  # (lower-cased section, key) -> file that set it last
        if load:
            self.reload()

    # --- loading -------------------------------------------------------------------------

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._env is None else self._env

    def layer_files(self) -> List[tuple]:
        """Return [(path, required)] in reading order for the current settings and environment."""
        layers = []
        if self._default_file:
            layers.append((str(self._default_file), True))
        locations = self._locations
        if locations is None:
            locations = [SITE_CONFIG_FILE, os.path.join(os.getcwd(), LAUNCH_DIR_CONFIG_NAME)]
        layers += [(str(path), False) for path in locations]
        layers += [(path, True) for path in self._extra]
        if self._env_variable and self.environ.get(self._env_variable):
            layers.append((self.environ[self._env_variable], False))
        return layers

    def reload(self, extra: Optional[Sequence[str]] = None) -> "Config":
        """Read every layer again; ``extra`` (if given) replaces the remembered --config files."""
        if extra is not None:
            self._extra = [str(path) for path in extra]
        data: Dict[str, Dict[str, str]] = {}
        sources = []
        origins: Dict[tuple, str] = {}
        for path, required in self.layer_files():
            if not os.path.isfile(path):
                what = "is a directory, not a file" if os.path.isdir(path) else "does not exist"
                if required:
                    raise ConfigurationError(f"configuration file {path} {what}")
                if path == self.environ.get(self._env_variable or "", None):
                    logger.warning("$%s points to %s, which %s (ignored)", self._env_variable, path, what)
                continue
            layer = _read_file(path)
            _merge(data, layer)
            for section, values in layer.items():
                for key in values:
                    origins[(section.lower(), key)] = path
            sources.append(os.path.abspath(path))
        with self._lock:
            self._data = data
            self._sources = sources
            self._origins = origins
        return self

    def load_file(self, path: str) -> "Config":
        """Add a --config file (must exist) and reload so that it overrides the files before it."""
        return self.reload(extra=self._extra + [str(path)])

    def set(self, section: str, key: str, value: Any) -> None:
        """Override one value (kept across reloads); mainly for tests and command-line overrides."""
        with self._lock:
            self._overrides.setdefault(section, {})[key.lower()] = _to_raw(value)

    def clear_overrides(self) -> None:
        """Drop every value given with set()."""
        with self._lock:
            self._overrides = {}

    def origin(self, section: str, key: str) -> str:
        """The file that gave a key its value ('' for a value given with set())."""
        return self._origins.get((section.lower(), key.lower()), "")

    def check(self, reference: Optional["Config"] = None) -> None:
        """Check every value once: environment references resolve, and a key whose packaged default
        is a number holds a number. Raises ConfigurationError naming the key, its file and the fault."""
        if reference is None and self._default_file:
            reference = Config(self._default_file, locations=[], env={}, env_variable=None)
        for section in self.sections():
            for key in self.keys(section):
                where = f"[{section}] {key}" + (f" in {self.origin(section, key)}" if self.origin(section, key) else "")
                value = convert_value(self.get_raw(section, key), self.environ, where)
                default = reference.get_raw(section, key, None) if reference is not None else None
                if default is None or value in (None, "") or not _NUMBER.match(default.strip()):
                    continue
                if isinstance(value, bool) or not _NUMBER.match(str(value).strip()):
                    raise ConfigurationError(f"configuration key {where}: '{value}' is not a number "
                                             f"(the default is {default.strip()})")

    # --- reading -------------------------------------------------------------------------

    @property
    def sources(self) -> List[str]:
        """Files actually read, in order (absolute paths)."""
        return list(self._sources)

    def sections(self) -> List[str]:
        with self._lock:
            names = list(self._data)
            names += [name for name in self._overrides if name not in self._data]
        return names

    def has_section(self, section: str) -> bool:
        return self._section_name(section) is not None

    def keys(self, section: str) -> List[str]:
        name = self._section_name(section)
        if name is None:
            return []
        with self._lock:
            keys = list(self._data.get(name, {}))
            keys += [key for key in self._overrides.get(name, {}) if key not in keys]
        return keys

    def get_raw(self, section: str, key: str, default: Any = _MISSING) -> Any:
        """Return the unconverted string of a key (default, or KeyError, when absent)."""
        name = self._section_name(section)
        lowered = key.lower()
        with self._lock:
            for layer in (self._overrides, self._data):
                if name is not None and lowered in layer.get(name, {}):
                    return layer[name][lowered]
        if default is _MISSING:
            raise KeyError(f"[{section}] {key}")
        return default

    def get(self, section: str, key: str, default: Any = None) -> Any:
        """Return the converted value of a key, or default when the section or key is absent."""
        raw = self.get_raw(section, key, _ABSENT)
        if raw is _ABSENT:
            return default
        return convert_value(raw, self.environ, f"[{section}] {key}")

    def as_dict(self, raw: bool = False) -> Dict[str, Dict[str, Any]]:
        """Return {section: {key: value}}; raw=True skips conversion (no environment lookups)."""
        result: Dict[str, Dict[str, Any]] = {}
        for section in self.sections():
            result[section] = {key: (self.get_raw(section, key) if raw else self.get(section, key))
                               for key in self.keys(section)}
        return result

    def _section_name(self, section: str) -> Optional[str]:
        """Resolve a section name: exact match first, then case-insensitive."""
        with self._lock:
            if section in self._data or section in self._overrides:
                return section
            lowered = section.lower()
            for name in list(self._data) + list(self._overrides):
                if name.lower() == lowered:
                    return name
        return None

    def __getattr__(self, section: str) -> ConfigSection:
        if section.startswith("_"):
            raise AttributeError(section)
        name = self._section_name(section)
        if name is None:
            raise AttributeError(f"configuration has no section [{section}]")
        return ConfigSection(self, name)

    def __getitem__(self, section: str) -> ConfigSection:
        name = self._section_name(section)
        if name is None:
            raise KeyError(section)
        return ConfigSection(self, name)

    def __contains__(self, section: object) -> bool:
        return isinstance(section, str) and self.has_section(section)

    def __iter__(self) -> Iterator[str]:
        return iter(self.sections())

    def __repr__(self) -> str:
        return f"<Config sources={self._sources}>"


def _read_file(path: str) -> Dict[str, Dict[str, str]]:
    """Parse one INI file into {section: {lower-cased key: raw value}}."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle, source=path)
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigurationError(f"configuration file {path}, line {exc.lineno}: a key before the first "
                                 f"[section] header (the file must start with a line like [Pilot])") from exc
    except configparser.ParsingError as exc:
        lines = ", ".join(str(number) for number, _ in exc.errors)
        raise ConfigurationError(f"configuration file {path}: cannot parse line {lines} "
                                 "(expected 'key: value' or 'key = value')") from exc
    except configparser.Error as exc:
        raise ConfigurationError(f"configuration file {path}: {str(exc).splitlines()[0]}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"configuration file {path} is not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigurationError(f"cannot read configuration file {path}: {exc.strerror or exc}") from exc
    return {section: dict(parser.items(section, raw=True)) for section in parser.sections()}


def _merge(target: Dict[str, Dict[str, str]], layer: Dict[str, Dict[str, str]]) -> None:
    """Overlay layer on target key by key (sections matched case-insensitively)."""
    for section, values in layer.items():
        existing = next((name for name in target if name.lower() == section.lower()), section)
        target.setdefault(existing, {}).update(values)


def _to_raw(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


config = Config()
