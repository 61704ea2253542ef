"""The gallery's image scraper (named by its import path in conf.py, so Sphinx can pickle the config)."""

from sphinx_gallery.scrapers import matplotlib_scraper


def tight_matplotlib_scraper(block, block_vars, gallery_conf):
    """sphinx-gallery's matplotlib scraper saving with ``bbox_inches="tight"``, as
    :func:`cmtheory.report.save_figure` does, so that the local-slope strips drawn below a rate
    panel (inset axes outside the panel) are in the picture."""
    return matplotlib_scraper(block, block_vars, gallery_conf, bbox_inches="tight")
