"""The command line of the volume configs: strict options and one line per error.

``python -m monai.bundle run --config_file configs/inference.json --image_a ... --image_b ...`` is MONAI's
command (``fire`` parses it, every ``--key value`` overrides or *adds* a config entry); left alone, a misspelled
``--strenght 1`` would be added silently and the default used, and an error would end in a 50-140 line
traceback (``Failed to evaluate ConfigExpression``) with the real message in the middle. The configs therefore
evaluate :func:`check_command_line` before anything else (their ``validate_options`` item, required by the
runner). When the process is MONAI's bundle command it

* refuses every option that names no config entry (nor an argument of ``monai.bundle run``), naming the
  closest valid one (``difflib``), and an unknown ``--task`` likewise;
* installs :func:`excepthook`: an uncaught exception prints one line, ``error: <message>``, to stderr (the
  innermost message of the exception chain - the project's own), with the traceback only under
  ``--debug true``. Python then exits with status 1.

:func:`main` runs the same command in-process (``main(["run", "--config_file", ...])``), returning the exit
status instead of raising: the tests use it, and it documents the behaviour.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from pathlib import Path

from .options import check_choice, closest, parse_flag
from .types import FusionInputError

__all__ = ["check_command_line", "parse_command_line", "error_line", "excepthook", "main", "RUN_ARGUMENTS"]

#: The arguments of ``monai.bundle run`` itself (everything else is a config override).
RUN_ARGUMENTS = ("run_id", "init_id", "final_id", "meta_file", "config_file", "logging_file", "tracking", "args_file")
_command: list[str] | None = None  # set by main(): the in-process command line


def parse_command_line(argv: list[str]) -> dict[str, str | bool]:
    """``{key: text}`` of the ``--key value`` / ``--key=value`` / ``--flag`` options of a fire command line."""
    options, index = {}, 0
    while index < len(argv):
        token = argv[index]
        index += 1
        if not token.startswith("--"):
            continue  # the command name (run) or a positional argument
        key, separator, value = token[2:].partition("=")
        if not separator:
            if index < len(argv) and not argv[index].startswith("--"):
                value, index = argv[index], index + 1
            else:
                value = True
        options[key] = value
    return options


def _bundle_command_line() -> list[str] | None:
    """The arguments of this process's ``python -m monai.bundle`` command, else None (a library call)."""
    if _command is not None:
        return _command
    main_file = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    return sys.argv[1:] if main_file.parts[-3:] == ("monai", "bundle", "__main__.py") else None


_MISSING = object()


def _node(config, key: str):
    """The entry ``key`` (``a#b#0``) of the nested ``config``, or ``_MISSING``."""
    node = config
    for part in key.split("#"):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _has_id(config, key: str) -> bool:
    """Whether ``key`` (``a#b#0``) names an entry of the nested ``config``."""
    return _node(config, key) is not _MISSING


def _load(files) -> dict:
    from monai.bundle import ConfigParser

    return ConfigParser.load_config_files(files)


def check_command_line(task_choices=None) -> bool:
    """The configs' ``validate_options`` item (see the module docstring); True when the options are valid.

    Outside MONAI's bundle command (a library call of ``monai.bundle.run``) there is no command line to check
    and nothing is installed. ``task_choices``: the valid tasks (checked here, before the task's default
    strength is looked up).
    """
    argv = _bundle_command_line()
    if argv is None:
        return True
    given = parse_command_line(argv)
    install_error_hook(debug=given.get("debug", False))
    # pytorch_wavelets imports pkg_resources: a deprecation notice for its maintainers, not for the user
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    if given.get("args_file"):  # defaults of the command line, overridden by what is typed
        given = {**_load(given["args_file"]), **given}
    files = given.get("config_file")
    config = _load(_literal(files) if str(files).startswith("[") else files) if files else {}
    for key in given:
        if key not in RUN_ARGUMENTS and not _has_id(config, key):
            raise FusionInputError(f"unknown option --{key}{_suggestion(key, config, files)}")
    if task_choices is not None and "task" in given:
        check_choice(given["task"], tuple(task_choices), "task")
    return True


#: options of earlier releases and what replaced them (bundle 0.4.0: inference loads exactly one weights file)
RENAMED = {"models_dir": "--ckpt_path <weights file> (e.g. models/model.pt)"}


def _suggestion(key: str, config: dict, files) -> str:
    """The closest valid option to ``key``: a renamed option's successor (:data:`RENAMED`), among its siblings
    for a nested ``a#b``, else the top-level ids."""
    if key in RENAMED and key not in config:
        return f"; it was replaced by {RENAMED[key]}"
    parent = key.rpartition("#")[0]
    siblings = _node(config, parent) if parent else _MISSING
    if isinstance(siblings, dict):
        choices = [f"{parent}#{name}" for name in siblings]
    else:
        choices = [name for name in config if not name.startswith("_")] + list(RUN_ARGUMENTS)
    return closest(key, choices, prefix="--") or f"; the options are the entries of {files}"


def _literal(text: str):
    import ast

    return ast.literal_eval(text)


def _chain(exc: BaseException):
    """``exc``, its cause, the cause's cause, ... (or the implicit context when there is no cause)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ if exc.__cause__ is not None else (None if exc.__suppress_context__ else exc.__context__)


def error_line(exc: BaseException) -> str:
    """``error: <message>``, one line, from the innermost exception of ``exc``'s chain (the project's message,
    not MONAI's ``Failed to evaluate ...`` wrapper). Unexpected exception types say so and how to see more."""
    from ..weights import WeightsError

    chain = list(_chain(exc))
    ours = [e for e in chain if isinstance(e, (FusionInputError, WeightsError))]
    inner = ours[-1] if ours else chain[-1]
    if isinstance(inner, KeyboardInterrupt):
        return "error: interrupted; nothing was written for the pair in progress"
    lines = [line.strip() for line in str(inner).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(inner).__name__
    if not isinstance(inner, (ValueError, OSError, LookupError, FusionInputError)):
        text = f"{type(inner).__name__}: {text} (unexpected; rerun with --debug true for the traceback)"
    return f"error: {text}"


def excepthook(kind, value, tb, debug: bool = False) -> None:
    """``sys.excepthook`` of the bundle command: one line (the traceback too when ``debug``). Under torchrun the
    process group is closed first (the config's ``finalize`` does not run after an error), so that the process
    exits with status 1 instead of aborting in the communication threads."""
    if debug:
        traceback.print_exception(kind, value, tb)
    print(error_line(value), file=sys.stderr, flush=True)
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def install_error_hook(debug=False) -> None:
    """Make uncaught exceptions print one line (see :func:`excepthook`); ``debug``: the traceback as well."""
    debug = parse_flag(debug, "debug") or bool(os.environ.get("WDUALMINE_DEBUG"))
    sys.excepthook = lambda kind, value, tb: excepthook(kind, value, tb, debug)


def main(argv: list[str] | None = None) -> int:
    """Run ``python -m monai.bundle <argv>`` in this process (e.g. ``["run", "--config_file",
    "configs/inference.json", ...]``, from the bundle folder); returns the exit status (0, or 1 after printing
    the error line)."""
    import fire
    from monai.bundle import run

    global _command
    previous_hook, _command = sys.excepthook, list(sys.argv[1:] if argv is None else argv)
    try:
        fire.Fire({"run": run}, command=_command)
    except SystemExit as exc:  # fire's usage errors
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    except (Exception, KeyboardInterrupt) as exc:  # every failure becomes one line, as on the command line
        if parse_flag(parse_command_line(_command).get("debug", False), "debug"):
            traceback.print_exception(exc)
        print(error_line(exc), file=sys.stderr, flush=True)
        return 1
    finally:
        sys.excepthook, _command = previous_hook, None
    return 0
