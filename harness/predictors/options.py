"""Backend options (`-o key=value`, a leaderboard entry's `options:`): one declaration per predictor.

Every predictor class carries an `Options` class: a pydantic model with `extra="forbid"`, one
field per option, holding its type, default and allowed range, and whether it changes the run
identity. A backend subclasses its parent's `Options`:

    class MyPredictor(Predictor):
        class Options(Predictor.Options):
            temperature: float = option(0.0, ge=0, le=2)     # changes the replies: part of the run id
            concurrency: int = runtime(4, ge=1)              # speed only: not part of the run id

Rules (checked in `Options.parse`, called by `Predictor.__init__`, i.e. by `make_predictor`,
before the runner creates any folder; every failure is an InputError naming the option):

- Unknown option: refused, with "did you mean ..." and the list of known options.
- Values: the CLI parses each `-o` value as JSON when it can (8 -> int, 2.5 -> float, true ->
  bool, [1, 2] -> list, {"a": 1} -> dict), else keeps the string; YAML leaderboards give YAML
  types; the Python API passes anything. Validation is pydantic's lax mode: "8" is fine for an
  int, "yes" / "no" / 1 / 0 for a bool, a number for a string (a revision `-o revision=1234`);
  refused are booleans for numbers, fractions for ints, NaN / infinity, out-of-range values and
  anything else of the wrong type. The predictor reads the validated values (`self.options`).
- Identity: an option changes the run identity unless declared with `runtime(...)`. What is
  hashed is the options *as the user gave them* (raw values, defaults not filled in) minus the
  runtime ones: exactly what pricebench always hashed, so stored runs keep their ids. (So, as
  before, `max_new_tokens=8` and `max_new_tokens="8"` given through the Python API are two
  runs, and giving an option its default value is a different run from leaving it out.)
- Secrets: options are written to manifest.json, so a name that looks like a credential
  (api_key, key, *_key, token, secret, password, authorization, auth, bearer, cookie, session,
  credential, ... in any case; see `looks_like_credential`), at the top level or as a key
  nested in a dict value (e.g. headers, engine_args), is refused with a pointer to
  `api_key_env=NAME`. A name ending in `_env` names an environment variable, not a secret, and
  is allowed. Declaring such an option on a backend is a TypeError at import time.
- URLs: userinfo (`http://user:key@host` -> `http://host`) and credential-looking query
  parameters (`?api_key=...` -> `?api_key=***`) are scrubbed from every URL-valued string in
  what is stored (`scrub_secrets`); the predictor may still connect with the real URL.
"""
from __future__ import annotations

import re
import types
import typing
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import InputError
from harness.yamlspec import did_you_mean

IDENTITY = "identity"          # json_schema_extra key: False = runtime-only (not hashed)
EXPECTED = "expected"          # json_schema_extra key: a human description of the allowed values
IDENTITY_WHEN = "identity_when"  # json_schema_extra key: a runtime option a backend hashes where replies depend on it


def option(default: Any = None, *, identity: bool = True, expected: str | None = None,
           description: str | None = None, identity_when: str | None = None, **constraints) -> Any:
    """An option that changes the replies (part of the run identity). `constraints`: pydantic's
    Field constraints (ge, gt, le, lt, pattern, ...). `expected`: how an error describes it.
    `identity_when`: for a runtime option, when the backend still puts it in the run id."""
    extra = {IDENTITY: identity}
    if expected:
        extra[EXPECTED] = expected
    if identity_when:
        extra[IDENTITY_WHEN] = identity_when
    return Field(default, description=description, json_schema_extra=extra, **constraints)


def runtime(default: Any = None, **kwargs) -> Any:
    """An option that changes only speed or where a run happens (not hashed into the run id)."""
    return option(default, identity=False, **kwargs)


# --- credentials ------------------------------------------------------------------------------
_SECRET_WORDS = ("password", "passwd", "passphrase", "secret", "credential", "authoriz", "apikey", "bearer",
                 "cookie", "session", "privatekey")
_SECRET_TOKENS = frozenset({"token", "auth", "pwd"})
# Words that make "token" a count or a vocabulary entry (max_new_tokens' typo, eos_token), not a secret:
_TOKEN_NOT_SECRET = frozenset({"max", "min", "num", "new", "per", "stop", "eos", "bos", "pad", "unk", "sep", "cls",
                               "mask", "special", "start", "end"})
SECRET_ADVICE = ("never pass a credential as an option (options are written to the run's manifest.json): put it "
                 "in an environment variable and pass its name with api_key_env=NAME")


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)       # apiKey -> api_Key
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def looks_like_credential(name) -> bool:
    """Whether an option (or header / nested key) name looks like it holds a secret.

    Case-insensitive. Refused: a name containing password, passwd, passphrase, secret,
    credential, authoriz(ation), apikey / api_key / api-key, bearer, cookie, session or
    private_key; a name with a word token, auth or pwd (hf_token, x-auth-token, auth); a name
    whose last word is `key` or ends in `token` (key, api_key, openai_api_key, x-api-key,
    access_key, accessToken). Allowed: a name whose last word is `env` (api_key_env names an
    environment variable), words that merely start like one (max_tokens, tokenizer, author), and
    a token that is counted or is a vocabulary entry (max_new_token, eos_token, pad_token).
    """
    if not isinstance(name, str):
        return False
    tokens = _tokens(name)
    if not tokens or tokens[-1] == "env":
        return False
    joined = "".join(tokens)
    if any(word in joined for word in _SECRET_WORDS) or tokens[-1] == "key":
        return True
    if _TOKEN_NOT_SECRET.intersection(tokens):
        return "auth" in tokens or "pwd" in tokens
    return any(t in _SECRET_TOKENS for t in tokens) or tokens[-1].endswith("token")


def find_credential(options: dict) -> str | None:
    """The first credential-looking name among the options and the keys nested in their values
    (dotted, e.g. 'headers.Authorization'), else None."""
    def walk(value, path):
        if isinstance(value, dict):
            for key, inner in value.items():
                where = f"{path}.{key}" if path else str(key)
                if looks_like_credential(key):
                    return where
                found = walk(inner, where)
                if found:
                    return found
        elif isinstance(value, (list, tuple)):
            for i, inner in enumerate(value):
                found = walk(inner, f"{path}[{i}]")
                if found:
                    return found
        return None

    return walk(options, "")


_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*@)?([^?#]*)(\?[^#]*)?(#.*)?$", re.S)


def scrub_url(text: str) -> str:
    """`scheme://user:key@host/path?api_key=x` -> `scheme://host/path?api_key=***`; other text as is."""
    match = _URL.match(text) if isinstance(text, str) else None
    if not match:
        return text
    scheme, _userinfo, rest, query, fragment = match.groups()
    if query:
        pairs = parse_qsl(query[1:], keep_blank_values=True)
        if any(looks_like_credential(k) for k, _ in pairs):
            query = "?" + "&".join(f"{quote(k, safe='')}=" + ("***" if looks_like_credential(k) else quote(v, safe=""))
                                   for k, v in pairs)
    return f"{scheme}{rest}{query or ''}{fragment or ''}"


def scrub_secrets(value):
    """`value` with every URL-valued string in it scrubbed (see scrub_url); dicts and lists copied."""
    if isinstance(value, str):
        return scrub_url(value)
    if isinstance(value, dict):
        return {k: scrub_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_secrets(v) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub_secrets(v) for v in value)
    return value


# --- describing a field ------------------------------------------------------------------------
_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "a mapping",
               list: "a list"}


def _annotation_types(annotation) -> list:
    """The non-None alternatives of a field's annotation (int | None -> [int])."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _annotation_types(arg)]
    if annotation is type(None):
        return []
    return [annotation]


def _type_word(annotation) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(str(v) for v in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _type_word(typing.get_args(annotation)[0])
    return _TYPE_WORDS.get(origin or annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(metadata) -> list[str]:
    words = []
    for m in metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if isinstance(m, getattr(annotated_types, attr.capitalize())):
                words.append(f"{sign} {getattr(m, attr)}")
        if getattr(m, "pattern", None):
            words.append(f"matching {m.pattern}")
    return words


def _show(value) -> str:
    text = repr(scrub_secrets(value))
    return text if len(text) <= 60 else text[:57] + "..."


class Options(BaseModel):
    """The options every backend takes. Subclass per backend (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, coerce_numbers_to_str=True, frozen=True)

    batch_size: int | None = runtime(None, ge=1, description="items per predict call and per store flush "
                                                            "(default: the backend's)")
    progress: bool | None = runtime(None, description="accepted for old specs; the runner decides on the "
                                                      "progress bar")

    unknown_advice: ClassVar[str] = ""      # added to an unknown-option error, e.g. where else to put it

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs):
        super().__pydantic_init_subclass__(**kwargs)
        leaks = [name for name in cls.model_fields if looks_like_credential(name)]
        if leaks:
            raise TypeError(f"{cls.__qualname__} declares {leaks[0]!r}, which looks like a credential: options "
                            f"are written to manifest.json; read secrets from an environment variable instead")

    # --- the declaration, read back -------------------------------------------------------
    @classmethod
    def runtime_names(cls) -> frozenset[str]:
        """Options that do not change the run identity."""
        return frozenset(name for name, f in cls.model_fields.items()
                         if not (f.json_schema_extra or {}).get(IDENTITY, True))

    @classmethod
    def expected(cls, name: str) -> str:
        """How the allowed values of option `name` read in an error: 'an integer >= 1'."""
        field = cls.model_fields[name]
        custom = (field.json_schema_extra or {}).get(EXPECTED)
        if custom:
            return custom
        kinds = _annotation_types(field.annotation)
        words = " or ".join(dict.fromkeys(_type_word(k) for k in kinds)) or "null"
        bounds = _bounds(field.metadata)
        return words + (" " + " and ".join(bounds) if bounds else "")

    @classmethod
    def table(cls) -> list[dict]:
        """One row per option: name, expected values, default, whether it changes the run id."""
        return [{"name": name, "expected": cls.expected(name), "default": f.default,
                 "identity": name not in cls.runtime_names(), "description": f.description,
                 "identity_when": (f.json_schema_extra or {}).get(IDENTITY_WHEN)}
                for name, f in sorted(cls.model_fields.items())]

    # --- validation -------------------------------------------------------------------------
    @classmethod
    def parse(cls, options, *, backend: str = "") -> "Options":
        """Validate user options; every failure is an InputError naming the option."""
        who = backend or "backend"
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise InputError(f"{who}: options must be a mapping of name -> value, got {type(options).__name__}",
                             field="options")
        secret = find_credential(options)
        if secret is not None:
            raise InputError(f"{who}: this name looks like a credential; {SECRET_ADVICE}", field=secret)
        known = sorted(cls.model_fields)
        for name in options:
            if name not in cls.model_fields:
                hint = did_you_mean(str(name).lower(), known)
                advice = f"; {cls.unknown_advice}" if cls.unknown_advice else ""
                raise InputError(f"{who}: unknown option {str(name)!r}{hint}; {who} options: {', '.join(known)}"
                                 f"{advice}", field=str(name))
        for name, value in options.items():
            kinds = _annotation_types(cls.model_fields[name].annotation)
            if isinstance(value, bool) and bool not in kinds and (int in kinds or float in kinds):
                # pydantic's lax mode reads True as 1: a flag where a number belongs is a mistake
                raise InputError(f"{who} option must be {cls.expected(name)}, got {_show(value)}", field=name)
        try:
            return cls(**options)
        except ValidationError as e:
            error = e.errors(include_url=False)[0]
            name = str(error["loc"][0]) if error.get("loc") else "options"
            if name in cls.model_fields:
                more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
                raise InputError(f"{who} option must be {cls.expected(name)}, got {_show(options.get(name))}{more}",
                                 field=name) from None
            raise InputError(f"{who}: {error['msg']}", field=name) from None
