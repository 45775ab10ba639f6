from merec.cli import main

raise SystemExit(main())
