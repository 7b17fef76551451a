# Cross-task outputs: the provenance index of every finished cell (all tasks append to TARGETS).
