"""Run options (purpose, consent, paths, face pictures, audit log) and the site policy.

Every command that runs through the runner (``medface <plugin> <command>``, ``medface.run``)
takes the same run options, beside its own parameters (``docs/privacy.md``):

- ``purpose``: why a person's data is processed: clinical, research, casework or education;
- ``consent``: a reference to the consent or authorisation (a case or protocol number, never
  the document itself);
- ``record_paths``: record absolute input paths in the provenance (default: file names only);
- ``embed_images``: embed face pictures in report.html (default: link to the files);
- ``face_images``: ``False`` leaves every face picture out of the outputs (``--no-face-images``);
- ``audit_log``: a file that gets one JSON line per run (:mod:`medface.audit`).

A site can make some of them required with a configuration file: ``medface.toml`` in the
working folder, or the file named by ``MEDFACE_CONFIG``::

    [policy]
    require_purpose = true
    require_consent = true
    audit_log = "/srv/casework/medface-audit.jsonl"   # relative paths: from the file's folder
    purposes = ["casework"]                            # optional: the purposes allowed here

A run that lacks what the policy requires is refused with a :class:`ParameterError` that names
the configuration file, before any plugin code is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import ParameterError

__all__ = ["PURPOSES", "RUN_OPTIONS", "RunOptions", "SitePolicy", "CONFIG_NAME", "CONFIG_VARIABLE", "load_policy",
           "apply_policy"]

PURPOSES = ("clinical", "research", "casework", "education")
CONFIG_NAME = "medface.toml"
CONFIG_VARIABLE = "MEDFACE_CONFIG"
#: the names :func:`medface.run` takes as run options, not as command parameters
RUN_OPTIONS = ("purpose", "consent", "record_paths", "embed_images", "face_images", "audit_log")
MAX_CONSENT_CHARS = 200
_POLICY_KEYS = {"require_purpose": bool, "require_consent": bool, "audit_log": str, "purposes": list}


@dataclass(frozen=True)
class RunOptions:
    """The runner-level options of one run (see the module docstring)."""

    purpose: str | None = None
    consent: str | None = None
    record_paths: bool = False
    embed_images: bool = False
    face_images: bool = True
    audit_log: str | os.PathLike | None = None
    audit_logs: tuple[Path, ...] = field(default=(), repr=False)  # filled by apply_policy
    policy_file: Path | None = field(default=None, repr=False)

    @classmethod
    def from_kwargs(cls, values: dict) -> "RunOptions":
        """Run options from ``medface.run`` keywords; checks types and values."""
        purpose, consent = values.get("purpose"), values.get("consent")
        for name in ("record_paths", "embed_images", "face_images"):
            if name in values and not isinstance(values[name], bool):
                raise ParameterError(f"expected True or False, got {values[name]!r}", parameter=name)
        audit_log = values.get("audit_log")
        if audit_log is not None and not isinstance(audit_log, (str, os.PathLike)):
            raise ParameterError(f"expected a file path, got {type(audit_log).__name__}", parameter="audit_log")
        return cls(purpose=check_purpose(purpose), consent=check_consent(consent),
                   record_paths=values.get("record_paths", False), embed_images=values.get("embed_images", False),
                   face_images=values.get("face_images", True), audit_log=audit_log)

    @property
    def face_policy(self) -> str:
        """How face pictures are handled: ``"left out"``, ``"embedded"`` or ``"linked"``."""
        if not self.face_images:
            return "left out"
        return "embedded" if self.embed_images else "linked"


def check_purpose(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if text not in PURPOSES:
        raise ParameterError(f"'{value}' is not a purpose; use one of: {', '.join(PURPOSES)}", parameter="purpose")
    return text


def check_consent(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ParameterError(f"expected a reference string, got {type(value).__name__}", parameter="consent")
    text = value.strip()
    if not text or len(text) > MAX_CONSENT_CHARS or any(ord(c) < 32 for c in text):
        raise ParameterError(f"a consent reference is one line of 1 to {MAX_CONSENT_CHARS} characters "
                             "(a case, protocol or form number)", parameter="consent",
                             hint="give the reference, not the consent text or the person's name")
    return text


@dataclass(frozen=True)
class SitePolicy:
    """The ``[policy]`` table of a site's ``medface.toml`` (defaults: nothing required)."""

    path: Path | None = None
    require_purpose: bool = False
    require_consent: bool = False
    audit_log: Path | None = None
    purposes: tuple[str, ...] = PURPOSES


def _config_path() -> Path | None:
    named = os.environ.get(CONFIG_VARIABLE, "").strip()
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ParameterError(f"{CONFIG_VARIABLE}={named} names no configuration file",
                                 hint=f"point {CONFIG_VARIABLE} at the site's {CONFIG_NAME}, or unset it")
        return path
    local = Path.cwd() / CONFIG_NAME
    return local if local.is_file() else None


def _read_toml(path: Path) -> dict:
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ParameterError(f"the site configuration {path} cannot be read: {exc}",
                             hint="fix the file (TOML with a [policy] table) or ask the site's administrator") from None


def _policy_values(table, path: Path) -> dict:
    if not isinstance(table, dict):
        raise ParameterError(f"the site configuration {path}: [policy] must be a table")
    unknown = sorted(set(table) - set(_POLICY_KEYS))
    if unknown:
        raise ParameterError(f"the site configuration {path} has unknown [policy] keys: {', '.join(unknown)}",
                             hint=f"the keys are: {', '.join(_POLICY_KEYS)}")
    for key, kind in _POLICY_KEYS.items():
        if key in table and not isinstance(table[key], kind):
            raise ParameterError(f"the site configuration {path}: [policy] {key} must be a {kind.__name__}")
    values = dict(table)
    if "audit_log" in values:
        values["audit_log"] = (path.parent / Path(values["audit_log"]).expanduser()).absolute()
    if "purposes" in values:
        bad = [p for p in values["purposes"] if p not in PURPOSES]
        if bad or not values["purposes"]:
            raise ParameterError(f"the site configuration {path}: [policy] purposes must list some of "
                                 f"{', '.join(PURPOSES)}, not {bad or 'nothing'}")
        values["purposes"] = tuple(values["purposes"])
    return values


def load_policy() -> SitePolicy:
    """The site policy in force: ``MEDFACE_CONFIG``'s file, else ``./medface.toml``, else none."""
    path = _config_path()
    if path is None:
        return SitePolicy()
    doc = _read_toml(path)
    return SitePolicy(path=path.absolute(), **_policy_values(doc.get("policy", {}), path))


def apply_policy(options: RunOptions, policy: SitePolicy | None = None) -> RunOptions:
    """``options`` checked against the site policy, with the audit logs to write filled in;
    raises :class:`ParameterError` (naming the configuration file) when the run lacks a
    required purpose or consent or gives a purpose the site does not allow."""
    policy = load_policy() if policy is None else policy
    where = f"the site policy in {policy.path}"
    if policy.require_purpose and options.purpose is None:
        raise ParameterError(f"{where} requires a purpose for every run", parameter="purpose",
                             hint=f"give --purpose {{{','.join(policy.purposes)}}} (purpose=... in Python)")
    if options.purpose is not None and options.purpose not in policy.purposes:
        raise ParameterError(f"{where} allows only the purposes {', '.join(policy.purposes)}, not "
                             f"'{options.purpose}'", parameter="purpose")
    if policy.require_consent and options.consent is None:
        raise ParameterError(f"{where} requires a consent reference for every run", parameter="consent",
                             hint="give --consent REFERENCE (consent=... in Python): the case, protocol or form "
                                  "number")
    logs = [Path(options.audit_log).expanduser().absolute()] if options.audit_log is not None else []
    if policy.audit_log is not None and policy.audit_log not in logs:
        logs.append(policy.audit_log)
    return replace(options, audit_logs=tuple(logs), policy_file=policy.path)
