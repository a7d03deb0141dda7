from bedside.cli.main import main

raise SystemExit(main())
