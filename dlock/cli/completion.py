"""Static shell completion: scripts for bash, zsh and fish generated from the click command.

Every candidate dlock can offer is known when the script is generated: the verbs, each
verb's options, and the values of options with a fixed choice. TARGET and ROOT are paths or
URLs, which the shell completes as file names. So a TAB runs no Python at all (Typer's own
scripts start dlock at every TAB). scripts/generate_docs.py writes completions/ from this,
and `dlock --show-completion` / `--install-completion` emit the same scripts.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import click

PROG = "dlock"
FUNCTION = "_dlock_completion"
HEADER = ("dlock {shell} completion, generated from the app (scripts/generate_docs.py; `dlock --show-completion` in {shell}).\n"
          "Static: a TAB starts no Python. TARGET and ROOT complete as file names.")


@dataclasses.dataclass(frozen=True)
class Opt:
    names: tuple[str, ...]
    takes_value: bool
    choices: tuple[str, ...]
    help: str


@dataclasses.dataclass(frozen=True)
class Verb:
    name: str
    help: str
    options: tuple[Opt, ...]


def describe(group: click.Group) -> tuple[tuple[Opt, ...], tuple[Verb, ...]]:
    """The root options and every verb with its options, as the shell scripts need them."""
    root = click.Context(group, info_name=PROG, **group.context_settings)  # -h beside --help
    verbs = []
    for name in group.list_commands(root):
        command = group.get_command(root, name)
        if command is None or command.hidden:
            continue
        verbs.append(Verb(name, command.get_short_help_str(limit=80), _options(command, click.Context(command, info_name=name, parent=root))))
    return _options(group, root), tuple(verbs)


def _options(command: click.Command, ctx: click.Context) -> tuple[Opt, ...]:
    found = []
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option) or param.hidden:
            continue
        choices = tuple(str(choice) for choice in param.type.choices) if isinstance(param.type, click.Choice) else ()
        # Sorted, short names first: click keeps the help option's names in a set.
        names = tuple(sorted({*param.opts, *param.secondary_opts}, key=lambda name: (name.startswith("--"), name)))
        found.append(Opt(names, not (param.is_flag or param.count),
                         choices, _first_sentence(param.help or "")))
    return tuple(found)


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    end = text.find(". ")
    return text[: end + 1] if end >= 0 else text


def script(shell: str, group: click.Command) -> str:
    render = {"bash": _bash, "zsh": _zsh, "fish": _fish}.get(shell)
    if render is None or not isinstance(group, click.Group):
        raise ValueError(f"no static completion for {shell}")
    root, verbs = describe(group)
    comment = "".join(f"# {line}\n" for line in HEADER.format(shell=shell).splitlines())
    return render(root, verbs, comment)


def _names(options: tuple[Opt, ...], valued: bool | None = None) -> str:
    return " ".join(name for opt in options if valued is None or opt.takes_value == valued for name in opt.names)


def _choice_cases(verb: str, options: tuple[Opt, ...], pattern: str, body: str) -> list[str]:
    """One `case` branch per option with fixed choices (none today: every value is free text)."""
    return [pattern.format(key=f"{verb}:{name}") + body.format(choices=" ".join(opt.choices))
            for opt in options if opt.choices for name in opt.names]


def _valued_case(verbs: tuple[Verb, ...], root: tuple[Opt, ...], fmt: str) -> str:
    """The options of any verb that take a value (their value is skipped when looking for the verb)."""
    valued = sorted({name for options in [root, *(verb.options for verb in verbs)]
                     for opt in options if opt.takes_value for name in opt.names})
    return fmt.format(names="|".join(valued)) if valued else ""


def _find_verb(root: tuple[Opt, ...], verbs: tuple[Verb, ...], words: str, first: int, current: str, paren: str) -> list[str]:
    """Shell lines setting cur, prev and verb: the first word that is neither an option nor an option's value."""
    return [f"    local cur=${{{words}[{current}]}} prev=${{{words}[{current}-1]}} verb= i",
            f"    for ((i = {first}; i < {current}; i++)); do",
            f"        case ${{{words}[i]}} in",
            _valued_case(verbs, root, f"            {paren}{{names}}) ((i++)) ;;"),
            f"            {paren}-*) ;;",
            f"            {paren}*) verb=${{{words}[i]}}; break ;;",
            "        esac",
            "    done"]


def _per_verb(root: tuple[Opt, ...], verbs: tuple[Verb, ...], paren: str, assign: Callable[[tuple[Opt, ...]], str],
              otherwise: str, is_valued: str, choices: str) -> list[str]:
    """Shell lines setting each verb's options, then completing an option's value (when prev takes one)."""
    lines = ["    case $verb in", f"        {paren}'') {assign(root)} ;;"]
    lines += [f"        {paren}{verb.name}) {assign(verb.options)} ;;" for verb in verbs]
    lines += [f"        {paren}*) {otherwise} ;;", "    esac",
              f"    if {is_valued}; then  # the value of an option: free text unless listed here",
              "        case $verb:$prev in"]
    for verb in (Verb("", "", root), *verbs):
        lines += _choice_cases(verb.name, verb.options, f"            {paren}{{key}})", choices)
    return lines


def _bash(root: tuple[Opt, ...], verbs: tuple[Verb, ...], comment: str) -> str:
    lines = [comment.rstrip(), f"{FUNCTION}() {{", *_find_verb(root, verbs, "COMP_WORDS", 1, "COMP_CWORD", ""),
             "    local options= valued=",
             *_per_verb(root, verbs, "", lambda options: f"options='{_names(options)}'; valued='{_names(options, True)}'",
                        "return", '[[ " $valued " == *" $prev "* ]]', ' COMPREPLY=($(compgen -W "{choices}" -- "$cur")) ;;'),
             "        esac", "        return", "    fi",
              '    if [[ $cur == -* ]]; then',
              '        COMPREPLY=($(compgen -W "$options" -- "$cur"))',
              "    elif [[ -z $verb ]]; then",
              f"        COMPREPLY=($(compgen -W '{' '.join(verb.name for verb in verbs)}' -- \"$cur\"))",
              "    fi  # else TARGET/ROOT: bash's file names (-o default)",
              "}", "", f"complete -o default -F {FUNCTION} {PROG}"]
    return "\n".join(line for line in lines if line) + "\n"


def _zsh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _zsh(root: tuple[Opt, ...], verbs: tuple[Verb, ...], comment: str) -> str:
    def described(options: tuple[Opt, ...]) -> str:
        return " ".join(_zsh_quote(f"{name}:{opt.help}") for opt in options for name in opt.names)

    lines = [f"#compdef {PROG}", comment.rstrip(), f"{FUNCTION}() {{", *_find_verb(root, verbs, "words", 2, "CURRENT", "("),
             "    local -a options valued",
             *_per_verb(root, verbs, "(", lambda options: f"options=({described(options)}); valued=({_names(options, True)})",
                        "_files; return", "(( ${valued[(Ie)$prev]} ))", " compadd -- {choices} ;;"),
             "            (*) _message 'value' ;;", "        esac", "        return", "    fi",
              "    if [[ $cur == -* ]]; then",
              "        _describe -t options 'option' options",
              "    elif [[ -z $verb ]]; then",
              f"        local -a verbs=({' '.join(_zsh_quote(f'{verb.name}:{verb.help}') for verb in verbs)})",
              "        _describe -t commands 'dlock command' verbs",
              "    else",
              "        _files  # TARGET/ROOT",
              "    fi",
              "}", "",
              "# Autoloaded from fpath, this file is the body of _dlock: complete. Sourced: register.",
              f'if [[ ${{funcstack[1]}} == _{PROG} ]]; then',
              f'    {FUNCTION} "$@"',
              "else",
              f"    compdef {FUNCTION} {PROG}",
              "fi"]
    return "\n".join(line for line in lines if line) + "\n"


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish(root: tuple[Opt, ...], verbs: tuple[Verb, ...], comment: str) -> str:
    names = " ".join(verb.name for verb in verbs)
    at_root = f"'not __fish_seen_subcommand_from {names}'"
    lines = [comment.rstrip(), f"complete -c {PROG} -e",
             f"complete -c {PROG} -n {at_root} -f"]
    lines += [f"complete -c {PROG} -n {at_root} -a {verb.name} -d {_fish_quote(verb.help)}" for verb in verbs]

    def option_lines(condition: str, options: tuple[Opt, ...]) -> list[str]:
        out = []
        for opt in options:
            flags = " ".join(f"-l {name[2:]}" if name.startswith("--") else f"-s {name[1:]}" for name in opt.names)
            value = (" -x" + (f" -a {_fish_quote(' '.join(opt.choices))}" if opt.choices else "")) if opt.takes_value else ""
            out.append(f"complete -c {PROG} -n {condition} {flags}{value} -d {_fish_quote(opt.help)}")
        return out

    lines += option_lines(at_root, root)
    for verb in verbs:
        lines += option_lines(f"'__fish_seen_subcommand_from {verb.name}'", verb.options)
    return "\n".join(lines) + "\n"
