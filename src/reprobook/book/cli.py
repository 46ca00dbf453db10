"""The ``reprobook`` command: list, run, sweep, reproduce, scoreboard, student.

Examples::

    reprobook list
    reprobook list fbipg
    reprobook run fbipg --profile smoke
    reprobook run fbipg 01 --profile book -p iterations 5000 -p gammas "[1.5, 2.5]"
    reprobook sweep prox24 02 --profile smoke --seeds 0-9 -p strength 0.003,0.01,0.03
    reprobook reproduce fbipg
    reprobook scoreboard
    reprobook student --output student
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import textwrap
from pathlib import Path

from reprobook.atomic import atomic_write_bytes, atomic_write_text
from reprobook.book.chapters import find_book_root, get_chapter, list_chapters
from reprobook.book.profiles import CUSTOM_PROFILE, PROFILE_NAMES, ParameterError, load_profiles
from reprobook.book.scoreboard import SCOREBOARD_PAGE

# Each command imports the heavy libraries it needs (papermill, Dask, pandas, matplotlib) itself,
# so that `reprobook --help` and `reprobook list` answer at once.


def command_list(args: argparse.Namespace) -> int:
    """One line per chapter; with a chapter, its notebooks and their parameters."""
    if args.chapter is None:
        print(f"{'chapter':<19} notebooks title")
        for chapter in list_chapters(args.root):
            title = (chapter.folder / "index.md").read_text().splitlines()[0].lstrip("# ")
            print(f"{chapter.slug:<19} {len(chapter.notebooks()):>9} {title}")
        print("\n`reprobook list CHAPTER` shows a chapter's notebooks and parameters.")
        return 0
    print_parameters(get_chapter(args.chapter, args.root))
    return 0


def print_parameters(chapter) -> None:
    """Each notebook's parameters: the book value, each other profile's own value, what is allowed."""
    from reprobook.book.notebooks import default_parameters

    profiles = load_profiles(chapter.profiles_file)
    for notebook in chapter.notebooks():
        print(f"{notebook}  (profiles: {', '.join(profiles[notebook].profiles)})")
        defaults = default_parameters(chapter.source(notebook))
        spec = profiles[notebook]
        for name, parameter in spec.parameters.items():
            if name == "profile":  # the profile is what a run chooses, not a value of one
                continue
            others = [
                f"{profile}: {spec.value_in(profile, name, defaults)!r}"
                for profile in spec.profiles
                if profile != "book" and name in spec.profiles[profile]
            ]
            shown = f"{name} = {defaults.get(name)!r}" + (f" ({'; '.join(others)})" if others else "")
            described = f"{parameter.help}; {parameter.allowed()}"
            print(textwrap.fill(shown, 88, initial_indent="  ", subsequent_indent="      "))
            print(textwrap.fill(described, 88, initial_indent="    ", subsequent_indent="    "))


def check_overrides(overrides: list[list[str]], split=lambda text: [text]) -> None:
    """Refuse, before any work, a ``-p profile`` and a value that is not YAML, naming the parameter."""
    import yaml

    for name, text in overrides:
        if name == "profile":
            raise ParameterError("-p profile: choose the profile with --profile (smoke, book, paper, long)")
        for value in split(text):
            try:
                yaml.safe_load(value)
            except yaml.YAMLError as error:
                problem = getattr(error, "problem", None) or "not a YAML value"
                raise ParameterError(
                    f'-p {name} {value!r}: {problem}; expected a value such as 3, 0.5 or "[1, 2]"'
                ) from None


def run_parameters(spec, profile: str, overrides: list[list[str]]) -> dict:
    """The parameters papermill injects: the profile's values, then the ``-p`` overrides."""
    parameters = spec.profile_values(profile)
    check_overrides(overrides)
    for name, text in overrides:
        parameters[name] = spec.parse(name, text)
    if overrides:
        parameters["profile"] = CUSTOM_PROFILE
    return parameters


def run_label(profile: str, overrides: list[list[str]]) -> str:
    """The profile, and for a run with overrides a short hash of them: runs never overwrite each other."""
    if not overrides:
        return profile
    digest = hashlib.sha256(json.dumps(sorted(overrides)).encode()).hexdigest()[:8]
    return f"{profile}-{CUSTOM_PROFILE}-{digest}"


def command_run(args: argparse.Namespace) -> int:
    from papermill.exceptions import PapermillExecutionError

    from reprobook.book.notebooks import execute

    chapter = get_chapter(args.chapter, args.root)
    notebooks = [chapter.resolve_notebook(args.notebook)] if args.notebook else chapter.notebooks()
    profiles = load_profiles(chapter.profiles_file)
    planned = [(name, run_parameters(profiles[name], args.profile, args.parameter)) for name in notebooks]
    output_folder = (args.output or args.root / "_runs" / chapter.slug).resolve()
    for name, parameters in planned:
        output = output_folder / f"{name}-{run_label(args.profile, args.parameter)}.ipynb"
        output.parent.mkdir(parents=True, exist_ok=True)
        shown = ", ".join(f"{k}={v!r}" for k, v in parameters.items())
        print(f"running {chapter.slug}/{name} with {shown}")
        try:
            execute(chapter.source(name), output, cwd=chapter.folder, parameters=parameters, progress=not args.quiet)
        except PapermillExecutionError as error:
            print(f"FAILED in cell {error.exec_count}: {error.ename}: {error.evalue}", file=sys.stderr)
            print(f"the partial notebook is kept at {output}", file=sys.stderr)
            return 1
        print(f"wrote {output}")
    return 0


def command_sweep(args: argparse.Namespace) -> int:
    from reprobook.book.provenance import code_files, code_version
    from reprobook.book.sweep import parse_seeds, plan_sweep, remove_other_versions, run_sweep, split_values
    from reprobook.book.sweep_report import write_report

    chapter = get_chapter(args.chapter, args.root)
    notebooks = [chapter.resolve_notebook(args.notebook)] if args.notebook else chapter.notebooks()
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be a positive number of worker processes, got {args.workers}")
    check_overrides(args.parameter, split_values)
    grid = {name: split_values(text) for name, text in args.parameter}
    runs = plan_sweep(chapter, notebooks, args.profile, parse_seeds(args.seeds), grid)
    files = {name: code_files(chapter, name) for name in notebooks}  # what the runs execute, as they start
    name = args.notebook and notebooks[0][:2]
    output = (
        args.output or args.root / "_sweeps" / "-".join(filter(None, [chapter.slug, name, args.profile]))
    ).resolve()
    print(f"sweeping {chapter.slug} ({', '.join(notebooks)}) into {output}")
    removed = remove_other_versions(output, runs)
    if removed:
        print(f"removed {removed} runs made by an earlier version of the code")
    records = run_sweep(runs, chapter.folder, output, scheduler=args.scheduler, workers=args.workers)
    settings = {
        "chapter": chapter.slug,
        "notebooks": notebooks,
        "profile": args.profile,
        "seeds": args.seeds,
        "grid": grid,
        "code_version": {name: code_version(files[name]) for name in notebooks},
        "code_files": files,
        "command": "reprobook " + shlex.join(args.arguments),
    }
    print(f"wrote {write_report(output, settings, records, chapter.claims_file)}")
    failed = [record for record in records if record["status"] != "ok"]
    if failed:
        print(f"{len(failed)} of {len(records)} runs failed; their notebooks and errors are in {output / 'runs'}")
    return 1 if failed else 0


def command_reproduce(args: argparse.Namespace) -> int:
    from reprobook.book.notebooks import reproduce

    chapters = [get_chapter(args.chapter, args.root)] if args.chapter else list_chapters(args.root)
    for chapter in chapters:
        for name in chapter.notebooks():
            print(f"re-executing {chapter.slug}/{name} at its book profile")
            reproduce(chapter.source(name), progress=not args.quiet)
    return command_scoreboard(args)


def command_scoreboard(args: argparse.Namespace) -> int:
    from reprobook.book.scoreboard import render_scoreboard

    path = atomic_write_text(args.root / SCOREBOARD_PAGE, render_scoreboard(args.root))
    print(f"wrote {path}")
    return 0


def command_student(args: argparse.Namespace) -> int:
    """Per chapter, a folder that runs: notebooks without solutions and every file they read."""
    import nbformat

    from reprobook.book.notebooks import student_copy

    output_folder = (args.output or args.root / "student").resolve()
    for chapter in list_chapters(args.root):
        folder = output_folder / chapter.slug
        for name in chapter.notebooks():
            copy = student_copy(nbformat.read(chapter.notebook(name), as_version=4))
            atomic_write_text(folder / f"{name}.ipynb", nbformat.writes(copy) + "\n")
        notebooks = {chapter.source(n) for n in chapter.notebooks()}
        notebooks |= {chapter.notebook(n) for n in chapter.notebooks()}
        for path in sorted(chapter.folder.iterdir()):
            if path.is_file() and path not in notebooks:  # profiles, claims, data
                atomic_write_bytes(folder / path.name, path.read_bytes())
        print(f"wrote {folder}")
    return 0


def command_models(args: argparse.Namespace) -> int:
    from reprobook.lm.corpus import load_corpus
    from reprobook.lm.lab import cached_entry, pin_model, pinned_entry, pretrained
    from reprobook.lm.models import MODEL_SPECS, get_spec

    names = args.names or sorted(MODEL_SPECS)
    for name in names:
        get_spec(name)  # an unknown name fails before any work
    corpus = load_corpus()
    for name in names:
        if args.pin:
            print(f"{name}: pinned at {pin_model(name, seed=args.seed, corpus=corpus, progress=not args.quiet)}")
        elif args.build:
            lab = pretrained(name, seed=args.seed, corpus=corpus, progress=not args.quiet)
            print(f"{name}: {lab.info['parameters']:,} parameters, ready")
        elif (artifact := pinned_entry(name, args.seed, corpus)) is not None:
            print(f"{name}: pinned, shipped at {artifact}")
        else:
            entry = cached_entry(name, seed=args.seed, corpus=corpus)
            print(f"{name}: {'cached at ' + str(entry) if entry else 'not built'}")
    return 0


def _add_notebook_arguments(command, profile: str, metavar: tuple[str, str], parameter_help: str) -> None:
    """The chapter, the notebook, the profile and the repeatable ``-p`` of ``run`` and ``sweep``."""
    command.add_argument("chapter", help="chapter slug, e.g. fbipg")
    command.add_argument("notebook", nargs="?", help="one notebook: its name, number (01) or prefix (default: all)")
    command.add_argument(
        "--profile", choices=PROFILE_NAMES, default=profile, help=f"named parameter set (default: {profile})"
    )
    command.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], metavar=metavar, help=parameter_help + "; repeatable"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reprobook", description="Efficient Learning, Reproduced: run and check the book."
    )
    parser.add_argument(
        "--root", type=Path, default=None, help="the book's folder (default: found from the current folder)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="the chapters; with a chapter, its notebooks and parameters")
    listing.add_argument(
        "chapter", nargs="?", help="a chapter's slug, e.g. fbipg (default: every chapter, one line each)"
    )
    listing.set_defaults(handler=command_list)

    run = commands.add_parser("run", help="run a chapter (or one notebook) with papermill into _runs/")
    _add_notebook_arguments(run, "book", ("NAME", "VALUE"), 'override one parameter (YAML value: 3, 0.5, "[1, 2]")')
    run.add_argument("--output", type=Path, help="folder for executed notebooks (default: _runs/<chapter>)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(handler=command_run)

    sweep = commands.add_parser(
        "sweep",
        help="run a notebook over seeds and parameter values on a Dask cluster, and report each claim's robustness",
    )
    _add_notebook_arguments(
        sweep, "smoke", ("NAME", "VALUES"), 'sweep one parameter over comma-separated values (0.1,0.3 or "[1, 2],[3]")'
    )
    sweep.add_argument("--seeds", default="0", help="seeds: a range or a list, such as 0-9 or 0,3,5 (default: 0)")
    sweep.add_argument("--scheduler", help="address of a running Dask scheduler (default: a local cluster)")
    sweep.add_argument("--workers", type=int, help="local workers, one thread each (default: one per core)")
    sweep.add_argument(
        "--output", type=Path, help="the sweep's folder (default: _sweeps/<chapter>-<notebook>-<profile>)"
    )
    sweep.set_defaults(handler=command_sweep)

    again = commands.add_parser("reproduce", help="re-execute committed notebooks in place at the book profile")
    again.add_argument("chapter", nargs="?", help="chapter slug (default: every chapter)")
    again.add_argument("--quiet", action="store_true", help="no progress bar")
    again.set_defaults(handler=command_reproduce)

    board = commands.add_parser("scoreboard", help=f"write {SCOREBOARD_PAGE}")
    board.set_defaults(handler=command_scoreboard)

    student = commands.add_parser("student", help="student copies of the notebooks, solutions removed")
    student.add_argument("--output", type=Path, help="folder for the copies (default: student/)")
    student.set_defaults(handler=command_student)
    models = commands.add_parser("models", help="the laboratory language models: cache status, or build them")
    models.add_argument("names", nargs="*", help="model names (default: all)")
    action = models.add_mutually_exclusive_group()
    action.add_argument("--build", action="store_true", help="train the models that are neither pinned nor cached")
    action.add_argument(
        "--pin",
        action="store_true",
        help="train the models and ship them as the book's pinned artifacts (after a recipe change)",
    )
    models.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    models.add_argument("--quiet", action="store_true", help="no progress bar")
    models.set_defaults(handler=command_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        args.root = find_book_root(args.root)
        return args.handler(args)
    except (ParameterError, ValueError, FileNotFoundError) as error:
        print(f"reprobook: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
