# placeholder: filled in by the occupancy task
