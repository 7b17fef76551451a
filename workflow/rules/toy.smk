# placeholder: filled in by the toy task
