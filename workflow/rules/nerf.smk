# placeholder: filled in by the nerf task
