"""Occupancy tables: paper Table 2 (average IoU) and Table 9 (= appendix Table 11, IoU per shape).

The paper prints the per-shape IoU twice (Table 9 in the body's appendix numbering of the
reference CSV, Table 11 in appendix E); both are ``table9_occupancy_iou`` here. Table 2's values
are the "average" rows of Table 9, so its paper column is looked up there.
"""
from __future__ import annotations

from .tables import TableSpec, register_table

register_table(TableSpec("table2_occupancy_average", "2", "occupancy", ("iou",),
                         "Average IoU of 3D shape representation (paper Table 2)",
                         columns="metric", average_only=True, paper_metric_tables={"iou": "9"}))
register_table(TableSpec("table9_occupancy_iou", "9", "occupancy", ("iou",),
                         "IoU ↑ per shape (paper Table 9 / appendix Table 11)"))
