"""A Suite as JUnit XML: the format CI test panels read (GitHub, GitLab, Jenkins).

    <testsuites><testsuite name tests failures errors skipped time timestamp>
      <properties/> <testcase classname name time> [<failure message>text</failure> |
      <error .../> | <skipped message/>] </testcase> ... </testsuite></testsuites>
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from trade_ops.render.verdicts import Suite

__all__ = ["junit_xml", "write_junit"]

_ELEMENT = {"failed": "failure", "error": "error", "skipped": "skipped"}


def _properties(parent: ET.Element, props: dict[str, str]) -> None:
    if props:
        node = ET.SubElement(parent, "properties")
        for name, value in props.items():
            ET.SubElement(node, "property", name=name, value=value)


def junit_xml(suite: Suite) -> str:
    counts = {"tests": len(suite.cases), "failures": suite.count("failed"), "errors": suite.count("error"),
              "skipped": suite.count("skipped")}
    totals = {"name": suite.name, "time": f"{suite.seconds:.3f}", **{k: str(v) for k, v in counts.items()}}
    root = ET.Element("testsuites", totals)
    node = ET.SubElement(root, "testsuite", {**totals, "timestamp": suite.timestamp})
    _properties(node, dict(suite.properties))
    for case in suite.cases:
        tc = ET.SubElement(node, "testcase", classname=case.classname, name=case.name,
                           time=f"{case.seconds:.3f}")
        _properties(tc, dict(case.properties))
        if case.outcome in _ELEMENT:
            verdict = ET.SubElement(tc, _ELEMENT[case.outcome], message=case.message)
            if case.outcome != "skipped":
                verdict.set("type", case.outcome)
                verdict.text = case.text
        elif case.text:
            ET.SubElement(tc, "system-out").text = case.text
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: Path, suite: Suite) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(suite), encoding="utf-8")
    return path
