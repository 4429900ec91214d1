"""Acting on what the user found: pick a selection of files, then export, copy, quarantine or label it.

:mod:`lookalike.actions.selection` turns a cluster, a set of images, a CSV or the duplicate groups
into a :class:`Selection` of file paths; :mod:`lookalike.actions.apply` runs an action on it. Nothing
is ever deleted; every action is logged in the library and a dry run only returns the plan.
"""

from lookalike.actions.apply import ActionResult, copy_files, export_csv, quarantine, rename_cluster, set_label, undo
from lookalike.actions.selection import Selection

__all__ = [
    "ActionResult", "Selection", "copy_files", "export_csv", "quarantine", "rename_cluster", "set_label", "undo",
]  # fmt: skip
