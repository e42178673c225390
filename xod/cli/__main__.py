from xod.cli.main import main

raise SystemExit(main())
