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


def sections(text: str) -> dict[str, str]:
    parts = _SECTION.split(text)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def syntax_sets(cmdlet: str, syntax: str) -> tuple[list[str], str | None, dict[str, list[str]]]:
    """(set names in the help's order, the default set, parameter names per set) from SYNTAX."""
    headings = list(_SET_HEADING.finditer(syntax))
    blocks: list[tuple[str, str]] = []
    default = None
    if not headings:
        blocks = [(ALL_SETS, "\n".join(_CODE.findall(syntax)))]
    for i, heading in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else len(syntax)
        name = heading.group(1)
        if name.endswith("(Default)"):
            name = name.removesuffix("(Default)").strip()
            default = name
        blocks.append((name, "\n".join(_CODE.findall(syntax[heading.end() : end]))))
    names = {
        name: [p for p in _PARAM_NAME.findall(code.replace(cmdlet, "")) if p != "CommonParameters"]
        for name, code in blocks
    }
    return [name for name, _ in blocks], default, names


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
    sets, default, syntax_names = syntax_sets(name, parts["SYNTAX"])
    parameters = {}
    for param, blocks in sorted(parameter_blocks(parts["PARAMETERS"]), key=lambda p: p[0].lower()):
        parameters[param] = parameter_facts(param, blocks, sets)
        for unknown in set(parameters[param]["sets"]) - set(sets):
            warn(f"{name}: -{param} names set {unknown!r}, which SYNTAX does not have")
    for set_name, names in syntax_names.items():
        for param in names:
            if param not in parameters or set_name not in parameters[param]["sets"]:
                warn(f"{name}: SYNTAX {set_name} shows -{param}, PARAMETERS does not put it there")
    common_text = parts["PARAMETERS"].split("### CommonParameters", 1)[-1].strip().split("\n\n")[0]
    common = _PARAM_NAME.findall(common_text)
    return name, {
        "module": str(front.get("Module Name", path.parent.name)),
        "default_set": default,
        "sets": sets,
        "parameters": parameters,
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
