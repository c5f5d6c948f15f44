"""Sphinx directives that render b2models' own definitions into the documentation.

Nothing here is copied by hand: every directive imports the package and reads the text from it.

``.. b2models-equations:: MODEL``
    The equations and synapse code of a model: the upper-case string constants of its module, each under its
    name, exactly as ``b2models show MODEL`` prints them.  ``MODEL`` is a name of ``b2models.models()``
    (``spikecoding``) or a module path (``b2models.models.lca_conv``).  Option ``:names:`` takes a
    comma-separated subset, in the order given.

``.. b2models-protocols:: PAPER``
    A table of the registered protocols of one paper (``spikecoding``, ``resu``, ...): name, summary and the
    data sets used at full scale.

``.. b2models-datasets::``
    A table of the data sets that ``b2models data list|fetch`` knows: name, folder, description, whether it can
    be fetched, and its source.
"""

from __future__ import annotations

import importlib

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

__version__ = "1"


def module_equations(spec: str) -> tuple[str, dict[str, str]]:
    """(module name, {constant name: text}) for a model name or a module path."""
    from b2models.protocol import MODEL_MODULES, model_equations

    if spec in MODEL_MODULES:
        return MODEL_MODULES[spec], model_equations(spec)
    module = importlib.import_module(spec)
    return spec, {k: v for k, v in vars(module).items()
                  if k.isupper() and isinstance(v, str) and not k.startswith("_")}


def _table(header: list[str], rows: list[list[nodes.Node | str]], widths: list[int]) -> nodes.table:
    table = nodes.table(classes=["b2models-table"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for w in widths:
        group += nodes.colspec(colwidth=w)

    def row(cells):
        r = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            para = nodes.paragraph()
            para += cell if isinstance(cell, nodes.Node) else nodes.Text(str(cell))
            entry += para
            r += entry
        return r

    head = nodes.thead()
    head += row(header)
    group += head
    body = nodes.tbody()
    for cells in rows:
        body += row(cells)
    group += body
    return table


class EquationsDirective(SphinxDirective):
    required_arguments = 1
    has_content = False
    option_spec = {"names": directives.unchanged}

    def run(self):
        spec = self.arguments[0].strip()
        try:
            module, eqs = module_equations(spec)
        except Exception as err:  # an import error becomes a build warning (an error under -W)
            raise self.error(f"b2models-equations: cannot read the equations of {spec!r}: {err}") from err
        if "names" in self.options:
            wanted = [n.strip() for n in self.options["names"].split(",") if n.strip()]
            missing = [n for n in wanted if n not in eqs]
            if missing:
                raise self.error(f"b2models-equations: {module} defines no {', '.join(missing)}")
            eqs = {n: eqs[n] for n in wanted}
        if not eqs:
            raise self.error(f"b2models-equations: {module} defines no upper-case string constants")
        self.env.note_dependency(importlib.import_module(module).__file__)
        out = []
        for name, text in eqs.items():
            anchor = nodes.make_id(f"eq-{spec}-{name}")
            title = nodes.rubric(classes=["b2models-equation-name"], ids=[anchor])
            title += nodes.literal(text=name)
            body = text.strip("\n")
            block = nodes.literal_block(body, body, classes=["b2models-equation"])
            block["language"] = "none"
            out += [title, block]
        return out


class ProtocolsDirective(SphinxDirective):
    required_arguments = 1
    has_content = False

    def run(self):
        from b2models.protocol import protocols

        paper = self.arguments[0].strip()
        table = [p for p in protocols(plugins=False).values() if p.paper == paper]
        if not table:
            raise self.error(f"b2models-protocols: no protocol of paper {paper!r}")
        rows = [[nodes.literal(text=p.name), p.summary, ", ".join(p.data) or "none (generated input)"]
                for p in table]
        return [_table(["protocol", "what it runs", "data (full scale)"], rows, [20, 60, 20])]


class DatasetsDirective(SphinxDirective):
    required_arguments = 0
    has_content = False

    def run(self):
        from b2models.data import DATASETS

        rows = []
        for d in DATASETS.values():
            how = "b2models data fetch " + d.name if d.fetchable else "by hand from the source"
            rows.append([nodes.literal(text=d.name), nodes.literal(text=d.folder), d.description,
                         nodes.literal(text=how) if d.fetchable else how, d.citation])
        return [_table(["name", "folder", "contents", "how to get it", "source"], rows, [14, 16, 30, 16, 24])]


def setup(app):
    app.add_directive("b2models-equations", EquationsDirective)
    app.add_directive("b2models-protocols", ProtocolsDirective)
    app.add_directive("b2models-datasets", DatasetsDirective)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
