"""Plots and the static HTML report: the tour runs every quirk and writes ``report/index.html``.

See :mod:`pyquirk.report.tour` for the section registry and :func:`run_tour`, and
:mod:`pyquirk.report.html` for the page itself. Importing this package imports neither matplotlib
nor any section module; :func:`run_tour` loads the sections listed in ``SECTION_MODULES``.
"""
from .tour import (SECTION_MODULES, Section, SectionOutput, Table, TourContext, TourError,
                   UnknownSectionError, load_sections, register_section, run_tour, section, sections,
                   unregister_section)

__all__ = ["SECTION_MODULES", "Section", "SectionOutput", "Table", "TourContext", "TourError",
           "UnknownSectionError", "load_sections", "register_section", "run_tour", "section", "sections",
           "unregister_section"]
