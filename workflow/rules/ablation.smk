# placeholder: filled in by the ablation task
