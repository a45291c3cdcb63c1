"""The migration pages' views (htmx: a fragment or the whole page)."""
