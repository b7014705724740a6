from loralab.cli.entry import main

raise SystemExit(main())
