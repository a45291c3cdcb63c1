"""Binding facts of every cmdlet in Microsoft's markdown help, as data (hyperv.md section 9).

    python -m fabric.hyperv.reference_facts ../shared/reference/powershell-docs [--out PATH]

Reads each cmdlet's SYNTAX blocks (its parameter sets, the default one) and its PARAMETERS section
(one yaml block per parameter, or several when the attributes differ between sets) and writes
fabric/hyperv/cmdlet_facts.json: per cmdlet its parameter sets, and per parameter its type, aliases,
pipeline input, accepted values and, per set, whether it is mandatory and its position. Only these
facts are kept; none of the help's prose. The emulator's binder binds by this file, and a test
regenerates it to prove the committed copy matches the reference.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

FACTS_FILE = Path(__file__).with_name("cmdlet_facts.json")
ALL_SETS = "__AllParameterSets"  # PowerShell's name for the one set of a cmdlet without named sets

# The common parameters as PowerShell defines them (about_CommonParameters): name -> (aliases, type).
# The help names which of them a cmdlet supports; WhatIf/Confirm appear among its own parameters.
COMMON = {
    "Debug": (["db"], "SwitchParameter"),
    "ErrorAction": (["ea"], "ActionPreference"),
    "ErrorVariable": (["ev"], "String"),
    "InformationAction": (["infa"], "ActionPreference"),
    "InformationVariable": (["iv"], "String"),
    "OutBuffer": (["ob"], "Int32"),
    "OutVariable": (["ov"], "String"),
    "PipelineVariable": (["pv"], "String"),
    "Verbose": (["vb"], "SwitchParameter"),
    "WarningAction": (["wa"], "ActionPreference"),
    "WarningVariable": (["wv"], "String"),
}
ACTION_PREFERENCE = ["SilentlyContinue", "Stop", "Continue", "Inquire", "Ignore", "Suspend", "Break"]

_SECTION = re.compile(r"^## (\w+)\s*$", re.M)
_SET_HEADING = re.compile(r"^### (.+?)\s*$", re.M)
_CODE = re.compile(r"```[^\n]*\n(.*?)```", re.S)
_YAML = re.compile(r"```yaml\n(.*?)```", re.S)
_PARAM_NAME = re.compile(r"-(\w+)")
_OPTIONAL_NAMED = re.compile(r"(?<!\[)\[-(\w+)(?: <([^>]+)>)?\]")  # [-Name <Type>] or [-Switch]


def sections(text: str) -> dict[str, str]:
    parts = _SECTION.split(text)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def syntax_sets(syntax: str) -> tuple[str | None, dict[str, str]]:
    """(the default set, each set's syntax text in the help's order) from SYNTAX."""
    headings = list(_SET_HEADING.finditer(syntax))
    if not headings:
        return None, {ALL_SETS: "\n".join(_CODE.findall(syntax))}
    default, code = None, {}
    for i, heading in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(syntax)
        name = heading.group(1)
        if name.endswith("(Default)"):
            name = default = name.removesuffix("(Default)").strip()
        code[name] = "\n".join(_CODE.findall(syntax[heading.end() : end]))
    return default, code


def flat_yaml(text: str) -> dict[str, str]:
    """The help's yaml blocks and front matter are flat 'Key: value' lines (no nesting, no lists)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and not line.startswith(" "):
            out[key.strip()] = value.strip()
    return out


def parameter_blocks(parameters: str) -> list[tuple[str, list[dict]]]:
    """(name, yaml blocks) of each '### -Name' entry of PARAMETERS."""
    out = []
    for entry in re.split(r"^### ", parameters, flags=re.M)[1:]:
        heading = entry.splitlines()[0].strip()
        if not heading.startswith("-"):
            continue  # "### CommonParameters"
        out.append((heading[1:], [flat_yaml(block) for block in _YAML.findall(entry)]))
    return out


def _aliases(value) -> list[str]:
    if not value:
        return []
    return [a.strip() for a in str(value).split(",") if a.strip()]


def _pipeline(value) -> list[str]:
    text = str(value)
    if not text.lower().startswith("true"):
        return []
    kinds = re.findall(r"ByValue|ByPropertyName", text)
    return sorted(set(kinds), key=kinds.index)


def _position(value) -> int | None:
    return None if str(value).strip().lower() == "named" else int(value)


def parameter_facts(name: str, blocks: list[dict], all_sets: list[str]) -> dict:
    first = blocks[0]
    fact: dict = {"type": str(first["Type"]), "aliases": _aliases(first.get("Aliases"))}
    values = first.get("Accepted values")
    if values:
        fact["values"] = _aliases(values)
    fact["pipeline"] = _pipeline(first.get("Accept pipeline input"))
    sets: dict[str, dict] = {}
    for block in blocks:
        named = str(block["Parameter Sets"]).strip()
        members = all_sets if named == "(All)" else [s.strip() for s in named.split(",")]
        for member in members:
            sets[member] = {"mandatory": block["Required"].lower() == "true", "position": _position(block["Position"])}
    fact["sets"] = {s: sets[s] for s in all_sets if s in sets} | {s: v for s, v in sets.items() if s not in all_sets}
    return fact


def cmdlet_facts(path: Path, warn) -> tuple[str, dict]:
    text = path.read_text(encoding="utf-8")
    front = flat_yaml(text.split("---", 2)[1])
    name = str(front["title"])
    parts = sections(text)
    default, syntax = syntax_sets(parts["SYNTAX"])
    sets = list(syntax)
    documented = parameter_blocks(parts["PARAMETERS"])
    parameters = {param: parameter_facts(param, blocks, sets) for param, blocks in documented}
    for param, fact in parameters.items():
        for unknown in set(fact["sets"]) - set(sets):
            warn(f"{name}: -{param} names set {unknown!r}, which SYNTAX does not have")
    for set_name, code in syntax.items():
        for param in _PARAM_NAME.findall(code.replace(name, "")):
            if param != "CommonParameters" and set_name not in parameters.get(param, {}).get("sets", {}):
                warn(f"{name}: SYNTAX {set_name} shows -{param}, PARAMETERS does not put it there")
        # A gap in the help: SYNTAX shows an optional named parameter PARAMETERS omits. The cmdlet has it
        # all the same, with the type SYNTAX gives and (unknown, so none) pipeline input.
        for param, type_name in _OPTIONAL_NAMED.findall(code):
            if param != "CommonParameters" and param not in dict(documented):
                fact = parameters.setdefault(param, {"type": type_name or "SwitchParameter", "aliases": []})
                fact.setdefault("pipeline", [])
                fact.setdefault("sets", {})[set_name] = {"mandatory": False, "position": None}
    common_text = parts["PARAMETERS"].split("### CommonParameters", 1)[-1].strip().split("\n\n")[0]
    common = _PARAM_NAME.findall(common_text)
    return name, {
        "module": str(front.get("Module Name", path.parent.name)),
        "default_set": default,
        "sets": sets,
        "parameters": dict(sorted(parameters.items(), key=lambda p: p[0].lower())),
        "common": [c for c in COMMON if c in common],
    }


def build(reference: Path, warn=lambda message: None) -> dict:
    cmdlets = {}
    for path in sorted(reference.glob("*/*.md")):
        name, facts = cmdlet_facts(path, warn)
        cmdlets[name] = facts
    commit = (reference / "SOURCE-COMMIT").read_text().split()[0] if (reference / "SOURCE-COMMIT").exists() else ""
    return {
        "source": {"reference": "powershell-docs", "commit": commit},
        "common_parameters": {
            name: {"aliases": aliases, "type": type_, **({"values": ACTION_PREFERENCE} if "Action" in type_ else {})}
            for name, (aliases, type_) in COMMON.items()
        },
        "cmdlets": dict(sorted(cmdlets.items(), key=lambda c: c[0].lower())),
    }


def render(facts: dict) -> str:
    return json.dumps(facts, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="the powershell-docs folder (module folders of cmdlet .md files)")
    parser.add_argument("--out", type=Path, default=FACTS_FILE)
    args = parser.parse_args(argv)
    facts = build(args.reference, warn=lambda message: print("warning:", message, file=sys.stderr))
    args.out.write_text(render(facts), encoding="utf-8")
    print(f"{len(facts['cmdlets'])} cmdlets -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
