from tui_lab.cli import main

raise SystemExit(main())
